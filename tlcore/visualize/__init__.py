"""Ideal images: what a network thinks a class (or a channel) looks like.

Split by concept, as in Lucid: `objectives` (what is maximised), `parameterizations` (how the
image is stored), `transforms` (random moves each step), `regularizers` (penalties),
`rendering` (the optimisation loop and sweeps) and `presets` (named recipes).
"""
from __future__ import annotations

from tlcore.visualize.objectives import Objective, channel, class_logit, class_probability, neuron
from tlcore.visualize.parameterizations import FourierImage, PixelImage
from tlcore.visualize.presets import (PRESETS, lesson_class_weight, lesson_note,
                                      lesson_tv_weight, preset)
from tlcore.visualize.regularizers import (blur_distance, l1_from_grey, l2_from_grey,
                                           total_variation)
from tlcore.visualize.rendering import (RenderResult, expected_seconds, render, render_sweep,
                                        start_noise)

__all__ = ["FourierImage", "Objective", "PRESETS", "PixelImage", "RenderResult",
           "blur_distance", "channel", "class_logit", "class_probability", "expected_seconds",
           "l1_from_grey", "l2_from_grey", "lesson_class_weight", "lesson_note",
           "lesson_tv_weight", "neuron", "preset", "render",
           "render_sweep", "start_noise", "total_variation"]
