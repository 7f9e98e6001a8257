"""The built-in demo data set: synthetic shapes and textures, drawn procedurally and seeded.

It needs no network and is made in about a second, so every workflow works offline. It is
synthetic and labelled so everywhere: numbers on it say little about real photographs.
Each image has a random smooth background, sensor-like noise and a random colour, so a
classifier must learn shape or texture, not a colour. `demo_dataset` opens it like any
folder (the `"demo"` entry of `data.SOURCES`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from tlcore import atomic, config, folders
from tlcore.config import StepCallback

DEMO_NAME = "Demo: shapes and textures (synthetic)"
CLASS_NAMES = ("checkerboard", "circle", "square", "stripes", "triangle", "dots")
IMAGE_SIZE = 96
IMAGES_PER_CLASS = 150
VERSION = "v2"

Painter = Callable[[ImageDraw.ImageDraw, np.random.Generator, tuple[int, int, int]], None]


def demo_dataset(seed: int = 0, on_step: StepCallback | None = None,
                 should_stop: Callable[[], bool] | None = None) -> folders.Dataset:
    """Return the built-in synthetic demo set (generated once, then read from the cache).

    The images are always the same; `seed` only changes the split, like for any folder.
    `on_step` reports the check of its files; `should_stop` is not polled (nothing is
    downloaded).
    """
    folder = ensure_demo_images(config.cache_dir() / "demo")
    dataset = folders.from_folder(folder, name=DEMO_NAME, seed=seed, native_size=IMAGE_SIZE,
                                  synthetic=True, on_step=on_step)
    return dataclasses.replace(dataset, source="demo")


def ensure_demo_images(cache_folder: Path, seed: int = 0,
                       images_per_class: int = IMAGES_PER_CLASS) -> Path:
    """Generate the demo images once into `cache_folder` and return their folder.

    Generation happens in a temporary folder that is renamed into place, so a crash or a
    concurrent caller never leaves a half-made set behind.
    """
    folder = cache_folder / f"{VERSION}-seed{seed}-n{images_per_class}"
    if folder.is_dir():
        return folder
    with atomic.staged_folder(folder) as staging:  # a concurrent maker's copy is identical
        write_demo_images(staging, seed=seed, images_per_class=images_per_class)
    return folder


def write_demo_images(folder: Path, seed: int = 0, images_per_class: int = IMAGES_PER_CLASS) -> None:
    """Write `images_per_class` PNG files per class into `folder/<class>/`."""
    random = np.random.default_rng(seed)
    for class_name in CLASS_NAMES:
        (folder / class_name).mkdir(parents=True, exist_ok=True)
        for index in range(images_per_class):
            image = draw_example(class_name, random)
            Image.fromarray(image).save(folder / class_name / f"{class_name}_{index:04d}.png")


def draw_example(class_name: str, random: np.random.Generator) -> np.ndarray:
    """Draw one uint8 (IMAGE_SIZE, IMAGE_SIZE, 3) example of a class on a noisy background."""
    base = _background(random, IMAGE_SIZE)
    canvas = Image.fromarray(base)
    colour = _contrasting_colour(random, base.mean(axis=(0, 1)))
    PAINTERS[class_name](ImageDraw.Draw(canvas), random, colour)
    pixels = np.asarray(canvas, dtype=np.float32)
    pixels += random.normal(0, 8, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _background(random: np.random.Generator, size: int) -> np.ndarray:
    start, end = random.uniform(0, 255, (2, 3))
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    angle = random.uniform(0, 2 * np.pi)
    weight = np.clip(0.5 + (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]) / 2, 0, 1)
    return (start + (end - start) * weight[..., None]).astype(np.uint8)


def _contrasting_colour(random: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    for _ in range(20):
        colour = random.uniform(0, 255, 3)
        if np.abs(colour - background).sum() > 180:
            break
    return tuple(int(c) for c in colour)


def _box(random: np.random.Generator) -> tuple[float, float, float]:
    radius = random.uniform(0.18, 0.35) * IMAGE_SIZE
    centre_x, centre_y = random.uniform(radius, IMAGE_SIZE - radius, 2)
    return centre_x, centre_y, radius


def _circle(draw: ImageDraw.ImageDraw, random: np.random.Generator, colour) -> None:
    x, y, r = _box(random)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _square(draw: ImageDraw.ImageDraw, random: np.random.Generator, colour) -> None:
    x, y, r = _box(random)
    # Nearly axis-aligned, so that a square is told from a triangle by its edges' directions.
    draw.regular_polygon((x, y, r * 1.2), 4, rotation=45 + random.uniform(-8, 8), fill=colour)


def _triangle(draw: ImageDraw.ImageDraw, random: np.random.Generator, colour) -> None:
    x, y, r = _box(random)
    draw.regular_polygon((x, y, r * 1.3), 3, rotation=random.uniform(0, 120), fill=colour)


def _stripes(draw: ImageDraw.ImageDraw, random: np.random.Generator, colour) -> None:
    width = int(random.integers(4, 9))
    vertical = random.random() < 0.5
    for offset in range(int(random.integers(0, width)), IMAGE_SIZE, 2 * width):
        box = ((offset, 0, offset + width - 1, IMAGE_SIZE) if vertical
               else (0, offset, IMAGE_SIZE, offset + width - 1))
        draw.rectangle(box, fill=colour)


def _checkerboard(draw: ImageDraw.ImageDraw, random: np.random.Generator, colour) -> None:
    cell = int(random.integers(8, 17))
    for row in range(0, IMAGE_SIZE, cell):
        for column in range(0, IMAGE_SIZE, cell):
            if (row // cell + column // cell) % 2 == 0:
                draw.rectangle((column, row, column + cell - 1, row + cell - 1), fill=colour)


def _dots(draw: ImageDraw.ImageDraw, random: np.random.Generator, colour) -> None:
    for _ in range(int(random.integers(15, 30))):
        x, y = random.uniform(0, IMAGE_SIZE, 2)
        r = random.uniform(2, 4)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


PAINTERS: dict[str, Painter] = {
    "checkerboard": _checkerboard, "circle": _circle, "square": _square,
    "stripes": _stripes, "triangle": _triangle, "dots": _dots,
}
