"""Ideal images: gradient ascent on a class logit from noise, with regularisers."""
from __future__ import annotations

from tlcore.visualize.regularizers import l2_from_grey, total_variation
from tlcore.visualize.rendering import RenderResult, render, start_noise

__all__ = ["RenderResult", "l2_from_grey", "render", "start_noise", "total_variation"]
