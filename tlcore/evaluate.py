"""Predictions and the metrics computed from them: accuracy, confusion matrix, per class."""
from __future__ import annotations

from typing import Any

import keras
import numpy as np

from tlcore import data, models, runs


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Return counts (K, K): row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def classification_report(labels: np.ndarray, logits: np.ndarray, class_names: list[str], *,
                          top_k: tuple[int, ...] = (3, 5), bins: int = 10) -> dict[str, Any]:
    """Summarise predictions against true labels: plain JSON, ready for a page or the CLI.

    Returns:
        {"accuracy", "balanced_accuracy", "count", "top_k_accuracy" ({"3": ..., "5": ...},
        only for k below the class count), "confusion_matrix" (list of lists, row = true),
        "per_class" (see `per_class_metrics`), "most_confused" (see `most_confused`),
        "ece" and "reliability" (see `calibration`)}. Undefined values are None.
    """
    labels = np.asarray(labels, dtype=np.int64)
    logits = np.asarray(logits, dtype=np.float32)
    predictions = logits.argmax(axis=-1)
    matrix = confusion_matrix(labels, predictions, len(class_names))
    per_class = per_class_metrics(matrix, class_names)
    recalls = [row["recall"] for row in per_class if row["recall"] is not None]
    ece, reliability = calibration(labels, models.softmax(logits), bins) if len(labels) else (None, [])
    return {"accuracy": float((predictions == labels).mean()) if len(labels) else None,
            "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
            "count": int(len(labels)),
            "top_k_accuracy": {str(k): top_k_accuracy(labels, logits, k)
                               for k in top_k if k < len(class_names)},
            "confusion_matrix": matrix.tolist(), "per_class": per_class,
            "most_confused": most_confused(matrix, class_names), "ece": ece,
            "reliability": reliability}


def per_class_metrics(matrix: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """Per class: accuracy (= recall), precision, recall, F1 and support from a confusion matrix.

    Precision is None for a class never predicted, recall and F1 None for one with no
    examples; F1 is 0 when a class with examples is never predicted right.
    """
    matrix = np.asarray(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    rows = []
    for index, name in enumerate(class_names):
        hits = matrix[index, index]
        recall = float(hits / support[index]) if support[index] else None
        precision = float(hits / predicted[index]) if predicted[index] else None
        if recall is None:
            f1 = None
        elif not hits:
            f1 = 0.0
        else:
            f1 = float(2 * precision * recall / (precision + recall))
        rows.append({"class": name, "accuracy": recall, "precision": precision,
                     "recall": recall, "f1": f1, "support": int(support[index])})
    return rows


def top_k_accuracy(labels: np.ndarray, logits: np.ndarray, k: int) -> float | None:
    """Share of examples whose true class is among the k highest logits (ties: lower index)."""
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return None
    top = np.argsort(-np.asarray(logits), axis=-1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=-1).mean())


def most_confused(matrix: np.ndarray, class_names: list[str], limit: int = 10
                  ) -> list[dict[str, Any]]:
    """The off-diagonal cells with the most examples: [{"true", "predicted", "count",
    "share" (of the true class)}], largest first, at most `limit`."""
    matrix = np.asarray(matrix)
    support = matrix.sum(axis=1)
    cells = [(int(matrix[t, p]), t, p) for t in range(len(matrix)) for p in range(len(matrix))
             if t != p and matrix[t, p]]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [{"true": class_names[t], "predicted": class_names[p], "count": count,
             "share": float(count / support[t])} for count, t, p in cells[:limit]]


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
                ) -> tuple[float, list[dict[str, Any]]]:
    """Expected calibration error and the reliability diagram's bins.

    Each prediction's confidence (its top probability) falls in one of `bins` equal-width
    bins over [0, 1]; a bin's gap is |accuracy - mean confidence|, and the ECE is the gaps'
    average weighted by the bins' counts. A calibrated model that says 80% is right 80%
    of the time.

    Returns:
        (ece, [{"low", "high", "confidence", "accuracy", "count"}] for non-empty bins).
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == labels
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    ece, rows = 0.0, []
    for index in range(bins):
        members = which == index
        if not members.any():
            continue
        mean_confidence, accuracy = float(confidence[members].mean()), float(correct[members].mean())
        ece += members.mean() * abs(accuracy - mean_confidence)
        rows.append({"low": index / bins, "high": (index + 1) / bins,
                     "confidence": mean_confidence, "accuracy": accuracy,
                     "count": int(members.sum())})
    return float(ece), rows


def confident_mistakes(labels: np.ndarray, probabilities: np.ndarray,
                       limit: int = 12) -> np.ndarray:
    """Indices of wrong predictions, the most confident first (at most `limit`)."""
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=-1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    order = np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")
    return wrong[order][:limit]


def cell_members(labels: np.ndarray, probabilities: np.ndarray, true_class: int,
                 predicted_class: int) -> np.ndarray:
    """Indices of examples of `true_class` predicted as `predicted_class`, most confident first."""
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=-1)
    members = np.flatnonzero((np.asarray(labels) == true_class) & (predicted == predicted_class))
    order = np.argsort(-probabilities[members, predicted_class], kind="stable")
    return members[order]


def grouped_accuracy(labels: np.ndarray, predictions: np.ndarray,
                     group_of_class: list[int]) -> float | None:
    """Accuracy after mapping classes to groups (e.g. breeds to species)."""
    if not len(labels):
        return None
    groups = np.asarray(group_of_class)
    return float((groups[np.asarray(labels)] == groups[np.asarray(predictions)]).mean())


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
    logits = models.predict_logits(model or run.load_model(), images)
    return {"run": run.run_id, "split": split, **report_with_groups(run, labels, logits)}


def report_with_groups(run: runs.Run, labels: np.ndarray, logits: np.ndarray
                       ) -> dict[str, Any]:
    """`classification_report`, plus "species_accuracy" for a run on Oxford-IIIT Pets breeds
    (a cat breed mistaken for another cat breed is right at the species level)."""
    report = classification_report(labels, logits, run.classes)
    source = run.info.get("data", {}).get("source")
    if source == "pets":
        from tlcore import pets  # the pets module is only needed for pets runs

        species = pets.species_of_breeds(run.classes)
        if species is not None:
            names = sorted(set(species))
            report["species_accuracy"] = grouped_accuracy(
                labels, np.asarray(logits).argmax(axis=-1), [names.index(s) for s in species])
    return report


SAMPLE_SEED = 0  # the same settings pick the same images, on the page and in the CLI


def stratified_sample(labels: np.ndarray, count: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Choose `count` examples spread as evenly over the classes as their sizes allow.

    Every class gets `count // classes` examples, or all it has when it has fewer; what is
    left over goes one at a time to the classes that still have examples (which classes
    get the extra one is drawn with the seed). Within a class the examples are drawn at
    random with the seed, so the same labels, count and seed give the same sample.

    Args:
        labels: (N,) class of each example (e.g. one split's labels, sorted by class).
        count: how many to choose; more than N gives all N.
        seed: seeds both draws.

    Returns:
        (min(count, N),) positions into `labels`, taken in turn from each class (first one
        of each class, then a second of each...), so any prefix is spread over the classes
        too and a grid of the first few shows several classes.

    Raises:
        ValueError: `count` is negative.
    """
    if count < 0:
        raise ValueError(f"count={count} must be 0 or more")
    labels = np.asarray(labels, dtype=np.int64)
    random = np.random.default_rng(seed)
    classes = np.unique(labels)
    members = [random.permutation(np.flatnonzero(labels == label)) for label in classes]
    quota = np.zeros(len(classes), dtype=np.int64)
    remaining = min(int(count), len(labels))
    order = random.permutation(len(classes))  # who gets an extra one first
    while remaining:
        open_classes = [c for c in order if quota[c] < len(members[c])]
        share = max(remaining // len(open_classes), 1)
        for position in open_classes:
            extra = min(share, len(members[position]) - quota[position], remaining)
            quota[position] += extra
            remaining -= extra
            if not remaining:
                break
    chosen = [members[position][:quota[position]] for position in range(len(classes))]
    interleaved = [group[rank] for rank in range(int(quota.max(initial=0)))
                   for group in chosen if rank < len(group)]
    return np.asarray(interleaved, dtype=np.int64)


def sample_split(dataset: data.Dataset, split: str, count: int, seed: int = SAMPLE_SEED
                 ) -> np.ndarray:
    """Indices (into `dataset.paths`) of `count` images of one split, stratified by class.

    Splits list their images in file order, which is class order, so the first N cover only
    the first classes; this draws them across all classes (see `stratified_sample`).

    Raises:
        ValueError: `split` is not a split of the data set, or `count` is negative.
    """
    if split not in dataset.splits:
        raise ValueError(f"split={split!r} is not one of {sorted(dataset.splits)}")
    indices = np.asarray(dataset.splits[split], dtype=np.int64)
    return indices[stratified_sample(dataset.labels[indices], count, seed)]


def sample_arrays(dataset: data.Dataset, split: str, size: int, count: int,
                  seed: int = SAMPLE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Load `sample_split`'s images at a square side, with their labels.

    Returns:
        (images uint8 (n, size, size, 3), labels int32 (n,)), n = min(count, split size).
    """
    return sample_pixels(dataset, sample_split(dataset, split, count, seed), size)


def sample_pixels(dataset: data.Dataset, chosen: np.ndarray, size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The images at indices `chosen` (into `dataset.paths`) at a square side, with their
    labels: uint8 (n, size, size, 3) and int32 (n,)."""
    return (data.load_images([dataset.paths[i] for i in chosen], size),
            dataset.labels[chosen].astype(np.int32))


def dataset_of(run: runs.Run) -> data.Dataset:
    """Reopen the data set a run was trained on, with the same seed and so the same splits.

    Raises:
        ValueError: the data is gone, or changed since training (added, removed or edited
            files reshuffle the splits, so the test split would mix in training images).
    """
    source = run.info.get("data", {})
    dataset = data.reopen(source, "this run was trained, so its test split can no longer be "
                                  "rebuilt without training images")
    if list(dataset.class_names) != run.classes:
        raise ValueError(f"the data at {source.get('source')!r} now has classes "
                         f"{list(dataset.class_names)}, the run was trained on {run.classes}")
    return dataset
