"""Per-epoch checkpoints of trainings that train the body, so a killed server loses little.

While a body trains (end to end, or the second stage of fine-tuning), every finished epoch
writes `<runs>/.checkpoints/<run id>/`: `epoch-NNNN.npz` (the model's weights and the
optimiser's state: its step count, which drives the learning-rate schedule, and Adam's
moments), `best-NNNN.npz` (the best epoch's weights), then `state.json` (settings, data,
epochs done, history, best accuracy, and the names of those two files). state.json is
replaced atomically last and older array files are removed after it, so a kill at any
moment leaves a consistent previous or current epoch. A finished or
cancelled training removes its checkpoint; one left behind is an interrupted training that
`tlcore.train.resume_training` continues from its last epoch. The head-only stages are not
checkpointed: from cached embeddings they take seconds to redo.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import math
import io
import os
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tlcore import atomic, config, fitting

FOLDER = ".checkpoints"
STATE_FILE = "state.json"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """An interrupted training on disk.

    Attributes:
        folder: `<runs>/.checkpoints/<run id>`.
        state: the parsed state.json.
    """

    folder: Path

    state: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The id the finished run will get."""
        return self.folder.name

    @property
    def epochs_done(self) -> int:
        """Epochs of the checkpointed stage already finished."""
        return int(self.state["epochs_done"])

    def train_config(self) -> config.TrainConfig:
        """The settings the training was started with."""
        return config.TrainConfig(**self.state["config"])

    def load_weights(self, model: keras.Model) -> None:
        """Put the last finished epoch's weights into `model` (same architecture)."""
        model.set_weights(_read_arrays(self.folder / self.state["weights_file"], "weight"))

    def optimizer_state(self) -> list[np.ndarray]:
        """The optimiser's variables after the last finished epoch (step count first)."""
        return _read_arrays(self.folder / self.state["weights_file"], "optimizer")

    def best_weights(self) -> list[np.ndarray] | None:
        """The best epoch's weights so far, or None."""
        name = self.state.get("best_file")
        return _read_arrays(self.folder / name, "weight") if name else None

    def in_another_live_process(self) -> bool:
        """True when the process that writes this checkpoint still runs (e.g. a CLI training
        beside the app): it is not interrupted, only in progress."""
        pid = int(self.state.get("pid", 0))
        if not pid or pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, owned by someone else
            return True
        return True

    def label(self) -> str:
        """One line for people: what was interrupted and how far it got."""
        cfg = self.state["config"]
        return (f"{self.run_id}: {cfg['backbone']} / {cfg['mode']}, epoch "
                f"{self.epochs_done}/{cfg['epochs']} of the body's training, saved "
                f"{self.state.get('updated', '?')}")


def folder_for(runs_dir: Path, run_id: str) -> Path:
    """Where the checkpoint of a run id lives."""
    return Path(runs_dir) / FOLDER / run_id


def list_interrupted(runs_dir: Path | None = None) -> list[Checkpoint]:
    """Return checkpoints left by trainings that did not finish, newest first.

    Checkpoints of trainings still running in another process are left out; those of this
    process's own running jobs are the caller's to leave out (it knows their run ids).
    """
    root = Path(runs_dir or config.runs_dir()) / FOLDER
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir(), reverse=True):
        try:
            checkpoint = load(folder)
        except ValueError:
            continue
        if not checkpoint.in_another_live_process():
            found.append(checkpoint)
    return found


def load(folder: Path) -> Checkpoint:
    """Read a checkpoint folder.

    Raises:
        ValueError: not a complete checkpoint.
    """
    folder = Path(folder)
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{folder} is not a readable checkpoint: {error}") from error
    if not (folder / state.get("weights_file", "?")).is_file():
        raise ValueError(f"{folder} has no weights yet")
    return Checkpoint(folder, state)


def remove(folder: Path) -> None:
    """Delete a checkpoint (after its training finished or was given up), and the
    checkpoints folder with it when it is left empty."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        Path(folder).parent.rmdir()
    except OSError:  # other checkpoints remain, or it is already gone
        pass


class EpochCheckpoint(keras.callbacks.Callback):
    """Write a checkpoint after every finished epoch.

    Args:
        folder: the checkpoint folder (created on first write).
        state: what resuming needs besides weights (settings, data, stage facts).
        prior_history: the history before this fit (earlier stage, or before a resume).
        best: the training's `fitting.EpochRecord`, whose best weights are saved too.
        resume: the checkpoint a resumed training started from (its best file is kept).
    """

    def __init__(self, folder: Path, state: dict[str, Any],
                 prior_history: dict[str, list[float]], best: fitting.EpochRecord,
                 resume: Checkpoint | None = None) -> None:
        super().__init__()
        self.folder, self.state, self.best = Path(folder), state, best
        self.history = {key: list(values) for key, values in prior_history.items()}
        self._best_file = resume.state.get("best_file") if resume else None
        self._best_saved_epoch = resume.state["best_epoch"] if resume else -1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Save weights with the optimiser's state, best weights, then the state."""
        if self.best.stopped or not math.isfinite(float((logs or {}).get("loss", 0.0))):
            return  # a partial or diverged epoch: the previous checkpoint stays the one to resume
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.folder.mkdir(parents=True, exist_ok=True)
        weights_file = f"epoch-{epoch + 1:04d}.npz"
        _write_arrays(self.folder / weights_file, {
            "weight": self.model.get_weights(),
            "optimizer": [variable.numpy() for variable in self.model.optimizer.variables]})
        best_file = self._best_file
        if self.best.best_weights is not None and self.best.best_epoch != self._best_saved_epoch:
            best_file = f"best-{self.best.best_epoch:04d}.npz"
            _write_arrays(self.folder / best_file, {"weight": self.best.best_weights})
            self._best_saved_epoch = self.best.best_epoch
        state = {**self.state, "epochs_done": epoch + 1, "history": self.history,
                 "pid": os.getpid(), "weights_file": weights_file, "best_file": best_file,
                 "best_accuracy": self.best.best_accuracy, "best_epoch": self.best.best_epoch,
                 "updated": datetime.datetime.now().isoformat(timespec="seconds")}
        atomic.write_file(self.folder / STATE_FILE, json.dumps(state, indent=1).encode())
        self._best_file = best_file
        for stale in self.folder.glob("*.npz"):
            if stale.name not in (weights_file, best_file):
                stale.unlink(missing_ok=True)


def restore_optimizer(model: keras.Model, checkpoint: Checkpoint) -> bool:
    """Give a compiled model's optimiser the checkpoint's state; False if it does not fit.

    Without it a resumed training would restart the learning-rate schedule at its peak
    (the step count is the schedule's clock) and Adam's moments at zero.
    """
    values = checkpoint.optimizer_state()
    model.optimizer.build(model.trainable_variables)
    variables = model.optimizer.variables
    if len(values) != len(variables) or any(
            tuple(variable.shape) != value.shape for variable, value in zip(variables, values)):
        return False
    for variable, value in zip(variables, values):
        variable.assign(value)
    return True


def _write_arrays(path: Path, groups: dict[str, list[np.ndarray]]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{group}_{index}": array for group, arrays in groups.items()
                        for index, array in enumerate(arrays)})
    atomic.write_file(path, buffer.getvalue())


def _read_arrays(path: Path, group: str) -> list[np.ndarray]:
    with np.load(path) as stored:
        count = sum(1 for name in stored.files if name.startswith(f"{group}_"))
        return [stored[f"{group}_{index}"] for index in range(count)]
