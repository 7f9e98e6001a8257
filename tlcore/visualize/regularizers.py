"""Penalties that make an ideal image look like an image instead of adversarial noise.

Both are means, not sums, so one weight means the same at any image size (as in
tf-keras-vis); both are in pixel units of [0, 255].
"""
from __future__ import annotations

import tensorflow as tf

MID_GREY = 127.5


def total_variation(images: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference between neighbouring pixels, per image.

    High-frequency noise raises it; smooth regions do not. Penalising it trades some class
    evidence for smoothness, which is why a TV term turns speckle into shapes.

    Args:
        images: (N, H, W, C) pixels.

    Returns:
        (N,) values in pixel units, comparable to `tlcore.images.total_variation`.
    """
    vertical = tf.abs(images[:, 1:, :, :] - images[:, :-1, :, :])
    horizontal = tf.abs(images[:, :, 1:, :] - images[:, :, :-1, :])
    pairs = tf.cast(tf.size(vertical[0]) + tf.size(horizontal[0]), images.dtype)
    return (tf.reduce_sum(vertical, axis=[1, 2, 3])
            + tf.reduce_sum(horizontal, axis=[1, 2, 3])) / pairs


def l2_from_grey(images: tf.Tensor) -> tf.Tensor:
    """Root-mean-square distance of the pixels from mid-grey, per image (pixel units)."""
    return tf.sqrt(tf.reduce_mean(tf.square(images - MID_GREY), axis=[1, 2, 3]) + 1e-8)
