"""Try it: a run's answer for the visitor's own images or a camera photo, right away; or
for many images (or zips of them) at once, as a table.

For each of a few images: the top classes with their probabilities at once (one batch
through the shared model), then Grad-CAM for the top class (or another, chosen per image).
Many images are heavy page work (`work.heavy`, in its turn, with progress and Cancel):
a table with a thumbnail, the top classes and the confidence of each, sortable in the
browser and downloadable as CSV (`tlcore.predict`).

Measured on the 2-core box with one TensorFlow thread (a public demo's setting), per
image: a prediction takes 5 ms (small CNN at 32 px) to 250 ms (VGG16 at 224 px), so a
batch (at most 10 images in a demo: 2.5 s) runs without waiting for a turn, holding only
the model's lock. Grad-CAM alone (`cache.explanation` without SmoothGrad, which would
take 0.2-6 s more) costs 20 ms (small CNN) to 0.7 s (VGG16); it takes its turn with other
heavy work (inside `cache.explanation`), image by image, after every image's
probabilities are shown, and is cached: a rerun does not compute it again.
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
import streamlit as st

from tlcore import config, images, models, predict, runs
from ui import cache, widgets, work

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "webp"]
SHOWN_WIDTH = 160  # px of each image and its Grad-CAM
CAMERA_TITLE = "Photo from the camera"
THUMBNAIL_SIDE = 48  # px of each image in the many-images table (a JPEG data address)




def within_limit(names: Sequence[str]) -> tuple[int, str | None]:
    """How many of the files named may be tried (`config.limits().try_images`).

    Args:
        names: the files' names, in the order given.

    Returns:
        (how many to keep from the start, None; or, over the limit, a message naming the
        limit and the files left out).
    """
    try:
        config.check_limit("try_images", len(names))
    except config.LimitError as refusal:
        kept = config.limits().try_images or 0
        return kept, (f"{refusal}. The first {kept} are shown; left out: "
                      f"{', '.join(names[kept:])}.")
    return len(names), None


def meaning(num_classes: int) -> str:
    """One plain sentence on what the probabilities mean."""
    return (f"The probabilities share 100 % among the {num_classes} classes this model was "
            "trained on, and nothing else: it has no *none of these*, so a photo of "
            "something else (a car) still gets one of its classes, often confidently.")


def panel(run: runs.Run, key: str) -> None:
    """Draw the Try it panel: upload images or take a photo, and see the run's top classes
    and Grad-CAM for each.

    Args:
        run: the run whose model answers.
        key: a prefix for the panel's widget keys, unique on the page.
    """
    st.markdown("Give the model images it has never seen: a few, or a photo, each with "
                "where the model looks; or many at once, as a table.")
    st.caption(meaning(len(run.classes)))
    few, many = st.tabs(["A few images", "Many images"])
    with few:
        st.caption("Grad-CAM colours the regions whose features speak for a class: warm "
                   "where they count most.")
        _inputs_and_answers(run, key)
    with many:
        _many_images(run, key)


@st.fragment
def _inputs_and_answers(run: runs.Run, key: str) -> None:
    # A fragment: choosing files or a class to explain reruns this panel, not the page.
    uploads = st.file_uploader("Images to try", type=IMAGE_TYPES, accept_multiple_files=True,
                               key=f"{key}-uploads", max_upload_size=config.limits().upload_mb)
    named = [(upload.name, upload) for upload in uploads or []]
    # Behind a toggle: the browser asks for the camera only once it is wanted.
    if st.toggle("Use the camera", key=f"{key}-camera-on",
                 help="Your browser asks for permission to use the camera."):
        photo = st.camera_input("Take a photo", key=f"{key}-camera", width=480)
        if photo is not None:
            named.insert(0, (CAMERA_TITLE, photo))
    if not named:
        return
    kept, message = within_limit([name for name, _ in named])
    if message:
        st.warning(widgets.plain(message), icon=":material/filter_list:")
    answers(run, named[:kept], key)


def answers(run: runs.Run, files: Sequence[tuple[str, Any]], key: str) -> None:
    """One card per file: its top classes, then Grad-CAM for the class chosen (the top one
    by default); a file that cannot be read gets its reason instead.

    Args:
        run: the run whose model answers.
        files: (title, file) pairs; a file is Streamlit's UploadedFile, or anything with
            `size` and `getvalue()`.
        key: a prefix for the widget keys.
    """
    shared = cache.shared_model(run)
    cards, pixels = [], []
    for title, file in files:
        card = st.container(border=True)
        card.markdown(f"**{widgets.plain(title)}**")
        with card:
            image = widgets.decode_upload(file, shared.image_size, one_of_many=True)
        if image is not None:
            cards.append(card)
            pixels.append(image)
    if not pixels:
        return
    with shared.lock:
        probabilities = models.softmax(models.predict_logits(shared.model, np.stack(pixels)))
    explained = []
    for card, image, row in zip(cards, pixels, probabilities):
        left, middle, right = card.columns([1, 2, 1])
        with left:
            widgets.show_image(image, "what the model sees", SHOWN_WIDTH)
        with middle:
            _bars(predict.top_classes(row, run.classes))
        explained.append(right.container())
    # Only now the heavier Grad-CAM, image by image: every image's answer is already shown.
    for number, (slot, image, row) in enumerate(zip(explained, pixels, probabilities)):
        with slot:
            _grad_cam(run, image, int(row.argmax()), f"{key}-{number}")


def _bars(top: list[tuple[int, str, float]]) -> None:
    for _, name, probability in top:
        st.progress(probability, text=f"{widgets.plain(name)}: {probability:.1%}")


def _grad_cam(run: runs.Run, image: np.ndarray, predicted: int, key: str) -> None:
    # Keyed by the image too: a new image starts at its own top class.
    image_id = hashlib.sha1(image.tobytes()).hexdigest()[:12]
    class_index = widgets.class_picker(run.classes, "Grad-CAM for",
                                       f"{key}-explain-{run.run_id}-{image_id}", predicted)
    try:
        result = cache.explanation(*run.cache_key, image, class_index,
                                   saliency=False)
    except ValueError as problem:
        widgets.error(f"No Grad-CAM for this model: {problem}")
        return
    name = run.classes[class_index]
    widgets.show_image(images.overlay(image, result["grad_cam"]), f"where {name} is seen",
                       SHOWN_WIDTH)
    if not result["grad_cam"].any():
        st.caption(f"Nothing in this image speaks for {widgets.plain(name)}.")


@st.fragment
def _many_images(run: runs.Run, key: str) -> None:
    # A fragment: choosing files reruns this tab, not the page (nor the other tab); so
    # does its Cancel button, and this run is the one to say what it stopped.
    work.say_if_stopped()
    uploads = st.file_uploader(
        "Images, or zips of images", type=[*IMAGE_TYPES, "zip"], accept_multiple_files=True,
        key=f"{key}-many", max_upload_size=config.limits().upload_mb,
        help="Each image gets its top classes; a zip stands for the images inside it.")
    if not uploads:
        return
    if not st.button(f"Predict {widgets.count(len(uploads), 'file')}", key=f"{key}-predict",
                     icon=":material/table_rows:", type="primary"):
        return
    shared = cache.shared_model(run)
    try:
        with work.heavy("Predicting") as progress:  # the lock batch by batch
            rows = predict.predict_files(
                shared.model, run.classes, [(upload.name, upload.getvalue()) for upload in uploads],
                thumbnail_side=THUMBNAIL_SIDE, on_step=progress.on_step,
                should_stop=progress.should_stop, lock=shared.lock)
    except config.LimitError as refusal:
        widgets.error(refusal)
        return
    prediction_table(rows, progress.stopped_because)
    st.download_button("Download the table (CSV)", predict.rows_csv(rows),
                       file_name=f"{run.run_id}-predictions.csv", mime="text/csv",
                       icon=":material/download:", on_click="ignore", key=f"{key}-csv")


def prediction_table(rows: Sequence[dict[str, Any]], stopped_because: str | None) -> None:
    """Show predicted rows as a sortable table: thumbnail, file, class, confidence, the
    next classes, and why a file could not be read.

    Args:
        rows: `predict.predict_files` rows, with thumbnails.
        stopped_because: why the prediction ended early (None: it finished).
    """
    unreadable = sum(row["error"] is not None for row in rows)
    summary = f"{widgets.count(len(rows) - unreadable, 'image')} predicted"
    if unreadable:
        summary += f"; {widgets.count(unreadable, 'file')} could not be read (see the last column)"
    if stopped_because:
        st.warning(f"{summary}: the rest were not, because {stopped_because}.",
                   icon=":material/timer_off:")
    else:
        st.caption(summary + ". Click a column's title to sort by it.")
    table = [{"image": row.get("thumbnail"), "file": row["file"],
              "class": row["classes"][0] if row["classes"] else None,
              "confidence": row["probabilities"][0] if row["probabilities"] else None,
              "next": ", ".join(f"{name} {probability:.0%}" for name, probability
                                in zip(row["classes"][1:], row["probabilities"][1:])),
              "problem": widgets.redact(row["error"] or "")} for row in rows]
    columns = {
        "image": st.column_config.ImageColumn("Image", width=60),
        "file": st.column_config.TextColumn("File", width=200),
        "class": st.column_config.TextColumn("Class", width=110, help="The most probable class."),
        "confidence": st.column_config.ProgressColumn(
            "Confidence", format="percent", min_value=0.0, max_value=1.0, width=140,
            help="The model's probability for its class (among its classes only)."),
        "next": st.column_config.TextColumn("Next most probable", width=170),
        "problem": st.column_config.TextColumn("Problem", width=300,
                                               help="Why a file could not be read."),
    }
    st.dataframe(table, hide_index=True, width="stretch", row_height=56, placeholder="",
                 column_config=columns)
