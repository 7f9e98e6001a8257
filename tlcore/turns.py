"""First come, first served: heavy work takes turns, a few at a time.

Two queues share this class. Trainings take turns one at a time (`TRAINING`), because
Keras draws weights, dropout masks and shuffles from process-wide random state: two
trainings at once get different results from the same seed (measured: the histories
differ). Renders, sweeps, attacks, robustness curves and explanations take turns in
`WORK`, `config.limits().heavy_slots` at once (one in a public demo on a small box): on
a CPU, more at once only split the cores, and each holds hundreds of MB while it runs.
"""
from __future__ import annotations

import collections
import contextlib
import threading
from typing import Callable, Iterator

from tlcore import config
from tlcore.config import StepCallback
from tlcore.fitting import TrainingCancelled


class WaitCancelled(RuntimeError):
    """`should_stop()` turned True while waiting for a turn."""


class Turns:
    """A first-come, first-served queue with `slots` holders at a time.

    Args:
        slots: holders at once; None reads `config.limits().heavy_slots` at each check.
        noun: what waits, for the progress message ("training", "job").
        cancelled: the exception raised when a waiter is stopped.
    """

    def __init__(self, *, slots: int | None = None, noun: str = "job",
                 cancelled: type[Exception] = WaitCancelled) -> None:
        self._slots = slots
        self._noun = noun
        self._cancelled = cancelled
        self._condition = threading.Condition()
        self._waiting: collections.deque[object] = collections.deque()
        self._holders: set[int] = set()  # thread idents

    @property
    def cancelled(self) -> type[Exception]:
        """What `turn` raises when its waiter is stopped."""
        return self._cancelled

    @property
    def slots(self) -> int:
        """Holders allowed at once."""
        return max(1, self._slots if self._slots is not None else config.limits().heavy_slots)

    def ahead(self) -> int:
        """How many holders and waiters a new caller would find before it."""
        with self._condition:
            return len(self._waiting) + len(self._holders)

    def busy(self) -> int:
        """How many hold a turn now."""
        with self._condition:
            return len(self._holders)

    @contextlib.contextmanager
    def turn(self, on_step: StepCallback | None = None,
             should_stop: Callable[[], bool] | None = None) -> Iterator[None]:
        """Wait for this caller's turn, then hold it for the block.

        A thread that already holds a turn gets the block at once (no deadlock when heavy
        work calls other heavy work).

        Args:
            on_step: called about twice a second while waiting, as on_step(0, 0,
                {"phase": "waiting for a turn: N ahead", "ahead": N}).
            should_stop: polled while waiting; True gives the place up.

        Raises:
            The `cancelled` exception: `should_stop()` turned True while waiting.
        """
        me = threading.get_ident()
        with self._condition:
            if me in self._holders:
                nested = True
            else:
                nested = False
                ticket = object()
                self._waiting.append(ticket)
        if nested:
            yield
            return
        try:
            self._wait(ticket, me, on_step, should_stop)
        except BaseException:  # cancelled, or a failing callback: give the place up
            with self._condition:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._condition.notify_all()
            raise
        try:
            yield
        finally:
            with self._condition:
                self._holders.discard(me)
                self._condition.notify_all()

    def _wait(self, ticket: object, me: int, on_step: StepCallback | None,
              should_stop: Callable[[], bool] | None) -> None:
        while True:
            with self._condition:
                if len(self._holders) < self.slots and self._waiting[0] is ticket:
                    self._waiting.popleft()
                    self._holders.add(me)
                    self._condition.notify_all()  # a second free slot: the next may go too
                    return
                ahead = self._waiting.index(ticket) + len(self._holders) - self.slots + 1
            if should_stop is not None and should_stop():
                raise self._cancelled("cancelled while waiting for its turn; nothing done")
            if on_step is not None:  # outside the lock: a callback may take its time
                on_step(0, 0, {"phase": f"waiting for a turn: {max(ahead, 1)} "
                                        f"{self._noun}(s) ahead", "ahead": max(ahead, 1)})
            with self._condition:
                if len(self._holders) >= self.slots or self._waiting[0] is not ticket:
                    self._condition.wait(timeout=0.5)


# Trainings, one at a time (`train.train_classifier` takes its turn here).
TRAINING = Turns(slots=1, noun="training", cancelled=TrainingCancelled)
# Renders, sweeps, attacks, robustness curves and explanations of every visitor.
WORK = Turns(noun="job")
