"""The Train page's parts: the training form (which says before the click whether the
weights are here and how long it will take, and takes the learning-rate finder's rate), what
a running training is, and why weights are missing, in the app's words."""
from __future__ import annotations

import streamlit as st

from tlcore import backbones, config, data, estimate
from tlcore.backbones import MissingWeights
from ui import augmentation, cache, robust_training, state, widgets

MODE_LABELS = {"fast": "Feature extractor (fast: frozen body, cached embeddings)",
               "fine-tune": "Fine-tune (that head first, then the body's top blocks; slower, "
                            "usually best)",
               "end-to-end": "End-to-end (everything at once; needed from scratch)"}
MODE_NAMES = {"fast": "feature extractor", "fine-tune": "fine-tuning",
              "end-to-end": "end-to-end"}
WEIGHTS_LABELS = {"imagenet": "ImageNet",
                  "edges": "Edge-detection body (HED, offline; not ImageNet)",
                  "file": "A weights file on this server",
                  "none": "Random weights (no pretraining)"}
IMAGENET_STATES = {"on disk": "on this server", "downloadable": "downloaded once at Train",
                   "unavailable": "not on this server"}
FORM_KEY = "train-form-"  # prefix of the training form's widget keys
RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2)  # the learning rates offered


@st.cache_data(ttl=60, show_spinner=False)
def _imagenet_state(backbone: str, size: int, public_demo: bool) -> str:
    """`backbones.imagenet_availability`, asked at most once a minute per server (it may
    look the download host up)."""
    return backbones.imagenet_availability(backbone, size)


def form(dataset: data.Dataset) -> tuple[config.TrainConfig, bool]:
    """Show the training form; return its settings as they are, and whether the user
    pressed Train (and may: the weights are here).

    The weights radio says whether ImageNet weights are on this server; weights that cannot
    be had are explained in place and the Train button is off. The expected time shows
    above the button, from the settings as they are (`tlcore.estimate`)."""
    names = backbones.names()
    backbone = st.selectbox("Backbone", names, index=names.index("vgg16"),
                            format_func=lambda n: backbones.get_spec(n).display_name,
                            help="The pretrained network whose features are reused. Not "
                                 "sure which? The bake-off tab above compares them on your "
                                 "images.",
                            key=f"{FORM_KEY}backbone")
    spec = backbones.get_spec(backbone)
    st.caption(spec.notes)
    size_default = min(dataset.native_size or spec.default_input_size, _largest_size())
    size_key = f"{FORM_KEY}size-{size_default}"
    # The image size field is further down; its value from the last rerun decides which
    # ImageNet file is asked about (MobileNetV2 has one per size).
    chosen_size = int(state.widget_value(size_key, size_default))
    imagenet = _imagenet_state(backbone, chosen_size, config.public_demo())
    choices = backbones.weights_choices(backbone)
    default_weights = ("imagenet" if imagenet in ("on disk", "downloadable") else
                       "edges" if "edges" in choices else choices[-1])
    if not config.public_demo():
        choices.insert(-1, "file")
    # Keys name what a widget's options depend on, so a stored value always fits them.
    weights = st.radio("Weights", choices, index=choices.index(default_weights),
                       format_func=lambda choice: WEIGHTS_LABELS[choice] + (
                           f" ({IMAGENET_STATES[imagenet]})" if choice == "imagenet" else ""),
                       horizontal=True, key=f"{FORM_KEY}weights-{backbone}")
    usable = True
    if weights == "imagenet" and imagenet == "unavailable":
        usable = False
        missing_weights(backbones.missing_imagenet_weights(backbone, chosen_size))
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
    with st.container(border=True):  # no form: the expected time follows every change
        columns = st.columns(3)
        limits = config.limits()
        epochs = columns[0].number_input("Epochs" if mode != "fine-tune" else
                                         "Fine-tuning epochs", 1, limits.epochs or 100,
                                         {"fast": 10, "fine-tune": 3}.get(mode, 5),
                                         key=f"{FORM_KEY}epochs-{mode}")
        image_size = columns[1].number_input("Image size (px)", 32, _largest_size(),
                                             size_default, step=16, key=size_key)
        batch_size = columns[2].number_input("Batch size", 1, 256, 16,
                                             key=f"{FORM_KEY}batch")
        learning_rate = _learning_rate(mode, None if weights == "none" else weights)
        extra = fine_tune_options(backbone) if mode == "fine-tune" else {}
        class_weights = st.checkbox("Weight rare classes up (balanced class weights)", True,
                                    key=f"{FORM_KEY}class-weights")
        augmenting = augmentation.options(mode, dataset, FORM_KEY)
        robust = robust_training.options(mode, FORM_KEY)
        train_config = config.TrainConfig(
            backbone=backbone, weights=None if weights == "none" else weights, mode=mode,
            epochs=int(epochs), image_size=int(image_size), batch_size=int(batch_size),
            learning_rate=learning_rate, class_weights=class_weights, **extra, **augmenting,
            **robust)
        expected_time(train_config, dataset)
        submitted = st.button("Train", type="primary", icon=":material/play_arrow:",
                              disabled=not usable, key="train-submit")
    return train_config, submitted and usable


def _learning_rate(mode: str, weights: str | None) -> float:
    """The learning-rate field: `RATES` and the rates the finder put in, starting at the
    mode's default; each mode and default keeps its own choice."""
    default = config.default_learning_rate(mode, weights)
    key = f"{FORM_KEY}rate-{mode}-{default}"
    # A value set by `use_learning_rate` is the field's: no default beside it.
    has_value = state.learning_rate_field(key)
    return float(st.select_slider(
        "Learning rate", sorted({*RATES, *state.found_learning_rates()}),
        value=None if has_value else default, key=key,
        format_func=lambda rate: f"{rate:.2g}",
        help="Fine-tuning: the rate of the body's training; the head is trained first at the "
             "feature-extractor rate. **Find a learning rate** below suggests one."))


def use_learning_rate(value: float) -> None:
    """Put a learning rate (the learning-rate finder's) into the form's field, as an option
    of its own; a button's `on_click`, so the form shows it in the run that follows.

    Args:
        value: the rate; it is rounded to 2 significant digits, as the finder shows it.
    """
    rate = float(f"{value:.2g}")
    if not 0 < rate < 1:  # what `config.TrainConfig` takes
        st.toast(f"A learning rate of {rate:g} is too large to train with: it must be under 1.",
                 icon=":material/warning:")
        return
    state.put_learning_rate(rate)


def _largest_size() -> int:
    return min(512, config.limits().image_size or 512)


def fine_tune_options(backbone: str) -> dict:
    """Fine-tuning settings: head epochs, blocks to unfreeze, early stopping."""
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
    return {"head_epochs": int(head_epochs), "trainable_blocks": int(trainable),
            "patience": int(patience)}


def expected_time(train_config: config.TrainConfig, dataset: data.Dataset) -> None:
    """Say how long this training should take, before the click, for the settings shown."""
    try:
        expected = estimate.training_seconds(train_config, dataset,
                                             estimate.speed_from_runs(cache.all_runs()))
    except (ValueError, OSError):  # an unusable setting: the Train click says why
        return
    basis = ("from a 2-core CPU reference" if expected.speed == 1.0 else
             f"from this server's recent trainings ({expected.speed:.2g}x the 2-core "
             "reference)")
    cached = " The embeddings of these images are cached: only the head trains." \
        if expected.cached and train_config.mode == "fast" else ""
    epochs = widgets.count(train_config.epochs, "epoch")
    if train_config.mode == "fine-tune":
        epochs = f"{train_config.head_epochs} head + {train_config.epochs} fine-tuning epochs"
    st.caption(f":material/schedule: Expected: **{expected.describe()}**, {basis}, for "
               f"{epochs} at {train_config.image_size} px"
               f"{robust_training.clause(train_config.to_dict())}.{cached}")


def missing_weights(missing: MissingWeights) -> None:
    """Explain missing ImageNet weights in the app's words: what to choose instead, and
    (not in a public demo, where the server is the host's business) how the host adds
    them. The file's address is shown whole, as a link."""
    fix = ("Choose **Edge-detection body** (pretrained, offline) or **Random weights** "
           "above." if missing.backbone == "VGG16" else
           "Choose **Random weights** above (nothing is transferred: clearly worse), or "
           "VGG16 with its offline **Edge-detection body**.")
    if config.public_demo():
        st.warning(f"{missing.backbone}'s ImageNet weights are not installed on this demo "
                   f"server, and visitors' trainings do not download them. {fix}",
                   icon=":material/cloud_off:")
        return
    st.warning(f"{missing.backbone}'s ImageNet weights are not on this server, and this "
               f"server cannot download them (it has no network). {fix}\n\n"
               + widgets.how_to_add(missing), icon=":material/cloud_off:")


def running(job_config: config.TrainConfig, data_name: str) -> None:
    """One line naming what the running training trains, since its form is hidden."""
    spec = backbones.get_spec(job_config.backbone)
    epochs = (f"{job_config.head_epochs} head + {job_config.epochs} fine-tuning epochs"
              if job_config.mode == "fine-tune" else widgets.count(job_config.epochs, "epoch"))
    augmented = (f", images changed at random ({job_config.augmentation.describe()})"
                 if job_config.mode == "fine-tune" and job_config.augment else "")
    st.markdown(f"**Training now:** {spec.display_name}, "
                f"{backbones.weights_label(job_config.weights)}, "
                f"{MODE_NAMES[job_config.mode]}, {epochs} at {job_config.image_size} px, "
                f"batch {job_config.batch_size}, learning rate "
                f"{job_config.effective_learning_rate:g}{augmented}"
                f"{robust_training.clause(job_config.to_dict())}, on {widgets.plain(data_name)}.")
