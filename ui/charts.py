"""Plotly figures (and the runs table's layout) as pure functions of plain data (no
models; Streamlit only for its column-configuration descriptions)."""
from __future__ import annotations

import html
import math
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

HEIGHT = 360
# Okabe and Ito's colour-blind-safe qualitative palette (blue, vermillion, bluish green,
# orange, reddish purple, sky blue, yellow, black), and a marker per series to go with it,
# so two series differ in shape as well as colour.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "triangle-down",
           "cross")
TRAINING_COLOUR, VALIDATION_COLOUR = PALETTE[0], PALETTE[1]


def escaped(name: object) -> str:
    """A visitor's name (class, run) for a chart: plotly reads a few HTML tags in labels
    (links among them), so `<`, `>` and `&` are escaped and shown as themselves."""
    return html.escape(str(name), quote=False)


def _layout(figure: go.Figure, title: str, height: int = HEIGHT, top: int = 50) -> go.Figure:
    figure.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=top, b=10),
                         template="plotly_white")
    return figure


def class_counts(counts: dict[str, int]) -> go.Figure:
    """Bar chart of images per class."""
    figure = go.Figure(go.Bar(x=[escaped(name) for name in counts], y=list(counts.values()),
                              marker_color="#4c78a8"))
    figure.update_yaxes(title="images")
    return _layout(figure, "Images per class")


def training_curves(epochs: Sequence[dict[str, float]], head_epochs: int | None = None
                    ) -> go.Figure:
    """Loss and accuracy per epoch as two charts side by side, training solid and
    validation dashed, with a line where head-only training ends and fine-tuning starts.

    Args:
        epochs: one dict per finished epoch, in order, with any of "loss", "val_loss",
            "accuracy", "val_accuracy" and, from a live training, "epoch" (its number
            within its stage: fine-tuning counts again from 1 after the head's epochs).
        head_epochs: how many of the epochs trained the head alone (`run.info
            ["head_epochs"]`); None reads it from where the "epoch" numbers start again.
    """
    numbers = _epoch_numbers(epochs)
    if head_epochs is None:
        head_epochs = _stage_start(epochs)
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"),
                           horizontal_spacing=0.1)
    for column, metric in ((1, "loss"), (2, "accuracy")):
        for key, name, colour, dash in ((metric, "training", TRAINING_COLOUR, "solid"),
                                        (f"val_{metric}", "validation", VALIDATION_COLOUR,
                                         "dash")):
            values = [row.get(key) for row in epochs]
            if all(value is None for value in values):
                continue
            figure.add_trace(go.Scatter(
                x=numbers, y=values, name=name, legendgroup=name, showlegend=column == 1,
                mode="lines+markers", line=dict(color=colour, dash=dash),
                marker=dict(symbol="circle" if dash == "solid" else "square", size=7),
                hovertemplate=f"epoch %{{x}}<br>{name} {metric} %{{y:.3f}}<extra></extra>"),
                row=1, col=column)
    figure.update_xaxes(title_text="epoch", tickmode="linear", tick0=1,
                        dtick=max(1, math.ceil(len(numbers) / 12)), tickformat="d")
    if numbers:
        figure.update_xaxes(range=[numbers[0] - 0.5, numbers[-1] + 0.5])
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[_accuracy_floor(epochs), 1.02], row=1, col=2)
    if head_epochs and 0 < head_epochs < len(numbers):
        boundary = numbers[head_epochs - 1] + 0.5
        for column in (1, 2):
            figure.add_vline(x=boundary, line=dict(color="#555", dash="dot", width=1.5),
                             row=1, col=column)
            figure.add_annotation(x=boundary, y=1.0, yref="y domain" if column == 1
                                  else "y2 domain", xref="x" if column == 1 else "x2",
                                  text="fine-tuning →", showarrow=False, xanchor="left",
                                  yanchor="top", font=dict(size=11, color="#333"),
                                  bgcolor="rgba(255, 255, 255, 0.85)")
    figure.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.1, x=1.0,
                                     xanchor="right"), hovermode="x unified")
    return _layout(figure, "Training curves", 340, top=80)


def _epoch_numbers(epochs: Sequence[dict[str, float]]) -> list[int]:
    """1, 2, 3... across stages (from the first epoch's own number, for a resumed one)."""
    first = int(epochs[0].get("epoch", 1)) if epochs else 1
    return list(range(first, first + len(epochs)))


def _stage_start(epochs: Sequence[dict[str, float]]) -> int | None:
    """How many epochs came before the "epoch" numbering started again (None: it did not)."""
    for index in range(1, len(epochs)):
        previous, current = epochs[index - 1].get("epoch"), epochs[index].get("epoch")
        if previous is not None and current is not None and current <= previous:
            return index
    return None


def _accuracy_floor(epochs: Sequence[dict[str, float]]) -> float:
    """0, unless every accuracy is high: then a tenth below the lowest, to see the detail."""
    values = [row[key] for row in epochs for key in ("accuracy", "val_accuracy")
              if row.get(key) is not None]
    lowest = min(values, default=0.0)
    return 0.0 if lowest < 0.6 else math.floor(lowest * 10) / 10 - 0.1


def confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str],
                     normalize: bool = False, selected: tuple[int, int] | None = None
                     ) -> go.Figure:
    """Heat map of a confusion matrix (rows: true class, columns: predicted class).

    Clickable: an invisible marker sits on every cell (heat maps send no click selections),
    so a chart shown with selection on reports the clicked cell as its x and y. The
    `selected` (true, predicted) cell is outlined.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    values = counts
    if normalize:
        values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [escaped(name) for name in class_names]
    text = [[f"{v:.2f}" if normalize else f"{int(v)}" for v in row] for row in values]
    figure = go.Figure(go.Heatmap(z=values, x=names, y=names, colorscale="Blues", text=text,
                                  texttemplate="%{text}" if len(names) <= 15 else None,
                                  hoverinfo="skip"))
    cells = [(t, p) for t in range(len(names)) for p in range(len(names))]
    figure.add_trace(go.Scatter(
        x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], mode="markers",
        marker=dict(size=max(8, min(40, 700 // max(len(names), 1))), symbol="square",
                    opacity=0),
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
        customdata=[text[t][p] for t, p in cells], showlegend=False,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata}<br>click to see them"
                      "<extra></extra>"))
    if selected is not None:
        figure.add_shape(type="rect", xref="x", yref="y", line=dict(color="#f58518", width=3),
                         x0=selected[1] - 0.5, x1=selected[1] + 0.5,
                         y0=selected[0] - 0.5, y1=selected[0] + 0.5)
    figure.update_xaxes(title="predicted class", tickangle=-45)
    figure.update_yaxes(title="true class", autorange="reversed")
    side = max(HEIGHT, 28 * len(names) + 200)
    figure = _layout(figure, "Confusion matrix" + (" (row-normalised)" if normalize else ""), side)
    figure.update_layout(hovermode="closest", clickmode="event+select")
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    return figure


def per_class_metrics(per_class: Sequence[dict], other: Sequence[dict] | None = None,
                      names: tuple[str, str] = ("this run", "other run")) -> go.Figure:
    """Per-class F1, precision and recall as bars, worst F1 first; with `other` (a second
    run's per-class rows for the same classes), the two runs' F1 side by side."""
    rows = sorted((row for row in per_class if row["f1"] is not None),
                  key=lambda row: row["f1"])
    classes = [escaped(row["class"]) for row in rows]
    figure = go.Figure()
    if other is None:
        for key, colour in (("f1", "#54a24b"), ("precision", "#4c78a8"), ("recall", "#f58518")):
            figure.add_trace(go.Bar(y=classes, x=[row[key] for row in rows], name=key,
                                    orientation="h", marker_color=colour))
    else:
        by_class = {escaped(row["class"]): row for row in other}
        for label, values, colour in (
                (names[0], [row["f1"] for row in rows], "#54a24b"),
                (names[1], [by_class.get(c, {}).get("f1") for c in classes], "#b279a2")):
            figure.add_trace(go.Bar(y=classes, x=values, name=f"F1, {label}", orientation="h",
                                    marker_color=colour))
    figure.update_layout(barmode="group", legend=dict(orientation="h", y=1.0, yanchor="bottom"))
    figure.update_xaxes(range=[0, 1.05])
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, "Per class (worst F1 first)", max(HEIGHT, 44 * len(rows) + 120))


def reliability(bins: Sequence[dict], ece: float | None) -> go.Figure:
    """Reliability diagram: accuracy against confidence per bin, beside the diagonal of a
    perfectly calibrated model; bar widths span the bins, hover shows their counts."""
    figure = go.Figure()
    figure.add_trace(go.Bar(x=[(row["low"] + row["high"]) / 2 for row in bins],
                            y=[row["accuracy"] for row in bins],
                            width=[row["high"] - row["low"] for row in bins],
                            name="accuracy", marker_color="#4c78a8",
                            customdata=[[row["count"], row["confidence"]] for row in bins],
                            hovertemplate="confidence %{customdata[1]:.2f}<br>accuracy %{y:.2f}"
                                          "<br>%{customdata[0]} images<extra></extra>"))
    figure.add_trace(go.Scatter(x=[row["confidence"] for row in bins],
                                y=[row["confidence"] for row in bins], mode="markers",
                                name="mean confidence", marker=dict(color="#e45756", size=9)))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                                line=dict(color="#888", dash="dash")))
    figure.update_xaxes(range=[0, 1], title="confidence (top probability)")
    figure.update_yaxes(range=[0, 1.05], title="accuracy")
    title = "Reliability diagram" + (f" (ECE {ece:.3f})" if ece is not None else "")
    return _layout(figure, title)


def probability_bars(probabilities: np.ndarray, class_names: Sequence[str], title: str,
                     top_k: int = 5, highlight: Sequence[int] = ()) -> go.Figure:
    """Top-k class probabilities as horizontal bars; highlighted classes in orange."""
    order = np.argsort(probabilities)[::-1][:top_k]
    colours = ["#f58518" if index in highlight else "#4c78a8" for index in order]
    figure = go.Figure(go.Bar(x=[float(probabilities[i]) for i in order],
                              y=[escaped(class_names[i]) for i in order], orientation="h",
                              marker_color=colours,
                              text=[f"{probabilities[i]:.3f}" for i in order]))
    figure.update_xaxes(range=[0, 1.05], title="probability")
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, title, 260)


def trace(values: Sequence[float], title: str, y_title: str) -> go.Figure:
    """A line of one value per optimisation step."""
    figure = go.Figure(go.Scatter(y=list(values), mode="lines", line=dict(color="#4c78a8")))
    figure.update_xaxes(title="step")
    figure.update_yaxes(title=y_title)
    return _layout(figure, title, 260)


RUN_COLUMNS = {
    # key of Run.summary() (and "robust"): (label, width in pixels, number format or None,
    # help); the widths add up to what fits beside the sidebar at 1400 px.
    "name": ("Run", 130, None, "The name you gave the run (rename it below), else when it "
             "was trained."),
    "val_accuracy": ("Validation", 90, "%.3f", "Accuracy on the validation images (they "
                     "picked the best epoch)."),
    "test_accuracy": ("Test", 65, "%.3f", "Accuracy on the test images, never seen in "
                      "training."),
    "seconds": ("Time", 70, "%.1f s", "Training time in seconds."),
    "model_mb": ("Size", 70, "%.1f MB", "The saved model file, in megabytes."),
    "backbone": ("Backbone", 95, None, "The network body."),
    "mode": ("Mode", 85, None, "fast: a head on frozen features; fine-tune: the head, then "
             "the body's top blocks; end-to-end: everything from scratch."),
    "robust": ("Robust", 100, None, "Adversarial training's budget and attack; blank: "
               "trained on the images as they are."),
    "weights": ("Weights", 80, None, "Where the body's starting weights came from (in full "
                "under One run, below)."),
    "data": ("Data", 95, None, "The data set it was trained on."),
    "epochs": ("Epochs", 60, "%d", "Epochs trained, head-only ones included."),
}
OPTIONAL_RUN_COLUMNS = {"robust"}  # shown only when some run has a value


def runs_table(rows: Sequence[dict]) -> tuple[list[dict], dict[str, Any], list[str]]:
    """The runs table's layout: what a reader compares first on the left, in units.

    Args:
        rows: `Run.summary()` rows.

    Returns:
        (rows, column_config, column_order) for `st.dataframe(rows, column_config=...,
        column_order=...)`: the run's name pinned, then validation and test accuracy,
        time and size. The long weights description and the id are left out (the table
        fits 1400 px without scrolling sideways); the run's own section shows them.
    """
    column_config: dict[str, Any] = {}
    for key, (label, width, number_format, help_text) in RUN_COLUMNS.items():
        if number_format is None:
            column_config[key] = st.column_config.TextColumn(label, width=width, help=help_text)
        else:
            column_config[key] = st.column_config.NumberColumn(label, width=width,
                                                               help=help_text,
                                                               format=number_format)
    present = set().union(*(row.keys() for row in rows)) if rows else set(RUN_COLUMNS)
    present -= {key for key in OPTIONAL_RUN_COLUMNS if not any(row.get(key) for row in rows)}
    return list(rows), column_config, [key for key in RUN_COLUMNS if key in present]


def run_comparison(rows: Sequence[dict]) -> go.Figure:
    """Validation accuracy against training time, one colour and marker per backbone and
    mode; the axes zoom to the runs (time on a log scale when it spans over 10x)."""
    figure = go.Figure()
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("val_accuracy") is not None and row.get("seconds") is not None:
            random = " / random weights" if str(row.get("weights")).startswith("random") else ""
            groups.setdefault(f"{row['backbone']} / {row['mode']}{random}", []).append(row)
    for index, (group, members) in enumerate(sorted(groups.items())):
        figure.add_trace(go.Scatter(
            x=[row["seconds"] for row in members], y=[row["val_accuracy"] for row in members],
            mode="markers", name=escaped(group),
            marker=dict(size=12, color=PALETTE[index % len(PALETTE)],
                        symbol=SYMBOLS[index % len(SYMBOLS)], line=dict(width=1, color="white")),
            customdata=[[escaped(row.get("name") or row.get("run")), _number(row, "test_accuracy"),
                         _number(row, "model_mb", "{:.1f} MB")] for row in members],
            hovertemplate="<b>%{customdata[0]}</b><br>" + escaped(group) +
                          "<br>validation accuracy %{y:.3f}<br>test accuracy %{customdata[1]}"
                          "<br>%{x:.1f} s<br>%{customdata[2]}<extra></extra>"))
    shown = [row for members in groups.values() for row in members]
    seconds = [float(row["seconds"]) for row in shown]
    accuracies = [float(row["val_accuracy"]) for row in shown]
    if seconds and max(seconds) > 10 * max(min(seconds), 1e-3):
        low, high = math.log10(max(min(seconds), 1e-3)), math.log10(max(seconds))
        ticks = _one_two_five(10 ** low, 10 ** high)
        figure.update_xaxes(type="log", range=[low - 0.15, high + 0.15], tickvals=ticks,
                            ticktext=[f"{tick:g} s" for tick in ticks],
                            title="training time (seconds, log scale)")
    elif seconds:
        margin = max(0.1 * (max(seconds) - min(seconds)), 0.1 * max(seconds), 0.5)
        figure.update_xaxes(range=[max(0.0, min(seconds) - margin), max(seconds) + margin],
                            ticksuffix=" s", title="training time (seconds)")
    if accuracies:
        margin = max(0.1 * (max(accuracies) - min(accuracies)), 0.03)
        figure.update_yaxes(range=[max(0.0, min(accuracies) - margin),
                                   min(1.0, max(accuracies) + margin) + 0.005])
    figure.update_yaxes(title="validation accuracy", tickformat=".2f")
    figure.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                         hovermode="closest", showlegend=True)
    return _layout(figure, "Accuracy against training time")


def _one_two_five(low: float, high: float) -> list[float]:
    """1, 2, 5, 10, 20... from the step below `low` to the step above `high`."""
    ticks = []
    for power in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        ticks += [float(f"{step * 10.0 ** power:.6g}") for step in (1, 2, 5)]
    inside = [tick for tick in ticks if low / 1.5 <= tick <= high * 1.5]
    return inside or ticks


def _number(row: dict, key: str, pattern: str = "{:.3f}") -> str:
    value = row.get(key)
    return "-" if value is None else pattern.format(value)


def sweep(results: Sequence) -> go.Figure:
    """Class probability and total variation against the TV weight, one point per image of a
    sweep (objects with tv_weight, probability and total_variation), as two charts side by
    side. The weights are categories (log-spaced around the recipe's, with 0 for "off"), so
    0 has a place of its own and no axis runs below it; both value axes start at 0."""
    labels = [f"{r.tv_weight:g}" if r.tv_weight > 0 else "0 (off)" for r in results]
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                           subplot_titles=("Class probability", "Total variation (px)"))
    figure.add_trace(go.Scatter(x=labels, y=[r.probability for r in results],
                                name="class probability", mode="lines+markers",
                                line=dict(color=PALETTE[0]), marker=dict(size=8),
                                hovertemplate="TV weight %{x}<br>probability %{y:.3f}"
                                              "<extra></extra>"), row=1, col=1)
    figure.add_trace(go.Scatter(x=labels, y=[r.total_variation for r in results],
                                name="total variation (px)", mode="lines+markers",
                                line=dict(color=PALETTE[1]),
                                marker=dict(size=8, symbol="square"),
                                hovertemplate="TV weight %{x}<br>total variation %{y:.1f} px"
                                              "<extra></extra>"), row=1, col=2)
    figure.update_xaxes(title_text="TV weight", type="category", categoryorder="array",
                        categoryarray=labels)
    figure.update_yaxes(range=[0, 1.05], tickformat=".1f", row=1, col=1)
    figure.update_yaxes(rangemode="tozero", row=1, col=2)
    figure.update_layout(showlegend=False)
    return _layout(figure, "The trade-off: probability and smoothness", top=80)


def robustness(curves: dict[str, Sequence[dict]]) -> go.Figure:
    """Accuracy against epsilon (k/255), one line per attack method, each in its own colour
    of a colour-blind-safe palette, marker and dash (FGSM blue circles, PGD vermillion
    squares)."""
    figure = go.Figure()
    known = ["fgsm", "pgd"]
    others = [method for method in curves if method not in known]
    for method, rows in curves.items():
        index = known.index(method) if method in known else len(known) + others.index(method)
        figure.add_trace(go.Scatter(
            x=[f"{row['epsilon']:g}/255" for row in rows], y=[row["accuracy"] for row in rows],
            name=escaped(method.upper()), mode="lines+markers",
            line=dict(color=PALETTE[index % len(PALETTE)], width=2.5,
                      dash=("solid", "dash", "dot", "dashdot")[index % 4]),
            marker=dict(symbol=SYMBOLS[index % len(SYMBOLS)], size=10),
            hovertemplate=escaped(method.upper()) + " at %{x}: accuracy %{y:.3f}<extra></extra>"))
    return _layout(_robustness_axes(figure), "Robustness: accuracy as the budget grows")


def _robustness_axes(figure: go.Figure) -> go.Figure:
    """Epsilon across (as categories), accuracy up, the legend above."""
    figure.update_xaxes(title="epsilon (k/255 of the pixel range)", type="category")
    # A little room below 0, so a point at 0 (common under PGD) shows its whole marker.
    figure.update_yaxes(title="accuracy under attack", range=[-0.04, 1.05], tickformat=".1f",
                        tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
    figure.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return figure


def robustness_pair(curves: Sequence[dict[str, Sequence[dict]]], names: Sequence[str]
                    ) -> go.Figure:
    """Two models' robustness curves on one chart: a colour per model (A blue, B
    vermillion), a dash and marker per attack (FGSM solid circles, PGD dashed squares)."""
    figure = go.Figure()
    for number, (model_curves, name) in enumerate(zip(curves, names)):
        for index, (method, rows) in enumerate(model_curves.items()):
            label = f"{escaped(name)}, {escaped(method.upper())}"
            figure.add_trace(go.Scatter(
                x=[f"{row['epsilon']:g}/255" for row in rows],
                y=[row["accuracy"] for row in rows], name=label, mode="lines+markers",
                line=dict(color=PALETTE[number], width=2.5, dash=("solid", "dash")[index % 2]),
                marker=dict(symbol=SYMBOLS[index % len(SYMBOLS)], size=10),
                hovertemplate=label + " at %{x}: accuracy %{y:.3f}<extra></extra>"))
    return _layout(_robustness_axes(figure), "Robustness of both models", HEIGHT + 60, top=90)


def per_class_pair(classes: Sequence[str], values: Sequence[Sequence[float | None]],
                   names: Sequence[str], title: str) -> go.Figure:
    """One value per class for each of two models, as grouped horizontal bars (classes in
    their order; None: no image of the class)."""
    labels = [escaped(name) for name in classes]
    figure = go.Figure([go.Bar(y=labels, x=list(model_values), name=escaped(name),
                               orientation="h", marker_color=PALETTE[number])
                        for number, (model_values, name) in enumerate(zip(values, names))])
    figure.update_layout(barmode="group", legend=dict(orientation="h", y=1.0, yanchor="bottom"))
    figure.update_xaxes(title="accuracy", range=[0, 1.05])
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, title, max(HEIGHT, 36 * len(classes) + 140))


# The two sides of a bake-off's trade-off: (row key of the cost, row key of its Pareto
# front, axis title, hover format).
BAKEOFF_COSTS = (("ms_per_image", "front_speed", "embedding time per image (ms, log scale)",
                  "%{x:.2f} ms"),
                 ("model_mb", "front_size", "model size (MB, log scale)", "%{x:.1f} MB"))


def bakeoff(rows: Sequence[dict]) -> go.Figure:
    """A backbone bake-off's Pareto charts side by side: validation accuracy against
    embedding time per image, and against model size (both on log scales). Pretrained
    bodies are blue circles, random-weight ones vermillion squares; the bodies on each
    chart's Pareto front (no other as accurate and as cheap) are ringed in black and joined
    by a dashed line. Each body is named beside its point: toward the middle, so no name
    runs off the chart; above it on the front, below it off the front, so a beaten body's
    name does not cover its neighbour's on the front.

    Args:
        rows: `tlcore.bakeoff.run`'s rows ("label", "pretrained", "val_accuracy",
            "ms_per_image", "model_mb", "front_speed", "front_size").
    """
    shown = [row for row in rows if row.get("val_accuracy") is not None]
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=(
        "Accuracy against speed", "Accuracy against size"))
    for column, (cost, on_front, title, hover) in enumerate(BAKEOFF_COSTS, start=1):
        front = sorted((row for row in shown if row.get(on_front)), key=lambda row: row[cost])
        figure.add_trace(go.Scatter(
            x=[row[cost] for row in front], y=[row["val_accuracy"] for row in front],
            mode="lines", line=dict(color="#555555", dash="dash", width=1.5, shape="hv"),
            name="best trade-offs (Pareto front)", legendgroup="front",
            showlegend=column == 1, hoverinfo="skip"), row=1, col=column)
        # Floored at a thousandth: a log axis has no 0 (a 40 KB model reads 0.0 MB).
        place = {id(row): math.log10(max(float(row[cost]), 1e-3)) for row in shown}
        low, high = min(place.values(), default=0.0), max(place.values(), default=0.0)
        for pretrained, name, index in ((True, "pretrained body", 0),
                                        (False, "random weights: what transfer adds", 1)):
            members = [row for row in shown if bool(row.get("pretrained")) == pretrained]
            figure.add_trace(go.Scatter(
                x=[row[cost] for row in members], y=[row["val_accuracy"] for row in members],
                mode="markers+text", name=name, legendgroup=name, showlegend=column == 1,
                text=[escaped(_short_label(row["label"])) for row in members],
                textposition=[("top " if row.get(on_front) else "bottom ")
                              + ("right" if place[id(row)] < (low + high) / 2 else "left")
                              for row in members], textfont=dict(size=10),
                marker=dict(size=12, color=PALETTE[index], symbol=SYMBOLS[index], line=dict(
                    width=[2.5 if row.get(on_front) else 0.5 for row in members],
                    color=["#000000" if row.get(on_front) else "#ffffff" for row in members])),
                customdata=[escaped(row["label"]) for row in members],
                hovertemplate="<b>%{customdata}</b><br>validation accuracy %{y:.3f}<br>"
                              + hover + "<extra></extra>"), row=1, col=column)
        ticks = _one_two_five(10 ** low, 10 ** high)
        figure.update_xaxes(type="log", title=title, range=[low - 0.2, high + 0.2],
                            tickvals=ticks, ticktext=[f"{tick:g}" for tick in ticks],
                            row=1, col=column)
    accuracies = [float(row["val_accuracy"]) for row in shown] or [0.0, 1.0]
    figure.update_yaxes(range=[max(0.0, min(accuracies) - 0.08),
                               min(1.0, max(accuracies)) + 0.06], tickformat=".2f")
    figure.update_yaxes(title="validation accuracy", row=1, col=1)
    figure.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.08, x=0),
                         hovermode="closest")
    return _layout(figure, "Backbone bake-off: the best trade-offs", HEIGHT + 80, top=110)


def _short_label(label: str) -> str:
    """A bake-off row's name beside its point: the body, and "(edges)" or "(ImageNet)" for
    pretrained ones (random ones are told by their colour)."""
    body, _, weights = label.partition(", ")
    return body if weights.startswith("random") else f"{body} ({weights})"


def learning_rate_finder(rates: Sequence[float], losses: Sequence[float],
                         smoothed: Sequence[float], suggestions: dict[str, tuple[str, float, float]],
                         chosen: str, diverged_at: float | None) -> go.Figure:
    """A learning-rate range test: each batch's loss (faint) and the smoothed loss against
    the rate on a log axis, a marker per rule's suggestion (the chosen one larger and
    named), and a dotted line where the loss blew up.

    Args:
        rates, losses, smoothed: one value per step, rates ascending.
        suggestions: rule name -> (label, rate, smoothed loss there).
        chosen: the rule whose rate is suggested.
        diverged_at: the rate where the test stopped on a blow-up, or None.
    """
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=list(rates), y=list(losses), name="loss of each batch",
                                mode="lines", line=dict(color="#bbbbbb", width=1),
                                hovertemplate="rate %{x:.2e}<br>batch loss %{y:.3f}"
                                              "<extra></extra>"))
    figure.add_trace(go.Scatter(x=list(rates), y=list(smoothed), name="smoothed loss",
                                mode="lines", line=dict(color=TRAINING_COLOUR, width=2.5),
                                hovertemplate="rate %{x:.2e}<br>smoothed loss %{y:.3f}"
                                              "<extra></extra>"))
    for index, (name, (label, rate, loss)) in enumerate(suggestions.items(), start=1):
        picked = name == chosen
        figure.add_trace(go.Scatter(
            x=[rate], y=[loss], name=f"{escaped(label)}: {rate:.2g}", mode="markers",
            marker=dict(color=PALETTE[index % len(PALETTE)], symbol=SYMBOLS[index % len(SYMBOLS)],
                        size=16 if picked else 10, line=dict(color="black", width=1.5 if picked
                                                              else 0)),
            hovertemplate=f"{escaped(label)}: rate {rate:.2g}<extra></extra>"))
        if picked:
            figure.add_annotation(x=math.log10(rate), y=loss, text=f"suggested: {rate:.2g}",
                                  showarrow=True, arrowhead=2, ax=0, ay=-40)
    # Up to the highest point before the lowest, so the fall fills the chart and the
    # blow-up leaves it at the top.
    lowest = int(np.argmin(smoothed))
    low, high = float(smoothed[lowest]), float(max(smoothed[:lowest + 1]))
    margin = 0.25 * (high - low) or 0.1 * abs(high) or 0.1
    bottom, top = max(0.0, low - 0.4 * margin), high + margin
    if diverged_at is not None:  # a trace, not a shape: shapes and annotations read a log
        # axis differently
        figure.add_trace(go.Scatter(
            x=[diverged_at, diverged_at], y=[bottom, top],
            mode="lines", line=dict(color=PALETTE[1], dash="dot", width=2),
            name=f"the loss blew up: {diverged_at:.2g}", hoverinfo="skip"))
    decades = range(math.floor(math.log10(min(rates))), math.ceil(math.log10(max(rates))) + 1)
    figure.update_xaxes(type="log", title="learning rate (log scale)",
                        tickvals=[10.0 ** power for power in decades],
                        ticktext=[f"{10.0 ** power:g}" for power in decades])
    figure.update_yaxes(title="loss", range=[bottom, top])
    figure.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                         hovermode="closest")
    return _layout(figure, "Loss as the learning rate grows", HEIGHT + 40, top=90)
