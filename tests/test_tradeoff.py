"""The robustness sweep: one saved run per adversarial budget, each measured on the same
images; and the published results it is shown beside. Which run is more robust is tested
in test_adversarial.py, on a task big enough to show it."""
from __future__ import annotations

import dataclasses

import pytest

from tlcore import config, data, references, runs, tradeoff


def test_every_reference_names_its_setting_numbers_and_source():
    assert references.STANDARD_IMAGENET in references.ROBUSTNESS
    for reference in references.ROBUSTNESS:
        assert reference.url.startswith("https://") and reference.source and reference.setting
        assert 2015 <= reference.year <= 2030 and reference.epsilon > 0
        assert 0 <= reference.attacked <= reference.clean <= 100, reference
        assert reference.training_minutes is None or reference.training_minutes > 0
        sentence = reference.sentence()
        assert reference.source in sentence and f"{reference.clean:g}%" in sentence
        assert reference.describe().endswith(reference.url)
        assert reference.to_dict()["sentence"] == sentence


def test_a_sweep_saves_a_run_per_budget_and_measures_each_on_the_same_images(
        tiny_folder, tmp_path):
    settings = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                  epochs=1, image_size=32, batch_size=8, patience=0)
    seen = []
    rows = tradeoff.sweep(settings, data.from_folder(tiny_folder), [4], [2, 0], steps=2,
                          limit=6, runs_dir=tmp_path, on_step=lambda *report: seen.append(report))
    assert [row["budget"] for row in rows] == [0.0, 4.0]  # the standard run is always first
    for row in rows:
        run = runs.load_run(row["run_dir"])
        assert run.info["config"]["adversarial_epsilon"] == row["budget"]
        assert run.info["config"]["epochs"] == 1 and run.run_id == row["run_id"]
        assert [point["epsilon"] for point in row["curve"]] == [0.0, 2.0]
        assert {point["images"] for point in row["curve"]} == {6}
        assert row["curve"][0]["per_class_images"] == [2, 2, 2]
        assert row["clean_accuracy"] == row["curve"][0]["accuracy"]
        assert row["pgd_accuracy"] == [row["curve"][1]["accuracy"]]
        assert row["seconds"] == run.info["metrics"]["seconds"] > 0
    assert rows[0]["time_ratio"] == 1.0
    assert rows[1]["time_ratio"] == pytest.approx(rows[1]["seconds"] / rows[0]["seconds"])
    labels = [metrics["run"] for *_, metrics in seen]
    assert labels[0] == "budget 0/255, run 1 of 2" and labels[-1] == "budget 4/255, run 2 of 2"
    assert {metrics["phase"] for *_, metrics in seen} >= {"training", "image steps"}


def test_fast_mode_and_an_empty_split_are_refused_before_anything_trains(tiny_folder,
                                                                         tmp_path):
    fast = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="fast")
    with pytest.raises(ValueError, match="fast mode"):
        tradeoff.sweep(fast, data.from_folder(tiny_folder), [4], [4], runs_dir=tmp_path)
    with pytest.raises(ValueError, match="no images"):
        tradeoff.sweep(dataclasses.replace(fast, mode="end-to-end"),
                       data.from_folder(tiny_folder), [4], [4], limit=0, runs_dir=tmp_path)
    assert not list(tmp_path.iterdir())
