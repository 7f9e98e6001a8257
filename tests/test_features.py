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


def test_cache_key_follows_the_weights_file(tmp_path, monkeypatch):
    """A replaced weights file (ImageNet's too, e.g. after a loader fix or a new download)
    is a new cache key, so old embeddings of other weights are never served."""
    import os

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    path = backbones.imagenet_weights_path("efficientnet_b0", 224)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"first")
    first = features.cache_key("efficientnet_b0", "imagenet", 224, "data")
    assert first == features.cache_key("efficientnet_b0", "imagenet", 224, "data")
    path.write_bytes(b"second version")
    os.utime(path, ns=(1, 1))
    assert features.cache_key("efficientnet_b0", "imagenet", 224, "data") != first
    local = tmp_path / "body.weights.h5"
    local.write_bytes(b"x")
    assert features.cache_key("vgg16", str(local), 96, "data") is not None
    with pytest.raises(FileNotFoundError):
        features.cache_key("vgg16", str(tmp_path / "gone.h5"), 96, "data")
