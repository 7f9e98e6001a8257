"""Embeddings: pooled body features per image, computed in batches and cached on disk.

The cache key is the backbone, the weights (a file's identity for local files), the input
size and a fingerprint of the data, so a second training on the same data and backbone
skips the slow part. Random weights are never cached: every build draws new ones.
"""
from __future__ import annotations

import hashlib
import json
import io
import os
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from tlcore import atomic, backbones, config, models
from tlcore.config import StepCallback

CACHE_VERSION = 1
EMBED_BATCH_SIZE = 32


def embed(embedder: keras.Model, images: np.ndarray, *, batch_size: int = EMBED_BATCH_SIZE,
          on_step: StepCallback | None = None, should_stop: Callable[[], bool] | None = None,
          ) -> np.ndarray:
    """Run images through an embedding model batch by batch.

    Args:
        embedder: maps (N, S, S, 3) pixels in [0, 255] to (N, D) vectors.
        images: uint8 or float pixels, (N, S, S, 3).
        batch_size: images per forward pass.
        on_step: called as on_step(batch_index + 1, batch_count, {}) after each batch.
        should_stop: polled between batches; True raises `InterruptedError`.

    Returns:
        float32 (N, D) embeddings.
    """
    count = len(images)
    total = max(1, -(-count // batch_size))
    chunks = []
    for step, start in enumerate(range(0, count, batch_size), start=1):
        if should_stop is not None and should_stop():
            raise InterruptedError("embedding was cancelled")
        batch = np.asarray(images[start:start + batch_size], dtype=np.float32)
        chunks.append(models.compiled(embedder)(batch).numpy())
        if on_step is not None:
            on_step(step, total, {})
    if not chunks:
        return np.zeros((0, embedder.output_shape[-1]), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def cache_key(backbone: str, weights: str | None, input_size: int, data_fingerprint: str) -> str | None:
    """Return the embedding-cache key, or None when the weights are random (not cacheable)."""
    if weights in backbones.RANDOM_WEIGHTS:
        return None
    weights_id = str(weights)
    if weights not in ("imagenet", "edges"):
        stat = os.stat(weights)
        weights_id = f"{os.path.abspath(weights)}|{stat.st_size}|{stat.st_mtime_ns}"
    parts = {"version": CACHE_VERSION, "backbone": backbone, "weights": weights_id,
             "input_size": input_size, "data": data_fingerprint}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _cache_path(key: str) -> Path:
    return config.cache_dir() / "embeddings" / f"{key}.npz"


def load_cached(key: str | None) -> dict[str, np.ndarray] | None:
    """Return cached arrays for a key, or None on a miss (or an unreadable cache file)."""
    if key is None or not _cache_path(key).is_file():
        return None
    try:
        with np.load(_cache_path(key)) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError):
        return None


def store_cached(key: str | None, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays under a key atomically (no-op for key None)."""
    if key is None:
        return
    path = _cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    # Unique temporary names: two jobs (threads of one server) may store the same key.
    atomic.write_file(path, buffer.getvalue())


def activation_model(model: keras.Model, layer_names: list[str]) -> keras.Model:
    """Rebuild `model` to return (logits, activations of each named layer, in order).

    The named layers may sit at the top level or inside a nested model (a tlcore
    classifier's body, a wrapped external model, an ImageNet application). The model must
    be a chain (each step feeds the next), which every tlcore model is; the rebuilt model
    shares the original's weights and gives the same logits.

    Raises:
        ValueError: a named layer is not in the model, or the model is not a chain.
    """
    wanted = list(dict.fromkeys(layer_names))
    pixels = keras.Input(model.input_shape[1:], name="pixels")
    found: dict[str, keras.KerasTensor] = {}
    tensor = _walk(model.operations[1:], pixels, wanted, found)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ValueError(f"{model.name} has no layer named {missing}")
    if tuple(tensor.shape) != tuple(model.output_shape):
        raise ValueError(f"{model.name} is not a chain of layers; cannot rebuild it")
    return keras.Model(pixels, [tensor, *(found[name] for name in wanted)],
                       name=f"{model.name}_activations")


def _walk(operations: list, tensor: keras.KerasTensor, wanted: list[str],
          found: dict[str, keras.KerasTensor]) -> keras.KerasTensor:
    """Apply a chain of operations to `tensor`, keeping the wanted layers' outputs."""
    for operation in operations:
        inner = ([name for name in wanted if _has_layer(operation, name)]
                 if isinstance(operation, keras.Model) else [])
        if inner and isinstance(operation, keras.Sequential):
            tensor = _walk(operation.layers, tensor, wanted, found)
        elif inner:
            split = keras.Model(operation.inputs,
                                [operation.get_layer(name).output for name in inner]
                                + [operation.output])
            *activations, tensor = split(tensor, training=False)
            found.update(zip(inner, activations))
        elif isinstance(operation, keras.layers.Layer):
            tensor = operation(tensor, training=False)
        else:  # a keras.ops step of the graph, such as the log of a wrapped softmax
            tensor = operation(tensor)
        if operation.name in wanted:
            found[operation.name] = tensor
    return tensor


def _has_layer(container: keras.Model, name: str) -> bool:
    try:
        container.get_layer(name)
    except ValueError:
        return False
    return True


def spatial_layers(model: keras.Model) -> list[tuple[str, tuple[int, ...]]]:
    """The layers with (H, W, C) outputs, bottom to top, searched inside nested models too:
    what the feature-map viewer and channel objectives can look at."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(spatial_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            shape = tuple(layer.output.shape)
            if len(shape) == 4 and layer.name != "preprocessing":
                found.append((layer.name, shape[1:]))
    return found


def strongest_channels(activations: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` channels of (H, W, C) activations with the highest mean."""
    means = np.asarray(activations).reshape(-1, activations.shape[-1]).mean(axis=0)
    return np.argsort(-means, kind="stable")[:count]
