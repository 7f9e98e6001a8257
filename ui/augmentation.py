"""The Train page's augmentation section: what augmentation is for, a slider for each kind of
random change (`config.AUGMENTATIONS`), and a grid of a few training images as fine-tuning
will change them, redrawn at every change. The grid is made by the training's own layers
(`tlcore.augment.preview`): what it shows is what the model trains on."""
from __future__ import annotations

import numpy as np
import streamlit as st

from tlcore import augment, config, data, images
from ui import state

TITLE = "Augmentation: what fine-tuning shows the model"
LESSON = (
    "Fine-tuning sees every training image many times. Changing it a little at random each "
    "time (mirrored, turned, zoomed, lighter) gives the model more variety from the same "
    "images, so it learns what makes the class instead of memorising the pictures. Make only "
    "changes that keep the label true: an upside-down flip is wrong for photos of pets, "
    "which are never upside down, but right for textures, cells or satellite views.")
OTHER_MODES = (
    "Only **Fine-tune** changes its training images at random. A feature extractor turns "
    "each image into features once, from the image as it is, and end-to-end training here "
    "learns from the images as they are.")
SWITCH_LABEL = "Augment the training images"
NEW_DRAW = "New draw"
IMAGES, DRAWS, SIDE = 4, 4, 112  # training images shown, random versions of each, pixels
GAP = 16  # pixels between the images as they are and their versions
_DEFAULTS = config.Augmentation()


def options(mode: str, dataset: data.Dataset, key: str) -> dict:
    """Augmentation's settings in a section that teaches and shows them, with the grid of
    training images under them; in other modes than fine-tuning, that it is not used.

    Args:
        mode: the training mode chosen in the form.
        dataset: the data set whose training images the grid shows.
        key: prefixes the settings' widget keys (the form's own prefix, so the form keeps
            them).

    Returns:
        `TrainConfig` settings: "augment" and "augmentation" (none outside fine-tuning).
    """
    # Keyed: it stays open when the mode changes what the form shows above it.
    with st.expander(TITLE, icon=":material/auto_awesome_mosaic:", key="train-augment-section"):
        if mode != "fine-tune":
            st.markdown(OTHER_MODES)
            return {}
        st.markdown(LESSON)
        switched_on = st.checkbox(SWITCH_LABEL, True, key=f"{key}augment")
        settings = sliders(key, disabled=not switched_on)
        if switched_on:
            preview(dataset, settings)
    return {"augment": switched_on, "augmentation": settings}


def sliders(key: str, disabled: bool = False) -> config.Augmentation:
    """One slider per kind of change (`config.AUGMENTATIONS`), four to a row; return the
    settings they show."""
    values = {}
    columns = st.columns(4)
    for index, (name, kind) in enumerate(config.AUGMENTATIONS.items()):
        column = columns[index % len(columns)]
        default = getattr(_DEFAULTS, name)
        if kind.choices:
            values[name] = column.select_slider(kind.label, kind.choices, default, help=kind.note,
                                                disabled=disabled, key=f"{key}augment-{name}")
            continue
        shown = column.slider(kind.label, 0, round(kind.maximum * kind.scale),
                              round(default * kind.scale), help=kind.note, disabled=disabled,
                              format="%d" + kind.unit.replace("%", "%%"),
                              key=f"{key}augment-{name}")
        values[name] = shown / kind.scale
    return config.Augmentation(**values)


def preview(dataset: data.Dataset, settings: config.Augmentation) -> None:
    """The grid: a few training images as they are, then random versions of each as the
    training makes them; the same versions until "New draw", so a slider shows its own
    change."""
    paths = _paths(dataset)
    if not paths:
        st.info("This data set has no training images to show.", icon=":material/info:")
        return
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(f"Each row: a training image as it is (left), then {DRAWS} random versions "
                 "of it, as fine-tuning's batches show it to the model. The versions stay the "
                 "same while you move the sliders, so you see what each one does; "
                 f"**{NEW_DRAW}** shows others.")
    right.button(NEW_DRAW, icon=":material/casino:", key="train-augment-new-draw",
                 on_click=state.next_augmentation_draw)
    st.image(_grid(paths, settings, state.augmentation_draw()),
             caption=settings.describe().capitalize(), output_format="PNG")


def _paths(dataset: data.Dataset) -> tuple[str, ...]:
    """`IMAGES` training images, from as many classes as there are (the first of each class
    first)."""
    samples = list(dataset.sample_paths(IMAGES).values())
    ranked = [paths[rank] for rank in range(IMAGES) for paths in samples if rank < len(paths)]
    return tuple(ranked[:IMAGES])


@st.cache_data(max_entries=16, show_spinner=False)
def _pictures(paths: tuple[str, ...]) -> np.ndarray:
    """The images decoded once at `SIDE` pixels."""
    return data.load_images(list(paths), SIDE)


@st.cache_data(max_entries=64, show_spinner=False)
def _grid(paths: tuple[str, ...], settings: config.Augmentation, draw: int) -> bytes:
    """The preview as one PNG: the images in a column, a gap, then a row of versions of
    each."""
    pictures = _pictures(paths)
    versions = augment.preview(pictures, settings, DRAWS, seed=draw)
    originals = images.image_grid(pictures, columns=1)
    changed = images.image_grid(versions.reshape(-1, *pictures.shape[1:]), columns=DRAWS)
    gap = np.full((originals.shape[0], GAP, 3), 255, dtype=np.uint8)
    return images.png_bytes(np.concatenate([originals, gap, changed], axis=1))
