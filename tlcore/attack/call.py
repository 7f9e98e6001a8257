"""What one call of an attack holds, apart from the attack: its progress and stop, and the
chunk of images being attacked. The attack object keeps only its settings, so it can serve
several calls (and threads) at once."""
from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np

from tlcore.config import StepCallback


class AttackStopped(RuntimeError):
    """`should_stop()` turned True during an attack (cancelled, or out of time)."""


@dataclasses.dataclass
class CallProgress:
    """What `on_step` hears during one call and when it stops: the call's, never the
    attack object's (which may serve other calls at the same time).

    Attributes:
        title: the attack, for people.
        unit: what `on_step` counts (`Attack.progress_unit`).
        budgets: the call's budgets in pixels ([None]: an unbounded attack).
        sweeping: the call takes several budgets (`Attack.sweep`): reports name the budget.
        on_step, should_stop: the caller's (see `Attack.__call__`).
        count: images in the call's batch.
        per_budget: what `on_step` counts to at one budget.
        budget: which budget is being attacked (an index into `budgets`).
    """

    title: str = "Attack"
    unit: str = "image steps"
    budgets: list[float | None] = dataclasses.field(default_factory=lambda: [None])
    sweeping: bool = False
    on_step: StepCallback | None = None
    should_stop: Callable[[], bool] | None = None
    count: int = 0
    per_budget: int = 0
    budget: int = 0

    @property
    def epsilon(self) -> float | None:
        """The budget being attacked."""
        return self.budgets[self.budget]

    def report(self, done: int, position: str, headed: bool = True) -> None:
        """on_step(done over every budget, their total, {"phase": `unit`, "position": which
        step of which images, "detail": the attack (while sweeping, the budget too) and the
        position, and while sweeping "epsilon"}); `done` counts within the current budget."""
        if self.on_step is None:
            return
        heading = f"{self.title}: "
        if self.sweeping:
            heading = (f"{self.title} at {self.epsilon:g}/255, epsilon {self.budget + 1} of "
                       f"{len(self.budgets)}; ")
        metrics = {"phase": self.unit, "position": position,
                   "detail": heading + position if headed else position}
        if self.sweeping:
            metrics["epsilon"] = self.epsilon
        self.on_step(self.budget * self.per_budget + done, len(self.budgets) * self.per_budget,
                     metrics)

    def check_stop(self) -> None:
        """Raise AttackStopped when the caller's `should_stop()` says so."""
        if self.should_stop is not None and self.should_stop():
            raise AttackStopped("the attack was stopped (cancelled or out of time)")


@dataclasses.dataclass
class Chunk:
    """The images an attack's `run` works on (at most CHUNK_IMAGES of a call's batch), with
    what else it may read or record of the call.

    Attributes:
        model: pixels in [0, 255] -> logits.
        images: (n, S, S, 3) the clean pixels.
        labels: (n,) the classes to move away from.
        target: the class to reach, or None.
        epsilon: the budget in pixels, or None for an unbounded attack.
        offset: the chunk's first index in the batch (seeds PGD's random start).
        progress: the call's progress and stop.
        clean_logits: (n, K) the clean images' logits, where `run` has them (its first
            gradient at the clean images gives them), else None.
        steps_taken: steps begun on this chunk.
    """

    model: keras.Model
    images: np.ndarray
    labels: np.ndarray
    target: int | None = None
    epsilon: float | None = None
    offset: int = 0
    progress: CallProgress = dataclasses.field(default_factory=CallProgress)
    clean_logits: np.ndarray | None = None
    steps_taken: int = 0

    def check_stop(self) -> None:
        """Raise AttackStopped when the call's `should_stop()` says so."""
        self.progress.check_stop()
