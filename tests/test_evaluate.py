"""Metrics against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from tlcore import evaluate


def test_confusion_matrix_by_hand():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    assert evaluate.confusion_matrix(labels, predictions, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_report_by_hand():
    labels = np.array([0, 0, 1, 1])
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 2.0, 1.0]])
    report = evaluate.classification_report(labels, logits, ["a", "b", "c"])
    assert report["accuracy"] == 0.75 and report["count"] == 4
    assert report["per_class"] == [{"class": "a", "accuracy": 0.5, "support": 2},
                                   {"class": "b", "accuracy": 1.0, "support": 2},
                                   {"class": "c", "accuracy": None, "support": 0}]


def test_softmax_is_stable_and_sums_to_one():
    probabilities = evaluate.softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    assert probabilities[0].tolist() == pytest.approx([1.0, 0.0])
    assert probabilities[1].tolist() == pytest.approx([0.5, 0.5])


def test_evaluate_run_reopens_its_data(tiny_run):
    report = evaluate.evaluate_run(tiny_run, "test")
    assert report["count"] == sum(sum(row) for row in report["confusion_matrix"])
    assert report["accuracy"] == pytest.approx(tiny_run.info["metrics"]["test_accuracy"])
    assert report["accuracy"] > 1 / 3


def test_changed_or_missing_data_is_a_clear_error(tmp_path):
    import shutil
    from tlcore import config, data, train
    from conftest import make_image_folder
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
