"""A finished training on disk: `<runs>/<id>/model.keras` and `run.json`.

A run is written into a hidden staging folder and renamed into place in one step, so a
crash mid-write leaves no half-written run; `list_runs` only lists complete runs.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import keras

from tlcore import atomic, backbones, config, models

MODEL_FILE = "model.keras"
INFO_FILE = "run.json"
REQUIRED_KEYS = ("classes", "image_size", "config")


@dataclasses.dataclass(frozen=True)
class Run:
    """A saved run.

    Attributes:
        run_dir: its folder.
        info: the parsed run.json: id, created, config, data, classes, history, metrics...
    """

    run_dir: Path
    info: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The folder name."""
        return self.run_dir.name

    @property
    def classes(self) -> list[str]:
        """Class names; logit i is classes[i]."""
        return list(self.info["classes"])

    @property
    def image_size(self) -> int:
        """The square input side of the model."""
        return int(self.info["image_size"])

    @property
    def cache_key(self) -> tuple[str, str]:
        """(folder, creation time): what a per-server cache keys a run's model and results
        by, so a run replaced under the same folder name is not served from the old one."""
        return str(self.run_dir), str(self.info.get("created"))

    @property
    def model_path(self) -> Path:
        """The saved Keras model."""
        return self.run_dir / MODEL_FILE

    def load_model(self) -> keras.Model:
        """Load the classifier (pixels in [0, 255] in, logits out) in safe mode."""
        return models.load_model(self.model_path)

    @property
    def owner(self) -> str | None:
        """The owner id of the public-demo visitor who trained it (None: the host's)."""
        return self.info.get("owner")

    def visible_to(self, owner: str | None) -> bool:
        """Whether a visitor may see the run: their own, or one the host made outside the
        public demo (curated); None (not a public demo) sees every run."""
        return owner is None or not self.info.get("public_demo") or self.owner == owner

    def deletable_by(self, owner: str | None) -> bool:
        """Whether a visitor may rename or delete the run: only their own in a public
        demo; anyone on one's own server (owner None)."""
        return owner is None or (bool(self.info.get("public_demo")) and self.owner == owner)

    @property
    def name(self) -> str:
        """The name a user gave the run, else its id."""
        return self.info.get("name") or self.run_id

    def label(self) -> str:
        """A one-line description for pickers."""
        metrics = self.info.get("metrics", {})
        accuracy = metrics.get("val_accuracy")
        score = f", val acc {accuracy:.3f}" if accuracy is not None else ""
        cfg = self.info.get("config", {})
        title = f"{self.name} ({self.run_id})" if self.info.get("name") else self.run_id
        return (f"{title}: {cfg.get('backbone')} / {cfg.get('mode')} on "
                f"{self.info.get('data', {}).get('name', '?')}{score}")

    def summary(self) -> dict[str, Any]:
        """One row of the run comparison table, the columns a reader compares first.

        Keys, in this order: "name" (the given name, else when it was trained),
        "val_accuracy", "test_accuracy", "seconds", "model_mb", "backbone", "mode",
        "weights" (short: ImageNet, HED edges, random, file), "data", "epochs",
        "weights_detail" (the full weights label), "run" (the id).
        """
        cfg = self.info.get("config", {})
        metrics = self.info.get("metrics", {})
        weights = cfg.get("weights")
        short_weights = ("random" if weights in backbones.RANDOM_WEIGHTS else
                         {"imagenet": "ImageNet", "edges": "HED edges"}.get(str(weights), "file"))
        created = str(self.info.get("created") or "").replace("T", " ")
        return {"name": self.info.get("name") or created or self.run_id,
                "val_accuracy": metrics.get("val_accuracy"),
                "test_accuracy": metrics.get("test_accuracy"),
                "seconds": metrics.get("seconds"),
                "model_mb": round(self.model_path.stat().st_size / 2**20, 1)
                if self.model_path.is_file() else None,
                "backbone": cfg.get("backbone"), "mode": cfg.get("mode"),
                "weights": short_weights if "weights" in cfg else
                self.info.get("weights_label"),
                "data": self.info.get("data", {}).get("name"),
                "epochs": len(self.info.get("history", {}).get("loss", [])),
                "weights_detail": self.info.get("weights_label"), "run": self.run_id}


def new_run_id(backbone: str, mode: str) -> str:
    """Return a sortable id that cannot be guessed, such as
    `20261124-213005-vgg16-fast-3fa29c0b5d1e7a46` (64 random bits)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{backbone}-{mode}-{secrets.token_hex(8)}"


def save_run(model: keras.Model, info: dict[str, Any], runs_dir: Path | None = None,
             run_id: str | None = None) -> Run:
    """Write a model and its info as a new run, atomically.

    Args:
        model: the trained classifier.
        info: JSON-ready facts (must hold "classes" and "image_size").
        runs_dir: parent folder; None uses `config.runs_dir()`.
        run_id: folder name; None makes one from the config in info.

    Returns:
        The saved run.

    Raises:
        FileExistsError: a run with that id exists (a save never replaces a run).
    """
    for key in REQUIRED_KEYS:
        if key not in info:
            raise ValueError(f"run info lacks {key!r}")
    runs_dir = Path(runs_dir or config.runs_dir())
    runs_dir.mkdir(parents=True, exist_ok=True)
    cfg = info.get("config", {})
    run_id = run_id or new_run_id(cfg.get("backbone", "model"), cfg.get("mode", "run"))
    info = {"id": run_id, "created": datetime.datetime.now().isoformat(timespec="seconds"),
            **info}
    target = runs_dir / run_id
    if target.exists():
        raise FileExistsError(f"a run {run_id} exists already; nothing was replaced")
    with atomic.staged_folder(target, exist_ok=False) as staging:
        models.save_model(model, staging / MODEL_FILE)
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2, default=_json_default))
    return Run(target, info)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def load_run(run_dir: str | Path) -> Run:
    """Read a run folder.

    Raises:
        ValueError: the folder is not a complete run.
    """
    run_dir = Path(run_dir)
    info_path = run_dir / INFO_FILE
    if not info_path.is_file() or not (run_dir / MODEL_FILE).is_file():
        raise ValueError(f"{str(run_dir)!r} is not a tlcore run (needs {INFO_FILE} and "
                         f"{MODEL_FILE})")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{info_path} is not valid JSON: {error}") from error
    missing = [key for key in REQUIRED_KEYS if key not in info]
    if missing:
        raise ValueError(f"{info_path} lacks {missing}; it was not written by tlcore")
    return Run(run_dir, info)


def list_runs(runs_dir: Path | None = None, *, owner: str | None = None) -> list[Run]:
    """Return complete runs, newest first (staging folders and broken runs are left out).

    Args:
        runs_dir: the folder of runs; None uses `config.runs_dir()`.
        owner: a public-demo visitor's owner id: only the runs they may see (their own and
            the curated ones, `Run.visible_to`); None lists every run.
    """
    runs_dir = Path(runs_dir or config.runs_dir())
    if not runs_dir.is_dir():
        return []
    found = []
    for folder in runs_dir.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            run = load_run(folder)
        except ValueError:
            continue
        if run.visible_to(owner):
            found.append(run)
    return sorted(found, key=lambda run: run.run_id, reverse=True)


def rename_run(run: Run, name: str) -> Run:
    """Give a run a display name (its folder and id stay, so links keep working).

    Raises:
        ValueError: the name is empty or longer than 80 characters.
    """
    name = name.strip()
    if not 0 < len(name) <= 80:
        raise ValueError(f"run name {name!r} must have 1 to 80 characters")
    info = {**run.info, "name": name}
    write_info(run.run_dir, info)
    return Run(run.run_dir, info)


def write_info(run_dir: Path, info: dict[str, Any]) -> None:
    """Replace a run's run.json atomically."""
    atomic.write_file(run_dir / INFO_FILE, json.dumps(info, indent=2, default=_json_default).encode())


def delete_run(run: Run) -> None:
    """Remove a run: first renamed out of the listing (one atomic step), then deleted."""
    doomed = run.run_dir.with_name(
        f"{atomic.TEMPORARY_PREFIX}deleted-{run.run_id}-{secrets.token_hex(3)}")
    os.replace(run.run_dir, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def sweep_visitor_runs(max_age_hours: float | None = None,
                       runs_dir: Path | None = None) -> list[str]:
    """Delete runs trained in a public demo more than `max_age_hours` ago; return their ids.

    The age defaults to `config.limits().visitor_run_hours`, which is None (keep them all)
    outside a public demo. Runs made outside a demo (curated ones) are never touched.
    """
    if max_age_hours is None:
        max_age_hours = config.limits().visitor_run_hours
        if max_age_hours is None:
            return []
    cutoff = datetime.datetime.now() - datetime.timedelta(hours=max_age_hours)
    removed = []
    for run in list_runs(runs_dir):
        if not run.info.get("public_demo"):
            continue
        try:
            created = datetime.datetime.fromisoformat(str(run.info.get("created")))
        except ValueError:
            continue  # no readable date: leave it
        if created < cutoff:
            try:
                delete_run(run)
            except FileNotFoundError:  # another session's sweep took it first
                continue
            removed.append(run.run_id)
    return removed
