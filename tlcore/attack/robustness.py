"""How fragile is a model: accuracy against epsilon, and whether an attack transfers."""
from __future__ import annotations

from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, evaluate
from tlcore.attack.base import AttackResult
from tlcore.config import StepCallback


def robustness_curve(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                     epsilons: Sequence[float], *, method: str = "pgd", steps: int = 10,
                     seed: int = 0, on_step: StepCallback | None = None,
                     should_stop: Callable[[], bool] | None = None) -> list[dict]:
    """Accuracy under a bounded attack at each epsilon (0: the clean accuracy).

    Args:
        model: pixels in [0, 255] -> logits.
        images, labels: the images to attack (N, S, S, 3) and their true classes.
        epsilons: budgets in pixels (k for k/255).
        method: "fgsm" or "pgd".
        steps: PGD iterations.
        seed: PGD's random start.
        on_step: progress as on_step(done, total, {"phase": ..., "epsilon": ...}).
        should_stop: polled at every gradient step; True raises `AttackStopped`.

    Returns:
        [{"epsilon", "accuracy", "success_rate" (share of the clean-correct images that
        the attack flipped), "mean_linf", "mean_l2"}] in the order of `epsilons`.

    Raises:
        config.LimitError: more images or steps than `config.limits()` allows.
        AttackStopped: `should_stop()` turned True.
    """
    from tlcore import attack  # the package builds attacks; imported here to avoid a cycle

    if method not in config.BOUNDED_ATTACKS:
        raise ValueError(f"method={method!r}: a robustness curve needs a bounded attack "
                         f"({config.BOUNDED_ATTACKS})")
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    config.check_limit("attack_images", len(images))
    config.check_limit("attack_steps", steps)
    clean_right = evaluate.predict_logits(model, images).argmax(-1) == labels
    rows, attacked = [], [epsilon for epsilon in epsilons if epsilon != 0]
    for epsilon in epsilons:
        if epsilon == 0:
            right, linf, l2 = clean_right, np.zeros(len(images)), np.zeros(len(images))
        else:
            chosen = attack.make_attack(config.AttackConfig(method=method, epsilon=epsilon,
                                                            steps=steps, seed=seed))
            before = attacked.index(epsilon) * len(images)

            def progress(done: int, count: int, metrics: dict) -> None:
                if on_step is not None:
                    on_step(before + done, len(attacked) * count,
                            {"phase": f"{method} at {epsilon:g}/255", "epsilon": epsilon})

            result = chosen(model, images, labels, should_stop=should_stop, on_step=progress)
            right = result.adversarial_logits.argmax(-1) == result.labels
            linf, l2 = result.linf, result.l2
        flipped = clean_right & ~right
        rows.append({"epsilon": float(epsilon), "accuracy": float(right.mean()),
                     "success_rate": float(flipped.sum() / max(clean_right.sum(), 1)),
                     "mean_linf": float(linf.mean()), "mean_l2": float(l2.mean())})
    return rows


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

    clean = evaluate.predict_logits(other, fit(result.clean))
    adversarial = evaluate.predict_logits(other, fit(result.adversarial))
    return {"clean_logits": clean, "adversarial_logits": adversarial,
            "fooled": clean.argmax(-1) != adversarial.argmax(-1)}
