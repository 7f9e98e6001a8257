"""Adversarial attacks in pixel space [0, 255]: a shared base class and the attacks."""
from __future__ import annotations

from tlcore import config
from tlcore.attack.base import Attack, AttackResult
from tlcore.attack.gradient import FGSM, PGD

ATTACKS: dict[str, type[Attack]] = {"fgsm": FGSM, "pgd": PGD}


def make_attack(attack_config: config.AttackConfig) -> Attack:
    """Build the attack an `AttackConfig` describes."""
    if attack_config.method == "fgsm":
        return FGSM(epsilon=attack_config.epsilon)
    return PGD(epsilon=attack_config.epsilon, steps=attack_config.steps,
               step_size=attack_config.step_size, seed=attack_config.seed)


__all__ = ["ATTACKS", "Attack", "AttackResult", "FGSM", "PGD", "make_attack"]
