"""Train a fast-mode head on N embeddings; print time per example and peak memory.

Run by the suite as `python -m bench.head_scaling N [--in-memory]` (one process per case,
so each peak is its own); prints one JSON line. The embeddings are written to a file
chunk by chunk, as the embedding pass does, then `train.train_head` trains on them:
streamed from their file (read with pread), or with `--in-memory` read into memory first (the
baseline: what fitting on one big array costs).
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from bench.memory import memory_mb

DIMENSIONS, CLASSES, EPOCHS, CHUNK = 1280, 37, 3, 4096


def main(count: int, in_memory: bool = False) -> dict:
    """Measure one size; return {"microseconds_per_example", "peak_mb", "growth_mb",
    "embeddings_mb", "val_accuracy"}."""
    from tlcore import config, features, train

    generator = np.random.default_rng(0)
    centres = generator.normal(size=(CLASSES, DIMENSIONS)).astype(np.float32)
    labels = generator.integers(0, CLASSES, count)

    def chunks():
        for start in range(0, count, CHUNK):
            part = labels[start:start + CHUNK]
            yield centres[part] + 3.0 * generator.normal(size=(len(part), DIMENSIONS))

    vectors = features.write_embeddings(None, count, DIMENSIONS, chunks())
    order = generator.permutation(count)
    cut = [int(0.8 * count), int(0.9 * count)]
    splits = dict(zip(("train", "validation", "test"), np.split(order, cut)))
    if in_memory:
        train.IN_MEMORY_BYTES = 1 << 62
    train_config = config.TrainConfig(backbone="mobilenet_v2", mode="fast", epochs=EPOCHS,
                                      batch_size=64)
    before = memory_mb()["rss_mb"]
    started = time.perf_counter()
    trained = train.train_head(train_config, vectors, labels, splits, CLASSES)
    seconds = time.perf_counter() - started
    peak = memory_mb()["peak_mb"]
    return {"microseconds_per_example": 1e6 * seconds / (count * EPOCHS),
            "peak_mb": peak, "growth_mb": peak - before,
            "embeddings_mb": count * DIMENSIONS * 4 / 2**20,
            "val_accuracy": trained.outcome.history["val_accuracy"][-1]}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), "--in-memory" in sys.argv[2:])))
