"""How a training goes and how it ends, said once for every training loop.

Three loops train models: Keras `fit` (`train._fit`, through one thin callback), the
fast-mode head's compiled loop (`head_training.fit_head`) and the multi-worker loop
(`multiworker.fit`). Each tells an `EpochRecord` what happens, and the record holds the
rules they share:

- progress: `on_step(step, total, metrics)`, where metrics always hold "phase", "epoch"
  (from 1), "epochs" and "epoch_end"; an epoch's end adds its metrics ("loss",
  "accuracy", "val_loss", "val_accuracy"), an epoch's start "epoch_begin" and a
  validation pass "validating";
- cancel: `should_stop()` is polled between batches (or blocks of them), and a partial
  epoch never enters the history;
- divergence: a loss that is NaN or infinite stops training there; the partial epoch is
  dropped and `FitOutcome.diverged` says where, and which learning rate to lower;
- the best epoch: the weights of the epoch with the best validation accuracy are kept (the
  last epoch's without validation; the starting weights while no epoch beats a baseline);
- the ending: `EpochRecord.outcome` says how it ended, or raises `TrainingCancelled` or
  `TrainingDiverged` when no epoch finished, since there is nothing to keep.

Early stopping is Keras's own `EarlyStopping`, in the Keras loop only. `TrainingCancelled`
belongs here with the rest of this vocabulary; it is still defined in `config` and
imported from there, so callers use `fitting.TrainingCancelled`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from tlcore.config import StepCallback

__all__ = ["EpochRecord", "FitOutcome", "TrainingCancelled", "TrainingDiverged",
           "divergence_message", "steps_per_epoch"]


@dataclasses.dataclass
class FitOutcome:
    """How a training loop ended.

    Attributes:
        history: per-epoch metrics of the finished epochs ("loss", "accuracy", "val_..."),
            an earlier stage's or a resumed training's first.
        cancelled: stopped by the user.
        best_epoch: the epoch whose weights were kept (0: the starting weights).
        diverged: why training stopped on its own, when the loss became NaN or infinite;
            the partial epoch is dropped and the best finished epoch kept.
    """

    history: dict[str, list[float]]
    cancelled: bool
    best_epoch: int
    diverged: str | None = None

    def run_facts(self) -> dict[str, Any]:
        """The run.json facts of how the training ended ("diverged" only when it did)."""
        return {"cancelled": self.cancelled, "best_epoch": self.best_epoch,
                **({"diverged": self.diverged} if self.diverged else {})}


class TrainingCancelled(RuntimeError):
    """Training was stopped before anything worth saving existed (raised by every training
    loop: Keras `fit`'s, the head's and the multi-worker one)."""


class TrainingDiverged(ValueError):
    """The loss stopped being finite before any epoch finished: there is nothing to keep."""


def divergence_message(epoch: int, batch: int | None, learning_rate: float) -> str:
    """Say where the loss stopped being finite (epoch and batch from 1) and what to change."""
    where = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
    return (f"the loss became NaN or infinite in {where}: training diverged. Lower the "
            f"learning rate (it was {learning_rate:g}) or check the data")


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Batches in an epoch of `examples` (the last one may be short); at least 1."""
    return max(1, -(-examples // batch_size))


class EpochRecord:
    """What happens in one training loop, told by the loop: progress, cancel, divergence,
    the history of whole epochs and the best epoch's weights.

    Epochs are counted from 0 in the calls, as Keras does, and from 1 in what is reported
    and recorded.

    Args:
        epochs: the epochs planned, for progress (a resumed training's total).
        steps_per_epoch: batches (or steps) in an epoch, for progress.
        on_step: progress callback `(step, total, metrics)`, or None.
        should_stop: polled by `cancel_requested`; True cancels.
        phase: the "phase" of the progress reports.
        learning_rate: the rate to name when the loss diverges.
        history: epochs finished before this loop (an earlier stage, or a resumed
            training's); this loop's whole epochs are appended.
        baseline: the validation accuracy of the starting weights, when they are worth
            keeping (fine-tuning a trained head): an epoch must beat it to replace them.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, on_step: StepCallback | None = None,
                 should_stop: Callable[[], bool] | None = None, *, learning_rate: float,
                 phase: str = "training", history: dict[str, list[float]] | None = None,
                 baseline: float | None = None) -> None:
        self.epochs, self.steps_per_epoch, self.phase = epochs, steps_per_epoch, phase
        self.on_step, self.should_stop, self.learning_rate = on_step, should_stop, learning_rate
        self.history = {key: list(values) for key, values in (history or {}).items()}
        self.baseline = baseline
        self.best_epoch = 0
        self.best_accuracy = -1.0 if baseline is None else baseline
        self.best_weights: Any = None
        self.cancelled = False
        self.diverged: str | None = None

    @property
    def stopped(self) -> bool:
        """Cancelled or diverged: the epoch under way is partial and training ends."""
        return self.cancelled or self.diverged is not None

    def begin(self, weights: Callable[[], Any]) -> None:
        """Keep the starting weights (`weights()`) when they are the baseline to beat."""
        if self.baseline is not None:
            self.best_weights = weights()

    def epoch_begins(self, epoch: int) -> None:
        """Say that an epoch began: its first batch may also trace the training step,
        which takes a while."""
        self._report(epoch * self.steps_per_epoch, epoch, {"epoch_end": False,
                                                            "epoch_begin": True})

    def cancel_requested(self) -> bool:
        """Poll `should_stop`; True from the moment it asked to stop (`cancelled`)."""
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
        return self.cancelled

    def loss_is_finite(self, loss: float, epoch: int, batch: int | None = None) -> bool:
        """Check a batch's (or block's) loss; a NaN or infinite one means the training
        diverged in this epoch (and batch, when the loop knows it): False, and `diverged`
        says so."""
        if math.isfinite(loss):
            return True
        self.diverged = divergence_message(epoch + 1, None if batch is None else batch + 1,
                                           self.learning_rate)
        return False

    def batch_ends(self, epoch: int, batch: int, logs: dict[str, Any]) -> None:
        """Report a finished batch with the epoch's running metrics."""
        self._report(epoch * self.steps_per_epoch + batch + 1, epoch,
                     {"epoch_end": False, **_floats(logs)})

    def validating(self, epoch: int, step: int, steps: int) -> None:
        """Report step `step` of `steps` of an epoch's validation pass (none when no steps)."""
        if self.on_step is not None and steps:
            self.on_step(step, steps, {
                "phase": f"checking epoch {epoch + 1} on the validation images",
                "epoch": epoch + 1, "epochs": self.epochs, "epoch_end": False,
                "validating": True})

    def end_epoch(self, epoch: int, logs: dict[str, Any], weights: Callable[[], Any]) -> None:
        """Record an epoch as it ends, then report it with its metrics.

        A whole epoch enters the history. Its weights (`weights()`, called only to keep
        them) are kept when its validation accuracy is the best so far, or always without
        validation; an epoch whose loss is not finite is never kept. Keras also ends, and
        validates, the partial epoch it was stopped in (cancelled or diverged): that one is
        only reported, neither in the history nor kept as the best (its weights saw part of
        the data, and its validation score would reward that).
        """
        logs = _floats(logs)
        if not self.stopped:
            for key, value in logs.items():
                self.history.setdefault(key, []).append(value)
            if math.isfinite(logs.get("loss", 0.0)):
                accuracy = logs.get("val_accuracy")
                if accuracy is None or accuracy > self.best_accuracy:
                    self.best_epoch, self.best_weights = epoch + 1, weights()
                    if accuracy is not None:
                        self.best_accuracy = accuracy
        self._report((epoch + 1) * self.steps_per_epoch, epoch, {"epoch_end": True, **logs})

    def outcome(self) -> FitOutcome:
        """How the loop ended.

        Raises:
            TrainingDiverged, TrainingCancelled: no epoch finished (none before this loop
                either): there is nothing to keep.
        """
        if not self.history:
            if self.diverged:
                raise TrainingDiverged(self.diverged)
            raise TrainingCancelled("cancelled before the first epoch finished; nothing saved")
        return FitOutcome(self.history, self.cancelled, self.best_epoch, self.diverged)

    def _report(self, step: int, epoch: int, metrics: dict[str, Any]) -> None:
        if self.on_step is not None:
            self.on_step(step, self.epochs * self.steps_per_epoch,
                         {"phase": self.phase, "epoch": epoch + 1, "epochs": self.epochs,
                          **metrics})


def _floats(logs: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in logs.items()}
