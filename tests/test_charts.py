"""Charts a person reads at a glance: the figures' data (axes, colours, markers) and the
runs table's columns, checked on the plotly objects themselves."""
from __future__ import annotations

import types

import numpy as np
import plotly.graph_objects as go
import pytest

from tlcore import config, data, runs, train
from ui import charts, jobs


def staged_epochs(head: int, fine: int) -> list[dict]:
    """Epoch dicts as a live fine-tuning reports them: the numbering starts again at 1."""
    return ([{"epoch": i + 1, "loss": 1.0 / (i + 1), "val_loss": 1.2 / (i + 1),
              "accuracy": 0.5 + 0.05 * i, "val_accuracy": 0.45 + 0.05 * i} for i in range(head)]
            + [{"epoch": i + 1, "loss": 0.2, "val_loss": 0.3, "accuracy": 0.9,
                "val_accuracy": 0.85} for i in range(fine)])


def boundaries(figure: go.Figure) -> list[float]:
    return sorted({shape.x0 for shape in figure.layout.shapes if shape.type == "line"})


def test_training_curves_are_two_charts_with_integer_epochs_and_no_second_axis():
    figure = charts.training_curves(staged_epochs(10, 0))
    layout = figure.layout
    assert layout.yaxis.overlaying is None and layout.yaxis2.overlaying is None
    axes = {(trace.xaxis, trace.yaxis) for trace in figure.data}
    assert axes == {("x", "y"), ("x2", "y2")}  # loss left, accuracy right
    assert {trace.name for trace in figure.data if trace.yaxis == "y"} == {"training",
                                                                           "validation"}
    for axis in (layout.xaxis, layout.xaxis2):
        assert axis.tickmode == "linear" and axis.tick0 == 1 and axis.dtick == 1
        assert axis.tickformat == "d"
    assert list(figure.data[0].x) == list(range(1, 11))
    assert layout.yaxis2.range[1] <= 1.05 and boundaries(figure) == []
    many = charts.training_curves(staged_epochs(40, 0))
    assert many.layout.xaxis.dtick == 4 and float(many.layout.xaxis.dtick).is_integer()


def test_a_live_fine_tuning_gets_its_marker_where_the_epoch_numbers_start_again():
    figure = charts.training_curves(staged_epochs(4, 3))
    assert list(figure.data[0].x) == list(range(1, 8))  # one running count, not 1-4 then 1-3
    assert boundaries(figure) == [4.5]
    assert len([shape for shape in figure.layout.shapes if shape.type == "line"]) == 2
    assert any("fine-tuning" in note.text for note in figure.layout.annotations)


def test_a_saved_run_s_curves_take_head_epochs_from_the_run():
    history = {"loss": [1.0, 0.8, 0.5, 0.4, 0.3], "accuracy": [0.5, 0.6, 0.8, 0.85, 0.9]}
    epochs = [{key: values[i] for key, values in history.items()} for i in range(5)]
    assert boundaries(charts.training_curves(epochs)) == []  # the old call still works
    assert boundaries(charts.training_curves(epochs, head_epochs=2)) == [2.5]
    # A fine-tuning that stopped after its head stage: no line past the end.
    assert boundaries(charts.training_curves(epochs, head_epochs=5)) == []


@pytest.mark.slow
def test_the_live_epochs_of_a_real_fine_tuning_mark_its_head_stage(tiny_folder, tmp_path):
    """The marker comes from what train.py reports through a job, not from a guess."""
    from tlcore import backbones
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    body.save_weights(str(tmp_path / "body.weights.h5"))
    job = jobs.BackgroundJob("test-owner")
    run = train.train_classifier(
        config.TrainConfig(backbone="scratch_cnn", weights=str(tmp_path / "body.weights.h5"),
                           mode="fine-tune", epochs=2, head_epochs=3, patience=0,
                           image_size=32, batch_size=8),
        data.from_folder(tiny_folder), runs_dir=tmp_path / "runs", on_step=job._on_step)
    live = job.snapshot().epochs
    assert len(live) == 5 and run.info["head_epochs"] == 3
    assert boundaries(charts.training_curves(live)) == [3.5]
    history = run.info["history"]
    saved = [{key: values[i] for key, values in history.items()} for i in range(5)]
    assert boundaries(charts.training_curves(saved, head_epochs=run.info["head_epochs"])) == [3.5]


def comparison_rows(seconds: list[float], accuracies: list[float]) -> list[dict]:
    return [{"name": f"run {i}", "run": f"id-{i}", "backbone": "vgg16", "mode": "fast",
             "weights": "ImageNet", "val_accuracy": accuracy, "test_accuracy": None,
             "seconds": second, "model_mb": 56.0}
            for i, (second, accuracy) in enumerate(zip(seconds, accuracies))]


def test_the_accuracy_time_chart_zooms_to_the_runs_with_seconds_on_a_log_scale():
    figure = charts.run_comparison(comparison_rows([3.0, 40.0, 310.0], [0.66, 0.91, 0.95]))
    low, high = figure.layout.yaxis.range
    assert 0.5 < low < 0.66 and 0.95 < high <= 1.01  # not 0-1
    assert figure.layout.xaxis.type == "log"
    assert all(text.endswith(" s") for text in figure.layout.xaxis.ticktext)
    assert {5.0, 10.0, 100.0} <= set(figure.layout.xaxis.tickvals)
    assert "seconds" in figure.layout.xaxis.title.text
    assert "run 0" in figure.data[0].customdata[0][0]
    assert "%{customdata[0]}" in figure.data[0].hovertemplate
    close = charts.run_comparison(comparison_rows([20.0, 25.0], [0.8, 0.82]))
    assert close.layout.xaxis.type != "log" and close.layout.xaxis.range[0] >= 0
    assert close.layout.showlegend  # one group still names its backbone and mode


def test_sweep_has_no_negative_tv_axis_and_gives_zero_its_own_place():
    results = [types.SimpleNamespace(tv_weight=w, probability=p, total_variation=t)
               for w, p, t in [(0.0, 0.99, 0.6), (0.01, 0.9, 0.3), (0.1, 0.2, 0.05)]]
    figure = charts.sweep(results)
    assert figure.layout.yaxis2.overlaying is None  # two charts, not two axes on one
    assert figure.layout.yaxis2.rangemode == "tozero" and figure.layout.yaxis.range[0] == 0
    for axis in (figure.layout.xaxis, figure.layout.xaxis2):
        assert axis.type == "category"
    assert list(figure.data[1].x) == ["0 (off)", "0.01", "0.1"]


def relative_luminance(colour: str) -> float:
    red, green, blue = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_attacks_differ_in_colour_marker_and_dash():
    rows = [{"epsilon": e, "accuracy": a} for e, a in ((0, 0.9), (4, 0.1), (8, 0.0))]
    figure = charts.robustness({"fgsm": rows, "pgd": rows, "deepfool": rows})
    colours = [trace.line.color for trace in figure.data]
    assert len(set(colours)) == 3 and set(colours) <= set(charts.PALETTE)
    assert len({trace.marker.symbol for trace in figure.data}) == 3
    assert len({trace.line.dash for trace in figure.data}) == 3
    fgsm, pgd = (np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) for c in colours[:2])
    assert np.linalg.norm(fgsm - pgd) > 150  # the old orange and red were 79 apart
    # Told apart without hue too (colour blindness, grey print): brightness differs.
    assert abs(relative_luminance(colours[0]) - relative_luminance(colours[1])) > 0.05
    assert list(figure.data[0].x) == ["0/255", "4/255", "8/255"]
    assert figure.layout.yaxis.range[0] < 0 <= min(figure.layout.yaxis.tickvals)


def test_runs_table_puts_name_accuracy_time_and_size_first(tmp_path):
    from tests.test_models import tiny_classifier
    info = {"classes": ["a", "b"], "image_size": 32, "weights_label":
            "HED edge-detection body (pretrained on edges, not ImageNet)",
            "config": {"backbone": "vgg16", "mode": "fast", "weights": "edges"},
            "data": {"name": "demo"}, "history": {"loss": [1.0, 0.5]},
            "metrics": {"val_accuracy": 0.9, "test_accuracy": 0.8, "seconds": 3.5}}
    run = runs.save_run(tiny_classifier(), info, tmp_path)
    row = run.summary()
    assert list(row)[:5] == ["name", "val_accuracy", "test_accuracy", "seconds", "model_mb"]
    assert row["weights"] == "HED edges" and row["weights_detail"] == info["weights_label"]
    assert row["name"] == run.info["created"].replace("T", " ") and row["run"] == run.run_id
    assert runs.rename_run(run, "mine").summary()["name"] == "mine"
    random_row = runs.save_run(tiny_classifier(), {**info, "config": {
        "backbone": "scratch_cnn", "mode": "end-to-end", "weights": None}}, tmp_path).summary()
    assert random_row["weights"] == "random"

    table, column_config, order = charts.runs_table([row])
    assert table == [row]
    assert order[:5] == ["name", "val_accuracy", "test_accuracy", "seconds", "model_mb"]
    assert set(order) == set(row) - {"weights_detail", "run"}  # shown under One run
    assert column_config["name"]["label"] == "Run"
    assert column_config["val_accuracy"]["type_config"]["format"] == "%.3f"
    assert column_config["seconds"]["type_config"]["format"] == "%.1f s"
    # Every column fits the main column at 1400 px (about 940 px) without scrolling.
    assert sum(column_config[key]["width"] for key in order) <= 900


@pytest.mark.parametrize("rows", [[], [{"name": "x", "val_accuracy": None}]])
def test_empty_or_sparse_rows_still_draw(rows):
    charts.run_comparison(rows)
    assert charts.runs_table(rows)[2][0] == "name"
