"""Ideal images: gradient ascent on a class logit from noise, with regularisers."""
from __future__ import annotations

from tlcore.visualize.regularizers import l2_from_grey, total_variation
from tlcore.visualize.render import RenderResult, render

__all__ = ["RenderResult", "l2_from_grey", "render", "total_variation"]
