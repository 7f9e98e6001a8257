"""Penalties that make an ideal image look like an image instead of adversarial noise.

All are means, not sums, so one weight means the same at any image size (as in
tf-keras-vis); all are in pixel units of [0, 255], one value per image.
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


def l1_from_grey(images: tf.Tensor) -> tf.Tensor:
    """Mean absolute distance of the pixels from mid-grey, per image: favours images that
    change few pixels a lot over ones that change every pixel a little."""
    return tf.reduce_mean(tf.abs(images - MID_GREY), axis=[1, 2, 3])


def blur_distance(images: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference between an image and its 3x3 blur, per image: like TV, it
    charges for detail finer than a few pixels, but looks at whole neighbourhoods."""
    kernel = tf.constant([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, images.shape[-1], 1])
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    blurred = tf.nn.depthwise_conv2d(padded, kernel, strides=[1, 1, 1, 1], padding="VALID")
    return tf.reduce_mean(tf.abs(images - blurred), axis=[1, 2, 3])
