"""Widgets and forms that return plain values or tlcore config dataclasses."""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from tlcore import backbones, config, images, runs
from ui import cache, charts, jobs, state

# Every ASCII punctuation mark: escaped, markdown shows it as itself (no links, images,
# emphasis, colours, icons or autolinked addresses).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# What markdown turns into a link on its own (www.x, http://x, a@b): a zero-width space
# after the first character of each stops that and looks the same.
_AUTOLINK = re.compile(r"(?i)(www|https?|ftp|mailto|@)")
# An extracted upload's folder, up to the visitor's own class folders.
_UPLOAD_ROOT = re.compile(r"\S*visitors/[0-9a-f]{24}/uploads/[0-9a-f]{16}/")

TV_WEIGHTS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0,
              1000.0, 3000.0)


def count(number: int, noun: str) -> str:
    """"1 image", "3 images": a number with its noun (plural by a trailing s)."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


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


def how_to_add(missing: backbones.MissingWeights) -> str:
    """How a host adds a weights file this server cannot download, in the app's words:
    the file's whole address as a link, and the folder it goes in."""
    return (f"To add it: download [{missing.file}]({missing.url}) on a machine with a "
            f"network and copy it into `{missing.folder}` here; then reload this page.")


def error(problem: object, icon: str = ":material/error:", warn: bool = False) -> None:
    """Show an error message (with `warn`, as a warning: a problem beside things that
    worked): in a public demo with server paths removed, and always as plain text (it may
    quote a visitor's file or class name)."""
    message = str(problem)
    (st.warning if warn else st.error)(plain(redact(message) if config.public_demo()
                                             else message), icon=icon)


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


def decode_upload(upload: Any, size: int, one_of_many: bool = False) -> np.ndarray | None:
    """An uploaded image file as float pixels at `size`, or None with the reason shown
    (over the upload limit, or not a readable image): as an error, or, when it is
    `one_of_many` files that are otherwise answered, as a warning beside them."""
    try:
        config.check_upload(upload.size, "the image")
        return images.load_image(upload.getvalue(), size).astype(np.float32)
    except ValueError as problem:  # ImageError is one
        error(problem, icon=":material/broken_image:", warn=one_of_many)
        return None


def run_test_image(run: runs.Run, size: int, key: str) -> tuple[np.ndarray, int] | None:
    """One of a run's test images (chosen with a slider) at `size`, and its true class; None
    with the reason shown when the run's data cannot be reopened or has no test images."""
    try:
        dataset = cache.run_dataset(run)
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
