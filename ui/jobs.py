"""Background jobs that outlive reruns, page changes and closed tabs.

A job runs in a thread and keeps its progress in a snapshot that pages poll (with
`st.fragment(run_every=...)`). Three kinds share that machinery: a training
(`tlcore.train.train_classifier`), a backbone bake-off (`tlcore.bakeoff.run`: one training
per backbone) and the preparation of a data set that must first be downloaded
(Oxford-IIIT Pets, PetImages). The registry is shared by the server (`st.cache_resource`).
Trainings and bake-offs take turns, first come first served (`tlcore.turns.TRAINING`): a
job waits, showing how many are ahead, until the one before it ends. Each visitor may have
one training or bake-off running or waiting, and the server at most MAX_TRAINING_JOBS, so
one visitor cannot starve the others; a data set is prepared by at most one job, which
every visitor who asks for it watches.

A server stopped by SIGTERM or SIGINT while a job runs ends its process at once, once
Streamlit has closed its sessions (`_end_process_when_stopped`): a training resumes from
its last finished epoch's checkpoint, a download from its partial file.
"""
from __future__ import annotations

import atexit
import contextlib
import copy
import dataclasses
import logging
import os
import secrets
import sys
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Iterator, Sequence

import streamlit as st
from streamlit.runtime import Runtime, RuntimeState

from tlcore import (bakeoff, backbones, checkpoints, config, data, fitting, runs, train,
                    visitors)

MAX_TRAINING_JOBS = 6  # trainings and bake-offs running and waiting, over all visitors
FORGET_AFTER_SECONDS = 6 * 3600  # finished jobs are dropped from memory (their runs stay)


class JobLimitError(RuntimeError):
    """A new job would exceed the visitor's or the server's limit."""


@dataclasses.dataclass
class JobSnapshot:
    """A copy of a job's progress, safe to read while the job runs."""

    job_id: str
    state: str  # "running", "done", "failed", "cancelled"
    phase: str
    step: int
    total: int
    started: float
    phase_started: float
    epochs: list[dict[str, float]]
    run_dir: str | None = None
    error: str | None = None
    count_started: float = 0.0  # when the current count (step of total) was first heard of
    count_from: int = 0  # and at which step
    in_percent: bool = False  # the count is of work units: say the share done, not them

    @property
    def fraction(self) -> float:
        """Share of the current phase done, in [0, 1]."""
        return min(1.0, self.step / self.total) if self.total else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left in the current phase, from its rate so far."""
        if self.step <= self.count_from or self.state != "running":
            return None
        elapsed = time.time() - self.count_started
        return elapsed / (self.step - self.count_from) * (self.total - self.step)

    def progress_text(self) -> str:
        """One line for a progress bar: phase, amount done (MB when downloading), ETA."""
        if not self.total:
            return f"{self.phase}..."
        if self.in_percent:
            amount = f"{self.fraction:.0%} done"
        elif self.phase.startswith("downloading"):
            digits = 0 if self.total >= 1e8 else 1
            amount = f"{self.step / 1e6:,.{digits}f} of {self.total / 1e6:,.{digits}f} MB"
        else:
            amount = f"{self.step:,}/{self.total:,}"
        eta = self.eta_seconds
        return f"{self.phase}: {amount}" + (f", about {eta:.0f} s left" if eta is not None
                                            else "")


class BackgroundJob:
    """Work in a background thread, with progress and a cancel switch; subclasses `_run`."""

    kind = "job"

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        now = time.time()
        self._snapshot = JobSnapshot(secrets.token_hex(6), "running", "starting", 0, 0, now,
                                     now, [])
        self._thread = threading.Thread(target=self._work, name=f"{self.kind}-{self.job_id}",
                                        daemon=True)

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self._snapshot.job_id

    def start(self) -> None:
        """Start the thread."""
        _watch_for_shutdown(self)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop at its next check (after the current batch or chunk)."""
        self._cancel.set()

    def snapshot(self) -> JobSnapshot:
        """Return a copy of the progress."""
        with self._lock:
            return copy.deepcopy(self._snapshot)

    def is_running(self) -> bool:
        """True until the thread has finished."""
        return self._snapshot.state == "running"

    def _on_step(self, step: int, total: int, metrics: dict[str, Any]) -> None:
        with self._lock:
            snapshot = self._snapshot
            now = time.time()
            if metrics.get("phase") != snapshot.phase:
                snapshot.phase, snapshot.phase_started = metrics.get("phase", ""), now
            # The rate is timed from where a count began (a new total, or a count going
            # back), not from the phase's start: after an epoch's validation pass the
            # training's count goes on where it was, and its time left must not come from
            # all its steps over a few seconds.
            if total != snapshot.total or step < snapshot.step or not snapshot.count_started:
                snapshot.count_started, snapshot.count_from = now, step
            snapshot.step, snapshot.total = step, total
            if metrics.get("epoch_end"):
                snapshot.epochs.append({key: value for key, value in metrics.items()
                                        if isinstance(value, (int, float))})

    def _run(self) -> tuple[str, str | None]:
        """Do the work; return (final state, run folder or None)."""
        raise NotImplementedError

    def _work(self) -> None:
        run_dir, error = None, None
        try:
            state, run_dir = self._run()
        except fitting.TrainingCancelled as cancelled:
            state, error = "cancelled", str(cancelled)
        except (ValueError, backbones.WeightsUnavailableError) as failure:
            state, error = "cancelled" if self._cancel.is_set() else "failed", str(failure)
        except Exception as failure:  # a bug: keep the trace for the page, never kill the server
            state, error = "failed", "".join(traceback.format_exception_only(failure)).strip()
            traceback.print_exc()
        with self._lock:
            self._snapshot.state, self._snapshot.run_dir = state, run_dir
            self._snapshot.error = error or self._snapshot.error


class _TrainingTurnJob(BackgroundJob):
    """A job that trains in its turn of the training queue, within a public demo's time
    budget (`Limits.training_seconds`, counted from its turn, not its wait)."""

    noun = "training"  # what the time budget is per, for people

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self._budget = config.limits().training_seconds
        self._began: float | None = None
        self._out_of_time = False

    def _on_step(self, step: int, total: int, metrics: dict[str, Any]) -> None:
        if self._began is None and not str(metrics.get("phase", "")).startswith("waiting"):
            self._began = time.monotonic()  # the budget starts with the turn, not the wait
        super()._on_step(step, total, metrics)

    def _over_budget(self) -> str:
        return (f"Stopped at this demo's time budget of {self._budget / 60:g} minutes per "
                f"{self.noun}")

    @contextlib.contextmanager
    def _saying_budget(self, when: str) -> Iterator[None]:
        """A stop before anything was kept says so, and names the time budget when that,
        not a Cancel, stopped it (`when`: "before it began")."""
        try:
            yield
        except fitting.TrainingCancelled:
            if self._out_of_time:
                raise fitting.TrainingCancelled(f"{self._over_budget()} {when}; nothing was "
                                              "saved") from None
            raise

    def _should_stop(self) -> bool:
        """Cancelled, or over the time budget of a training (`Limits.training_seconds`)."""
        if self._budget is not None and self._began is not None:
            self._out_of_time = time.monotonic() - self._began > self._budget
        return self._cancel.is_set() or self._out_of_time


class TrainingJob(_TrainingTurnJob):
    """One training (new, or resuming an interrupted one)."""

    kind = "train"

    def __init__(self, owner: str, train_config: config.TrainConfig, data_source: str,
                 resume: checkpoints.Checkpoint | None = None) -> None:
        super().__init__(owner)
        self.train_config = train_config
        self.data_source = data_source
        self.resume = resume
        self.run_id = resume.run_id if resume else runs.new_run_id(train_config.backbone,
                                                                   train_config.mode)

    def _run(self) -> tuple[str, str | None]:
        with self._saying_budget("before its first epoch finished"):
            if self.resume is not None:
                run = train.resume_training(self.resume, on_step=self._on_step,
                                            should_stop=self._should_stop)
            else:
                dataset = data.load_dataset(self.data_source, seed=self.train_config.seed)
                run = train.train_classifier(self.train_config, dataset, on_step=self._on_step,
                                             should_stop=self._should_stop, run_id=self.run_id,
                                             owner=self.owner)
        if self._out_of_time:
            with self._lock:
                self._snapshot.error = (f"{self._over_budget()}: the finished epochs were "
                                        "kept as a run.")
        return ("cancelled" if run.info.get("cancelled") else "done"), str(run.run_dir)


class BakeoffJob(_TrainingTurnJob):
    """A backbone bake-off: one fast-mode training per chosen body, one progress count over
    them all (`tlcore.bakeoff.run`); its table is `result` once it has ended."""

    kind = "bakeoff"
    noun = "bake-off"

    def __init__(self, owner: str, chosen: Sequence[bakeoff.Candidate],
                 base: config.TrainConfig, data_source: str, speed: float = 1.0) -> None:
        super().__init__(owner)
        self.chosen, self.base, self.speed = list(chosen), base, speed
        self.data_source = data_source
        self.result: dict[str, Any] | None = None
        self._snapshot.in_percent = True

    def _on_step(self, step: int, total: int, metrics: dict[str, Any]) -> None:
        # One line for the bar: which body of how many, then its phase. Epochs are not
        # kept: the curves of one body after another would read as one training.
        phase = str(metrics.get("phase", ""))
        if metrics.get("run"):
            phase = f"{metrics['run']}: {phase}"
        super()._on_step(step, total, {"phase": phase})

    def _run(self) -> tuple[str, str | None]:
        dataset = data.load_dataset(self.data_source, seed=self.base.seed)
        with self._saying_budget("before it began"):
            result = bakeoff.run(self.chosen, dataset, base=self.base, on_step=self._on_step,
                                 should_stop=self._should_stop, owner=self.owner,
                                 speed=self.speed)
        if result["stopped"] and self._out_of_time:
            result["stopped"] = (f"{self._over_budget()}; the bodies trained by then are in "
                                 "the table")
        self.result = result
        return ("cancelled" if result["stopped"] else "done"), None


class PrepareDataJob(BackgroundJob):
    """Download, extract and check a data set once, so opening it later is quick."""

    kind = "data"

    def __init__(self, owner: str, data_source: str) -> None:
        super().__init__(owner)
        self.data_source = data_source

    def _run(self) -> tuple[str, str | None]:
        data.load_dataset(self.data_source, on_step=self._on_step,
                          should_stop=self._cancel.is_set)
        return "done", None


_STARTED: weakref.WeakSet[BackgroundJob] = weakref.WeakSet()  # jobs of this process
_HOOK_LOCK = threading.Lock()


def _watch_for_shutdown(job: BackgroundJob) -> None:
    """Remember a job for `_end_process_when_stopped`, registered with the first job."""
    with _HOOK_LOCK:
        if not _STARTED:
            # Called when the main thread ends, before Python joins the other threads:
            # the thread pools decoding images for a training would otherwise first finish
            # their whole queue (minutes for a large data set).
            register = getattr(threading, "_register_atexit", atexit.register)
            try:
                register(_end_process_when_stopped)
            except RuntimeError:  # already shutting down
                pass
        _STARTED.add(job)


def _end_process_when_stopped() -> None:
    """End the process without finalising the interpreter when Streamlit was stopped
    (SIGTERM, SIGINT) while a job still runs.

    A job's thread stays inside TensorFlow until its current call returns (one batch:
    up to a minute on two loaded cores), its compute threads keeping the cores busy,
    while Python's finalisation collects the whole heap of TensorFlow, Keras and
    Streamlit on what CPU is left: the server took 8-14 s to stop on two cores, over 50 s
    under load, and finalising beside a running TensorFlow call can crash (a SIGSEGV in a
    minimal reproduction).
    Nothing is lost by skipping it: checkpoints and runs are written atomically, as a
    SIGKILL at any moment requires anyway. Elsewhere (tests, scripts, a server that did
    not stop through Streamlit) Python exits as usual.
    """
    running = [job for job in list(_STARTED) if job._thread.is_alive()]
    if not running or not Runtime.exists():
        return
    if Runtime.instance().state not in (RuntimeState.STOPPING, RuntimeState.STOPPED):
        return
    trainings = [job.run_id for job in running if isinstance(job, TrainingJob)]
    logging.getLogger("tlcore").warning(
        "stopped with %d job(s) running (trainings: %s); a training with a checkpoint "
        "(end-to-end, fine-tuning) is offered for resuming on the Train page",
        len(running), ", ".join(trainings) or "none")
    logging.shutdown()  # flushes every handler
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)  # what Streamlit returns after a signal


@dataclasses.dataclass
class _Registry:
    jobs: dict[str, BackgroundJob] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


@st.cache_resource
def _registry() -> _Registry:
    return _Registry()


def start_training(owner: str, train_config: config.TrainConfig, data_source: str,
                   resume: checkpoints.Checkpoint | None = None) -> TrainingJob:
    """Start a training job for a visitor (a new one, or resuming an interrupted one).

    Raises:
        JobLimitError: the visitor already has a training or bake-off running or waiting, or
            the server is full.
        config.LimitError: in a public demo, over the visitor's or the server's disk quota.
        ValueError: in a public demo, a data source that is not the visitor's.
    """
    return _start_in_turn(owner, data_source, lambda: TrainingJob(owner, train_config,
                                                                  data_source, resume),
                          resuming=resume.run_id if resume is not None else None)


def start_bakeoff(owner: str, chosen: Sequence[bakeoff.Candidate], base: config.TrainConfig,
                  data_source: str, speed: float = 1.0) -> BakeoffJob:
    """Start a backbone bake-off for a visitor: one fast-mode training per chosen body.

    Args:
        speed: this server against the estimates' reference (weighs the progress only).

    Raises:
        JobLimitError: the visitor already has a training or bake-off running or waiting, or
            the server is full.
        config.LimitError: in a public demo, over the visitor's or the server's disk quota.
        ValueError: in a public demo, a data source that is not the visitor's; or nothing
            chosen.
    """
    if not chosen:
        raise ValueError("choose at least one backbone for the bake-off")
    return _start_in_turn(owner, data_source, lambda: BakeoffJob(owner, chosen, base,
                                                                 data_source, speed))


def _start_in_turn(owner: str, data_source: str, make: Callable[[], _TrainingTurnJob],
                   resuming: str | None = None) -> Any:
    """Check a visitor's right to start a job of the training queue, make it and start it
    (`resuming`: the run id of the interrupted training it resumes).

    Raises:
        JobLimitError, config.LimitError, ValueError: see `start_training`.
    """
    if config.public_demo():
        if not visitors.owns_source(owner, data_source):
            raise ValueError("that data set is not yours: choose one on the Data page")
        visitors.check_disk(owner)
    registry = _registry()
    with registry.lock:
        _forget_old(registry)
        running = [job for job in registry.jobs.values()
                   if isinstance(job, _TrainingTurnJob) and job.is_running()]
        if resuming is not None and resuming in {getattr(job, "run_id", None) for job in running}:
            raise JobLimitError("that training is already running")
        if any(job.owner == owner for job in running):
            raise JobLimitError("you already have a training or a bake-off running or waiting: "
                                "wait for it or cancel it")
        if len(running) >= MAX_TRAINING_JOBS:
            raise JobLimitError(f"the server has {len(running)} trainings running or waiting, "
                                "its limit; try again in a few minutes")
        job = make()
        registry.jobs[job.job_id] = job
    job.start()
    return job


def prepare_data(owner: str, data_source: str) -> PrepareDataJob:
    """Start downloading and checking a data set, or return the job already doing it."""
    registry = _registry()
    with registry.lock:
        _forget_old(registry)
        for job in registry.jobs.values():
            if (isinstance(job, PrepareDataJob) and job.data_source == data_source
                    and job.is_running()):
                return job
        job = PrepareDataJob(owner, data_source)
        registry.jobs[job.job_id] = job
    job.start()
    return job


def preparing(data_source: str) -> PrepareDataJob | None:
    """The latest job that prepared or is preparing `data_source`, or None."""
    matches = [job for job in _registry().jobs.values()
               if isinstance(job, PrepareDataJob) and job.data_source == data_source]
    return max(matches, key=lambda job: job.snapshot().started, default=None)


def _forget_old(registry: _Registry) -> None:
    """Drop jobs that finished long ago (call with the registry's lock held)."""
    now = time.time()
    for old in [job for job in registry.jobs.values()
                if not job.is_running() and now - job.snapshot().started > FORGET_AFTER_SECONDS]:
        del registry.jobs[old.job_id]


def running_run_ids() -> set[str]:
    """Run ids of this server's running trainings (their checkpoints are not interrupted)."""
    return {job.run_id for job in _registry().jobs.values()
            if isinstance(job, TrainingJob) and job.is_running()}


def latest_training(owner: str) -> TrainingJob | None:
    """A visitor's running training, else their latest one (a reload finds it again)."""
    return _latest(owner, TrainingJob)


def latest_bakeoff(owner: str) -> BakeoffJob | None:
    """A visitor's running bake-off, else their latest one (a reload finds it again)."""
    return _latest(owner, BakeoffJob)


def _latest(owner: str, kind: type) -> Any:
    """A visitor's running job of `kind`, else their latest one, or None."""
    mine = [job for job in _registry().jobs.values()
            if isinstance(job, kind) and job.owner == owner]
    return max(mine, key=lambda job: (job.is_running(), job.snapshot().started), default=None)


def get_job(job_id: str | None) -> BackgroundJob | None:
    """Return a job by id, or None."""
    return _registry().jobs.get(job_id) if job_id else None


def wait(job_id: str, timeout: float = 600.0) -> JobSnapshot | None:
    """Block until a job finishes (scripts and tests); return its final snapshot."""
    job = get_job(job_id)
    if job is None:
        return None
    job._thread.join(timeout)
    return job.snapshot()
