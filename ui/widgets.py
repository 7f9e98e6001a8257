"""Widgets and forms that return plain values or tlcore config dataclasses."""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from tlcore import backbones, config, evaluate, images, runs
from ui import charts, jobs, state

# Every ASCII punctuation mark: escaped, markdown shows it as itself (no links, images,
# emphasis, colours, icons or autolinked addresses).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# What markdown turns into a link on its own (www.x, http://x, a@b): a zero-width space
# after the first character of each stops that and looks the same.
_AUTOLINK = re.compile(r"(?i)(www|https?|ftp|mailto|@)")
# An extracted upload's folder, up to the visitor's own class folders.
_UPLOAD_ROOT = re.compile(r"\S*visitors/[0-9a-f]{24}/uploads/[0-9a-f]{16}/")

MODE_LABELS = {"fast": "Feature extractor (fast: frozen body, cached embeddings)",
               "fine-tune": "Fine-tune (that head first, then the body's top blocks; slower, "
                            "usually best)",
               "end-to-end": "End-to-end (everything at once; needed from scratch)"}
WEIGHTS_LABELS = {"imagenet": "ImageNet (downloaded once)",
                  "edges": "Edge-detection body (HED, offline; not ImageNet)",
                  "file": "A weights file on this server",
                  "none": "Random weights (no pretraining)"}
TV_WEIGHTS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0,
              1000.0, 3000.0)


FORM_KEY = "train-form-"  # prefix of the training form's widget keys


def keep_train_form() -> None:
    """Keep the training form's values through page runs that do not draw it (a training
    in progress): Streamlit forgets the values of widgets that were not drawn, and the
    form came back half reset, showing one backbone and training another."""
    for key in [key for key in st.session_state if str(key).startswith(FORM_KEY)]:
        st.session_state[key] = st.session_state[key]


def train_form(default_image_size: int | None) -> config.TrainConfig | None:
    """Show the training form; return the config when the user presses Train."""
    names = backbones.names()
    backbone = st.selectbox("Backbone", names, index=names.index("vgg16"),
                            format_func=lambda n: backbones.get_spec(n).display_name,
                            help="The pretrained network whose features are reused.",
                            key=f"{FORM_KEY}backbone")
    spec = backbones.get_spec(backbone)
    st.caption(spec.notes)
    choices = backbones.weights_choices(backbone)
    default_weights = "edges" if "edges" in choices else choices[0]
    if not config.public_demo():
        choices.insert(-1, "file")
    # Keys name what a widget's options depend on, so a stored value always fits them.
    weights = st.radio("Weights", choices, index=choices.index(default_weights),
                       format_func=WEIGHTS_LABELS.get, horizontal=True,
                       key=f"{FORM_KEY}weights-{backbone}")
    if weights == "file":
        weights = st.text_input("Weights file (.h5 or .weights.h5 for this backbone's body)",
                                help="e.g. ImageNet weights downloaded on another machine",
                                key=f"{FORM_KEY}weights-file")
    # Nothing is pretrained in a from-scratch CNN, so frozen features would be random, and
    # with random weights there is nothing to fine-tune.
    modes = (["end-to-end"] if backbone == "scratch_cnn" else
             ["fast", "end-to-end"] if weights == "none" else list(MODE_LABELS))
    mode = st.radio("Mode", modes, format_func=MODE_LABELS.get,
                    key=f"{FORM_KEY}mode-{'-'.join(modes)}")
    with st.form("train"):
        columns = st.columns(3)
        limits = config.limits()
        epochs = columns[0].number_input("Epochs" if mode != "fine-tune" else
                                         "Fine-tuning epochs", 1, limits.epochs or 100,
                                         {"fast": 10, "fine-tune": 3}.get(mode, 5),
                                         key=f"{FORM_KEY}epochs-{mode}")
        largest = min(512, limits.image_size or 512)
        size_default = min(default_image_size or spec.default_input_size, largest)
        image_size = columns[1].number_input("Image size (px)", 32, largest, size_default,
                                             step=16, key=f"{FORM_KEY}size-{size_default}")
        batch_size = columns[2].number_input("Batch size", 1, 256, 16,
                                             key=f"{FORM_KEY}batch")
        rate_default = config.default_learning_rate(mode, None if weights == "none" else weights)
        learning_rate = st.select_slider(
            "Learning rate", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2],
            value=rate_default, key=f"{FORM_KEY}rate-{mode}-{rate_default}",
            format_func=lambda v: f"{v:g}",
            help="Fine-tuning: the rate of the body's training; the head is trained first "
                 "at the feature-extractor rate.")
        extra = fine_tune_options(backbone) if mode == "fine-tune" else {}
        class_weights = st.checkbox("Weight rare classes up (balanced class weights)", True,
                                    key=f"{FORM_KEY}class-weights")
        submitted = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return None
    return config.TrainConfig(backbone=backbone, weights=None if weights == "none" else weights,
                              mode=mode, epochs=int(epochs), image_size=int(image_size),
                              batch_size=int(batch_size), learning_rate=float(learning_rate),
                              class_weights=class_weights, **extra)


def fine_tune_options(backbone: str) -> dict:
    """Fine-tuning settings: head epochs, blocks to unfreeze, augmentation, early stopping."""
    blocks = backbones.get_spec(backbone).blocks
    columns = st.columns(3)
    head_epochs = columns[0].number_input("Head epochs first", 1, config.limits().epochs or 50,
                                          5, key=f"{FORM_KEY}head-epochs")
    trainable = columns[1].number_input(f"Top blocks to train (of {len(blocks)})", 1,
                                        len(blocks), min(config.FINE_TUNE_BLOCKS, len(blocks)),
                                        key=f"{FORM_KEY}blocks-{backbone}")
    patience = columns[2].number_input("Stop after epochs without gain", 0, 20, 3,
                                       help="Early stopping; 0 turns it off. The best epoch "
                                            "is kept either way.", key=f"{FORM_KEY}patience")
    augment = st.checkbox("Augment (flips, small rotations and zooms, contrast)", True,
                          key=f"{FORM_KEY}augment")
    return {"head_epochs": int(head_epochs), "trainable_blocks": int(trainable),
            "patience": int(patience), "augment": augment}


def plain(text: object) -> str:
    """Text that came from a visitor (a class, file or data-set name) made safe for
    markdown: shown literally, on one line."""
    text = _AUTOLINK.sub(lambda found: found.group(1)[0] + "\u200b" + found.group(1)[1:],
                         " ".join(str(text).split()))
    return _PUNCTUATION.sub(r"\\\1", text)


def redact(text: str) -> str:
    """Remove server paths from a message: an upload's folder goes entirely (names are
    shown relative to the visitor's zip), other server locations become "…"."""
    text = _UPLOAD_ROOT.sub("", text)
    roots = {str(config.tlcore_home()), str(Path(__file__).resolve().parents[1]), sys.prefix,
             sys.base_prefix, str(Path.home()), tempfile.gettempdir()}
    for root in sorted(roots, key=len, reverse=True):
        if len(root) > 1:
            text = text.replace(root, "…")
    return text


def error(problem: object, icon: str = ":material/error:") -> None:
    """Show an error message: in a public demo with server paths removed, and always as
    plain text (it may quote a visitor's file or class name)."""
    message = str(problem)
    st.error(plain(redact(message) if config.public_demo() else message), icon=icon)


def run_picker(all_runs: list[runs.Run], key: str) -> runs.Run | None:
    """Pick a run (default: the one chosen on another page, else the newest)."""
    if not all_runs:
        st.info("No trained run yet: train one on the **Train** page first.", icon=":material/info:")
        return None
    ids = [run.run_id for run in all_runs]
    selected = state.selected_run_id()
    index = ids.index(selected) if selected in ids else 0
    run = st.selectbox("Run", all_runs, index=index, key=key, format_func=runs.Run.label)
    state.set_selected_run_id(run.run_id)
    return run


def class_picker(classes: list[str], label: str, key: str, default: int = 0) -> int:
    """Pick a class by name; return its index."""
    return st.selectbox(label, range(len(classes)), index=default, key=key,
                        format_func=lambda i: classes[i])


def show_image(image: np.ndarray, caption: str, width: int = 224) -> None:
    """Show a [0, 255] image, enlarged without smoothing so pixels stay visible."""
    pixels = images.to_uint8(image)
    repeat = max(1, width // pixels.shape[0])
    st.image(np.repeat(np.repeat(pixels, repeat, axis=0), repeat, axis=1),
             caption=plain(caption), width=pixels.shape[1] * repeat)


def uploaded_image(size: int, key: str | None = None) -> np.ndarray | None:
    """An uploaded image as float pixels at `size`; None until one is uploaded, or with the
    reason shown when it cannot be read."""
    upload = st.file_uploader("An image", type=["png", "jpg", "jpeg", "bmp", "webp"], key=key,
                              max_upload_size=config.limits().upload_mb)
    return None if upload is None else decode_upload(upload, size)


def decode_upload(upload: Any, size: int) -> np.ndarray | None:
    """An uploaded image file as float pixels at `size`, or None with the reason shown
    (over the upload limit, or not a readable image)."""
    try:
        config.check_upload(upload.size, "the image")
        return images.load_image(upload.getvalue(), size).astype(np.float32)
    except ValueError as problem:  # ImageError is one
        error(problem, icon=":material/broken_image:")
        return None


def run_test_image(run: runs.Run, size: int, key: str) -> tuple[np.ndarray, int] | None:
    """One of a run's test images (chosen with a slider) at `size`, and its true class; None
    with the reason shown when the run's data cannot be reopened or has no test images."""
    try:
        dataset = evaluate.dataset_of(run)
    except ValueError as problem:
        error(f"{problem} Upload an image instead.")
        return None
    test = dataset.splits["test"]
    if len(test) == 0:
        st.info("This run's data set has no test images: upload one.", icon=":material/info:")
        return None
    index = st.slider("Test image", 0, len(test) - 1, 0, key=key) if len(test) > 1 else 0
    label = int(dataset.labels[test[index]])
    return images.load_image(dataset.paths[test[index]], size).astype(np.float32), label


@st.fragment(run_every=1.0)
def job_progress(job: jobs.BackgroundJob) -> None:
    """Redraw a background job's progress every second, with a Cancel button and, for a
    training, its curves so far; rerun the page when the job ends."""
    snapshot = job.snapshot()
    if snapshot.state != "running":
        st.rerun()
    st.progress(snapshot.fraction, text=snapshot.progress_text())
    if st.button("Cancel", icon=":material/stop:"):
        job.cancel()
    if snapshot.epochs:
        st.plotly_chart(charts.training_curves(snapshot.epochs), width="stretch")
