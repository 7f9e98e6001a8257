"""Attacks by name: the class each entry of `config.ATTACK_METHODS` names, built from an
`AttackConfig`. The table is data in `config` (no TensorFlow to read it: the CLI's help and
the settings' checks use it); this module turns an entry into its class."""
from __future__ import annotations

import importlib

from tlcore import config
from tlcore.attack.base import Attack


def attack_class(method: str) -> type[Attack]:
    """The class of the attack `method` (a name in `config.ATTACK_METHODS`).

    Raises:
        ValueError: an unknown name.
    """
    if method not in config.ATTACK_METHODS:
        raise ValueError(f"method={method!r} is not one of {tuple(config.ATTACK_METHODS)}")
    module, _, name = config.ATTACK_METHODS[method].attack_class.rpartition(".")
    return getattr(importlib.import_module(module), name)


def make_attack(attack_config: config.AttackConfig) -> Attack:
    """Build the attack an `AttackConfig` describes, from the settings its method takes
    (a bounded attack's epsilon becomes its budget for calls that name none)."""
    settings = config.ATTACK_METHODS[attack_config.method].settings
    return attack_class(attack_config.method)(
        **{name: getattr(attack_config, name) for name in settings})
