"""How long one step of heavy work takes on a model, measured on real work, for estimates.

A page shows the expected time of an attack, a render or a sweep before it starts. Nothing
is run to measure it: the work times its own steps and records them here, per model
(weakly: a dropped model is forgotten), kind of step and images per step; the latest
measure wins (it reflects the machine's current load). A model not measured yet in this
process has no pace (the page then gives the amount of work only).

Kinds: "gradient" (an attack step of FGSM, PGD or the lesson's descent: one compiled forward
and backward pass, over `Attack.paced_steps`, leaving out a chunk that traced a graph),
"deepfool" (a whole DeepFool chunk: its number of steps varies), "render-first" (a
render's first step, which builds its graph) and "render" (each later render step).
"""
from __future__ import annotations

import threading
import weakref

import keras

# Seconds of one step, by model (weakly: a dropped model is forgotten), kind of step and
# images in the chunk.
_PACES: "weakref.WeakKeyDictionary[keras.Model, dict[tuple[str, int], float]]" = (
    weakref.WeakKeyDictionary())
_LOCK = threading.Lock()


def record_step(model: keras.Model, kind: str, images: int, seconds: float) -> None:
    """Remember that one step of `kind` over a chunk of `images` images took `seconds` on
    `model` (the latest measure wins: it reflects the machine's current load)."""
    if images > 0 and seconds > 0:
        with _LOCK:
            _PACES.setdefault(model, {})[(kind, int(images))] = float(seconds)


def seconds_per_step(model: keras.Model, kind: str, images: int) -> float | None:
    """Seconds one step of `kind` over `images` images takes on `model`, or None when no
    step of that kind was measured on it in this process.

    A chunk size never measured is scaled from the nearest one measured, per image: from a
    smaller chunk that overestimates a little (per-step overheads are shared by a larger
    chunk), from a larger one it underestimates a little.
    """
    with _LOCK:
        measured = {size: seconds for (known, size), seconds in _PACES.get(model, {}).items()
                    if known == kind}
    if not measured or images <= 0:
        return None
    nearest = min(measured, key=lambda size: (abs(size - images), -size))
    return measured[nearest] * images / nearest
