"""Evaluate: where a trained classifier is right and wrong, and why."""
from __future__ import annotations

import streamlit as st

from ui import cache, charts, evaluation, widgets

SPLITS = {"test": "Test (never seen in training)", "validation": "Validation (picked the best epoch)",
          "train": "Train"}

st.title("Evaluate")
st.markdown("One accuracy number hides which classes the model confuses. The confusion "
            "matrix counts, for each true class (row), what the model predicted (column): a "
            "perfect model has numbers only on the diagonal. Click a cell to see its images, "
            "and Grad-CAM to see which part of an image the decision came from.")

all_runs = cache.all_runs()
run = widgets.run_picker(all_runs, key="evaluate_run")
if run is None:
    st.stop()
left, right = st.columns(2)
with left:
    split = st.radio("Split", list(SPLITS), format_func=SPLITS.get, horizontal=True)
others = [other for other in all_runs if other.run_id != run.run_id]
other = right.selectbox("Compare with", [None, *others], key="evaluate_other",
                        format_func=lambda r: "no other run" if r is None else r.label())


def scored(chosen) -> dict:
    """The cached report of a run on the chosen split; stops the page with the reason."""
    try:
        return cache.run_report(*chosen.cache_key, split)
    except ValueError as error:
        widgets.error(f"Cannot evaluate {chosen.run_id}: {error}")
        st.stop()


report = scored(run)
other_report = scored(other) if other is not None else None
config = run.info["config"]
st.caption(f"{report['count']} images. {config['backbone']}, {config['mode']}, weights: "
           f"{run.info.get('weights_label')}. Chance level: {1 / len(run.classes):.3f} "
           f"({len(run.classes)} classes)." + (f" Deltas: this run minus {other.run_id}."
                                               if other is not None else ""))
evaluation.metrics_row(report, other_report)
if report["count"] == 0:
    st.info("This split has no images.", icon=":material/info:")
    st.stop()

# Only the open tab runs (each view may score, load images or explain one): a first look
# at a run computes one explanation, not three.
confusion, per_class, mistakes, calibration, explain, backbone = st.tabs(
    ["Confusion matrix", "Per class", "Mistakes", "Calibration", "Explain an image",
     "What the backbone sees"], key="evaluate-view", on_change="rerun")
if confusion.open:
    with confusion:
        evaluation.confusion_view(report, run)
if per_class.open:
    with per_class:
        same_classes = other_report is not None and other.classes == run.classes
        st.plotly_chart(charts.per_class_metrics(
            report["per_class"], other_report["per_class"] if same_classes else None,
            (run.run_id, other.run_id if other else "")), width="stretch")
        worst_first = sorted(report["per_class"],
                             key=lambda row: (row["f1"] is None, row["f1"] or 0.0))
        st.dataframe(worst_first, width="stretch", hide_index=True)
if mistakes.open:
    with mistakes:
        evaluation.mistakes_view(report, run)
if calibration.open:
    with calibration:
        evaluation.calibration_view(report)
if explain.open:
    with explain:
        chosen = evaluation.upload_or_split_image(report, run, key="explain-any")
        if chosen is not None:
            evaluation.explain_panel(run, chosen[0], chosen[1], key="any")
if backbone.open:
    with backbone:
        evaluation.backbone_view(report, run)

st.caption(("Your data is synthetic. " if run.info.get("data", {}).get("synthetic") else "")
           + "For comparison on real photos: a ResNet50 linear probe reaches 91.5% on the 37 "
           "Oxford-IIIT Pet breeds, fine-tuned 92.1%, from scratch 81.5%; fastai's fine-tuned "
           "ResNet34 94.6%; the lesson's frozen VGG16 0.967 on Cats vs Dogs. Every run side "
           "by side: the **Runs** page.")
