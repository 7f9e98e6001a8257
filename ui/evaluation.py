"""The Evaluate page's views: each draws one look at a scored run (see `cache.run_report`)."""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import streamlit as st

from tlcore import backbones, config, data, evaluate, explain, images, imagenet, models, runs
from ui import builder, cache, charts, state, widgets

GALLERY_SIZE = 12


def metrics_row(report: dict, other: dict | None = None) -> None:
    """Accuracy, top-k, balanced accuracy, ECE (and species accuracy for Pets breeds);
    with `other`, each metric's difference from the other run."""
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    def delta(value: float | None, key_path: tuple[str, ...]) -> str | None:
        theirs = other
        for key in key_path:
            theirs = (theirs or {}).get(key)
        return None if value is None or theirs is None else f"{value - theirs:+.3f}"

    shown = [("Accuracy", ("accuracy",)), ("Balanced accuracy", ("balanced_accuracy",)),
             *[(f"Top-{k}", ("top_k_accuracy", k)) for k in report["top_k_accuracy"]],
             ("Calibration error (ECE)", ("ece",))]
    if "species_accuracy" in report:
        shown.insert(1, ("Species (cat/dog)", ("species_accuracy",)))
    for column, (label, key_path) in zip(st.columns(len(shown)), shown):
        value = report
        for key in key_path:
            value = value.get(key)
        column.metric(label, number(value), delta(value, key_path),
                      delta_color="inverse" if key_path == ("ece",) else "normal")


def confusion_view(report: dict, run: runs.Run) -> None:
    """The confusion matrix; clicking a cell (or choosing one) shows its images."""
    normalize = st.toggle("Row-normalised (share of each true class)", value=False)
    cell = state.confusion_cell(run.run_id, report["split"])
    if cell is None:
        worst = report["most_confused"][0] if report["most_confused"] else None
        cell = ((run.classes.index(worst["true"]), run.classes.index(worst["predicted"]))
                if worst else (0, 0))
    # The chart's key holds the cell, so a new cell starts a chart with no stale selection.
    event = st.plotly_chart(charts.confusion_matrix(report["confusion_matrix"], run.classes,
                                                    normalize, selected=cell),
                            width="stretch", on_select="rerun", selection_mode="points",
                            key=f"confusion-{run.run_id}-{report['split']}-{cell}")
    points = (event.selection.get("points") or []) if event else []
    shown = [charts.escaped(name) for name in run.classes]  # the chart's (escaped) names
    if points and points[0].get("x") in shown and points[0].get("y") in shown:
        clicked = (shown.index(points[0]["y"]), shown.index(points[0]["x"]))
        if clicked != cell:
            state.set_confusion_cell(run.run_id, report["split"], clicked)
            st.rerun()
    left, right = st.columns(2)
    with left:
        true_class = widgets.class_picker(run.classes, "True class", f"cell-true-{cell}", cell[0])
    predicted = right.selectbox("Predicted as", range(len(run.classes)), index=cell[1],
                                key=f"cell-predicted-{cell}", format_func=run.classes.__getitem__)
    if (true_class, predicted) != cell:
        state.set_confusion_cell(run.run_id, report["split"], (true_class, predicted))
        st.rerun()
    members = evaluate.cell_members(report["labels"], report["probabilities"], true_class,
                                    predicted)
    st.caption(f"**{len(members)}** {widgets.plain(run.classes[true_class])} image(s) "
               f"predicted as {widgets.plain(run.classes[predicted])}"
               + (", most confident first" if len(members) else ""))
    gallery(report, run, members, key="cell")


def gallery(report: dict, run: runs.Run, indices: np.ndarray, key: str,
            actions: Callable[[int], None] | None = None) -> None:
    """Up to GALLERY_SIZE images of the report with their predictions; explain one of them.
    `actions(index)`, when given, draws under each image (e.g. its fixes)."""
    indices = [int(i) for i in indices[:GALLERY_SIZE]]
    if not indices:
        return
    pixels = data.load_images([report["paths"][i] for i in indices], run.image_size)
    for start in range(0, len(indices), 6):
        for column, index, image in zip(st.columns(6), indices[start:start + 6],
                                        pixels[start:start + 6]):
            probabilities = report["probabilities"][index]
            predicted = int(probabilities.argmax())
            column.image(image, width="stretch", caption=widgets.plain(
                f"#{index}: {run.classes[predicted]} {probabilities[predicted]:.2f} "
                f"(true: {run.classes[report['labels'][index]]})"))
            if actions is not None:
                with column:
                    actions(index)
    chosen = st.selectbox("Explain one of these", indices, key=f"explain-{key}",
                          format_func=lambda i: f"#{i}")
    explain_panel(run, pixels[indices.index(chosen)], int(report["labels"][chosen]), key)


def explain_panel(run: runs.Run, image: np.ndarray, true_label: int | None, key: str) -> None:
    """Grad-CAM and SmoothGrad saliency of one image, for its predicted class or a chosen one."""
    image = np.asarray(image, dtype=np.float32)
    try:
        result = cache.explanation(*run.cache_key, image, None)
        predicted = result["class_index"]
        # Keyed by the image too: a new image starts at its own predicted class.
        image_id = hashlib.sha1(image.tobytes()).hexdigest()[:10]
        class_index = widgets.class_picker(run.classes, "Explain the class",
                                           f"explain-class-{key}-{run.run_id}-{image_id}",
                                           predicted)
        if class_index != predicted:
            result = cache.explanation(*run.cache_key, image, class_index)
    except ValueError as error:
        widgets.error(f"Cannot explain this model: {error}")
        return
    # The cached map is on the image's common scale (explain.grad_cam's default); dividing
    # it by its own peak gives the per-map scale.
    common = st.toggle("Same Grad-CAM scale for every class", value=True,
                       key=f"gradcam-common-{key}",
                       help="On: every class's map of this image is divided by the strongest "
                            "evidence for any class, so a class with little evidence looks "
                            "dim. Off: each map fills the whole colour range on its own, which "
                            "shows where a class's evidence lies but not how much there is.")
    peak = float(result["grad_cam"].max())
    grad_cam = result["grad_cam"] if common else explain.own_scale(result["grad_cam"][None])[0]
    columns = st.columns(4)
    truth = f", true {run.classes[true_label]}" if true_label is not None else ""
    probability = result["probabilities"][class_index]
    with columns[0]:
        widgets.show_image(image, f"the image{truth}", 200)
    with columns[1]:
        widgets.show_image(images.colorize(grad_cam), "Grad-CAM", 200)
    with columns[2]:
        widgets.show_image(images.overlay(image, grad_cam), "blended", 200)
    with columns[3]:
        widgets.show_image(images.colorize(result["saliency"]), "saliency (SmoothGrad)", 200)
    if not result["grad_cam"].any():
        st.info(f"Nothing in this image speaks for {widgets.plain(run.classes[class_index])}: "
                "every region "
                "lowers its score, so the Grad-CAM map is empty.", icon=":material/info:")
    st.caption(f"Evidence for **{widgets.plain(run.classes[class_index])}** "
               f"(p = {probability:.3f}). "
               "Grad-CAM: where the last convolutional layer's features speak for that class "
               "(coarse: one cell per feature-map position). "
               + ("" if peak == 0 else
                  f"Its strongest spot is {peak:.2f} of the strongest evidence for any class "
                  "in this image. " if common else
                  "This map is scaled to its own peak, which hides how strong that evidence "
                  "is. ")
               + "Saliency: the pixels whose change moves its score most.")


def mistakes_view(report: dict, run: runs.Run) -> None:
    """The most confused class pairs, and the most confident mistakes."""
    if not report["most_confused"]:
        st.success("No mistakes on this split.", icon=":material/check:")
        return
    st.dataframe(report["most_confused"], width="stretch", hide_index=True,
                 column_config={"share": st.column_config.ProgressColumn(
                     "share of the true class", format="%.2f", min_value=0, max_value=1)})
    st.caption("The most confident mistakes: often a mislabelled image, or two classes that "
               "really look alike.")
    gallery(report, run, evaluate.confident_mistakes(report["labels"], report["probabilities"],
                                                     GALLERY_SIZE), key="mistakes",
            actions=builder.mistake_fixes(report, run))


def calibration_view(report: dict) -> None:
    """Reliability diagram and the expected calibration error."""
    st.markdown("A calibrated model that says *80 %* is right 80 % of the time. Bars below "
                "the diagonal mean over-confidence, common after training to a very low "
                "loss; the expected calibration error (ECE) averages the gaps, weighted by "
                "how many images fall in each bin.")
    st.plotly_chart(charts.reliability(report["reliability"], report["ece"]), width="stretch")


def upload_or_split_image(report: dict, run: runs.Run, key: str
                          ) -> tuple[np.ndarray, int | None] | None:
    """An image to look at: from the scored split (by number) or uploaded."""
    source = st.radio("Image", ["split", "upload"], horizontal=True, key=f"{key}-source",
                      format_func={"split": f"From the {report['split']} split",
                                   "upload": "Upload"}.get)
    if source == "upload":
        image = widgets.uploaded_image(run.image_size, key=f"{key}-upload")
        return None if image is None else (image, None)
    if not report["paths"]:
        st.info("This split has no images: upload one.", icon=":material/info:")
        return None
    index = (st.number_input("Image number", 0, len(report["paths"]) - 1, 0, key=f"{key}-index")
             if len(report["paths"]) > 1 else 0)
    return (images.load_image(report["paths"][index], run.image_size),
            int(report["labels"][index]))


def backbone_view(report: dict, run: runs.Run) -> None:
    """Top-5 of the backbone's own ImageNet classifier for an image, when its weights are here."""
    st.markdown("A pretrained body was first trained to tell 1000 ImageNet classes apart. "
                "Its own ImageNet head shows what those features were made for.")
    backbone = run.info["config"]["backbone"]
    spec = backbones.get_spec(backbone)
    path = backbones.imagenet_top_weights_path(backbone)
    if path is None:
        st.info(f"{spec.display_name} was not trained on ImageNet: it has no ImageNet head "
                "to ask.", icon=":material/info:")
        return
    if not path.is_file() and config.public_demo():
        st.info(f"{spec.display_name}'s whole ImageNet classifier is not installed on this "
                "demo server.", icon=":material/cloud_off:")
        return
    if not path.is_file():
        st.info(f"This needs {spec.display_name}'s whole ImageNet classifier, which is not "
                "on this server. " + widgets.how_to_add(backbones.missing_imagenet_weights(
                    backbone, with_head=True))
                + (" This run's body is the HED edge detector, not ImageNet: the ImageNet "
                   "VGG16 would still show what VGG16 features were made for."
                   if run.info["config"]["weights"] == "edges" else ""),
                icon=":material/cloud_off:")
        return
    chosen = upload_or_split_image(report, run, key="backbone")
    if chosen is None:
        return
    image = chosen[0]
    model, lock = cache.imagenet_model(backbone)
    side = model.input_shape[1]
    resized = images.load_image(images.png_bytes(image), side).astype(np.float32)
    with lock:
        probabilities = models.softmax(models.predict_logits(model, resized[None]))[0]
    names = imagenet.class_names()
    st.plotly_chart(charts.probability_bars(probabilities, names,
                                            f"{spec.display_name} on ImageNet: top 5"),
                    width="stretch")

