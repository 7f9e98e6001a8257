"""Export a run's classifier for phones and small devices (TensorFlow Lite).

The exported model keeps tlcore's contract: float32 RGB pixels in [0, 255] in (the
backbone's preprocessing is inside), logits out. Conversion goes through a SavedModel,
which is how Keras 3 models reach the TFLite converter.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from tlcore import atomic, runs

TFLITE_FILE = "model.tflite"


def export_tflite(run: runs.Run, out: Path | None = None) -> Path:
    """Convert a run's model to TFLite once (kept beside it) and return the file.

    Args:
        run: a saved run.
        out: where to write; None writes `model.tflite` in the run's folder.
    """
    out = Path(out or run.run_dir / TFLITE_FILE)
    if out.is_file() and out.stat().st_mtime >= run.model_path.stat().st_mtime:
        return out
    model = run.load_model()
    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", verbose=False)
        converted = tf.lite.TFLiteConverter.from_saved_model(folder).convert()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_file(out, converted)
    return out


def tflite_logits(path: Path, pixels: np.ndarray) -> np.ndarray:
    """Run a TFLite classifier on (N, S, S, 3) pixels one image at a time; return logits."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]
    outputs = []
    for image in np.asarray(pixels, dtype=np.float32):
        interpreter.set_tensor(source, image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target)[0])
    return np.stack(outputs)
