"""Embeddings: pooled body features per image, computed in batches and cached on disk.

The cache key is the backbone, the weights (with the identity of their file), the input
size and a fingerprint of the data, so a second training on the same data and backbone
skips the slow part. Random weights are never cached: every build draws new ones.
"""
from __future__ import annotations

import hashlib
import json
import os
import weakref
from pathlib import Path
from typing import Callable, Iterable, Iterator

import keras
import numpy as np

from tlcore import atomic, backbones, config, models
from tlcore.config import StepCallback

# 2: one .npy file, read by blocks (1: .npz); 3: EfficientNetB0's ImageNet input scaling
# fixed (`backbones._undo_efficientnet_variance_quirk`), so its older entries are wrong.
CACHE_VERSION = 3
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
    # A file's identity: a replaced weights file (ImageNet's too) is a new key.
    path = (backbones.imagenet_weights_path(backbone, input_size) if weights == "imagenet"
            else None if weights == "edges" else Path(weights))
    if path is not None and path.is_file():
        stat = path.stat()
        weights_id = f"{weights_id}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    elif path is not None and weights != "imagenet":
        path.stat()  # a missing local file: FileNotFoundError, as before
    parts = {"version": CACHE_VERSION, "backbone": backbone, "weights": weights_id,
             "input_size": input_size, "data": data_fingerprint}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cache_path(key: str) -> Path:
    """The file of the cache entry for `key`."""
    return config.cache_dir() / "embeddings" / f"{key}.npy"


class Embeddings:
    """(N, D) float32 vectors in a `.npy` file, read a block of rows at a time.

    Rows are read with positional reads (`pread`), one per run of consecutive rows, so a
    pass over 100k vectors holds one block in memory, not the file. (A memory map would
    not: Linux maps the 64 KB around every touched row, and those pages count toward the
    process's memory; 8192 scattered rows of 5 KB put 580 MB more on the peak.) Reads are
    thread-safe.
    """

    def __init__(self, path: Path, *, unlink: bool = False) -> None:
        """Open `path`; with `unlink`, the file's name is removed at once (a private scratch
        file: its space is freed when this object goes away).

        Raises:
            ValueError: not a C-ordered 2-D float32 `.npy` file of the size its header says.
        """
        with open(path, "rb") as stream:
            major, _ = np.lib.format.read_magic(stream)
            read_header = (np.lib.format.read_array_header_1_0 if major == 1
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(stream)
            self._offset = stream.tell()
            if (len(shape) != 2 or fortran_order or dtype != np.dtype("<f4")
                    or os.fstat(stream.fileno()).st_size != self._offset + 4 * shape[0] * shape[1]):
                raise ValueError(f"{path} is not a complete (N, D) float32 embedding file")
        self._descriptor = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._descriptor)
        if unlink:
            os.unlink(path)
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def dim(self) -> int:
        """The length of one vector."""
        return self.shape[1]

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Return the vectors at `indices` (any order, repeats allowed) as a new array."""
        indices = np.asarray(indices, dtype=np.int64)
        if not len(indices):
            return np.empty((0, self.dim), dtype=np.float32)
        if indices.min() < 0 or indices.max() >= len(self):
            raise IndexError(f"rows {indices.min()}..{indices.max()} are outside 0..{len(self) - 1}")
        order = np.argsort(indices, kind="stable")  # read in file order
        in_file_order = np.empty((len(indices), self.dim), dtype=np.float32)
        wanted = indices[order]
        breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
        row_bytes = 4 * self.dim
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(wanted)]):
            target = memoryview(in_file_order[start:stop]).cast("B")
            position = self._offset + int(wanted[start]) * row_bytes
            if os.preadv(self._descriptor, [target], position) != len(target):
                raise OSError("the embedding file is shorter than its header says")
        result = np.empty_like(in_file_order)
        result[order] = in_file_order
        return result

    def view(self, indices: np.ndarray) -> "RowsView":
        """Return a lazy view of the rows at `indices` (e.g. one split)."""
        return RowsView(self, np.asarray(indices, dtype=np.int64))

    def moments(self, indices: np.ndarray, block_rows: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Return the per-feature mean and (population) variance over `indices`, a block of
        rows at a time, in float64."""
        total = np.zeros(self.dim)
        squares = np.zeros(self.dim)
        for start in range(0, len(indices), block_rows):
            block = self.rows(indices[start:start + block_rows]).astype(np.float64)
            total += block.sum(axis=0)
            squares += np.square(block).sum(axis=0)
        count = max(1, len(indices))
        mean = total / count
        return (mean.astype(np.float32),
                np.maximum(squares / count - np.square(mean), 0.0).astype(np.float32))


class RowsView:
    """Some rows of an `Embeddings` file, read only when indexed (`view[a:b]`, `view[array]`)."""

    def __init__(self, source: Embeddings, indices: np.ndarray) -> None:
        self.source, self.indices = source, indices

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, dimensions)."""
        return (len(self.indices), self.source.dim)

    @property
    def nbytes(self) -> int:
        """The memory the rows take once read."""
        return 4 * len(self.indices) * self.source.dim

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        return self.source.rows(self.indices[key])


def open_cached(key: str | None) -> Embeddings | None:
    """Return the cached embeddings for a key, or None on a miss (or an unreadable file)."""
    if key is None or not cache_path(key).is_file():
        return None
    try:
        embeddings = Embeddings(cache_path(key))
        os.utime(cache_path(key))  # recently used: the size sweep removes the oldest first
        return embeddings
    except (OSError, ValueError):
        return None


def write_embeddings(key: str | None, count: int, dim: int,
                     chunks: Iterable[np.ndarray]) -> Embeddings:
    """Stream `count` vectors, chunk by chunk in row order, into a file and open it.

    With a key the file becomes that cache entry, renamed into place only once complete
    (two jobs may store the same key; the last rename wins with identical contents).
    Without one (random weights) it is a private scratch file, removed once unused. Only one
    chunk is in memory at a time; an exception from `chunks` removes the partial file.
    """
    return _write(cache_path(key) if key else None, count, dim, chunks)


def _write(path: Path | None, count: int, dim: int, chunks: Iterable[np.ndarray]) -> Embeddings:
    folder = config.cache_dir() / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = atomic.temporary_file(folder, path.stem if path else "scratch")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.lib.format.write_array_header_1_0(
                stream, {"descr": "<f4", "fortran_order": False, "shape": (count, dim)})
            written = 0
            for chunk in chunks:
                stream.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
                written += len(chunk)
        if written != count:
            raise ValueError(f"expected {count} embeddings, got {written}")
        if path is None:
            return Embeddings(Path(temporary), unlink=True)
        os.replace(temporary, path)
        return Embeddings(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def shard_path(key: str, index: int, count: int) -> Path:
    """Where worker `index` of `count` writes its part of a cache entry."""
    return config.cache_dir() / "embeddings" / f"{key}.part-{index}-of-{count}.npy"


def write_shard(key: str, index: int, count: int, rows: int, dim: int,
                chunks: Iterable[np.ndarray]) -> Embeddings:
    """Write one worker's part of a cache entry: its chunks (`index`, `index + count`,
    ...), in order, atomically."""
    return _write(shard_path(key, index, count), rows, dim, chunks)


def merge_shards(key: str, count: int, total: int, dim: int, chunk_rows: int) -> Embeddings:
    """Join the `count` parts into the cache entry for `key` and remove them.

    Chunk c (rows `c * chunk_rows` onward) is chunk `c // count` of part `c % count`.

    Raises:
        OSError, ValueError: a part is missing or incomplete.
    """
    parts = [Embeddings(shard_path(key, index, count)) for index in range(count)]

    def chunks() -> Iterator[np.ndarray]:
        for chunk, start in enumerate(range(0, total, chunk_rows)):
            rows = min(chunk_rows, total - start)
            first = (chunk // count) * chunk_rows
            yield parts[chunk % count].rows(np.arange(first, first + rows))

    merged = write_embeddings(key, total, dim, chunks())
    for index in range(count):
        shard_path(key, index, count).unlink(missing_ok=True)
    return merged


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
