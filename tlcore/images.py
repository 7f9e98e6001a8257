"""Decode, validate and convert images; the one pixel space is float32 RGB in [0, 255].

Every image that enters tlcore comes through `load_image`, which refuses what it cannot
decode with an `ImageError` naming the file and the reason, so callers can skip and report
bad files instead of crashing.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps

from tlcore import atomic, config

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# A scan decodes every byte of a file (to find truncated ones) but needs no full-size
# pixels: JPEGs are decoded at a reduced scale down to about this side.
CHECK_SIDE = 256

ImageSource = Union[str, os.PathLike, bytes, BinaryIO]


class ImageError(ValueError):
    """An image that cannot be used: unreadable, truncated, not an image, or too large."""


def max_pixels() -> int:
    """The most pixels an image may declare (`config.limits().image_megapixels`)."""
    return int(config.limits().image_megapixels * 1e6)


def declared_size(source: ImageSource) -> tuple[int, int]:
    """Return an image's (width, height) from its header, without decoding pixels.

    Raises:
        ImageError: not an image Pillow recognises.
    """
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return image.size
    except Exception as error:  # Pillow raises many types for broken files
        raise ImageError(f"not a readable image ({type(error).__name__})") from error


def load_image(source: ImageSource, size: int | None = None, *,
               reduce_to: int | None = None) -> np.ndarray:
    """Decode an image file into an RGB uint8 array, optionally resized to a square.

    Args:
        source: a path, the file's bytes, or a binary file object.
        size: side of the square output in pixels; None keeps the original size.
        reduce_to: when no `size` is given, a side the caller needs no more than: a JPEG
            is then decoded at a reduced scale (every byte is still read and checked).

    Returns:
        uint8 array of shape (H, W, 3).

    Raises:
        ImageError: the file is not a decodable image or declares more than
            `max_pixels()`.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "uploaded image"
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        # The limit is below Pillow's own bomb threshold, so the size check below refuses
        # a bomb from its header, before any pixel is decoded.
        with Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels():
                raise ImageError(f"{name}: {width}x{height} pixels is more than the "
                                 f"{max_pixels():,} allowed here")
            side = size or reduce_to
            if side is not None:
                image.draft("RGB", (side, side))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
            image.seek(0)  # first frame of an animation
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
            if size is not None:
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own, far bigger, limit
        raise ImageError(f"{name}: declares more pixels than the {max_pixels():,} allowed "
                         "(a decompression bomb?)") from error
    except Image.UnidentifiedImageError as error:
        raise ImageError(f"{name}: not a readable image (no image format this app knows: "
                         "another kind of file, renamed?)") from error
    except Exception as error:  # Pillow and its plug-ins raise many types for broken files
        raise ImageError(f"{name}: not a readable image (damaged or cut short)") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparent pixels become white, not black."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit levels map onto 8-bit ones (65535 -> 255), so a dark photo stays dark; a
        # 32-bit image beyond 16-bit range is scaled by its own maximum. Integer arithmetic
        # in place: a float64 copy of a 23-megapixel image alone is 184 MB.
        array = np.asarray(image).astype(np.int64 if image.mode == "I" else np.uint32)
        np.clip(array, 0, None, out=array)
        top = max(65535, int(array.max()))
        array *= 255
        array += top // 2
        array //= top
        image = Image.fromarray(array.astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Round float pixels in [0, 255] to uint8, clipping anything outside the range."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float32)), 0, 255).astype(np.uint8)


def normalize_for_display(array: np.ndarray) -> np.ndarray:
    """Stretch any array to uint8 [0, 255] by its own min and max (for maps and deltas)."""
    array = np.asarray(array, dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    if high - low < 1e-12:
        return np.zeros(array.shape, dtype=np.uint8)
    return to_uint8((array - low) / (high - low) * 255.0)


# Anchors of a dark-to-bright heat palette (close to matplotlib's "inferno"): equal steps of
# the map go to roughly equal steps of brightness, and it reads in greyscale too.
_HEAT_ANCHORS = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99),
                          (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164)],
                         dtype=np.float32)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """Colour a map with values in [0, 1] (H, W) as a heat image (H, W, 3) uint8."""
    values = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    positions = np.linspace(0.0, 1.0, len(_HEAT_ANCHORS))
    channels = [np.interp(values, positions, _HEAT_ANCHORS[:, c]) for c in range(3)]
    return to_uint8(np.stack(channels, axis=-1))


def overlay(image: np.ndarray, heatmap: np.ndarray, strength: float = 0.6) -> np.ndarray:
    """Blend a heat map over an image where the map is high; cold regions stay the image.

    Args:
        image: (H, W, 3) in [0, 255].
        heatmap: (H, W) in [0, 1], the image's size.
        strength: the colour's weight where the map is 1.
    """
    image = np.asarray(image, dtype=np.float32)
    heatmap = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    if heatmap.shape != image.shape[:2]:
        raise ValueError(f"heat map {heatmap.shape} does not match image {image.shape[:2]}")
    weight = strength * heatmap[..., None]
    return to_uint8(image * (1.0 - weight) + colorize(heatmap).astype(np.float32) * weight)


def total_variation(image: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels, in pixel units.

    Args:
        image: (H, W, C) array in [0, 255].

    Returns:
        The mean over all horizontal and vertical neighbour pairs and channels.
    """
    image = np.asarray(image, dtype=np.float64)
    vertical = np.abs(np.diff(image, axis=0))
    horizontal = np.abs(np.diff(image, axis=1))
    return float((vertical.sum() + horizontal.sum()) / (vertical.size + horizontal.size))


def image_grid(images: np.ndarray, columns: int = 8, padding: int = 2) -> np.ndarray:
    """Tile a batch (N, H, W, 3) of uint8 images into one white-padded grid image."""
    images = to_uint8(images)
    count, height, width, channels = images.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding,
                    channels), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) image in [0, 255] as PNG bytes (rounded to 8 bits)."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail_png(source: ImageSource, side: int) -> bytes:
    """A `side` x `side` PNG of an image file: shrunk to fit and centred on transparency,
    so a strip of 512x1 pixels stays visible and every thumbnail of a grid has one size.

    Raises:
        ImageError: as `load_image`.
    """
    picture = Image.fromarray(load_image(source, reduce_to=side)).convert("RGBA")
    buffer = io.BytesIO()
    ImageOps.pad(picture, (side, side), color=(0, 0, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an image as PNG atomically (temporary file, then rename); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_file(path, png_bytes(image))
    return path
