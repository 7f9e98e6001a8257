"""Background training jobs that outlive reruns, page changes and closed tabs.

A job runs `tlcore.train.train_classifier` in a thread and keeps its progress in a
snapshot that pages poll (with `st.fragment(run_every=...)`). The registry is shared by the
server (`st.cache_resource`); each visitor may run one job at a time, and the server at
most MAX_RUNNING_JOBS, so one visitor cannot starve the others.
"""
from __future__ import annotations

import copy
import dataclasses
import secrets
import threading
import time
import traceback
from typing import Any

import streamlit as st

from tlcore import backbones, checkpoints, config, data, runs, train

MAX_RUNNING_JOBS = 2
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

    @property
    def fraction(self) -> float:
        """Share of the current phase done, in [0, 1]."""
        return min(1.0, self.step / self.total) if self.total else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left in the current phase, from its rate so far."""
        if not self.step or self.state != "running":
            return None
        elapsed = time.time() - self.phase_started
        return elapsed / self.step * (self.total - self.step)


class TrainingJob:
    """One training in a background thread, with progress and a cancel switch."""

    def __init__(self, owner: str, train_config: config.TrainConfig, data_source: str,
                 resume: checkpoints.Checkpoint | None = None) -> None:
        self.owner = owner
        self.train_config = train_config
        self.data_source = data_source
        self.resume = resume
        self.run_id = resume.run_id if resume else runs.new_run_id(train_config.backbone,
                                                                   train_config.mode)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        now = time.time()
        self._snapshot = JobSnapshot(secrets.token_hex(6), "running", "starting", 0, 0, now,
                                     now, [])
        self._thread = threading.Thread(target=self._work, name=f"train-{self.job_id}",
                                        daemon=True)

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self._snapshot.job_id

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop after the current batch (finished epochs are kept)."""
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
            if metrics.get("phase") != snapshot.phase:
                snapshot.phase, snapshot.phase_started = metrics.get("phase", ""), time.time()
            snapshot.step, snapshot.total = step, total
            if metrics.get("epoch_end"):
                snapshot.epochs.append({key: value for key, value in metrics.items()
                                        if isinstance(value, (int, float))})

    def _work(self) -> None:
        state, run_dir, error = "done", None, None
        try:
            if self.resume is not None:
                run = train.resume_training(self.resume, on_step=self._on_step,
                                            should_stop=self._cancel.is_set)
            else:
                dataset = data.load_dataset(self.data_source, seed=self.train_config.seed)
                run = train.train_classifier(self.train_config, dataset, on_step=self._on_step,
                                             should_stop=self._cancel.is_set, run_id=self.run_id)
            run_dir = str(run.run_dir)
            state = "cancelled" if run.info.get("cancelled") else "done"
        except train.TrainingCancelled as cancelled:
            state, error = "cancelled", str(cancelled)
        except (ValueError, backbones.WeightsUnavailableError) as failure:
            state, error = "failed", str(failure)
        except Exception as failure:  # a bug: keep the trace for the page, never kill the server
            state, error = "failed", "".join(traceback.format_exception_only(failure)).strip()
            traceback.print_exc()
        with self._lock:
            self._snapshot.state, self._snapshot.run_dir = state, run_dir
            self._snapshot.error = error


@dataclasses.dataclass
class _Registry:
    jobs: dict[str, TrainingJob] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


@st.cache_resource
def _registry() -> _Registry:
    return _Registry()


def start_training(owner: str, train_config: config.TrainConfig, data_source: str,
                   resume: checkpoints.Checkpoint | None = None) -> TrainingJob:
    """Start a training job for a visitor (a new one, or resuming an interrupted one).

    Raises:
        JobLimitError: the visitor already has a running job, or the server is full.
    """
    registry = _registry()
    with registry.lock:
        now = time.time()
        for old in [job for job in registry.jobs.values()
                    if not job.is_running() and now - job.snapshot().started > FORGET_AFTER_SECONDS]:
            del registry.jobs[old.job_id]
        running = [job for job in registry.jobs.values() if job.is_running()]
        if resume is not None and resume.run_id in {job.run_id for job in running}:
            raise JobLimitError("that training is already running")
        if any(job.owner == owner for job in running):
            raise JobLimitError("you already have a training running: wait for it or cancel it")
        if len(running) >= MAX_RUNNING_JOBS:
            raise JobLimitError(f"the server is running {len(running)} trainings, its limit; "
                                "try again in a minute")
        job = TrainingJob(owner, train_config, data_source, resume)
        registry.jobs[job.job_id] = job
    job.start()
    return job


def running_run_ids() -> set[str]:
    """Run ids of this server's running trainings (their checkpoints are not interrupted)."""
    return {job.run_id for job in _registry().jobs.values() if job.is_running()}


def get_job(job_id: str | None) -> TrainingJob | None:
    """Return a job by id, or None."""
    return _registry().jobs.get(job_id) if job_id else None


def wait(job_id: str, timeout: float = 600.0) -> JobSnapshot | None:
    """Block until a job finishes (scripts and tests); return its final snapshot."""
    job = get_job(job_id)
    if job is None:
        return None
    job._thread.join(timeout)
    return job.snapshot()
