"""Ideal images: what a network thinks a class (or a channel) looks like.

Split by concept, as in Lucid: `objectives` (what is maximised), `parameterizations` (how the
image is stored), `transforms` (random moves each step), `regularizers` (penalties),
`rendering` (the optimisation loop and sweeps) and `presets` (named recipes).

Only `presets` is imported with the package: it needs no TensorFlow, so the command line
lists the recipes in its help at once. Every other name imports its module (and
TensorFlow) the first time it is used.
"""
from __future__ import annotations

import importlib
from typing import Any

from tlcore.visualize.presets import (PRESETS, Preset, lesson_class_weight, lesson_note,
                                      lesson_tv_weight, preset)

# Each name below is taken from its module on first use (`__getattr__`).
_HOMES = {
    **dict.fromkeys(["Objective", "channel", "class_logit", "class_probability", "each_class",
                     "neuron"], "objectives"),
    **dict.fromkeys(["FourierImage", "PixelImage"], "parameterizations"),
    **dict.fromkeys(["blur_distance", "l1_from_grey", "l2_from_grey", "total_variation"],
                    "regularizers"),
    **dict.fromkeys(["RenderResult", "class_render_steps", "expected_seconds", "render",
                     "render_classes", "render_sweep", "start_noise"], "rendering"),
}

__all__ = ["PRESETS", "Preset", "lesson_class_weight", "lesson_note", "lesson_tv_weight",
           "preset"]
__all__ += list(_HOMES)


def __getattr__(name: str) -> Any:
    """Import the module that holds `name` on first use, and keep the name here."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The package's names, including those not imported yet."""
    return sorted({*globals(), *_HOMES})
