"""The Train page's robust-training section (adversarial training: what it does, its budget,
attack and steps) and how a robust training is named everywhere (`label`)."""
from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from tlcore import config
from ui import widgets

TITLE = "Robust training (adversarial)"
LESSON = (
    "The model trains on copies of its training images that an attack changed, each pixel "
    "by at most the budget, to fool the model as it is at that moment; so small attacks of "
    "that size stop working. The price is some accuracy on clean images, and time: every "
    "batch is attacked before the model learns from it (the expected time below counts it).")
FINE_TUNE = ("In fine-tuning, the head's first epochs train on the images as they are; "
             "the body's epochs train on the attacked copies.")
FAST_MODE = (
    "A feature extractor cannot be made robust: its frozen body turns every image into a "
    "feature vector once, from the images as they are, and the head only ever sees those "
    "vectors. An attack must change the pixels and go back through the body for every "
    "batch. Choose **Fine-tune** or **End-to-end** to train robustly.")


def options(mode: str, key: str) -> dict:
    """Adversarial training's settings, in a section that teaches what they do (none: a
    standard training); in fast mode, why a feature extractor cannot be made robust.
    `key` prefixes the widgets' keys (the form's own prefix, so the form keeps them)."""
    with st.expander(TITLE, icon=":material/shield:"):
        if mode == "fast":
            st.markdown(FAST_MODE)
            return {}
        st.markdown(LESSON + (f" {FINE_TUNE}" if mode == "fine-tune" else ""))
        budget = st.slider("Budget: how far an attack may move each pixel (0 = off)", 0, 16, 0,
                           format="%d/255", key=f"{key}robust-budget",
                           help="In levels of the 0-255 pixel range, as on the Attack page: "
                                "4/255 is a common budget for small images.")
        methods = list(config.ADVERSARIAL_METHODS)
        method = st.radio("Attack used in training", methods, disabled=not budget,
                          format_func=lambda name: config.ADVERSARIAL_METHODS[name].label,
                          captions=[config.ADVERSARIAL_METHODS[name].note for name in methods],
                          key=f"{key}robust-method")
        settings = {"adversarial_epsilon": float(budget), "adversarial_method": method}
        if config.ADVERSARIAL_METHODS[method].attack_steps is None:
            settings["adversarial_steps"] = int(st.number_input(
                "Attack steps per batch", 1, 20, config.TrainConfig.adversarial_steps,
                disabled=not budget, key=f"{key}robust-steps", width=240))
    return settings if budget else {}


def label(settings: Mapping[str, Any]) -> str:
    """A training's adversarial budget for people, short enough for a table column ("4/255
    FGSM-RS", "4/255 PGD, 7 steps"), or "" for a standard one.

    Args:
        settings: a run's or checkpoint's recorded config (`TrainConfig.to_dict()`); older
            runs without the adversarial settings read as standard.
    """
    budget = settings.get("adversarial_epsilon")
    if not budget:
        return ""
    method = config.ADVERSARIAL_METHODS[settings["adversarial_method"]]
    steps = ("" if method.attack_steps is not None else
             f", {widgets.count(method.steps(settings['adversarial_steps']), 'step')}")
    return f"{budget:g}/255 {method.label}{steps}"


def clause(settings: Mapping[str, Any]) -> str:
    """", robust at 4/255 FGSM-RS" for a robust training, to end a description; else ""."""
    label_text = label(settings)
    return f", robust at {label_text}" if label_text else ""


def outcome(settings: Mapping[str, Any]) -> None:
    """Under a finished training's numbers: that it was trained robustly, and where to see
    what that bought (nothing for a standard training)."""
    label_text = label(settings)
    if label_text:
        st.caption(f":material/shield: Trained robustly at {label_text}. The accuracies above are "
                   "on the images as they are; the **Attack** page measures how well it "
                   "resists attacks.")
