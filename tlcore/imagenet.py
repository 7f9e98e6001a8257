"""What the backbone itself sees: the pretrained network with its own 1000-class ImageNet head.

A transferred body was trained to tell 1000 ImageNet classes apart; asking the whole
original network what it sees in an image shows what its features were made for (a cat
photo gives "tabby" or "Egyptian cat"; a synthetic shape gives something odd). The class
list (`imagenet_classes.json`, Keras's `imagenet_class_index.json`) ships with tlcore, so
naming classes needs no network; the weights with the head are fetched once like the body's.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import keras
import numpy as np

from tlcore import backbones
from tlcore.layers import PixelPreprocessing

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.json")


@functools.lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names in index order, readable ("Siamese cat", not
    "Siamese_cat")."""
    pairs = json.loads(CLASSES_FILE.read_text())
    return tuple(name.replace("_", " ") for _, name in pairs)


def imagenet_classifier(backbone_name: str, weights: str | None = "imagenet") -> keras.Model:
    """The backbone's original ImageNet classifier: pixels in [0, 255] -> 1000 logits.

    Args:
        backbone_name: a registry name with ImageNet weights (not "scratch_cnn").
        weights: "imagenet" (fetched once into `$KERAS_HOME/models`), a local file of the
            whole classifier, or None (random; for tests).

    Raises:
        ValueError: the backbone has no ImageNet classifier.
        backbones.WeightsUnavailableError: the weights are not here and cannot be
            downloaded; the message names the file and the folder.
    """
    spec = backbones.get_spec(backbone_name)
    if spec.imagenet_top_weights_file() is None:
        raise ValueError(f"{spec.display_name} has no ImageNet classifier")
    path = backbones.fetch_imagenet_top_weights(backbone_name) if weights == "imagenet" else weights
    size = spec.default_input_size
    network = spec.constructor(size, path, include_top=True)
    pixels = keras.Input((size, size, 3), name="pixels")
    logits = network(PixelPreprocessing(spec.preprocessing, name="preprocessing")(pixels))
    return keras.Model(pixels, logits, name=f"{backbone_name}_imagenet")


def top_k(probabilities: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The k most likely ImageNet classes of one image as (name, probability), best first."""
    probabilities = np.asarray(probabilities).reshape(-1)
    names = class_names()
    if len(probabilities) != len(names):
        raise ValueError(f"{len(probabilities)} probabilities for {len(names)} ImageNet classes")
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(names[i], float(probabilities[i])) for i in order]
