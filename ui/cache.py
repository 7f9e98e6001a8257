"""Every Streamlit cache in one place: what is shared between visitors, and for how long.

Shared models are read-only (nothing trains them) and come with a lock, because calling
one Keras model from several sessions' threads at once is not safe.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import keras
import streamlit as st

from tlcore import data, devices, evaluate, runs


@dataclasses.dataclass(frozen=True)
class SharedModel:
    """A loaded run shared by all visitors: use it only while holding `lock`."""

    model: keras.Model
    classes: list[str]
    image_size: int
    lock: threading.Lock


@st.cache_resource(show_spinner=False)
def device() -> str:
    """Configure the GPUs once per server and describe the device in use."""
    devices.configure_devices()
    return devices.describe_device()


@st.cache_resource(show_spinner="Reading the data set...", max_entries=8)
def _dataset(source: str, seed: int, stamp: str) -> data.Dataset:
    return data.load_dataset(source, seed=seed)


def dataset(source: str, seed: int = 0) -> data.Dataset:
    """Open a data set once per server, again when files were added or removed.

    Raises:
        ValueError: the source is gone, holds fewer than two classes, or must first be
            downloaded (which the Data page does as a background job, never a page run).
    """
    if data.needs_download(source):
        raise ValueError(f"the data set {source!r} is not downloaded yet: download it on the "
                         "Data page")
    return _dataset(source, seed, data.source_stamp(source))


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def run_model(run_dir: str, created: str) -> SharedModel:
    """Load a run's classifier once per server; `created` keys out a replaced run."""
    run = runs.load_run(run_dir)
    return SharedModel(run.load_model(), run.classes, run.image_size, threading.Lock())


def shared_model(run: runs.Run) -> SharedModel:
    """Return the shared, read-only classifier of a run."""
    return run_model(str(run.run_dir), str(run.info.get("created")))


@st.cache_data(show_spinner="Scoring the run...", max_entries=32)
def run_report(run_dir: str, created: str, split: str) -> dict:
    """Evaluate a run on a split once; revisiting the page is then instant."""
    run = runs.load_run(run_dir)
    shared = shared_model(run)
    images, labels = evaluate.dataset_of(run).split_arrays(split, run.image_size)
    with shared.lock:
        logits = evaluate.predict_logits(shared.model, images)
    return {"split": split, **evaluate.classification_report(labels, logits, run.classes)}


def all_runs(runs_dir: Path | None = None) -> list[runs.Run]:
    """List finished runs (not cached: a new run must show up at once)."""
    return runs.list_runs(runs_dir)
