"""Named recipes for ideal images: a plain one to tune, the lesson's, and a clean
feature-visualisation one. `PRESETS` is the one table the Ideal image page and the command
line read."""
from __future__ import annotations

import dataclasses
from typing import Callable

from tlcore import config

LESSON_CLASS_WEIGHT = 10.0  # the lesson's 10 x cross-entropy, on VGG16's input


def lesson_tv_weight(size: int) -> float:
    """The lesson's 0.005 x *summed* TV, as a weight on tlcore's *mean* TV at this size.

    The sum runs over every neighbouring pair in both directions and all 3 channels:
    3 x 2 x (S - 1) x S pairs (299,712 at 224 px, so the weight is about 1,499).
    """
    return 0.005 * 3 * 2 * (size - 1) * size


def lesson_class_weight(input_scale: float = 1.0) -> float:
    """The weight of the lesson's class term (10 x cross-entropy) on a model whose input
    moves `input_scale` per pixel (`models.input_scale`).

    The lesson's plain steps of 1 pixel were made for VGG16, whose input is pixels minus a
    mean (scale 1). A model that rescales its pixels (MobileNetV2: pixels / 127.5 - 1) gets
    a gradient with respect to pixels divided by that scale, so after 1000 steps its image
    is still grey. Dividing the class term by the scale gives steps as large, per unit of
    the model's input, as VGG16's: the step size, the TV weight and the starting noise keep
    their meaning in pixels.
    """
    if input_scale <= 0:
        raise ValueError(f"input_scale={input_scale} must be > 0")
    return LESSON_CLASS_WEIGHT / input_scale


def lesson_note(input_scale: float) -> str:
    """For people: what the lesson's recipe changes on a model with this input scale, or ""
    where it runs exactly as in the lesson (a scale of 1, like VGG16's)."""
    factor = 1.0 / input_scale
    if abs(factor - 1.0) < 1e-3:
        return ""
    return (f"This model rescales its pixels: its input moves {factor:.4g} times less per pixel "
            f"than VGG16's, and so does its gradient. The lesson's steps of 1 pixel would leave "
            f"the image almost grey, so its class term is multiplied by {factor:.4g} "
            f"({LESSON_CLASS_WEIGHT:g} x cross-entropy becomes "
            f"{lesson_class_weight(input_scale):.4g} x): steps as large per unit of the model's "
            "input as on VGG16. The step size, TV weight and starting noise stay the lesson's.")


def _custom(size: int, input_scale: float) -> config.RenderConfig:
    # Plain pixels and Adam, at the Ideal image page's quick first look (150 steps).
    return config.RenderConfig(steps=150, learning_rate=2.0, tv_weight=0.3)


def _lesson(size: int, input_scale: float) -> config.RenderConfig:
    # The lesson climbs the cross-entropy alone for 1000 steps, then with TV for 1000
    # more; this preset is its second half started from noise.
    return config.RenderConfig(steps=1000, learning_rate=1.0, tv_weight=lesson_tv_weight(size),
                               objective="probability",
                               objective_weight=lesson_class_weight(input_scale),
                               optimizer="sgd", noise_std=1.0)


def _clean(size: int, input_scale: float) -> config.RenderConfig:
    return config.RenderConfig(steps=512, learning_rate=0.05, tv_weight=0.0, objective="logit",
                               optimizer="adam", parameterization="fourier", transforms=True)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named recipe: its label for people, and its settings(size, input_scale)."""

    label: str
    settings: Callable[[int, float], config.RenderConfig]


PRESETS = {
    "custom": Preset("Custom (pixels, Adam, your TV weight)", _custom),
    "lesson": Preset("The lesson: 10 x cross-entropy + 0.005 x summed TV, plain gradient steps "
                     "of 1 pixel from faint noise, no transforms (reproducible, speckled at low "
                     "TV)", _lesson),
    "clean": Preset("Feature visualisation (Lucid): the class logit, a decorrelated Fourier "
                    "image, random pad/jitter/scale/rotate at every step, Adam 0.05", _clean),
}


def preset(name: str, size: int, *, input_scale: float = 1.0, **overrides) -> config.RenderConfig:
    """The RenderConfig of a named recipe at an image side, with any fields overridden.

    Args:
        name: a PRESETS key.
        size: the model's input side.
        input_scale: how far the model's input moves per pixel (`models.input_scale`); the
            lesson's class term is scaled by its inverse (`lesson_class_weight`).
        overrides: RenderConfig fields.

    Raises:
        ValueError: an unknown name, or an invalid override.
    """
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is not one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name].settings(size, input_scale), **overrides)
