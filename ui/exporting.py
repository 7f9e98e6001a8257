"""The Runs page's downloads: the model in each format, beside the Python that uses it.

One tab per format of `export.FORMATS`: what it is for, its download (or the button that
makes it: converting takes seconds to a minute, so it is heavy page work with progress and
Cancel) and a copy-paste program filled in with the run's classes, image side and file
name (`export.snippet`), which prints the same top classes as the app.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import streamlit as st

from tlcore import export, runs
from ui import state, work

CODE_HEIGHT = 360  # px of the program shown: it scrolls, so Try it stays near

# What each format is for, in a newcomer's words, and the button that makes a missing one.
USES = {
    "keras": "The model as Keras saves it: for Python with Keras 3, to predict or to "
             "train further.",
    "tflite": "A small file for phones and small boards (TensorFlow Lite, now called "
              "LiteRT); it needs no TensorFlow there.",
    "saved_model": "TensorFlow's own format, ready for TensorFlow Serving, a server that "
                   "answers predictions over the network. It takes pixels and returns "
                   "each class's score and probability.",
}
MAKE: dict[str, tuple[str, str, Callable[..., Path]]] = {
    "tflite": ("Export for phones (TensorFlow Lite)", ":material/smartphone:",
               export.export_tflite),
    "saved_model": ("Export for TensorFlow Serving", ":material/dns:",
                    export.export_saved_model),
}


def downloads(run: runs.Run) -> None:
    """Draw a tab per format: its use, its download (or the button that makes it) and the
    Python program that uses it.

    Args:
        run: the run whose model is downloaded.
    """
    kinds = list(export.FORMATS)
    for tab, kind in zip(st.tabs([export.FORMATS[kind].label for kind in kinds]), kinds):
        with tab:
            _format(run, kind)


def _format(run: runs.Run, kind: str) -> None:
    st.caption(USES[kind])
    path = export.exported(run, kind)
    if path is None:
        _make(run, kind)
        return
    name = export.file_name(run, kind)
    # Read when clicked, not at every rerun (a model is tens to hundreds of MB).
    st.download_button(f"Download {export.FORMATS[kind].label}", path.read_bytes,
                       file_name=name, icon=":material/download:", on_click="ignore",
                       key=f"download-{kind}")
    beside = (f"the folder that `{name}` unzips to" if name.endswith(".zip") else f"`{name}`")
    st.markdown(f"To use it: save this program as `predict.py` beside {beside}, then run "
                "`python predict.py` followed by your images. It prints each image's top "
                "classes with their probabilities, the same as this app. (The copy button "
                "is at the program's top right.)")
    st.code(export.snippet(run, kind), language="python", height=CODE_HEIGHT)


def _make(run: runs.Run, kind: str) -> None:
    """The button that makes a missing export (the run's owner only)."""
    if not run.deletable_by(state.owner()):
        st.caption("Exports of the demo host's runs are made by the host.")
        return
    label, icon, maker = MAKE[kind]
    st.caption("Exporting takes seconds to a minute; then the file's download and a short "
               "Python program that uses it appear here.")
    if st.button(label, icon=icon, key=f"export-{kind}"):
        with work.heavy(label) as progress:
            maker(run, on_step=progress.on_step)
        st.rerun()
