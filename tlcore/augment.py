"""Augmentation: the random changes fine-tuning makes to its training images.

`layers` builds them as Keras layers from a `config.Augmentation`, in one place, so that
the training's batches (`tlcore.train.augmented_batches`) and the Train page's preview
(`preview`) make the same changes: what the page shows is what the model trains on.
"""
from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, images

_FLIP_MODES = {"horizontal": "horizontal", "both": "horizontal_and_vertical"}
# The Keras layer of each kind of `config.AUGMENTATIONS`, from its value and a seed.
_LAYERS: dict[str, Callable[[Any, int], keras.layers.Layer]] = {
    "flip": lambda mode, seed: keras.layers.RandomFlip(_FLIP_MODES[mode], seed=seed),
    "rotation": lambda turn, seed: keras.layers.RandomRotation(turn, fill_mode="reflect",
                                                               seed=seed),
    "zoom": lambda share, seed: keras.layers.RandomZoom(share, fill_mode="reflect", seed=seed),
    "translation": lambda share, seed: keras.layers.RandomTranslation(
        share, share, fill_mode="reflect", seed=seed),
    "brightness": lambda share, seed: keras.layers.RandomBrightness(
        share, value_range=(0, 255), seed=seed),
    # A pair, as Keras documents it: Keras 3 reads a lone float as "stronger contrast only".
    "contrast": lambda share, seed: keras.layers.RandomContrast(
        (share, share), value_range=(0, 255), seed=seed),
    # Keras reads a saturation factor of 0.5 as no change, 0 as grey and 1 as full colour.
    "saturation": lambda spread, seed: keras.layers.RandomSaturation(
        (0.5 - spread / 2, 0.5 + spread / 2), value_range=(0, 255), seed=seed),
    # Half of the images lose a patch of between a quarter of the largest share and all of
    # it; mid-grey, not Keras's default noise, reads as "hidden".
    "erasing": lambda share, seed: keras.layers.RandomErasing(
        (0.5, 0.5), scale=(share / 4, share), fill_value=127.5, value_range=(0, 255),
        seed=seed),
}


def layers(augmentation: config.Augmentation, seed: int = 0) -> keras.Sequential:
    """Build the layers that make `augmentation`'s random changes to [0, 255] pixels.

    Each kind that changes images gets a layer, in `config.AUGMENTATIONS`' order, with a
    seed of its own: kinds draw independent numbers, and a kind draws the same numbers
    whichever others are on, so a change of one strength changes only what that kind does.

    Args:
        augmentation: which changes, how strong.
        seed: the same seed draws the same changes from fresh layers.

    Returns:
        A Sequential to call with `training=True` (`apply`); an identity when nothing
        changes.
    """
    kinds = list(config.AUGMENTATIONS)
    built = [_LAYERS[name](value, seed * len(kinds) + kinds.index(name))
             for name, value in augmentation.changes().items()]
    return keras.Sequential(built or [keras.layers.Identity()], name="augmentation")


def apply(augmenter: keras.Sequential, batch: Any) -> tf.Tensor:
    """One random draw of `augmenter`'s changes to a batch (N, H, W, 3) of pixels in
    [0, 255] (any dtype); float32, clipped to [0, 255]."""
    return tf.clip_by_value(augmenter(tf.cast(batch, tf.float32), training=True), 0.0, 255.0)


def preview(pictures: np.ndarray, augmentation: config.Augmentation, draws: int,
            seed: int = 0) -> np.ndarray:
    """Random versions of a few images, made as the training makes them (`layers`,
    `apply`).

    Args:
        pictures: uint8 images (N, H, W, 3).
        augmentation: which changes, how strong.
        draws: versions of each image.
        seed: the same seed gives the same versions, so a changed strength shows the
            change alone; another seed, other versions.

    Returns:
        uint8 (N, draws, H, W, 3).
    """
    tiled = np.concatenate([pictures] * draws)  # one call: draw d of image i at d * N + i
    changed = images.to_uint8(apply(layers(augmentation, seed), tiled).numpy())
    return changed.reshape(draws, *pictures.shape).swapaxes(0, 1)
