"""Which device TensorFlow computes on, and the one-time GPU setup."""
from __future__ import annotations

import os

import tensorflow as tf


def configure_devices(threads: int | None = None) -> list[str]:
    """Turn on GPU memory growth (so several models share a GPU); return the GPU names.

    Args:
        threads: CPU threads for TensorFlow's operations (None: TensorFlow's choice, every
            core). A public demo leaves one core to serving pages.

    Call once at start, before any model is built; later calls are harmless.
    """
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already ran an operation: too late to change
            pass
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth can no longer change
            pass
    return [gpu.name for gpu in gpus]


def describe_device() -> str:
    """Return a short description of the device models run on, e.g. "CPU (2 cores)"."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", gpus[0].name)
        return f"GPU: {name}" + (f" (+{len(gpus) - 1} more)" if len(gpus) > 1 else "")
    return f"CPU ({os.cpu_count()} cores)"
