"""The Try it panel's pure helpers: the top classes and the limit on images at once."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tlcore import config, predict
from ui import try_it

CLASSES = ["cat", "dog", "fox", "owl"]


def test_top_classes_most_probable_first():
    top = predict.top_classes(np.array([0.1, 0.6, 0.05, 0.25]), CLASSES, k=3)
    assert [(index, name) for index, name, _ in top] == [(1, "dog"), (3, "owl"), (0, "cat")]
    assert [probability for _, _, probability in top] == pytest.approx([0.6, 0.25, 0.1])


def test_top_classes_never_more_than_the_classes():
    assert len(predict.top_classes(np.array([0.5, 0.5]), ["yes", "no"], k=5)) == 2


def test_top_classes_refuses_a_mismatch():
    with pytest.raises(ValueError, match="3 probabilities for 4 classes"):
        predict.top_classes(np.array([0.2, 0.3, 0.5]), CLASSES)


def test_within_limit_keeps_all_on_ones_own_server(monkeypatch):
    monkeypatch.delenv("TLCORE_PUBLIC_DEMO", raising=False)
    names = [f"{index}.png" for index in range(200)]
    assert try_it.within_limit(names) == (200, None)


def test_within_limit_keeps_the_first_and_names_the_rest_in_a_demo(monkeypatch):
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    monkeypatch.setattr(config, "DEMO_LIMITS",
                        dataclasses.replace(config.DEMO_LIMITS, try_images=2))
    kept, message = try_it.within_limit(["a.png", "b.png", "c.png", "d.jpg"])
    assert kept == 2
    assert "4 is over this public demo's limit of 2 images tried at once" in message
    assert message.endswith("left out: c.png, d.jpg.")
    assert try_it.within_limit(["a.png", "b.png"]) == (2, None)


def test_the_demo_limits_try_images():
    assert config.DEMO_LIMITS.try_images is not None
    assert config.OWN_LIMITS.try_images is None


def test_meaning_says_the_model_only_knows_its_classes():
    sentence = try_it.meaning(6)
    assert "6 classes" in sentence and "still gets one of its classes" in sentence
