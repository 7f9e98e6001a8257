"""Metrics against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from tlcore import evaluate, models


def test_confusion_matrix_by_hand():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    assert evaluate.confusion_matrix(labels, predictions, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_report_by_hand():
    labels = np.array([0, 0, 1, 1])
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 2.0, 1.0]])
    report = evaluate.classification_report(labels, logits, ["a", "b", "c"])
    assert report["accuracy"] == 0.75 and report["count"] == 4
    # a: 1 of 2 found, 1 of 1 predicted right; b: 2 of 2 found, 2 of 3 predicted right.
    assert report["per_class"] == [
        {"class": "a", "accuracy": 0.5, "precision": 1.0, "recall": 0.5, "f1": 2 / 3,
         "support": 2},
        {"class": "b", "accuracy": 1.0, "precision": 2 / 3, "recall": 1.0, "f1": 0.8,
         "support": 2},
        {"class": "c", "accuracy": None, "precision": None, "recall": None, "f1": None,
         "support": 0}]
    assert report["balanced_accuracy"] == 0.75  # mean recall over classes with examples
    assert report["most_confused"] == [{"true": "a", "predicted": "b", "count": 1,
                                        "share": 0.5}]
    assert report["top_k_accuracy"] == {}  # 3 classes: top-3 and top-5 say nothing


def test_top_k_by_hand():
    labels = np.array([0, 1, 2, 3])
    logits = np.array([[4.0, 3, 2, 1], [4.0, 3, 2, 1], [4.0, 3, 2, 1], [4.0, 3, 2, 1]])
    assert [evaluate.top_k_accuracy(labels, logits, k) for k in (1, 2, 3, 4)] == [
        0.25, 0.5, 0.75, 1.0]
    report = evaluate.classification_report(labels, logits, list("abcd"), top_k=(2, 3, 5))
    assert report["top_k_accuracy"] == {"2": 0.5, "3": 0.75}


def test_a_class_never_predicted_has_no_precision_and_zero_f1():
    rows = evaluate.per_class_metrics(np.array([[0, 3], [0, 2]]), ["x", "y"])
    assert rows[0] == {"class": "x", "accuracy": 0.0, "precision": None, "recall": 0.0,
                       "f1": 0.0, "support": 3}
    assert rows[1]["precision"] == 0.4 and rows[1]["recall"] == 1.0


def test_calibration_by_hand():
    labels = np.array([0, 0, 0, 1])
    probabilities = np.array([[0.95, 0.05], [0.9, 0.1], [0.65, 0.35], [0.6, 0.4]])
    ece, bins = evaluate.calibration(labels, probabilities, bins=10)
    # bin 0.9-1.0: confidence 0.925, all right (gap 0.075); bin 0.6-0.7: confidence 0.625,
    # half right (gap 0.125). ECE = 0.5 * 0.075 + 0.5 * 0.125 = 0.1.
    assert ece == pytest.approx(0.1)
    assert [(row["low"], row["count"], row["accuracy"]) for row in bins] == [
        (0.6, 2, 0.5), (0.9, 2, 1.0)]
    assert bins[1]["confidence"] == pytest.approx(0.925)
    perfect, _ = evaluate.calibration(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert perfect == 0.0


def test_most_confused_orders_by_count_and_galleries_by_confidence():
    matrix = np.array([[5, 1, 3], [4, 5, 0], [0, 0, 2]])
    pairs = evaluate.most_confused(matrix, ["a", "b", "c"])
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("b", "a", 4), ("a", "c", 3), ("a", "b", 1)]
    labels = np.array([0, 0, 1, 0])
    probabilities = np.array([[0.2, 0.8], [0.4, 0.6], [0.1, 0.9], [0.9, 0.1]])
    assert evaluate.cell_members(labels, probabilities, 0, 1).tolist() == [0, 1]
    assert evaluate.confident_mistakes(labels, probabilities).tolist() == [0, 1]


def test_species_accuracy_forgives_a_breed_mixed_up_within_its_species():
    # breeds: 0 cat A, 1 cat B, 2 dog C; mistakes: A->B (same species), C->A (not).
    accuracy = evaluate.grouped_accuracy(np.array([0, 2, 1]), np.array([1, 0, 1]), [0, 0, 1])
    assert accuracy == pytest.approx(2 / 3)


def test_softmax_is_stable_and_sums_to_one():
    probabilities = models.softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    assert probabilities[0].tolist() == pytest.approx([1.0, 0.0])
    assert probabilities[1].tolist() == pytest.approx([0.5, 0.5])


def test_evaluate_run_reopens_its_data(tiny_run):
    report = evaluate.evaluate_run(tiny_run, "test")
    assert report["count"] == sum(sum(row) for row in report["confusion_matrix"])
    assert report["accuracy"] == pytest.approx(tiny_run.info["metrics"]["test_accuracy"])
    assert report["accuracy"] > 1 / 3


@pytest.mark.slow
def test_changed_or_missing_data_is_a_clear_error(tmp_path, make_image_folder):
    import shutil
    from tlcore import config, data, train
    folder = make_image_folder(tmp_path / "set", per_class=6)
    run = train.train_classifier(config.TrainConfig(backbone="scratch_cnn", weights=None,
                                                    mode="end-to-end", epochs=1, image_size=32),
                                 data.from_folder(folder), runs_dir=tmp_path / "runs")
    (folder / "red" / "red_000.png").unlink()
    with pytest.raises(ValueError, match="changed since this run was trained"):
        evaluate.dataset_of(run)
    shutil.rmtree(folder)
    with pytest.raises(ValueError, match="cannot be read any more"):
        evaluate.evaluate_run(run)


def test_stratified_sample_covers_every_class_evenly_and_is_deterministic():
    # A split in class order, as the data sets list it: the first 32 cover 2 of 6 classes.
    labels = np.repeat(np.arange(6), [22, 22, 22, 22, 22, 3])
    assert len(np.unique(labels[:32])) == 2
    chosen = evaluate.stratified_sample(labels, 32)
    per_class = np.bincount(labels[chosen], minlength=6)
    assert len(chosen) == 32 and len(set(chosen.tolist())) == 32
    assert per_class.tolist().count(3) == 1 and per_class[5] == 3  # the small class: all it has
    assert set(per_class[:5].tolist()) <= {5, 6} and per_class.sum() == 32
    assert np.array_equal(chosen, evaluate.stratified_sample(labels, 32))  # same settings
    assert not np.array_equal(chosen, evaluate.stratified_sample(labels, 32, seed=1))
    # Taken in turn from each class: the first six are one of each.
    assert sorted(labels[chosen[:6]].tolist()) == list(range(6))
    # Within a class, chosen at random (not the class's first images).
    assert not set(np.flatnonzero(labels == 0)[:6]) >= set(chosen[labels[chosen] == 0])
    assert len(evaluate.stratified_sample(labels, 1000)) == len(labels)
    assert len(evaluate.stratified_sample(labels, 0)) == 0
    with pytest.raises(ValueError, match="count=-1"):
        evaluate.stratified_sample(labels, -1)


def test_sample_split_draws_from_one_split_across_its_classes(tiny_folder):
    from tlcore import data

    dataset = data.from_folder(tiny_folder)
    test = set(dataset.splits["test"].tolist())
    chosen = evaluate.sample_split(dataset, "test", 3)
    assert set(chosen.tolist()) <= test
    assert sorted(dataset.labels[chosen].tolist()) == [0, 1, 2]
    images, labels = evaluate.sample_arrays(dataset, "test", 16, 3)
    assert images.shape == (3, 16, 16, 3) and labels.tolist() == dataset.labels[chosen].tolist()
    with pytest.raises(ValueError, match="split='val'"):
        evaluate.sample_split(dataset, "val", 3)
