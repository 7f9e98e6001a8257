"""How long a training will take, said before it starts.

The estimate counts forward passes: a body's cost per image is its `reference_images_per_
second` at 224 px (the registry's, measured on a 2-core CPU), scaled by the image's pixels.
A feature extractor embeds every image once (nothing when the embedding cache already holds
them) and trains a head in about a second; training a body costs, per image and epoch, a
forward and a backward pass (about three forward passes end to end, two when only the top
blocks train) plus a validation pass; an adversarial training first attacks each
training image, every attack step a forward pass and a gradient back to the pixels through
the whole model (about two forward passes: no weight gradients, but frozen layers too);
end-to-end and fine-tuned models then score the validation and test images. Each server
corrects the reference from its own trainings (`speed_from_runs`): every run records the
estimate it was given, and the median ratio of estimate to actual time over the latest runs
scales the next estimate.
"""
from __future__ import annotations

import dataclasses
import statistics
from typing import Iterable

from tlcore import backbones, config, data, features, runs

BUILD_SECONDS = 2.0  # building a body and loading its weights
HEAD_SECONDS = 1.0  # a head on cached embeddings, its first step traced once per process
TRACE_SECONDS = 8.0  # tracing Keras's training step once per fit
DECODE_SECONDS = 0.002  # decoding and resizing one image
ATTACK_STEP_PASSES = 2.0  # one attack step: a forward pass and the gradient to the pixels
CALIBRATION_RUNS = 5  # the latest runs with an estimate correct the next one


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A training's expected seconds, in total and by phase, and what it rests on."""

    seconds: float
    parts: dict[str, float]
    speed: float  # this server against the reference machine (2: twice as fast)
    cached: bool  # the embeddings are already cached

    def describe(self) -> str:
        """One line for people: the total and its largest parts."""
        largest = sorted(self.parts.items(), key=lambda item: -item[1])[:3]
        parts = ", ".join(f"{name} {_duration(seconds)}" for name, seconds in largest
                          if seconds >= 0.5)
        return f"about {_duration(self.seconds)}" + (f" ({parts})" if parts else "")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def forward_seconds(backbone: str, image_size: int, speed: float = 1.0) -> float:
    """Seconds of one image's forward pass through a body at `image_size` px."""
    spec = backbones.get_spec(backbone)
    return (image_size / 224) ** 2 / (spec.reference_images_per_second * speed)


def resolve_image_size(train_config: config.TrainConfig, dataset: data.Dataset) -> int:
    """Pick a training's input side: the config's, else the data set's native size, else
    the backbone's (what `train.train_classifier` trains at, and the estimate counts)."""
    return (train_config.image_size or dataset.native_size
            or backbones.get_spec(train_config.backbone).default_input_size)


def training_seconds(train_config: config.TrainConfig, dataset: data.Dataset,
                     speed: float = 1.0) -> Estimate:
    """The expected seconds of `train_classifier(train_config, dataset)` on a machine
    `speed` times the reference's (see the module's docstring)."""
    size = resolve_image_size(train_config, dataset)
    per_image = forward_seconds(train_config.backbone, size, speed)
    sizes = dataset.split_sizes()
    every, trained = sum(sizes.values()), sizes.get("train", 0)
    checked = sizes.get("validation", 0)
    scored = checked + sizes.get("test", 0)
    parts = {"building the model": BUILD_SECONDS}
    cached = False
    if train_config.mode in ("fast", "fine-tune"):
        key = features.cache_key(train_config.backbone, train_config.weights, size,
                                 dataset.fingerprint())
        cached = key is not None and features.cache_path(key).is_file()
        if not cached:
            parts["embedding"] = every * (per_image + DECODE_SECONDS)
        parts["head"] = HEAD_SECONDS
    if train_config.mode in ("fine-tune", "end-to-end"):
        passes = 2.0 if train_config.mode == "fine-tune" else 3.0
        parts["decoding"] = every * DECODE_SECONDS
        parts["training"] = TRACE_SECONDS + train_config.epochs * (
            trained * passes + checked) * per_image
        attacks = train_config.epochs * trained * attack_passes(train_config) * per_image
        if attacks:
            parts["attacks"] = attacks
        parts["scoring"] = scored * per_image
    return Estimate(sum(parts.values()), parts, speed, cached)


def attack_passes(train_config: config.TrainConfig) -> float:
    """Forward passes per training image and epoch that making its adversarial version
    costs: its method's attack steps (`config.ADVERSARIAL_METHODS`) times
    `ATTACK_STEP_PASSES`; 0 for a standard training."""
    if not train_config.adversarial_epsilon:
        return 0.0
    method = config.ADVERSARIAL_METHODS[train_config.adversarial_method]
    return ATTACK_STEP_PASSES * method.steps(train_config.adversarial_steps)


def speed_from_runs(known: Iterable[runs.Run]) -> float:
    """How much faster than the reference this server trained lately: the median of
    estimate / actual seconds over the latest runs that recorded an estimate (1.0 with
    none). Runs are taken newest first, as `runs.list_runs` gives them."""
    ratios = []
    for run in known:
        estimated = run.info.get("estimated_seconds")
        actual = run.info.get("metrics", {}).get("seconds")
        if estimated and actual and not run.info.get("cancelled"):
            ratios.append(estimated / actual * run.info.get("estimated_speed", 1.0))
        if len(ratios) == CALIBRATION_RUNS:
            break
    return statistics.median(ratios) if ratios else 1.0
