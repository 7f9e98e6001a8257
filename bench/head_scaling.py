"""Train a fast-mode head on N cached embeddings; print time per example and peak memory.

Run by the suite as `python -m bench.head_scaling N` (one process per size, so each peak
is its own); prints one JSON line.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from bench.memory import memory_mb

DIMENSIONS, CLASSES, EPOCHS = 1280, 37, 3


def main(count: int) -> dict:
    """Measure one size; return {"microseconds_per_example", "peak_mb", "embeddings_mb"}."""
    import keras

    from tlcore import models

    generator = np.random.default_rng(0)
    vectors = generator.normal(size=(count, DIMENSIONS)).astype(np.float32)
    labels = generator.integers(0, CLASSES, count)
    head = models.build_head(DIMENSIONS, CLASSES, feature_mean=vectors.mean(0),
                             feature_variance=vectors.var(0))
    head.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    started = time.perf_counter()
    head.fit(vectors, labels, epochs=EPOCHS, batch_size=64, verbose=0)
    seconds = time.perf_counter() - started
    return {"microseconds_per_example": 1e6 * seconds / (count * EPOCHS),
            "peak_mb": memory_mb()["peak_mb"], "embeddings_mb": vectors.nbytes / 2**20}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
