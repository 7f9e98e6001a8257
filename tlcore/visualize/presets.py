"""Named recipes for ideal images: the lesson's, and a clean feature-visualisation one."""
from __future__ import annotations

import dataclasses

from tlcore import config

PRESETS = {
    "lesson": "The lesson: 10 x cross-entropy + 0.005 x summed TV, plain gradient steps of 1 "
              "from faint noise, no transforms (reproducible, speckled at low TV)",
    "clean": "Feature visualisation (Lucid): the class logit, a decorrelated Fourier image, "
             "random pad/jitter/scale/rotate at every step, Adam 0.05",
}


def lesson_tv_weight(size: int) -> float:
    """The lesson's 0.005 x *summed* TV, as a weight on tlcore's *mean* TV at this size.

    The sum runs over every neighbouring pair in both directions and all 3 channels:
    3 x 2 x (S - 1) x S pairs (299,712 at 224 px, so the weight is about 1,499).
    """
    return 0.005 * 3 * 2 * (size - 1) * size


def preset(name: str, size: int, **overrides) -> config.RenderConfig:
    """The RenderConfig of a named recipe at an image side, with any fields overridden.

    Raises:
        ValueError: an unknown name, or an invalid override.
    """
    if name == "lesson":
        # The lesson climbs the cross-entropy alone for 1000 steps, then with TV for 1000
        # more; this preset is its second half started from noise.
        base = config.RenderConfig(steps=1000, learning_rate=1.0, tv_weight=lesson_tv_weight(size),
                                   objective="probability", objective_weight=10.0,
                                   optimizer="sgd", noise_std=1.0)
    elif name == "clean":
        base = config.RenderConfig(steps=512, learning_rate=0.05, tv_weight=0.0,
                                   objective="logit", optimizer="adam",
                                   parameterization="fourier", transforms=True)
    else:
        raise ValueError(f"preset={name!r} is not one of {sorted(PRESETS)}")
    return dataclasses.replace(base, **overrides)
