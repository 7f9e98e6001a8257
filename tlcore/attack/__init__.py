"""Adversarial attacks in pixel space [0, 255], in the style of foolbox: a base class owns
bounds, the epsilon ball, 8-bit rounding and success; each attack writes only its step.
Which attacks there are, and what each takes, is one table: `config.ATTACK_METHODS`."""
from __future__ import annotations

from tlcore.attack.base import CHUNK_IMAGES, Attack, AttackResult
from tlcore.attack.call import AttackStopped, Chunk
from tlcore.attack.gradient import FGSM, PGD, LessonDescent
from tlcore.attack.minimum_norm import DeepFool
from tlcore.attack.registry import attack_class, make_attack
from tlcore.attack.robustness import (curve_estimated_seconds, curve_image_steps,
                                      robustness_curve, robustness_curves, transfer)

__all__ = ["CHUNK_IMAGES", "Attack", "AttackResult", "AttackStopped", "Chunk", "DeepFool",
           "FGSM", "LessonDescent", "PGD", "attack_class",
           "curve_estimated_seconds", "curve_image_steps", "make_attack", "robustness_curve",
           "robustness_curves", "transfer"]
