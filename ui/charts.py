"""Plotly figures as pure functions of plain data (no Streamlit, no models)."""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

HEIGHT = 360


def escaped(name: object) -> str:
    """A visitor's name (class, run) for a chart: plotly reads a few HTML tags in labels
    (links among them), so `<`, `>` and `&` are escaped and shown as themselves."""
    return html.escape(str(name), quote=False)


def _layout(figure: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    figure.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10),
                         template="plotly_white")
    return figure


def class_counts(counts: dict[str, int]) -> go.Figure:
    """Bar chart of images per class."""
    figure = go.Figure(go.Bar(x=[escaped(name) for name in counts], y=list(counts.values()),
                              marker_color="#4c78a8"))
    figure.update_yaxes(title="images")
    return _layout(figure, "Images per class")


def training_curves(epochs: Sequence[dict[str, float]]) -> go.Figure:
    """Loss and accuracy per epoch, training and validation, on two y axes."""
    figure = go.Figure()
    numbers = [row.get("epoch", index + 1) for index, row in enumerate(epochs)]
    styles = {"loss": ("#e45756", "solid", "y"), "val_loss": ("#e45756", "dash", "y"),
              "accuracy": ("#4c78a8", "solid", "y2"), "val_accuracy": ("#4c78a8", "dash", "y2")}
    for key, (colour, dash, axis) in styles.items():
        values = [row.get(key) for row in epochs]
        if any(value is not None for value in values):
            figure.add_trace(go.Scatter(x=numbers, y=values, name=key, yaxis=axis,
                                        mode="lines+markers",
                                        line=dict(color=colour, dash=dash)))
    figure.update_layout(xaxis=dict(title="epoch", dtick=1), yaxis=dict(title="loss"),
                         yaxis2=dict(title="accuracy", overlaying="y", side="right",
                                     range=[0, 1.02], tickformat=".1f", showgrid=False),
                         legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1.0,
                                     xanchor="right"))
    return _layout(figure, "Training curves (dashed: validation)")


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


def run_comparison(rows: Sequence[dict]) -> go.Figure:
    """Validation accuracy against training time, one colour per backbone and mode."""
    figure = go.Figure()
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("val_accuracy") is not None:
            random = " / random weights" if str(row.get("weights")).startswith("random") else ""
            groups.setdefault(f"{row['backbone']} / {row['mode']}{random}", []).append(row)
    for group, members in sorted(groups.items()):
        figure.add_trace(go.Scatter(
            x=[row["seconds"] for row in members], y=[row["val_accuracy"] for row in members],
            mode="markers", name=group, marker=dict(size=11),
            text=[escaped(row["name"] or row["run"]) for row in members],
            hovertemplate="%{text}<br>%{x:.1f} s<br>val acc %{y:.3f}<extra></extra>"))
    figure.update_xaxes(title="training time (s)", type="log")
    figure.update_yaxes(title="validation accuracy", range=[0, 1.05])
    return _layout(figure, "Accuracy against training time")


def sweep(results: Sequence) -> go.Figure:
    """Class probability and total variation against the TV weight, one point per image of a
    sweep (objects with tv_weight, probability and total_variation)."""
    labels = [f"{r.tv_weight:g}" for r in results]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=labels, y=[r.probability for r in results],
                                name="class probability", mode="lines+markers",
                                line=dict(color="#4c78a8")))
    figure.add_trace(go.Scatter(x=labels, y=[r.total_variation for r in results],
                                name="total variation (px)", mode="lines+markers", yaxis="y2",
                                line=dict(color="#e45756", dash="dash")))
    figure.update_layout(xaxis=dict(title="TV weight", type="category"),
                         yaxis=dict(title="probability", range=[0, 1.05]),
                         yaxis2=dict(title="total variation (px)", overlaying="y",
                                     side="right", showgrid=False),
                         legend=dict(orientation="h", y=1.0, yanchor="bottom"))
    return _layout(figure, "The trade-off: probability and smoothness")


def robustness(curves: dict[str, Sequence[dict]]) -> go.Figure:
    """Accuracy against epsilon (k/255), one line per attack method."""
    figure = go.Figure()
    colours = {"fgsm": "#f58518", "pgd": "#e45756"}
    for method, rows in curves.items():
        figure.add_trace(go.Scatter(
            x=[row["epsilon"] for row in rows], y=[row["accuracy"] for row in rows],
            name=method.upper(), mode="lines+markers", line=dict(color=colours.get(method))))
    figure.update_xaxes(title="epsilon (k/255)", type="category")
    figure.update_yaxes(title="accuracy under attack", range=[0, 1.05])
    return _layout(figure, "Robustness: accuracy as the budget grows")
