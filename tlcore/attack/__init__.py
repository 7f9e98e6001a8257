"""Adversarial attacks in pixel space [0, 255], in the style of foolbox: a base class owns
bounds, the epsilon ball, 8-bit rounding and success; each attack writes only its step."""
from __future__ import annotations

from tlcore import config
from tlcore.attack.base import CHUNK_IMAGES, Attack, AttackResult, AttackStopped
from tlcore.attack.gradient import FGSM, PGD, LessonDescent
from tlcore.attack.minimum_norm import DeepFool
from tlcore.attack.robustness import (curve_estimated_seconds, curve_image_steps,
                                      robustness_curve, robustness_curves, transfer)

ATTACKS: dict[str, type[Attack]] = {"fgsm": FGSM, "pgd": PGD, "lesson": LessonDescent,
                                    "deepfool": DeepFool}


def make_attack(attack_config: config.AttackConfig) -> Attack:
    """Build the attack an `AttackConfig` describes."""
    if attack_config.method == "fgsm":
        return FGSM(epsilon=attack_config.epsilon)
    if attack_config.method == "lesson":
        return LessonDescent(steps=attack_config.steps, step_size=attack_config.step_size)
    if attack_config.method == "deepfool":
        return DeepFool(steps=attack_config.steps)
    return PGD(epsilon=attack_config.epsilon, steps=attack_config.steps,
               step_size=attack_config.step_size, seed=attack_config.seed)


__all__ = ["ATTACKS", "CHUNK_IMAGES", "Attack", "AttackResult", "AttackStopped", "DeepFool",
           "FGSM", "LessonDescent", "PGD",
           "curve_estimated_seconds", "curve_image_steps", "make_attack", "robustness_curve",
           "robustness_curves", "transfer"]
