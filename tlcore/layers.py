"""Serializable Keras layers of tlcore's own (never `Lambda`, so saved models load safely)."""
from __future__ import annotations

import keras
from keras import ops

# Per-channel ImageNet means in BGR order, as Caffe-trained VGG/ResNet weights expect.
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
TORCH_RGB_MEANS = (0.485 * 255, 0.456 * 255, 0.406 * 255)
TORCH_RGB_STDS = (0.229 * 255, 0.224 * 255, 0.225 * 255)

PREPROCESSING_MODES = {
    "caffe": "RGB to BGR, minus the ImageNet channel means (VGG, ResNet50)",
    "tf": "scaled to [-1, 1] (MobileNetV2, Inception)",
    "torch": "scaled to [0, 1], minus mean, divided by std per channel (PyTorch ports)",
    "unit": "scaled to [0, 1]",
    "none": "raw [0, 255] pixels (MobileNetV3 and EfficientNet preprocess inside)",
}


@keras.saving.register_keras_serializable(package="tlcore")
class PixelPreprocessing(keras.layers.Layer):
    """Map raw RGB pixels in [0, 255] to the input convention a backbone was trained with.

    Args:
        mode: one of PREPROCESSING_MODES.
    """

    def __init__(self, mode: str = "none", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"preprocessing mode={mode!r} is not one of "
                             f"{sorted(PREPROCESSING_MODES)}")
        self.mode = mode

    def call(self, images: keras.KerasTensor) -> keras.KerasTensor:
        """Convert a batch of [0, 255] RGB pixels to this layer's convention."""
        images = ops.cast(images, "float32")
        if self.mode == "caffe":
            return ops.flip(images, axis=-1) - ops.convert_to_tensor(CAFFE_BGR_MEANS)
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "torch":
            return (images - ops.convert_to_tensor(TORCH_RGB_MEANS)) / ops.convert_to_tensor(
                TORCH_RGB_STDS)
        if self.mode == "unit":
            return images / 255.0
        return images

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The shape is unchanged."""
        return input_shape

    def get_config(self) -> dict:
        """Serialise the mode, so saved models reload without code."""
        return {**super().get_config(), "mode": self.mode}
