"""Random transforms applied to the image before the model at every step (Lucid's
"transformation robustness"): features that only work at one exact pixel offset, scale or
angle are adversarial noise; ones that survive small moves look like things.

All of them keep the image's size, so the model always gets its input side. Sizes are given
for 224 px (Lucid's values) and scaled to the image.
"""
from __future__ import annotations

import math

import tensorflow as tf

from tlcore.visualize.regularizers import MID_GREY

PAD, JITTER, SCALES, DEGREES = 12, 8, (0.9, 1.1), 10.0


def pad(images: tf.Tensor, pixels: int) -> tf.Tensor:
    """Pad every side with mid-grey."""
    if pixels <= 0:
        return images
    return tf.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]],
                  constant_values=MID_GREY)


def jitter(images: tf.Tensor, pixels: int, generator: tf.random.Generator) -> tf.Tensor:
    """Shift the batch by a random offset of up to `pixels` in each direction (wrapping)."""
    if pixels <= 0:
        return images
    offsets = generator.uniform([2], -pixels, pixels + 1, dtype=tf.int32)
    return tf.roll(images, shift=offsets, axis=[1, 2])


def scale_and_rotate(images: tf.Tensor, scales: tuple[float, float], degrees: float,
                     generator: tf.random.Generator) -> tf.Tensor:
    """Zoom each image by a random factor in `scales` and turn it by up to `degrees`,
    about its centre (bilinear, edges reflected), keeping its size."""
    count = tf.shape(images)[0]
    height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2],
                                                                      tf.float32)
    zoom = generator.uniform([count], scales[0], scales[1])
    angle = generator.uniform([count], -degrees, degrees) * (math.pi / 180.0)
    # The transform maps output pixel (x, y) to the input pixel it samples.
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    transforms = tf.stack([cos, -sin, centre_x - cos * centre_x + sin * centre_y,
                           sin, cos, centre_y - sin * centre_x - cos * centre_y,
                           tf.zeros([count]), tf.zeros([count])], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=MID_GREY, interpolation="BILINEAR", fill_mode="REFLECT")


def standard(images: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
    """Pad, jitter, scale, rotate, jitter again, then crop back to the original size."""
    side = images.shape[1]
    factor = side / 224.0
    padding, shift = max(1, round(PAD * factor)), max(1, round(JITTER * factor))
    moved = jitter(pad(images, padding), shift, generator)
    moved = scale_and_rotate(moved, SCALES, DEGREES, generator)
    moved = jitter(moved, max(1, shift // 2), generator)
    return moved[:, padding:padding + side, padding:padding + images.shape[2], :]
