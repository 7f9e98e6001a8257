"""Locations on disk and the validated settings of each job.

Environment variables decide only *where* things live (`TLCORE_HOME`, `KERAS_HOME`) and
whether the app runs as a public demo (`TLCORE_PUBLIC_DEMO`); everything a user chooses is
a frozen dataclass that validates itself, so a bad value fails at once with the fix.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

TRAINING_MODES = ("fast", "fine-tune", "end-to-end")
FINE_TUNE_BLOCKS = 2  # top blocks unfrozen by default when fine-tuning
# Progress of long work: on_step(done, total, {"phase": ..., other metrics}).
StepCallback = Callable[[int, int, dict], None]


def tlcore_home() -> Path:
    """Return the folder for runs, caches and data (`$TLCORE_HOME`, default `~/.tlcore`)."""
    return Path(os.environ.get("TLCORE_HOME", Path.home() / ".tlcore")).expanduser()


def keras_home() -> Path:
    """Return Keras's cache folder (`$KERAS_HOME`, default `~/.keras`); weights go in `models/`."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()


def runs_dir() -> Path:
    """Return the folder that holds one sub-folder per finished training run."""
    return tlcore_home() / "runs"


def cache_dir() -> Path:
    """Return the folder for derived data that can always be rebuilt (embeddings, demo set)."""
    return tlcore_home() / "cache"


def public_demo() -> bool:
    """Return True when the app is served as a public demo (`TLCORE_PUBLIC_DEMO=1`)."""
    return os.environ.get("TLCORE_PUBLIC_DEMO", "").strip().lower() in ("1", "true", "yes", "on")


class LimitError(ValueError):
    """A request over one of the server's limits (`Limits`); the message names the limit."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one visitor may ask of the server: the one table the pages, the CLI and the
    library all read. None means no limit.

    Attributes:
        upload_mb: the largest uploaded file (an image, a model or a zip).
        extracted_mb: the most an uploaded zip may expand to.
        archive_files: the most entries an uploaded zip may hold.
        visitor_run_hours: runs and uploads made in a public demo are deleted after this
            many hours (None: kept).
        image_megapixels: the most pixels one image may declare (checked from its header,
            before decoding).
        archive_megapixels: the most pixels all images of one uploaded zip may declare
            together (what the folder scan has to decode).
        classes: the most classes of a data set.
        dataset_images: the most images of one data set built in the browser
            (`tlcore.builder`).
        added_images: the most files one upload to a built data set's class may hold (each
            is decoded in a heavy job's turn; copies of a file are skipped undecoded).
        epochs: the most epochs of a training (each stage of fine-tuning).
        image_size: the largest input side of a training.
        render_steps: the most steps of an ideal-image render or sweep.
        sweep_images: the most images rendered together in a sweep.
        attack_steps: the most steps of an attack.
        attack_images: the most images attacked at once (many images, robustness curves).
        try_images: the most images one "Try it" batch classifies and explains (the rest
            are named and left out).
        model_parameters: the most weights of an uploaded model (counted from its config
            before any weight is allocated); its file may expand to at most 12 bytes a
            weight (float32 weights and an optimiser's two moments) and 10x its size.
        model_activations: the most values one image may produce through an uploaded
            model's layers (its memory per image: ResNet50 at 224 px makes 37 million).
        job_seconds: the time budget of one render, sweep or attack.
        training_seconds: the time budget of one training (its turn, not its wait); the
            finished epochs are kept as a run.
        heavy_slots: renders, sweeps and attacks running at once (the rest queue).
        visitor_disk_mb: the most disk one visitor's uploads and runs may use.
        total_disk_mb: the most disk all visitors' uploads and runs may use together.
        session_uploads_mb: the most that one browser session's uploaded files may hold in
            the server's memory at once (Streamlit keeps each until its widget lets go).
        server_uploads_mb: the most that all sessions' uploaded files may hold there.
        cache_mb: derived caches (embeddings, folder scans, exports) are swept, oldest
            first, beyond this size.
        compute_threads: CPU threads TensorFlow computes with and images are checked
            with (None: every core, 4 decoders); a demo leaves one core to serving pages
            and decodes one image at a time.
    """

    upload_mb: int
    extracted_mb: int
    archive_files: int
    visitor_run_hours: float | None
    image_megapixels: float = 50.0
    archive_megapixels: float | None = None
    classes: int | None = None
    dataset_images: int | None = None
    added_images: int | None = None
    epochs: int | None = None
    image_size: int | None = None
    render_steps: int | None = None
    sweep_images: int | None = None
    attack_steps: int | None = None
    attack_images: int | None = None
    try_images: int | None = None
    model_parameters: int | None = None
    model_activations: int | None = None
    job_seconds: float | None = None
    training_seconds: float | None = None
    heavy_slots: int = 2
    visitor_disk_mb: int | None = None
    total_disk_mb: int | None = None
    session_uploads_mb: int | None = None
    server_uploads_mb: int | None = None
    cache_mb: int | None = None
    compute_threads: int | None = None


OWN_LIMITS = Limits(upload_mb=500, extracted_mb=4096, archive_files=100_000,
                    visitor_run_hours=None)
# Small enough for the smallest free hosts (1-2 CPUs, 2-3 GB of memory, a few GB of disk),
# large enough for the lesson: Oxford-IIIT Pets has 37 classes, a phone photo 12-24 MP,
# the lesson's render takes 200-300 steps at the preview's pace and PGD 10-50 steps.
DEMO_LIMITS = Limits(upload_mb=50, extracted_mb=300, archive_files=5_000,
                     visitor_run_hours=float(os.environ.get("TLCORE_DEMO_RUN_HOURS", 24)),
                     image_megapixels=24.0, archive_megapixels=1_500.0, classes=100,
                     dataset_images=2_000, added_images=200,
                     epochs=20, image_size=224, render_steps=300, sweep_images=7,
                     attack_steps=100, attack_images=64, try_images=10,
                     model_parameters=30_000_000, model_activations=50_000_000,
                     job_seconds=180.0, training_seconds=900.0,
                     heavy_slots=1, visitor_disk_mb=500, total_disk_mb=10_000,
                     session_uploads_mb=300, server_uploads_mb=1_200, cache_mb=2_000,
                     compute_threads=max(1, (os.cpu_count() or 2) - 1))
# How each limit is named in a refusal.
LIMIT_NAMES = {"upload_mb": "upload size (MB)", "extracted_mb": "extracted size (MB)",
               "archive_files": "files per zip", "image_megapixels": "megapixels per image",
               "archive_megapixels": "megapixels per zip", "classes": "classes",
               "dataset_images": "images per built data set",
               "added_images": "images added at once",
               "epochs": "epochs", "image_size": "image side (px)",
               "render_steps": "render steps", "sweep_images": "images per sweep",
               "attack_steps": "attack steps", "attack_images": "images per attack",
               "try_images": "images tried at once",
               "model_parameters": "parameters of an uploaded model",
               "model_activations": "activations per image of an uploaded model",
               "visitor_disk_mb": "disk per visitor (MB)",
               "total_disk_mb": "disk for all visitors (MB)",
               "session_uploads_mb": "uploads held in memory per visitor (MB)",
               "server_uploads_mb": "uploads held in memory for all visitors (MB)"}


def limits() -> Limits:
    """The limits in force: `DEMO_LIMITS` in a public demo, else `OWN_LIMITS`."""
    return DEMO_LIMITS if public_demo() else OWN_LIMITS


def check_limit(name: str, value: float, what: str | None = None) -> None:
    """Refuse `value` when it is over the limit `name` of `limits()`.

    Args:
        name: a `Limits` field, such as "render_steps".
        value: what was asked for.
        what: how to name it in the message; None uses the limit's own name.

    Raises:
        LimitError: one line naming the value, the limit and where it comes from.
    """
    limit = getattr(limits(), name)
    if limit is not None and value > limit:
        where = "this public demo's" if public_demo() else "this server's"
        raise LimitError(f"{what or LIMIT_NAMES[name]}: {_number(value)} is over {where} "
                         f"limit of {_number(limit)} {LIMIT_NAMES[name]}")


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.3g}"


def check_upload(size_bytes: int, what: str) -> None:
    """Refuse an upload over `limits().upload_mb`.

    Raises:
        LimitError: the message names the size and the limit.
    """
    limit = limits().upload_mb
    if size_bytes > limit * 2**20:
        raise LimitError(f"{what} is {size_bytes / 2**20:,.1f} MB; at most {limit} MB is "
                         "allowed here")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class AdversarialMethod:
    """How adversarial training perturbs each batch before the step (`tlcore.adversarial`):
    one entry of `ADVERSARIAL_METHODS`, for the code that offers, runs and times it.

    Attributes:
        label: its short name for people, as in "robust at 4/255, FGSM-RS".
        note: for people: what it does and what it costs.
        attack_steps: the attack's gradient steps per batch, each about one more forward
            and backward pass through the whole model (frozen layers too: the gradient goes
            back to the pixels); None: the training's `adversarial_steps`.
    """

    label: str
    note: str
    attack_steps: int | None = None

    def steps(self, adversarial_steps: int) -> int:
        """The attack's gradient steps per batch, given a training's `adversarial_steps`."""
        return self.attack_steps or adversarial_steps


# The one table of adversarial trainings: what each is, and what it costs.
ADVERSARIAL_METHODS = {
    "fgsm-rs": AdversarialMethod(
        "FGSM-RS", "FGSM from a random start: one step of 1.25 x epsilon (Wong et al. 2020); "
                   "about one more forward and backward pass per batch", attack_steps=1),
    "pgd": AdversarialMethod(
        "PGD", "PGD from a random start: several steps of 2.5 x epsilon / steps (Madry et al. "
               "2018); about one more forward and backward pass per step: stronger, slower"),
}



@dataclasses.dataclass(frozen=True)
class AugmentationKind:
    """One kind of random change that augmentation makes to a training image: one entry of
    `AUGMENTATIONS`, for the code that offers, checks, describes and builds it
    (`tlcore.augment` builds its Keras layer).

    Attributes:
        label: its name for people, on its slider.
        note: for people: what it does, and when it would make a label wrong.
        choices: the values of a kind picked among names (flips); empty for a strength.
        maximum: a strength's largest value (0 turns the kind off).
        scale: a strength reads as its value times `scale`, then `unit` (`shown`): a
            rotation of 0.05 of a turn reads "18°".
        unit: see `scale`.
    """

    label: str
    note: str
    choices: tuple[str, ...] = ()
    maximum: float = 0.0
    scale: float = 100.0
    unit: str = "%"

    def shown(self, value: float | str) -> str:
        """A value as people read it: "18°", "10%", or a choice's name."""
        return value if self.choices else f"{float(value) * self.scale:.3g}{self.unit}"


# The one table of augmentations, in the order they are applied: the geometry first, then
# the colours, then the erased patch (which should stay a flat grey).
AUGMENTATIONS = {
    "flip": AugmentationKind(
        "Flip", "Mirrors images at random: left-right, or also upside down. Upside down is "
                "wrong for photos of pets or street scenes, right for textures, cells or "
                "satellite views.", choices=("none", "horizontal", "both")),
    "rotation": AugmentationKind(
        "Rotation", "Turns each image by up to this angle, either way (edges mirrored).",
        maximum=0.5, scale=360.0, unit="°"),
    "zoom": AugmentationKind(
        "Zoom", "Zooms in or out by up to this share of the side.", maximum=0.5),
    "translation": AugmentationKind(
        "Shift", "Moves the image by up to this share of its side, sideways and up or down.",
        maximum=0.5),
    "brightness": AugmentationKind(
        "Brightness", "Lightens or darkens by up to this share of the pixel range.",
        maximum=0.5),
    "contrast": AugmentationKind(
        "Contrast", "Stretches or flattens the contrast by up to this share.", maximum=0.9),
    "saturation": AugmentationKind(
        "Colour saturation", "Makes the colours paler or stronger by up to this much (100%: "
                             "from grey to fully saturated). Wrong where colour is the class.",
        maximum=1.0),
    "erasing": AugmentationKind(
        "Erasing", "Hides a grey patch of up to this share of the image, in half of the "
                   "images, so no single part of an image decides its class.", maximum=0.5),
}


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The random changes fine-tuning makes to each training image, one field per kind of
    `AUGMENTATIONS` (a strength of 0, or flip "none", turns a kind off). The defaults are
    the augmentation fine-tuning has always made: left-right flips, rotations of up to 18
    degrees, zooms and contrast changes of up to 10%.

    Attributes:
        flip: "none", "horizontal" (left-right) or "both" (also upside down).
        rotation: the largest rotation either way, as a fraction of a full turn.
        zoom: the largest zoom in or out, as a fraction of the side.
        translation: the largest shift, as a fraction of the side.
        brightness: the largest brightness change, as a fraction of the pixel range.
        contrast: the largest contrast change, as a fraction.
        saturation: the spread of colour-saturation changes (1: from grey to full colour).
        erasing: the largest grey patch, as a fraction of the image's area.
    """

    flip: str = "horizontal"
    rotation: float = 0.05
    zoom: float = 0.1
    translation: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.1
    saturation: float = 0.0
    erasing: float = 0.0

    def __post_init__(self) -> None:
        for name, kind in AUGMENTATIONS.items():
            value = getattr(self, name)
            if kind.choices:
                _require(value in kind.choices,
                         f"{name}={value!r} is not one of {kind.choices}")
            else:
                _require(0 <= value <= kind.maximum,
                         f"{name}={value} must be between 0 (off) and {kind.maximum:g}")

    def changes(self) -> dict[str, float | str]:
        """The kinds that change images, with their values, in `AUGMENTATIONS`' order."""
        return {name: getattr(self, name) for name in AUGMENTATIONS
                if getattr(self, name) not in (0, "none")}

    def describe(self) -> str:
        """For people: "flip horizontal, rotation up to 18°, zoom up to 10%, ..."."""
        return ", ".join(
            f"{AUGMENTATIONS[name].label.lower()} "
            f"{'' if AUGMENTATIONS[name].choices else 'up to '}{AUGMENTATIONS[name].shown(value)}"
            for name, value in self.changes().items()) or "no change"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a classifier is trained.

    Attributes:
        backbone: a name from `tlcore.backbones.names()`.
        weights: "imagenet", "edges" (VGG16 only), a local weights file path, or None (random).
        mode: "fast" (frozen body, head trained on cached embeddings), "fine-tune" (that
            head first, then the top blocks of the body with augmentation at a ~100x lower
            learning rate), or "end-to-end" (everything at once; needed from scratch).
        epochs: passes over the training split.
        image_size: square input side in pixels; None takes the data set's or backbone's default.
        batch_size: images (or embeddings) per gradient step; 16 gives a short training
            on a few hundred images enough steps.
        learning_rate: Adam step size; None takes `default_learning_rate(mode, weights)`.
        dropout_rate: dropout before the classification layer.
        trainable_blocks: how many of the body's top blocks train when the body trains
            (0 = head only, -1 = all of it); None: 2 when fine-tuning, all end to end.
        head_epochs: fine-tune mode: epochs of the head alone, on cached embeddings, before
            the body is unfrozen.
        augment: fine-tune mode: change the training images at random, as `augmentation`
            says (False: train on the images as they are).
        augmentation: fine-tune mode: which random changes, how strong (a dictionary of
            its fields is read as one, as run.json and checkpoints keep it; older ones
            without it get today's defaults).
        patience: fine-tune and end-to-end modes: stop after this many epochs without a
            better validation accuracy (0: never stop early).
        class_weights: weight the loss by inverse class frequency, so a rare class counts as
            much as a common one.
        seed: seeds the split, the initialisation and the shuffling.
        adversarial_epsilon: train on adversarial images within this L-infinity budget, in
            pixels of [0, 255] (4 = 4/255), made from each batch by `adversarial_method`
            against the model as it is; 0 trains on the images as they are. The pixels the
            body sees must move, so not in fast mode (its head learns from cached
            embeddings); in fine-tune mode the body's stage is the robust one.
        adversarial_method: a name in `ADVERSARIAL_METHODS`.
        adversarial_steps: PGD's steps per batch.
    """

    backbone: str = "vgg16"
    weights: str | None = "edges"
    mode: str = "fast"
    epochs: int = 10
    image_size: int | None = None
    batch_size: int = 16
    learning_rate: float | None = None
    dropout_rate: float = 0.2
    trainable_blocks: int | None = None
    head_epochs: int = 5
    augment: bool = True
    augmentation: Augmentation = Augmentation()
    patience: int = 3
    class_weights: bool = True
    seed: int = 0
    adversarial_epsilon: float = 0.0
    adversarial_method: str = "fgsm-rs"
    adversarial_steps: int = 7

    def __post_init__(self) -> None:
        if isinstance(self.augmentation, dict):  # as run.json and checkpoints keep it
            object.__setattr__(self, "augmentation", Augmentation(**self.augmentation))
        _require(isinstance(self.augmentation, Augmentation),
                 f"augmentation={self.augmentation!r} must be a config.Augmentation")
        _require(self.mode in TRAINING_MODES,
                 f"mode={self.mode!r} is not one of {TRAINING_MODES}; use 'fast' for a frozen "
                 "body or 'end-to-end' to train the body too")
        _require(self.epochs >= 1, f"epochs={self.epochs} must be at least 1")
        _require(self.image_size is None or 32 <= self.image_size <= 1024,
                 f"image_size={self.image_size} must be between 32 and 1024 pixels")
        _require(self.batch_size >= 1, f"batch_size={self.batch_size} must be at least 1")
        _require(self.learning_rate is None or 0 < self.learning_rate < 1,
                 f"learning_rate={self.learning_rate} must be in (0, 1); 1e-3 is a good start")
        _require(0 <= self.dropout_rate < 1,
                 f"dropout_rate={self.dropout_rate} must be in [0, 1)")
        _require(self.trainable_blocks is None or self.trainable_blocks >= -1,
                 f"trainable_blocks={self.trainable_blocks} must be -1 (all) or a count >= 0")
        _require(self.head_epochs >= 1, f"head_epochs={self.head_epochs} must be at least 1")
        _require(self.patience >= 0, f"patience={self.patience} must be >= 0 (0 = off)")
        _require(0 <= self.adversarial_epsilon <= 255,
                 f"adversarial_epsilon={self.adversarial_epsilon} must be in [0, 255] pixels")
        _require(self.adversarial_method in ADVERSARIAL_METHODS,
                 f"adversarial_method={self.adversarial_method!r} is not one of "
                 f"{tuple(ADVERSARIAL_METHODS)}")
        _require(self.adversarial_steps >= 1,
                 f"adversarial_steps={self.adversarial_steps} must be at least 1")
        _require(not self.adversarial_epsilon or self.mode != "fast",
                 "adversarial training needs the model to see perturbed pixels, but fast mode "
                 "trains the head on embeddings computed once from the unperturbed images: "
                 "choose fine-tune or end-to-end")

    @property
    def effective_trainable_blocks(self) -> int:
        """The top blocks that train: the chosen count, else 2 fine-tuning, all end to end."""
        if self.trainable_blocks is not None:
            return self.trainable_blocks
        return FINE_TUNE_BLOCKS if self.mode == "fine-tune" else -1

    @property
    def effective_learning_rate(self) -> float:
        """The learning rate in use: the chosen one, else the default for mode and weights."""
        return self.learning_rate or default_learning_rate(self.mode, self.weights)

    def to_dict(self) -> dict:
        """Return the settings as a JSON-ready dictionary."""
        return {**dataclasses.asdict(self), "learning_rate": self.effective_learning_rate,
                "trainable_blocks": self.effective_trainable_blocks}


def default_learning_rate(mode: str, weights: str | None) -> float:
    """Return a good Adam learning rate for a training mode.

    A linear head on standardised frozen features converges fast at 1e-2; a body trained
    from scratch at 2e-3 (demo set, 5 epochs, seeds 0-2: 0.97/0.92/0.98 validation
    accuracy, against 0.95/0.89/0.95 at 1e-3); a pretrained body being fine-tuned needs
    far less (1e-4, as in the Keras guide's ~10-100x drop), or its features are destroyed
    in the first epoch. In fine-tune mode this is the rate of the second stage; the head
    stage uses the fast-mode rate.
    """
    if mode == "fast":
        return 1e-2
    return 2e-3 if weights in (None, "none", "random") and mode == "end-to-end" else 1e-4


RENDER_OBJECTIVES = ("logit", "probability")
RENDER_OPTIMIZERS = ("adam", "sgd")
RENDER_PARAMETERIZATIONS = ("pixels", "fourier")


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """Settings of an ideal-image render: gradient ascent on a class score from noise.

    Attributes:
        steps: optimisation steps.
        learning_rate: step size: in pixel units for the pixel parameterisation, in
            spectrum units for the Fourier one (Lucid uses 0.05 there).
        tv_weight: weight of the total-variation penalty (mean absolute difference of
            neighbouring pixels, so one value means the same at any image size).
        l2_weight: weight of the root-mean-square distance from mid-grey, in pixel units.
        l1_weight: weight of the mean absolute distance from mid-grey, in pixel units.
        blur_weight: weight of the mean distance between the image and a blurred copy.
        seed: seeds the starting noise and the random transforms.
        objective: "logit" (the class logit, contract 2) or "probability" (the class's
            log-probability, i.e. minus the cross-entropy, as the lesson does).
        objective_weight: multiplies the objective (the lesson's 10 x cross-entropy).
        optimizer: "adam" or "sgd" (plain gradient steps, as the lesson does).
        parameterization: "pixels", or "fourier" (a colour-decorrelated spectrum through a
            sigmoid, as in Lucid: smoother images, always inside [0, 255]).
        transforms: pad, jitter, scale and rotate the image randomly at every step, so only
            features that survive small moves are strengthened.
        noise_std: standard deviation of the starting noise around mid-grey, in pixels.
    """

    steps: int = 200
    learning_rate: float = 2.0
    tv_weight: float = 0.05
    l2_weight: float = 0.0
    l1_weight: float = 0.0
    blur_weight: float = 0.0
    seed: int = 0
    objective: str = "logit"
    objective_weight: float = 1.0
    optimizer: str = "adam"
    parameterization: str = "pixels"
    transforms: bool = False
    noise_std: float = 20.0

    def __post_init__(self) -> None:
        _require(1 <= self.steps <= 10_000, f"steps={self.steps} must be between 1 and 10000")
        _require(self.learning_rate > 0, f"learning_rate={self.learning_rate} must be positive")
        _require(self.tv_weight >= 0, f"tv_weight={self.tv_weight} must be >= 0 (0 turns TV off)")
        for name in ("l2_weight", "l1_weight", "blur_weight", "noise_std"):
            _require(getattr(self, name) >= 0, f"{name}={getattr(self, name)} must be >= 0")
        _require(self.objective_weight > 0,
                 f"objective_weight={self.objective_weight} must be positive")
        _require(self.objective in RENDER_OBJECTIVES,
                 f"objective={self.objective!r} is not one of {RENDER_OBJECTIVES}")
        _require(self.optimizer in RENDER_OPTIMIZERS,
                 f"optimizer={self.optimizer!r} is not one of {RENDER_OPTIMIZERS}")
        _require(self.parameterization in RENDER_PARAMETERIZATIONS,
                 f"parameterization={self.parameterization!r} is not one of "
                 f"{RENDER_PARAMETERIZATIONS}")


@dataclasses.dataclass(frozen=True)
class AttackMethod:
    """What an attack is, for the code that offers, checks and builds it: one entry of
    `ATTACK_METHODS`, data only, so that reading it loads no TensorFlow.

    Attributes:
        attack_class: the class that runs it, as a dotted path (`tlcore.attack` imports it
            when the attack is built).
        label: its name for people, in a list of attacks.
        settings: the `AttackConfig` fields its class takes; "epsilon" among them makes it
            a bounded attack (an L-infinity budget), the others change pixels freely.
        default_steps: the steps a form offers first, and the class's own default (1: a
            one-step attack, whose steps are no setting).
        default_step_size: the step size a form offers first, and the class's own default
            (None: worked out from the other settings).
        targetable: it can move an image toward a chosen class (else only away from its
            own).
        note: for people, beside the result of an unbounded attack: what that means.
    """

    attack_class: str
    label: str
    settings: tuple[str, ...]
    default_steps: int = 1
    default_step_size: float | None = None
    targetable: bool = True
    note: str = ""

    @property
    def bounded(self) -> bool:
        """It has an L-infinity budget (epsilon)."""
        return "epsilon" in self.settings


# The one table of attacks: a new attack is its class (in `tlcore/attack/`) and one entry.
ATTACK_METHODS = {
    "fgsm": AttackMethod("tlcore.attack.gradient.FGSM", "FGSM (one step)", ("epsilon",)),
    "pgd": AttackMethod("tlcore.attack.gradient.PGD", "PGD (iterated, projected)",
                        ("epsilon", "steps", "step_size", "seed"), default_steps=10),
    "lesson": AttackMethod(
        "tlcore.attack.gradient.LessonDescent", "The lesson's descent (unbounded)",
        ("steps", "step_size"), default_steps=100, default_step_size=1.0,
        note="The lesson's descent has no budget: nothing limits how much a pixel changes."),
    "deepfool": AttackMethod(
        "tlcore.attack.minimum_norm.DeepFool", "DeepFool (smallest change in L2)", ("steps",),
        default_steps=50, targetable=False,
        note="DeepFool makes the smallest change in L2 (total size), not per pixel: it may "
             "change a few pixels a lot, so its L-inf can be larger than PGD's budget. "
             "Compare both numbers."),
}
BOUNDED_ATTACKS = tuple(name for name, method in ATTACK_METHODS.items() if method.bounded)


def check_epsilon(epsilon: float) -> float:
    """Return an attack's L-infinity budget in pixels as a float.

    Raises:
        ValueError: it is not in (0, 255] (8 means 8/255 of the range).
    """
    _require(0 < epsilon <= 255,
             f"epsilon={epsilon} must be in (0, 255] pixels (e.g. 8 for 8/255)")
    return float(epsilon)


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """Settings of an adversarial attack; epsilon and step size are in pixels of [0, 255].

    Attributes:
        method: a name in `ATTACK_METHODS` ("fgsm", "pgd", "lesson", "deepfool").
        epsilon: L-infinity budget in pixels (8 means 8/255 of the range), for the bounded
            attacks only (`BOUNDED_ATTACKS`).
        steps: iterations (PGD, the lesson's descent, DeepFool's maximum).
        step_size: pixels per step; None: each attack's default (PGD: 2.5 * epsilon /
            steps, as Madry et al.; the lesson's descent: 1).
        target: class index to reach (targeted attack), or None to just flip the label.
        seed: seeds PGD's random start.
    """

    method: str = "pgd"
    epsilon: float = 4.0
    steps: int = 10
    step_size: float | None = None
    target: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.method in ATTACK_METHODS,
                 f"method={self.method!r} is not one of {tuple(ATTACK_METHODS)}")
        check_epsilon(self.epsilon)
        targetable = [name for name, method in ATTACK_METHODS.items() if method.targetable]
        _require(ATTACK_METHODS[self.method].targetable or self.target is None,
                 f"{self.method} is untargeted: it only moves an image away from its class; "
                 f"use {' or '.join(targetable)} for a target")
        _require(self.steps >= 1, f"steps={self.steps} must be at least 1")
        _require(self.step_size is None or self.step_size > 0,
                 f"step_size={self.step_size} must be positive or None")
