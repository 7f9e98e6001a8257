"""The price of robustness on one's own data: one training per adversarial budget, each
measured on the same validation images, clean and under PGD, beside its training time.

Papers report this trade-off on CIFAR-10 and ImageNet (`tlcore.references`); a sweep
measures it where it matters to the user, with their data, backbone and settings.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tlcore import config, data, estimate, evaluate, runs, train
from tlcore.attack import robustness
from tlcore.config import StepCallback

SPLIT = "validation"


def sweep(train_config: config.TrainConfig, dataset: data.Dataset, budgets: Sequence[float],
          attack_epsilons: Sequence[float], *, steps: int = 10, limit: int = 200,
          runs_dir: Path | None = None, on_step: StepCallback | None = None,
          should_stop: Callable[[], bool] | None = None) -> list[dict]:
    """Train one run per adversarial budget and measure what each bought and what it cost.

    Every run has `train_config`'s settings (seed, epochs, method...) with its own
    `adversarial_epsilon`; budget 0, the standard run, is always trained, first. Each is
    saved as an ordinary run, then scored on the same stratified sample of the validation
    split (`evaluate.sample_arrays`): clean, and under PGD at every attack budget in one
    sweep (`robustness_curve`).

    Args:
        train_config: the settings of every run; its `adversarial_epsilon` is replaced.
        dataset: the data, opened once for every run.
        budgets: adversarial training budgets in pixels of [0, 255] (4 = 4/255).
        attack_epsilons: the PGD budgets every run is measured at, in pixels (0s dropped:
            the clean accuracy is always measured).
        steps: PGD's steps.
        limit: at most this many validation images, drawn from every class.
        runs_dir: where the runs go; None: `config.runs_dir()`.
        on_step: each run's progress as `train.train_classifier` and then
            `robustness_curve` report it, with metrics["run"] saying which budget and which
            run of how many ("budget 4/255, run 2 of 3").
        should_stop: polled by the trainings and the attacks.

    Returns:
        One row per budget, ascending: {"budget", "run_id", "run_dir", "clean_accuracy",
        "pgd_accuracy" (one per attack budget, in their order), "seconds" (the training's, as
        its run records them), "time_ratio" (seconds over the standard run's), "curve" (the
        PGD rows of `robustness_curve`, clean first, with per-class accuracy)}.

    Raises:
        ValueError: the validation split is empty, or a budget is refused (fast mode cannot
            train adversarially), before anything trains.
        TrainingCancelled, AttackStopped: `should_stop()` turned True (finished runs stay).
        config.LimitError: over a limit of `config.limits()` (epochs, images, steps...).
    """
    budgets = sorted({0.0, *(float(budget) for budget in budgets)})
    settings = [dataclasses.replace(train_config, adversarial_epsilon=budget)
                for budget in budgets]  # each validates itself: a refusal comes first
    images, labels = _validation_sample(
        dataset, estimate.resolve_image_size(train_config, dataset), limit)
    epsilons = [0.0, *(float(epsilon) for epsilon in attack_epsilons if epsilon)]
    rows: list[dict] = []
    for number, (budget, run_config) in enumerate(zip(budgets, settings), start=1):
        report = _labelled(on_step, f"budget {budget:g}/255, run {number} of {len(budgets)}")
        run = train.train_classifier(run_config, dataset, runs_dir=runs_dir, on_step=report,
                                     should_stop=should_stop)
        curve = robustness.robustness_curve(
            run.load_model(), images, labels, epsilons, method="pgd", steps=steps,
            num_classes=len(run.classes), on_step=report, should_stop=should_stop)
        rows.append(_row(budget, run, curve, rows[0]["seconds"] if rows else None))
    return rows


def _validation_sample(dataset: data.Dataset, size: int, limit: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Every run's images: float32 pixels at `size` and labels.

    Raises:
        ValueError: the split has no images.
    """
    images, labels = evaluate.sample_arrays(dataset, SPLIT, size, limit)
    if not len(labels):
        raise ValueError(f"the {SPLIT} split of {dataset.name} has no images to measure "
                         "the runs on")
    return images.astype(np.float32), labels


def _labelled(on_step: StepCallback | None, label: str) -> StepCallback | None:
    """`on_step` with metrics["run"] = label."""
    if on_step is None:
        return None

    def report(step: int, total: int, metrics: dict) -> None:
        on_step(step, total, {**metrics, "run": label})
    return report


def _row(budget: float, run: runs.Run, curve: list[dict], standard_seconds: float | None
         ) -> dict:
    """One budget's line of the sweep (`standard_seconds` None: this is the standard run)."""
    seconds = run.info["metrics"]["seconds"]
    return {"budget": budget, "run_id": run.run_id, "run_dir": str(run.run_dir),
            "clean_accuracy": curve[0]["accuracy"],
            "pgd_accuracy": [row["accuracy"] for row in curve[1:]],
            "seconds": seconds, "time_ratio": seconds / (standard_seconds or seconds),
            "curve": curve}
