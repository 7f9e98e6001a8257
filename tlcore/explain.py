"""Why did the classifier say that? Grad-CAM and saliency maps over a run's classifier.

*Grad-CAM* (Selvaraju et al., 2017) weights each channel of the body's last spatial layer
by how much the class logit grows with it (the channel's mean gradient), sums the
weighted channels and keeps the positive part: a coarse map of the regions that speak
for the class. A *saliency map* is the gradient of the logit with respect to each pixel;
alone it is noisy, so it is averaged over a few noisy copies of the image (SmoothGrad,
Smilkov et al., 2017). Both start from pixels in [0, 255] and explain the logit, not the
probability (contract 2). Maps are (N, S, S) arrays in [0, 1] at the image's size.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tlcore import backbones, features


def gradcam_model(classifier: keras.Model, backbone_name: str,
                  layer_name: str | None = None) -> keras.Model:
    """Rebuild a classifier so that it returns (logits, activations of a spatial layer).

    Args:
        classifier: pixels -> logits, a chain of layers (a run's model, an ImageNet
            classifier, a wrapped external model); its weights are shared, not copied.
        backbone_name: the registry name of its body (decides the default layer).
        layer_name: a spatial layer; default: the registry's last conv layer.

    Raises:
        ValueError: the layer is missing or not spatial, or the model is not a chain.
    """
    layer_name = layer_name or backbones.get_spec(backbone_name).last_conv_layer
    split = features.activation_model(classifier, [layer_name])
    if len(split.outputs[1].shape) != 4:
        raise ValueError(f"layer {layer_name!r} has output shape {split.outputs[1].shape}; "
                         "Grad-CAM needs a spatial (N, H, W, C) layer")
    return split


def grad_cam(split_model: keras.Model, images: np.ndarray,
             class_indices: np.ndarray | list[int] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps for a batch.

    Args:
        split_model: from `gradcam_model`.
        images: pixels (N, S, S, 3) in [0, 255].
        class_indices: the class to explain per image; None explains the predicted class.

    Returns:
        (maps (N, S, S) in [0, 1], each scaled to its own maximum; all zeros where no region
        speaks for the class), (logits (N, K)).
    """
    pixels = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    with tf.GradientTape() as tape:
        logits, activations = split_model(pixels, training=False)
        classes = _classes(logits, class_indices)
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    gradients = tape.gradient(score, activations)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))[..., None]
    maps = tf.image.resize(maps, pixels.shape[1:3], method="bilinear")[..., 0]
    return _unit_scale(maps.numpy()), logits.numpy()


def saliency(classifier: keras.Model, images: np.ndarray,
             class_indices: np.ndarray | list[int] | None = None, *, samples: int = 8,
             noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """SmoothGrad saliency: |d logit / d pixel|, averaged over noisy copies of each image.

    Args:
        classifier: pixels in [0, 255] -> logits.
        images: (N, S, S, 3).
        class_indices: the class per image; None uses the prediction on the clean image.
        samples: noisy copies averaged (1 and noise 0: the plain gradient).
        noise: standard deviation of the added noise, as a share of the 0-255 range.
        seed: seeds the noise.

    Returns:
        Maps (N, S, S) in [0, 1]: the largest channel gradient per pixel, scaled by each
        map's 99th percentile (one extreme pixel does not wash out the rest).
    """
    images = np.asarray(images, dtype=np.float32)
    logits = classifier(images, training=False)
    classes = _classes(logits, class_indices)
    generator = np.random.default_rng(seed)
    total = np.zeros(images.shape, dtype=np.float32)
    for _ in range(samples):
        noisy = tf.convert_to_tensor(
            images + generator.normal(0.0, noise * 255.0, images.shape).astype(np.float32))
        with tf.GradientTape() as tape:
            tape.watch(noisy)
            score = tf.reduce_sum(tf.gather(classifier(noisy, training=False), classes,
                                            axis=1, batch_dims=1))
        total += np.abs(tape.gradient(score, noisy).numpy())
    maps = total.max(axis=-1)
    scale = np.percentile(maps.reshape(len(maps), -1), 99, axis=1)[:, None, None]
    return np.clip(maps / np.maximum(scale, 1e-12), 0.0, 1.0)


def _classes(logits: tf.Tensor, class_indices: np.ndarray | list[int] | None) -> tf.Tensor:
    if class_indices is None:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    classes = np.asarray(class_indices, dtype=np.int32).reshape(-1)
    if len(classes) != logits.shape[0]:
        raise ValueError(f"{len(classes)} class indices for {logits.shape[0]} images")
    if classes.min() < 0 or classes.max() >= logits.shape[-1]:
        raise ValueError(f"class indices {classes.tolist()} outside 0..{logits.shape[-1] - 1}")
    return tf.constant(classes)


def _unit_scale(maps: np.ndarray) -> np.ndarray:
    peak = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.where(peak > 0, maps / np.maximum(peak, 1e-12), 0.0).astype(np.float32)

