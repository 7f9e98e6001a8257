"""The pixel rules every perturbation obeys, written once for NumPy arrays and TensorFlow
graphs alike (`keras.ops`): stay in the epsilon ball around the clean image and in
[0, 255], and land on the whole pixel values an 8-bit PNG holds without leaving the ball.

The attacks apply them to what they propose (`attack.Attack`), and a training on
perturbed images can apply the same ones inside its compiled step, so an adversarial
example means the same thing in both.
"""
from __future__ import annotations

from typing import Any

from keras import ops


def project(clean: Any, candidates: Any, epsilon: float | None) -> Any:
    """Clip candidates into the L-infinity ball of radius `epsilon` pixels around `clean`
    (when bounded; None for an unbounded attack) and into [0, 255]."""
    if epsilon is not None:
        candidates = ops.clip(candidates, clean - epsilon, clean + epsilon)
    return ops.clip(candidates, 0.0, 255.0)


def round_to_pixels(clean: Any, perturbed: Any, epsilon: float | None) -> Any:
    """Round to whole pixel values without leaving the epsilon ball.

    Rounding alone can step past the budget (3.4 + 0.6 rounds to 4 with epsilon 0.6 on an
    image at 3.4); the ceiling and floor of the ball's bounds stop that. Halves round to
    even, as NumPy's `rint`.
    """
    rounded = ops.round(perturbed)
    if epsilon is None:
        return ops.clip(rounded, 0.0, 255.0)
    low = ops.maximum(ops.ceil(clean - epsilon), 0.0)
    high = ops.minimum(ops.floor(clean + epsilon), 255.0)
    return ops.minimum(ops.maximum(rounded, low), high)


def signed_step(clean: Any, current: Any, gradient: Any, step_size: float,
                epsilon: float | None) -> Any:
    """One step of size `step_size` pixels along the gradient's sign, projected back into
    the ball and [0, 255]: PGD's step, in an attack and in an adversarial training."""
    return project(clean, current + step_size * ops.sign(gradient), epsilon)
