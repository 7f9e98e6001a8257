"""Every Streamlit cache in one place: what is shared between visitors, and for how long.

Shared models are read-only (nothing trains them) and come with a lock, because calling
one Keras model from several sessions' threads at once is not safe.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
from pathlib import Path

import keras
import numpy as np
import streamlit as st
from streamlit.runtime import Runtime

from tlcore import (config, data, devices, evaluate, explain, imagenet, images, models,
                    runs)
from tlcore import housekeeping as housekeeping_module
from tlcore import turns
from ui import state


TIDY_EVERY_SECONDS = 600


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
    devices.configure_devices(threads=config.limits().compute_threads)
    return devices.describe_device()


@st.cache_resource(show_spinner=False, ttl=TIDY_EVERY_SECONDS)
def housekeeping() -> int:
    """At start and then every few minutes (the first page run after the cached value
    expires): remove half-written temporaries, expired visitor runs and uploads, and the
    oldest cache entries beyond the cache's size limit; return how many went."""
    return housekeeping_module.tidy().total


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread | None:
    """Once per server, in the background: read the demo set and draw its sample grids,
    so the first visitors to the Data page (often several at once after a link is shared)
    do not all wait for that first read (2.5 s alone on two cores). Not in tests: no
    server runs there, and AppTest's stand-in runtime (a mock, never a `Runtime`) would
    leave a thread writing into whichever TLCORE_HOME the next test sets."""
    if not Runtime.exists() or type(Runtime.instance()) is not Runtime:
        return None
    thread = threading.Thread(target=_read_demo_set, name="warm-up", daemon=True)
    thread.start()
    return thread


def _read_demo_set() -> None:
    try:
        stamp = data.source_stamp("demo")
        _dataset("demo", 0, stamp)
        sample_grids("demo", 0, stamp)
    except Exception:  # a page that needs it reads it again and shows what went wrong
        logging.getLogger("tlcore").exception("warming up the demo set failed")


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


@st.cache_data(show_spinner=False, max_entries=16)
def sample_grids(source: str, seed: int, stamp: str, per_class: int = 8
                 ) -> dict[str, np.ndarray]:
    """A grid of a few training images per class, decoded once per data set (and again
    when its files change): the Data page is the most visited page."""
    chosen = _dataset(source, seed, stamp)
    return {name: images.image_grid(data.load_images(paths, 64), columns=per_class)
            for name, paths in chosen.sample_paths(per_class=per_class).items()}


@st.cache_data(show_spinner=False, max_entries=3_000)
def thumbnail(path: str, side: int) -> bytes:
    """`images.thumbnail_png` of a stored image of a built data set (named by its content:
    a path never shows other pixels), about 10 kB each."""
    return images.thumbnail_png(path, side)


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def run_model(run_dir: str, created: str) -> SharedModel:
    """Load a run's classifier once per server; `created` keys out a replaced run."""
    run = runs.load_run(run_dir)
    return SharedModel(run.load_model(), run.classes, run.image_size, threading.Lock())


def shared_model(run: runs.Run) -> SharedModel:
    """Return the shared, read-only classifier of a run."""
    return run_model(*run.cache_key)


def run_dataset(run: runs.Run) -> data.Dataset:
    """The data set a run was trained on, reopened and checked unchanged once per server and
    run (`evaluate.dataset_of` stats every file: moving a slider must not redo it).

    Raises:
        ValueError: the data is gone or changed since training (not cached: asked again).
    """
    return _run_dataset(*run.cache_key)


@st.cache_resource(show_spinner="Reopening the run's data set...", max_entries=8)
def _run_dataset(run_dir: str, created: str) -> data.Dataset:
    return evaluate.dataset_of(runs.load_run(run_dir))


@st.cache_data(show_spinner="Scoring the run...", max_entries=32)
def run_report(run_dir: str, created: str, split: str) -> dict:
    """Evaluate a run on a split once; revisiting the page is then instant.

    Besides the metrics, holds each image's path, true label and class probabilities
    ("paths", "labels", "probabilities"), for galleries of mistakes and confusion cells.
    """
    run = runs.load_run(run_dir)
    shared = shared_model(run)
    dataset = run_dataset(run)
    images, labels = dataset.split_arrays(split, run.image_size)
    with turns.WORK.turn(), shared.lock:
        logits = models.predict_logits(shared.model, images)
    return {"split": split, **evaluate.report_with_groups(run, labels, logits),
            "paths": [dataset.paths[index] for index in dataset.splits[split]],
            "labels": labels, "probabilities": models.softmax(logits)}


@st.cache_resource(show_spinner=False, max_entries=4)
def _gradcam_model(run_dir: str, created: str) -> keras.Model:
    run = runs.load_run(run_dir)
    return explain.gradcam_model(shared_model(run).model, run.info["config"]["backbone"])


@st.cache_data(show_spinner="Explaining...", max_entries=64)
def explanation(run_dir: str, created: str, image: np.ndarray, class_index: int | None,
                saliency: bool = True) -> dict:
    """Grad-CAM and SmoothGrad maps of one image for one class (None: the predicted one).
    Grad-CAM maps share the image's common scale (`explain.grad_cam`). SmoothGrad is most
    of the time (8 passes back to the pixels: VGG16 at 224 px, 5.9 s against 0.7 s for
    Grad-CAM); without `saliency` it is left out.

    Returns:
        {"grad_cam", "saliency" (maps in [0, 1]; saliency None when left out),
        "probabilities", "class_index"}.

    Raises:
        ValueError: the run's classifier is not one Grad-CAM can split (see tlcore.explain).
    """
    run = runs.load_run(run_dir)
    shared = shared_model(run)
    classes = None if class_index is None else [class_index]
    with turns.WORK.turn(), shared.lock:
        split_model = _gradcam_model(run_dir, created)
        cam, logits = explain.grad_cam(split_model, image[None], classes)
        explained = int(logits[0].argmax()) if class_index is None else class_index
        smooth = (explain.saliency(shared.model, image[None], [explained])[0] if saliency
                  else None)
    return {"grad_cam": cam[0], "saliency": smooth,
            "probabilities": models.softmax(logits)[0], "class_index": explained}


@st.cache_resource(show_spinner="Loading the ImageNet classifier...", max_entries=2)
def imagenet_model(backbone: str) -> tuple[keras.Model, threading.Lock]:
    """The backbone's own ImageNet classifier, shared and read-only, with its lock.

    Raises:
        backbones.WeightsUnavailableError: its weights are not on this machine.
    """
    return imagenet.imagenet_classifier(backbone), threading.Lock()


def all_runs(runs_dir: Path | None = None) -> list[runs.Run]:
    """List the finished runs this visitor may see: all of them on one's own server, their
    own and the host's in a public demo (not cached: a new run must show up at once)."""
    return runs.list_runs(runs_dir, owner=state.owner())


@dataclasses.dataclass(frozen=True)
class UploadedModel:
    """An uploaded model, wrapped to take pixels and give logits, with its lock; or why it
    was refused (`error`), kept so a refused file is not loaded again at every rerun."""

    model: keras.Model | None
    lock: threading.Lock
    error: str | None = None


@st.cache_resource(show_spinner="Checking the uploaded model...", max_entries=4)
def uploaded_model(digest: str, _content: bytes, suffix: str, preprocess: str
                   ) -> UploadedModel:
    """Load an uploaded Keras model once per server (safe mode; parameters counted from its
    config before any weight is allocated); a refusal is cached like a success.

    Args:
        digest: the file's SHA-256, the cache key (Streamlit skips hashing `_content`).
        _content: the file.
        suffix: ".keras" or ".h5".
        preprocess: its input convention.
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"uploaded{suffix}"
        path.write_bytes(_content)
        try:
            model = models.wrap_external_model(models.load_model(path), preprocess)
        except ValueError as error:
            return UploadedModel(None, threading.Lock(), str(error).replace(str(path), path.name))
        except Exception as error:  # a file Keras chokes on in an unexpected way
            return UploadedModel(None, threading.Lock(), f"cannot use this model file "
                                                         f"({type(error).__name__})")
    return UploadedModel(model, threading.Lock())


