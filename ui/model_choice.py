"""Choosing the model a page works on: a run, a backbone's own ImageNet classifier, or an
uploaded Keras model (Ideal image and Attack pages)."""
from __future__ import annotations

import dataclasses
import hashlib
import threading

import keras
import streamlit as st

from tlcore import backbones, config, imagenet, layers, models, runs
from ui import cache, widgets


@dataclasses.dataclass(frozen=True)
class PickedModel:
    """A model to render with: shared and read-only, used only while holding `lock`."""

    model: keras.Model
    classes: list[str]
    lock: threading.Lock
    key: str  # names the model in session state
    label: str
    run: runs.Run | None = None

    @property
    def size(self) -> int:
        """The model's input side."""
        return int(self.model.input_shape[1])


def pick_model(key: str) -> PickedModel | None:
    """A run's classifier, a backbone's own ImageNet classifier, or an uploaded model
    (`key` keeps each page's widgets apart)."""
    source = st.radio("Model", ["run", "imagenet", "upload"], horizontal=True, key=f"{key}-model",
                      format_func={"run": "A trained run", "imagenet": "An ImageNet backbone",
                                   "upload": "Upload a Keras model"}.get)
    if source == "run":
        run = widgets.run_picker(cache.all_runs(), key=f"{key}_run")
        if run is None:
            return None
        shared = cache.shared_model(run)
        return PickedModel(shared.model, shared.classes, shared.lock, run.run_id, run.run_id,
                           run)
    if source == "imagenet":
        present = [name for name in backbones.names()
                   if (path := backbones.imagenet_top_weights_path(name)) and path.is_file()]
        if not present:
            st.info("No backbone's whole ImageNet classifier is on this server yet"
                    + (": this demo's host has not installed one." if config.public_demo() else
                       ". " + widgets.how_to_add(backbones.missing_imagenet_weights(
                           "mobilenet_v2", with_head=True)).replace("To add it", "To add "
                                                                    "MobileNetV2's")),
                    icon=":material/cloud_off:")
            return None
        name = st.selectbox("Backbone", present, key=f"{key}-backbone",
                            format_func=lambda n: backbones.get_spec(n).display_name)
        model, lock = cache.imagenet_model(name)
        return PickedModel(model, list(imagenet.class_names()), lock, f"imagenet:{name}",
                           f"{backbones.get_spec(name).display_name} (ImageNet)")
    upload = st.file_uploader("A Keras model (.keras or .h5; loaded in safe mode)",
                              type=["keras", "h5"], key=f"{key}-upload",
                              max_upload_size=config.limits().upload_mb)
    labels = st.text_area("Its class names, one a line, in output order", key=f"{key}-labels")
    preprocess = st.selectbox("Its input convention", sorted(layers.PREPROCESSING_MODES),
                              key=f"{key}-preprocess",
                              help="caffe: VGG/ResNet; tf: [-1, 1]; torch: ImageNet mean/std; "
                                   "unit: [0, 1]; none: raw [0, 255]")
    if upload is None or not labels.strip():
        return None
    classes = [line.strip() for line in labels.splitlines() if line.strip()]
    try:
        config.check_upload(upload.size, "the model file")
    except ValueError as error:
        widgets.error(error)
        return None
    content = upload.getvalue()
    digest = hashlib.sha256(content).hexdigest()
    loaded = cache.uploaded_model(digest, content, "." + upload.name.rsplit(".", 1)[-1],
                                  preprocess)
    if loaded.model is None:
        widgets.error(loaded.error)
        return None
    if loaded.model.output_shape[-1] != len(classes):
        st.error(f"The model has {loaded.model.output_shape[-1]} outputs; {len(classes)} "
                 "class names were given.", icon=":material/error:")
        return None
    if note := models.scores_note(loaded.model):
        st.caption(note)
    return PickedModel(loaded.model, classes, loaded.lock,
                       f"upload:{digest[:12]}:{preprocess}", upload.name)
