"""Two models side by side: the robustness lab's comparisons.

A standard and an adversarially trained run (or any two runs of the same data set) are
compared on the same images: clean accuracy and robustness curves, accuracy per class
under attack, how well each one's adversarial images fool the other (transfer), the ideal
image of every class for both, and what each model says of the other's ideal images.

The two models may take different image sides: every image is loaded at each model's own
side from the same files (`evaluate.sample_pixels`), and one model's images (adversarial or
ideal) are resized to the other's side before it scores them (`models.fit_input`).
Each function that takes a while reports one count over both models (`on_step`) and stops
when `should_stop()` turns True, as the attacks and renders it calls do.
"""
from __future__ import annotations

from typing import Callable, Sequence

import keras
import numpy as np

from tlcore import config, models, runs, visualize
from tlcore.attack import make_attack, robustness
from tlcore.config import StepCallback

PAIR = ("A", "B")  # how the two models are named on pages and in results


def check_pair(first: runs.Run, second: runs.Run) -> None:
    """Refuse two runs whose images cannot be compared one for one.

    Raises:
        ValueError: the runs are one run, have different classes, or were trained on
            different data or splits (the validation images of one could be training
            images of the other).
    """
    if first.run_dir == second.run_dir:
        raise ValueError("pick two different runs to compare")
    if first.classes != second.classes:
        raise ValueError(f"the runs have different classes ({len(first.classes)} and "
                         f"{len(second.classes)}): compare two runs of the same data set")
    data = [run.info.get("data", {}) for run in (first, second)]
    same = all(data[0].get(key) == data[1].get(key) for key in ("fingerprint", "seed"))
    if not same or not data[0].get("fingerprint"):
        raise ValueError("the runs were trained on different data or splits, so one's "
                         "validation images may be the other's training images: compare two "
                         "runs of the same data set and split seed")


def _within(on_step: StepCallback | None, before: int, total: int, name: str
            ) -> StepCallback | None:
    """A part's progress as a share of the whole count, its detail naming the model."""
    if on_step is None:
        return None

    def report(done: int, count: int, metrics: dict) -> None:
        detail = f"model {name}" + (f", {metrics['detail']}" if metrics.get("detail") else "")
        on_step(before + done, total, {**metrics, "detail": detail})
    return report


def robustness_pair(pair: Sequence[keras.Model], pixels: Sequence[np.ndarray],
                    labels: np.ndarray, epsilons: Sequence[float], *,
                    methods: Sequence[str] = ("fgsm", "pgd"), steps: int = 10, seed: int = 0,
                    on_step: StepCallback | None = None,
                    should_stop: Callable[[], bool] | None = None
                    ) -> list[dict[str, list[dict]]]:
    """`robustness.robustness_curves` of each model on the same images (each at its side).

    Args:
        pair: two models, pixels in [0, 255] -> logits.
        pixels: each model's images (N, S_i, S_i, 3) of the same files, in the same order.
        labels: (N,) their classes.
        epsilons, methods, steps, seed: as `robustness_curves`.
        on_step: one count over both models.
        should_stop: polled at every gradient step.

    Returns:
        Each model's curves, {method: rows with "per_class" accuracy}, in the pair's order.

    Raises:
        AttackStopped: `should_stop()` turned True.
        config.LimitError: more images or steps than `config.limits()` allows.
    """
    share = robustness.curve_image_steps(epsilons, methods, steps, len(labels))
    return [robustness.robustness_curves(
        model, images, labels, epsilons, methods=methods, steps=steps, seed=seed,
        num_classes=model.output_shape[-1], should_stop=should_stop,
        on_step=_within(on_step, number * share, 2 * share, PAIR[number]))
        for number, (model, images) in enumerate(zip(pair, pixels))]


def transfer_table(pair: Sequence[keras.Model], pixels: Sequence[np.ndarray],
                   labels: np.ndarray, attack_config: config.AttackConfig, *,
                   on_step: StepCallback | None = None,
                   should_stop: Callable[[], bool] | None = None) -> list[list[dict]]:
    """Attack each model on its own images, then score the adversarial images with both.

    Args:
        pair, pixels, labels: as `robustness_pair`.
        attack_config: the attack made on each model (a bounded one, untargeted).
        on_step: one count over both attacks.
        should_stop: polled at every gradient step.

    Returns:
        table[made_on][scored_by]: {"accuracy" (of the scoring model on the adversarial
        images; on the diagonal, the attacked model's own), "clean_accuracy" (on the clean
        images, at the scoring model's side), "fooled" (share of the images it had right
        that the attack made it get wrong), "images"}.

    Raises:
        AttackStopped: `should_stop()` turned True.
        config.LimitError: more images or steps than `config.limits()` allows.
    """
    chosen = make_attack(attack_config)
    share = chosen.progress_total(len(labels))
    table = []
    for number, (model, images) in enumerate(zip(pair, pixels)):
        result = chosen(model, np.asarray(images, np.float32), labels, should_stop=should_stop,
                        on_step=_within(on_step, number * share, 2 * share, PAIR[number]))
        row = []
        for scorer in pair:
            scored = robustness.transfer(result, scorer)
            right = scored["clean_logits"].argmax(-1) == labels
            still = scored["adversarial_logits"].argmax(-1) == labels
            row.append({"accuracy": float(still.mean()), "clean_accuracy": float(right.mean()),
                        "fooled": float((right & ~still).sum() / max(right.sum(), 1)),
                        "images": int(len(labels))})
        table.append(row)
    return table


def ideal_pair(pair: Sequence[keras.Model], classes: Sequence[int], preset: str, *,
               overrides: dict | None = None, on_step: StepCallback | None = None,
               should_stop: Callable[[], bool] | None = None
               ) -> list[list[visualize.RenderResult]]:
    """The same recipe's ideal image of every class in `classes`, for each model.

    Each model gets the recipe at its own side and input scale (`visualize.preset`), and
    the same seed, so both start from the same noise (at their sides).

    Args:
        pair: two models.
        classes: class indices, one image each.
        preset: a `visualize.PRESETS` name.
        overrides: RenderConfig fields for both (steps, tv_weight...).
        on_step: one count over both models' renders.
        should_stop: polled each step; the images done so far are returned.

    Returns:
        Each model's RenderResults, one per class reached, in the pair's order.
    """
    settings = [visualize.preset(preset, models.input_size(model),
                                 input_scale=models.input_scale(model), **(overrides or {}))
                for model in pair]
    share = visualize.class_render_steps(len(classes), settings[0].steps)
    rendered = []
    for number, (model, render_config) in enumerate(zip(pair, settings)):
        rendered.append(visualize.render_classes(
            model, classes, render_config, should_stop=should_stop,
            on_step=_within(on_step, number * share, 2 * share, PAIR[number])))
        if should_stop is not None and should_stop():
            break
    return rendered


def verdicts(judge: keras.Model, images: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) that `judge` gives images made for another model (resized
    to its side)."""
    return models.softmax(models.predict_logits(judge, models.fit_input(judge, images)))


def alignment(judge: keras.Model, images: np.ndarray, intended: Sequence[int]) -> dict:
    """How far ideal images look like their class to a model that did not make them: the
    share that `judge` (an independently trained model) classifies as the intended class,
    and its mean probability of that class.

    Returns:
        {"share", "mean_probability", "predicted": the judge's class index of each image,
        a list of ints (JSON as it is)}.
    """
    probabilities = verdicts(judge, images)
    intended = np.asarray(intended, dtype=np.int64)
    predicted = probabilities.argmax(-1)
    return {"share": float((predicted == intended).mean()),
            "mean_probability": float(probabilities[np.arange(len(intended)), intended].mean()),
            "predicted": predicted.tolist()}
