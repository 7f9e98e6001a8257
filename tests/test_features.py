"""Layer activations of any tlcore model: nested bodies, wrapped external models."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tlcore import backbones, features, models


def test_activations_of_a_nested_body_with_the_same_logits():
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    classifier = models.build_classifier("scratch_cnn", body, 3, freeze_batch_norm=False)
    split = features.activation_model(classifier, ["block2_conv", "block4_relu"])
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    logits, second, fourth = split(pixels)
    np.testing.assert_allclose(logits, classifier(pixels, training=False), rtol=1e-5, atol=1e-5)
    assert second.shape == (2, 16, 16, 64) and fourth.shape == (2, 4, 4, 256)
    names = [name for name, _ in features.spatial_layers(classifier)]
    assert names[0] == "block1_conv" and "block4_relu" in names and "pool" not in names


def test_a_wrapped_softmax_model_keeps_its_log_step():
    inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    wrapped = models.wrap_external_model(inner, "tf")
    logits, conv = features.activation_model(wrapped, ["conv"])(np.full((1, 8, 8, 3), 99.0))
    np.testing.assert_allclose(logits, wrapped(np.full((1, 8, 8, 3), 99.0)), rtol=1e-6)
    assert conv.shape == (1, 6, 6, 4)
    with pytest.raises(ValueError, match="no layer named"):
        features.activation_model(wrapped, ["nope"])


def test_strongest_channels_first():
    activations = np.zeros((2, 2, 4))
    activations[..., 2], activations[..., 0] = 5.0, 1.0
    assert features.strongest_channels(activations, 2).tolist() == [2, 0]
