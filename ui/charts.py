"""Plotly figures as pure functions of plain data (no Streamlit, no models)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

HEIGHT = 360


def _layout(figure: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    figure.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10),
                         template="plotly_white")
    return figure


def class_counts(counts: dict[str, int]) -> go.Figure:
    """Bar chart of images per class."""
    figure = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), marker_color="#4c78a8"))
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
                     normalize: bool = False) -> go.Figure:
    """Heat map of a confusion matrix (rows: true class, columns: predicted class)."""
    counts = np.asarray(matrix, dtype=np.float64)
    values = counts
    if normalize:
        values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    text = [[f"{v:.2f}" if normalize else f"{int(v)}" for v in row] for row in values]
    figure = go.Figure(go.Heatmap(z=values, x=list(class_names), y=list(class_names),
                                  colorscale="Blues", text=text,
                                  texttemplate="%{text}" if len(class_names) <= 15 else None,
                                  hovertemplate="true %{y}<br>predicted %{x}<br>%{text}"
                                                "<extra></extra>"))
    figure.update_xaxes(title="predicted class", tickangle=-45)
    figure.update_yaxes(title="true class", autorange="reversed")
    side = max(HEIGHT, 28 * len(class_names) + 200)
    figure = _layout(figure, "Confusion matrix" + (" (row-normalised)" if normalize else ""), side)
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    return figure


def per_class_accuracy(per_class: Sequence[dict]) -> go.Figure:
    """Horizontal bars of per-class accuracy, worst first."""
    rows = sorted((row for row in per_class if row["accuracy"] is not None),
                  key=lambda row: row["accuracy"])
    figure = go.Figure(go.Bar(x=[row["accuracy"] for row in rows],
                              y=[row["class"] for row in rows], orientation="h",
                              text=[f"{row['accuracy']:.2f} (n={row['support']})" for row in rows],
                              marker_color="#54a24b"))
    figure.update_xaxes(range=[0, 1.05], title="accuracy")
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, "Per-class accuracy (worst first)", max(HEIGHT, 26 * len(rows) + 100))


def probability_bars(probabilities: np.ndarray, class_names: Sequence[str], title: str,
                     top_k: int = 5, highlight: Sequence[int] = ()) -> go.Figure:
    """Top-k class probabilities as horizontal bars; highlighted classes in orange."""
    order = np.argsort(probabilities)[::-1][:top_k]
    colours = ["#f58518" if index in highlight else "#4c78a8" for index in order]
    figure = go.Figure(go.Bar(x=[float(probabilities[i]) for i in order],
                              y=[class_names[i] for i in order], orientation="h",
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
            text=[row["name"] or row["run"] for row in members],
            hovertemplate="%{text}<br>%{x:.1f} s<br>val acc %{y:.3f}<extra></extra>"))
    figure.update_xaxes(title="training time (s)", type="log")
    figure.update_yaxes(title="validation accuracy", range=[0, 1.05])
    return _layout(figure, "Accuracy against training time")
