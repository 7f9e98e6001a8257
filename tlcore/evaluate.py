"""Predictions and the metrics computed from them: accuracy, confusion matrix, per class."""
from __future__ import annotations

from typing import Any

import keras
import numpy as np

from tlcore import data, runs


def predict_logits(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Return logits (N, K) for pixels (N, S, S, 3) in [0, 255], batch by batch.

    Calls the model directly rather than `predict`, which keeps per-model state and is not
    safe to call from several threads at once.
    """
    outputs = [keras.ops.convert_to_numpy(model(np.asarray(images[start:start + batch_size],
                                                           dtype=np.float32), training=False))
               for start in range(0, len(images), batch_size)]
    if not outputs:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Return probabilities from logits along the last axis (numerically stable)."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return (exponentials / exponentials.sum(axis=-1, keepdims=True)).astype(np.float32)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Return counts (K, K): row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def classification_report(labels: np.ndarray, logits: np.ndarray,
                          class_names: list[str]) -> dict[str, Any]:
    """Summarise predictions against true labels.

    Returns:
        {"accuracy", "count", "confusion_matrix" (list of lists), "per_class": [{"class",
        "accuracy", "support"}]}; a class with no examples has accuracy None.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(logits).argmax(axis=-1)
    matrix = confusion_matrix(labels, predictions, len(class_names))
    support = matrix.sum(axis=1)
    per_class = [{"class": name,
                  "accuracy": float(matrix[i, i] / support[i]) if support[i] else None,
                  "support": int(support[i])} for i, name in enumerate(class_names)]
    return {"accuracy": float((predictions == labels).mean()) if len(labels) else None,
            "count": int(len(labels)), "confusion_matrix": matrix.tolist(),
            "per_class": per_class}


def evaluate_run(run: runs.Run, split: str = "test", model: keras.Model | None = None
                 ) -> dict[str, Any]:
    """Reload a run's data set and report the classifier's metrics on one split.

    Args:
        run: a saved run.
        split: "train", "validation" or "test".
        model: the run's model if already loaded (saves a reload).

    Raises:
        ValueError: the run's data source is gone or its classes changed.
    """
    dataset = dataset_of(run)
    images, labels = dataset.split_arrays(split, run.image_size)
    logits = predict_logits(model or run.load_model(), images)
    return {"run": run.run_id, "split": split,
            **classification_report(labels, logits, run.classes)}


def dataset_of(run: runs.Run) -> data.Dataset:
    """Reopen the data set a run was trained on, with the same seed and so the same splits.

    Raises:
        ValueError: the data is gone, or changed since training (added, removed or edited
            files reshuffle the splits, so the test split would mix in training images).
    """
    source = run.info.get("data", {})
    location = source.get("source", "?")
    try:
        dataset = data.load_dataset(location, seed=int(source.get("seed", 0)))
    except ValueError as error:
        raise ValueError(f"the data this run was trained on ({location}) cannot be read "
                         f"any more: {error}") from error
    if list(dataset.class_names) != run.classes:
        raise ValueError(f"the data at {location!r} now has classes "
                         f"{list(dataset.class_names)}, the run was trained on {run.classes}")
    if source.get("fingerprint") and dataset.fingerprint() != source["fingerprint"]:
        raise ValueError(f"the files at {location!r} changed since this run was trained, so "
                         "its test split can no longer be rebuilt without training images")
    return dataset
