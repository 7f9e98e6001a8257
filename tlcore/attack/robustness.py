"""How fragile is a model: accuracy against epsilon, and whether an attack transfers."""
from __future__ import annotations

from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, models
from tlcore.attack.base import Attack, AttackResult
from tlcore.attack.registry import make_attack
from tlcore.config import StepCallback


def robustness_curve(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                     epsilons: Sequence[float], *, method: str = "pgd", steps: int = 10,
                     seed: int = 0, num_classes: int | None = None,
                     on_step: StepCallback | None = None,
                     should_stop: Callable[[], bool] | None = None) -> list[dict]:
    """Accuracy under one bounded attack at each epsilon: `robustness_curves` for one
    method (see there for the arguments and the rows)."""
    return robustness_curves(model, images, labels, epsilons, methods=(method,), steps=steps,
                             seed=seed, num_classes=num_classes, on_step=on_step,
                             should_stop=should_stop)[method]


def curve_image_steps(epsilons: Sequence[float], methods: Sequence[str], steps: int,
                      count: int) -> int:
    """The work of `robustness_curves`, in image steps (images x steps of every attack):
    the total of its progress and the quantity `pace` turns into an expected time."""
    attacked = sum(1 for epsilon in epsilons if epsilon != 0)
    return sum(attacked * _curve_attack(method, steps, 0).image_steps(count)
               for method in methods)


def curve_estimated_seconds(model: keras.Model, epsilons: Sequence[float],
                            methods: Sequence[str], steps: int, count: int) -> float | None:
    """Expected seconds of `robustness_curves` on `model`, from the pace of its earlier
    attacks in this process (see `Attack.estimated_seconds`), or None when it has none."""
    attacked = sum(1 for epsilon in epsilons if epsilon != 0)
    total = 0.0
    for method in methods:
        seconds = _curve_attack(method, steps, 0).estimated_seconds(model, count)
        if seconds is None:
            return None
        total += attacked * seconds
    return total


def robustness_curves(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                      epsilons: Sequence[float], *, methods: Sequence[str] = ("fgsm", "pgd"),
                      steps: int = 10, seed: int = 0, num_classes: int | None = None,
                      on_step: StepCallback | None = None,
                      should_stop: Callable[[], bool] | None = None) -> dict[str, list[dict]]:
    """Accuracy under bounded attacks at each epsilon (0: the clean accuracy), overall and
    per class.

    Args:
        model: pixels in [0, 255] -> logits.
        images, labels: the images to attack (N, S, S, 3) and their true classes.
        epsilons: budgets in pixels (k for k/255).
        methods: bounded attacks (`config.BOUNDED_ATTACKS`), each run once over every
            epsilon (`Attack.sweep`).
        steps: PGD iterations.
        seed: PGD's random start.
        num_classes: the classes of the per-class rows (indices 0..num_classes-1); None:
            the largest label + 1.
        on_step: progress of the whole job as on_step(image steps done,
            `curve_image_steps(...)`, {"phase": "image steps", "detail": the method, the
            epsilon (which of how many) and the images}).
        should_stop: polled at every gradient step; True raises `AttackStopped`.

    Returns:
        {method: [{"epsilon", "accuracy", "success_rate" (share of the clean-correct
        images that the attack flipped), "mean_linf", "mean_l2", "images" (N),
        "per_class" (the accuracy of each class's images, None for a class with none among
        them), "per_class_images" (how many each class has)}] in the order of `epsilons`}.

    Raises:
        ValueError: a method is not a bounded attack, or a label is not below `num_classes`.
        config.LimitError: more images or steps than `config.limits()` allows.
        AttackStopped: `should_stop()` turned True.
    """
    for method in methods:
        if method not in config.BOUNDED_ATTACKS:
            raise ValueError(f"method={method!r}: a robustness curve needs a bounded attack "
                             f"({config.BOUNDED_ATTACKS})")
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    classes = _class_masks(labels, num_classes)
    config.check_limit("attack_images", len(images))
    config.check_limit("attack_steps", steps)
    clean_right = models.predict_logits(model, images).argmax(-1) == labels
    attacked = [epsilon for epsilon in epsilons if epsilon != 0]
    total = curve_image_steps(epsilons, methods, steps, len(images))
    curves, done_before = {}, 0
    if on_step is not None:  # the phase starts now: its ETA counts from here
        on_step(0, total, {"phase": "image steps", "detail": "starting"})
    for method in methods:
        chosen = _curve_attack(method, steps, seed)

        def progress(done: int, count: int, metrics: dict, offset: int = done_before) -> None:
            if on_step is not None:
                on_step(offset + done, total, {"phase": "image steps",
                                               "epsilon": metrics["epsilon"],
                                               "detail": metrics["detail"]})

        results = iter(chosen.sweep(model, images, labels, epsilons=attacked,
                                    should_stop=should_stop, on_step=progress))
        done_before += len(attacked) * chosen.image_steps(len(images))
        curves[method] = [_curve_row(epsilon, clean_right, classes, None if epsilon == 0
                                     else next(results)) for epsilon in epsilons]
    return curves


def _class_masks(labels: np.ndarray, num_classes: int | None) -> np.ndarray:
    """(num_classes, N) bool: which of the images belong to each class.

    Raises:
        ValueError: a label is not below `num_classes`.
    """
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if len(labels) else 0
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels run from {labels.min()} to {labels.max()}; with "
                         f"num_classes={num_classes} they must be in 0..{num_classes - 1}")
    return labels[None, :] == np.arange(num_classes)[:, None]


def _curve_row(epsilon: float, clean_right: np.ndarray, classes: np.ndarray,
               result: AttackResult | None) -> dict:
    """One point of a curve: accuracy under attack at `epsilon` (None: the clean images),
    overall and for each class of `classes` (`_class_masks`)."""
    count = len(clean_right)
    if result is None:
        right, linf, l2 = clean_right, np.zeros(count), np.zeros(count)
    else:
        right = result.adversarial_logits.argmax(-1) == result.labels
        linf, l2 = result.linf, result.l2
    flipped = clean_right & ~right
    return {"epsilon": float(epsilon), "accuracy": float(right.mean()),
            "success_rate": float(flipped.sum() / max(clean_right.sum(), 1)),
            "mean_linf": float(linf.mean()), "mean_l2": float(l2.mean()),
            "images": int(count),
            "per_class": [float(right[members].mean()) if members.any() else None
                          for members in classes],
            "per_class_images": [int(members.sum()) for members in classes]}


def _curve_attack(method: str, steps: int, seed: int) -> Attack:
    """The bounded attack of one curve, for every budget of it."""
    return make_attack(config.AttackConfig(method=method, steps=steps, seed=seed))


def transfer(result: AttackResult, other: keras.Model) -> dict:
    """Score an attack's clean and adversarial images with a second model.

    Images are resized (bilinear) to the second model's input side when it differs, which
    itself weakens the perturbation a little.

    Returns:
        {"clean_logits", "adversarial_logits" (N, K2), "fooled" (N,) bool: the second
        model's prediction changed between the clean and the adversarial image}.
    """
    side = int(other.input_shape[1])

    def fit(batch: np.ndarray) -> np.ndarray:
        if batch.shape[1] == side:
            return batch
        return tf.image.resize(batch, (side, side)).numpy()

    clean = models.predict_logits(other, fit(result.clean))
    adversarial = models.predict_logits(other, fit(result.adversarial))
    return {"clean_logits": clean, "adversarial_logits": adversarial,
            "fooled": clean.argmax(-1) != adversarial.argmax(-1)}
