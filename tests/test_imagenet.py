"""The backbone's own ImageNet classifier and the bundled class list."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tlcore import backbones, imagenet, models


def test_the_class_list_is_keras_s_in_order():
    names = imagenet.class_names()
    assert len(names) == 1000
    assert (names[0], names[284], names[340], names[999]) == (
        "tench", "Siamese cat", "zebra", "toilet tissue")


def test_top_k_names_the_most_likely_classes():
    probabilities = np.full(1000, 0.0005)
    probabilities[[284, 340]] = [0.4, 0.1]
    assert imagenet.top_k(probabilities, 2) == [("Siamese cat", 0.4), ("zebra", 0.1)]
    with pytest.raises(ValueError, match="37 probabilities"):
        imagenet.top_k(np.ones(37))


def test_the_whole_classifier_takes_pixels_and_gives_1000_logits():
    model = imagenet.imagenet_classifier("mobilenet_v3_small", weights=None)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    logits = models.predict_logits(model, pixels)
    assert logits.shape == (2, 1000) and np.isfinite(logits).all()


def test_offline_names_the_file_of_the_classifier_with_its_head(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(backbones.WeightsUnavailableError,
                       match="vgg16_weights_tf_dim_ordering_tf_kernels.h5"):
        imagenet.imagenet_classifier("vgg16")
    with pytest.raises(ValueError, match="no ImageNet classifier"):
        imagenet.imagenet_classifier("scratch_cnn")
