"""Serializable Keras layers of tlcore's own (never `Lambda`, so saved models load safely)."""
from __future__ import annotations

import keras
from keras import ops

# Per-channel ImageNet means in BGR order, as Caffe-trained VGG/ResNet weights expect.
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
TORCH_RGB_MEANS = (0.485 * 255, 0.456 * 255, 0.406 * 255)
TORCH_RGB_STDS = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# Each convention as (RGB to BGR first?, means, steps): output = (pixels - means) / steps
# per channel. A step is how far a pixel must move to move the network's input by one
# (`models.input_scale` reads it).
PREPROCESSING = {
    "caffe": (True, CAFFE_BGR_MEANS, (1.0, 1.0, 1.0)),
    "tf": (False, (127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    "torch": (False, TORCH_RGB_MEANS, TORCH_RGB_STDS),
    "unit": (False, (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "none": (False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
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
        flip, means, steps = PREPROCESSING[self.mode]
        if flip:
            images = ops.flip(images, axis=-1)
        return (images - ops.convert_to_tensor(means)) / ops.convert_to_tensor(steps)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The shape is unchanged."""
        return input_shape

    def get_config(self) -> dict:
        """Serialise the mode, so saved models reload without code."""
        return {**super().get_config(), "mode": self.mode}
