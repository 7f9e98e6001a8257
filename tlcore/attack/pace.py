"""How long one attack step takes on a model, measured on real attacks, for estimates.

A page shows the expected time of an attack before it starts. Nothing is run to measure
it: each attack times its chunks (a chunk's time over `Attack.paced_steps`: its steps plus
one for the forward passes that score it; a whole chunk for DeepFool, whose number of
steps varies), leaves out a chunk that traced a graph (the first use of a model), and
records the mean over the call. A model not attacked yet in this process has no pace
(the page then gives the amount of work only).

Two kinds are kept apart: a gradient step (FGSM, PGD, the lesson's descent: one forward
and one backward pass, compiled) and a DeepFool chunk (a few iterations of one backward
pass per candidate class, eager). A step's time depends on how many images it carries, so it is
kept per chunk size.
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
    `model` (the latest attack's mean wins: it reflects the machine's current load)."""
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
