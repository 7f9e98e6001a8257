"""Why did the classifier say that? Grad-CAM and saliency maps over a run's classifier.

*Grad-CAM* (Selvaraju et al., 2017) weights each channel of the body's last spatial layer
by how much the class logit grows with it (the channel's mean gradient), sums the
weighted channels and keeps the positive part: a coarse map of the regions that speak
for the class. A *saliency map* is the gradient of the logit with respect to each pixel;
alone it is noisy, so it is averaged over a few noisy copies of the image (SmoothGrad,
Smilkov et al., 2017). Both start from pixels in [0, 255] and explain the logit, not the
probability (contract 2). Maps are (N, S, S) arrays in [0, 1] at the image's size;
Grad-CAM maps are by default on one scale shared by all the classes of an image
(`grad_cam`'s `scale`), so that their brightness compares across classes.
"""
from __future__ import annotations

import threading
import weakref
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tlcore import backbones, features

SCALES = ("common", "own")


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
             class_indices: np.ndarray | list[int] | None = None, *,
             scale: str = "common") -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps for a batch.

    The *raw* map of a class is the ReLU of the gradient-weighted sum of the spatial
    layer's channels, upsampled to the image (logit units times activation units; no
    scaling yet). How raw maps become [0, 1]:

    - `"common"` (default): every map of an image is divided by the largest raw value
      over the raw maps of *all* the classes of that image. The class with the most
      evidence anywhere peaks at 1; a class with little evidence stays dim, so a class at
      p = 0.000 no longer looks as hot as the predicted one. The scale depends on the
      image only, never on which classes were asked for.
    - `"own"`: each map divided by its own maximum (the usual Grad-CAM display): shows
      where a class's evidence lies, but not how much there is.

    A map of the `"common"` scale divided by its own maximum is the `"own"` one
    (`own_scale`): resizing and dividing commute. Either way every class's raw map is
    computed: one pass through the body and one back through the head per class, in a
    graph built at a model's first call (`_class_weights`).

    Args:
        split_model: from `gradcam_model`.
        images: pixels (N, S, S, 3) in [0, 255].
        class_indices: the class to explain per image; None explains the predicted class.
        scale: `"common"` or `"own"`, as above.

    Returns:
        (maps (N, S, S) in [0, 1]; all zeros where no region speaks for the class),
        (logits (N, K)).

    Raises:
        ValueError: an unknown scale, or class indices that do not fit.
    """
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r}: expected one of {SCALES}")
    pixels = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    logits, activations, weights = _class_weights(split_model)(pixels)
    classes = _classes(logits, class_indices)
    # Raw maps of every class at the layer's resolution: (N, K, h, w).
    every = tf.nn.relu(tf.einsum("nkc,nhwc->nkhw", weights, activations))
    chosen = _upsampled(tf.gather(every, classes, axis=1, batch_dims=1)[:, None],
                        pixels.shape[1:3])[:, 0]
    if scale == "own":
        return own_scale(chosen), logits.numpy()
    peaks = np.zeros(len(chosen), dtype=np.float32)
    for start in range(0, every.shape[1], 64):  # upsampled in slices: K may be large
        upsampled = _upsampled(every[:, start:start + 64], pixels.shape[1:3])
        peaks = np.maximum(peaks, upsampled.reshape(len(upsampled), -1).max(axis=1))
    return _divide(chosen, peaks), logits.numpy()


def own_scale(maps: np.ndarray) -> np.ndarray:
    """Divide each map (N, S, S) by its own maximum (an all-zero map stays zero)."""
    maps = np.asarray(maps, dtype=np.float32)
    return _divide(maps, maps.reshape(len(maps), -1).max(axis=1))


_CLASS_WEIGHTS: "weakref.WeakKeyDictionary[keras.Model, Callable]" = weakref.WeakKeyDictionary()
_CLASS_WEIGHTS_LOCK = threading.Lock()


def _class_weights(split_model: keras.Model
                   ) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """pixels -> (logits (N, K), activations (N, h, w, C), channel weights (N, K, C): each
    class's mean gradient of its logit over the layer), one TensorFlow graph per model.

    In a graph, `tf.gradients` builds only the ops between the layer and the logits, so the
    K gradients cost K passes back through the head, not through the body (eager tapes
    walk the whole body for each: VGG16 at 224 px, 37 classes, took 17-22 s instead of
    well under one). Images are independent (inference mode), so the gradient of a class's
    logits summed over the batch is every image's own.
    """
    with _CLASS_WEIGHTS_LOCK:
        function = _CLASS_WEIGHTS.get(split_model)
        if function is None:
            reference = weakref.ref(split_model)  # the graph keeps the variables, not the model

            def every_class(pixels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
                logits, activations = reference()(pixels, training=False)
                weights = [tf.reduce_mean(tf.gradients(tf.reduce_sum(logits[:, index]),
                                                       activations)[0], axis=(1, 2))
                           for index in range(logits.shape[-1])]
                return logits, activations, tf.stack(weights, axis=1)

            signature = [tf.TensorSpec((None, *split_model.input_shape[1:]), tf.float32)]
            function = tf.function(every_class, input_signature=signature)
            _CLASS_WEIGHTS[split_model] = function
    return function


def _upsampled(maps: tf.Tensor, size: tf.TensorShape) -> np.ndarray:
    """Maps (N, M, h, w) resized bilinearly to (N, M, S, S)."""
    count, many, height, width = maps.shape
    flat = tf.reshape(maps, (-1, height, width, 1))
    resized = tf.image.resize(flat, size, method="bilinear")[..., 0].numpy()
    return resized.reshape(count, many, *resized.shape[1:])


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


def _divide(maps: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """maps (N, S, S) / peaks (N,), clipped to [0, 1]; zero where a peak is zero."""
    peaks = np.asarray(peaks, dtype=np.float32)[:, None, None]
    scaled = np.where(peaks > 0, maps / np.maximum(peaks, 1e-12), 0.0)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)
