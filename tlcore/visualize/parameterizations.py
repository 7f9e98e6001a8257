"""How the image is stored while it is optimised: the pixels, or a decorrelated spectrum.

Optimising pixels directly lets the gradient put energy in the highest frequencies
(speckle). Lucid's Fourier parameterisation stores the image as a spectrum scaled by
1/frequency, so every frequency starts with equal power and low frequencies move as easily
as high ones, and in a colour basis where the channels are decorrelated (the square root
of ImageNet's colour covariance); a sigmoid keeps the result inside [0, 255].
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

# Lucid's square root of ImageNet's colour correlation, normalised by its largest column.
_COLOUR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]],
                        dtype=np.float32)
COLOUR_MATRIX = _COLOUR_SQRT / np.max(np.linalg.norm(_COLOUR_SQRT, axis=0))
SPECTRUM_STD = 0.01


class PixelImage:
    """The image itself is the variable; clipped to [0, 255] after every step."""

    def __init__(self, start: np.ndarray) -> None:
        self.variable = tf.Variable(np.asarray(start, dtype=np.float32))

    def image(self) -> tf.Tensor:
        """The current images (N, H, W, 3) in [0, 255]."""
        return self.variable

    def constrain(self) -> None:
        """Put the pixels back inside [0, 255]."""
        self.variable.assign(tf.clip_by_value(self.variable, 0.0, 255.0))


class FourierImage:
    """The image as a colour-decorrelated, 1/f-scaled spectrum passed through a sigmoid.

    Args:
        shape: (N, H, W, 3) of the images.
        start: images to start from (inverted into the spectrum), or None for a small
            random spectrum (a grey image with faint smooth colour).
        seed: seeds the random spectrum.
        decay_power: how fast the scaling falls with frequency (1: equal power per octave).
    """

    def __init__(self, shape: tuple[int, int, int, int], start: np.ndarray | None = None,
                 seed: int = 0, decay_power: float = 1.0) -> None:
        count, height, width, _ = shape
        self.size = (height, width)
        frequency_y = np.fft.fftfreq(height)[:, None]
        frequency_x = np.fft.rfftfreq(width)[None, :]
        frequencies = np.sqrt(frequency_y ** 2 + frequency_x ** 2)
        self.scale = tf.constant((1.0 / np.maximum(frequencies, 1.0 / max(height, width))
                                  ** decay_power * np.sqrt(height * width)).astype(np.float32))
        if start is None:
            spectrum = np.random.default_rng(seed).normal(
                0.0, SPECTRUM_STD, (count, 3, height, width // 2 + 1, 2)).astype(np.float32)
        else:
            spectrum = self._invert(np.asarray(start, dtype=np.float32))
        self.variable = tf.Variable(spectrum)

    def image(self) -> tf.Tensor:
        """The current images (N, H, W, 3), strictly inside (0, 255)."""
        spectrum = tf.complex(self.variable[..., 0], self.variable[..., 1])
        spectrum = spectrum * tf.cast(self.scale, tf.complex64)
        spatial = tf.signal.irfft2d(spectrum, fft_length=self.size) / 4.0  # (N, 3, H, W)
        decorrelated = tf.transpose(spatial, [0, 2, 3, 1])
        colours = tf.tensordot(decorrelated, tf.constant(COLOUR_MATRIX.T), axes=1)
        return 255.0 * tf.sigmoid(colours)

    def constrain(self) -> None:
        """Nothing to do: the sigmoid keeps every pixel in range."""
        return None  # a body beyond the docstring, so that AutoGraph can convert it

    def _invert(self, images: np.ndarray) -> np.ndarray:
        """The spectrum whose image is `images` (pixels clipped just inside (0, 255))."""
        unit = np.clip(images / 255.0, 0.01, 0.99)
        colours = np.log(unit / (1.0 - unit))
        decorrelated = colours @ np.linalg.inv(COLOUR_MATRIX.T)
        spatial = np.transpose(decorrelated, (0, 3, 1, 2)) * 4.0
        spectrum = np.fft.rfft2(spatial) / self.scale.numpy()
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)
