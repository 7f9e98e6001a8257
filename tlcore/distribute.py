"""Training on more than one device or machine, with TensorFlow's own engine.

- *mirrored*: `tf.distribute.MirroredStrategy` over this machine's GPUs (or, after
  `split_cpu(n)`, over n logical CPU devices: how the path is tested without GPUs). Keras
  `fit` runs each batch split across the replicas and all-reduces the gradients.
- *multi-worker*: the workers named in `TF_CONFIG` (the standard cluster description:
  `{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}`).
  Each worker embeds its share of the images and writes its part of the embedding cache
  (`features.write_shard`, joined by `features.merge_shards`); the parts, on a shared file system, become one cache
  entry, and the chief (worker 0) trains the head and saves the run. End to end, the body
  trains under `MultiWorkerMirroredStrategy` with tlcore's own loop (`multiworker.fit`):
  Keras 3's `fit` fails under that strategy (keras-team/keras#20585; reproduced here with
  Keras 3.15 and TensorFlow 2.21). Fine-tuning, which needs `fit`, is refused.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

def split_cpu(replicas: int) -> None:
    """Make the CPU appear as `replicas` logical devices (before TensorFlow starts using it).

    Raises:
        RuntimeError: TensorFlow's devices were already initialised in this process.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])


def mirrored() -> tf.distribute.MirroredStrategy:
    """Mirror over all GPUs, or over the logical CPUs when there is no GPU."""
    gpus = tf.config.list_logical_devices("GPU")
    devices = [device.name for device in gpus or tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def worker() -> tuple[int, int]:
    """(this worker's index, the number of workers) from `TF_CONFIG`; (0, 1) without one.

    Raises:
        ValueError: `TF_CONFIG` is set but does not describe a worker of a worker cluster.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return 0, 1
    try:
        description = json.loads(text)
        workers = description["cluster"]["worker"]
        task = description["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not a worker cluster description: {error}") from error
    if task.get("type") != "worker" or not 0 <= index < len(workers):
        raise ValueError(f"TF_CONFIG's task {task} is not one of its {len(workers)} workers")
    return index, len(workers)


def describe(strategy: tf.distribute.Strategy | None) -> str | None:
    """A short description for run.json, e.g. "MirroredStrategy, 2 replicas"."""
    if strategy is None:
        return None
    # TensorFlow's class for MultiWorkerMirroredStrategy is CollectiveAllReduceStrategy.
    name = ("MultiWorkerMirroredStrategy"
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            else type(strategy).__name__)
    return f"{name}, {strategy.num_replicas_in_sync} replicas"
