"""Train a classifier and save it as a run.

*Fast* mode embeds every image once with the frozen body (cached on disk), trains only the
head on the vectors, then joins body and head into one classifier. *End-to-end* mode trains
through the body as well: needed for `scratch_cnn`, and for pretrained bodies it trains the
top `trainable_blocks` with BatchNorm kept in inference mode.

Progress goes out through `on_step(step, total, metrics)`; `should_stop()` is polled every
batch, and a cancelled training still saves what it has (marked cancelled).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from tlcore import (backbones, checkpoints, config, data, distribute, estimate, evaluate,
                    features, head_training, models, multiworker, runs, turns)
from tlcore.config import StepCallback, TrainingCancelled

EMBED_CHUNK = 256  # images decoded at once while embedding
LOAD_CHUNK = 64  # images decoded between progress reports before end-to-end training
SCORE_CHUNK = 128  # images scored between progress reports after training
IN_MEMORY_BYTES = 128 * 2**20  # a split's embeddings up to this size train from memory
# (classifier, history, facts for run.json, (model, inputs per split) to score val/test with)
TrainerResult = tuple[keras.Model, dict[str, list[float]], dict[str, Any],
                      tuple[keras.Model, dict[str, "np.ndarray | features.RowsView"]]]


class ProgressCallback(keras.callbacks.Callback):
    """Report per-batch progress and stop when asked, for one training phase.

    Metrics passed to `on_step` always hold "phase" and "epoch"; at the end of an epoch
    they also hold that epoch's validation metrics and "epoch_end": True.
    """

    def __init__(self, phase: str, epochs: int, steps_per_epoch: int,
                 on_step: StepCallback | None, should_stop: Callable[[], bool] | None,
                 validation_steps: int = 0) -> None:
        super().__init__()
        self.phase, self.epochs, self.steps_per_epoch = phase, epochs, steps_per_epoch
        self.validation_steps = validation_steps
        self.on_step, self.should_stop = on_step, should_stop
        self.epoch = 0
        self.completed_epochs = 0
        self.cancelled = False
        self.diverged: tuple[int, int] | None = None  # (epoch, batch), both from 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Remember the epoch for the batch reports, and say that it began: the first
        batch of a fit also traces the training step, which takes a while."""
        self.epoch = epoch
        if self.on_step is not None:
            self.on_step(epoch * self.steps_per_epoch, self.epochs * self.steps_per_epoch,
                         {"phase": self.phase, "epoch": epoch + 1, "epochs": self.epochs,
                          "epoch_end": False, "epoch_begin": True})

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Report the batch; stop training if asked to."""
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            self.diverged = (self.epoch + 1, batch + 1)
            self.model.stop_training = True
        self._report(self.epoch * self.steps_per_epoch + batch + 1, logs, epoch_end=False)

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Say that the epoch's validation pass began (a fine-tuned VGG16 spends seconds
        there, after its last batch)."""
        self._validating(0)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Report the validation pass batch by batch."""
        self._validating(batch + 1)

    def _validating(self, step: int) -> None:
        if self.on_step is not None and self.validation_steps:
            self.on_step(step, self.validation_steps,
                         {"phase": f"checking epoch {self.epoch + 1} on the validation images",
                          "epoch": self.epoch + 1, "epochs": self.epochs, "epoch_end": False,
                          "validating": True})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Count whole epochs and report the epoch's metrics."""
        # Keras also ends a cancelled or diverged partial epoch this way; only whole,
        # finite epochs count.
        if not self.cancelled and self.diverged is None:
            self.completed_epochs += 1
        self._report((epoch + 1) * self.steps_per_epoch, logs, epoch_end=True)

    def _report(self, step: int, logs: dict | None, epoch_end: bool) -> None:
        if self.on_step is None:
            return
        metrics = {key: float(value) for key, value in (logs or {}).items()}
        self.on_step(step, self.epochs * self.steps_per_epoch,
                     {"phase": self.phase, "epoch": self.epoch + 1, "epochs": self.epochs,
                      "epoch_end": epoch_end, **metrics})


class BestEpoch(keras.callbacks.Callback):
    """Keep the weights of the epoch with the best validation accuracy and restore them.

    Args:
        baseline: the validation accuracy of the starting weights, when they are worth
            keeping (fine-tuning a trained head): an epoch must beat it to replace them.
    """

    def __init__(self, baseline: float | None = None) -> None:
        super().__init__()
        self.baseline = baseline
        self.best_accuracy = -1.0 if baseline is None else baseline
        self.best_epoch = 0
        self.best_weights: list | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Remember the starting weights when they are the baseline to beat."""
        if self.baseline is not None:
            self.best_weights = self.model.get_weights()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Keep a copy of the weights when validation accuracy is the best so far."""
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            return  # a diverged epoch is never the one to keep
        if "val_accuracy" not in (logs or {}):  # no validation split: the last epoch stands
            self.best_epoch, self.best_weights = epoch + 1, self.model.get_weights()
            return
        accuracy = float(logs["val_accuracy"])
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch + 1
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        """Put the best epoch's weights back."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def resolve_image_size(train_config: config.TrainConfig, dataset: data.Dataset) -> int:
    """Pick the input side: the config's, else the data set's native size, else the backbone's."""
    return (train_config.image_size or dataset.native_size
            or backbones.get_spec(train_config.backbone).default_input_size)


@dataclasses.dataclass(frozen=True)
class _Session:
    """Where this training checkpoints, what it resumes from, and what resuming needs."""

    folder: Path
    resume: checkpoints.Checkpoint | None
    state: dict[str, Any]


def train_classifier(train_config: config.TrainConfig, dataset: data.Dataset, *,
                     runs_dir: Path | None = None,
                     on_step: StepCallback | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     resume: checkpoints.Checkpoint | None = None,
                     run_id: str | None = None,
                     strategy: tf.distribute.Strategy | None = None,
                     owner: str | None = None) -> runs.Run:
    """Train a classifier on a data set and save it as a run.

    Args:
        train_config: what to train and how.
        dataset: the data; its train split trains, validation picks the best epoch.
        runs_dir: where the run goes; None uses `config.runs_dir()`.
        on_step: progress callback `(step, total, metrics)`; metrics["phase"] is
            "loading", "embedding" or "training".
        should_stop: polled every batch; True stops training and saves what is done.
        resume: continue this interrupted training from its last checkpointed epoch (see
            `resume_training`).
        run_id: the id for the run (and its checkpoint); None makes one.
        strategy: a `tf.distribute` strategy (`distribute.mirrored()`): the model is built
            in its scope, so Keras spreads each batch over its replicas.
        owner: in a public demo, the owner id of the visitor training it (only they see
            the run; `runs.Run.visible_to`).

    Returns:
        The saved run; `run.info["metrics"]` holds val/test accuracy and timing.

    One training runs at a time in a process; others wait their turn in order, reporting
    phase "waiting" with how many are ahead (`TURNS`).

    Raises:
        TrainingCancelled: stopped before the first training epoch finished (or while
            waiting for its turn).
        backbones.WeightsUnavailableError: pretrained weights are missing.
        config.LimitError: over a limit of `config.limits()` (epochs, image side, classes).
    """
    check_limits(train_config, dataset)
    with TURNS.turn(on_step, should_stop), (strategy.scope() if strategy is not None
                                            else contextlib.nullcontext()):
        run = _train_classifier(train_config, dataset, runs_dir, on_step, should_stop,
                                resume, run_id, owner)
    if strategy is not None:
        run = runs.Run(run.run_dir, {**run.info, "distribute": distribute.describe(strategy)})
        runs.write_info(run.run_dir, run.info)
    return run


def check_limits(train_config: config.TrainConfig, dataset: data.Dataset) -> None:
    """Refuse a training over the limits in force (a public demo's are small).

    Raises:
        config.LimitError: too many epochs, too large an image side or too many classes.
    """
    config.check_limit("epochs", train_config.epochs)
    if train_config.mode == "fine-tune":
        config.check_limit("epochs", train_config.head_epochs, "head epochs")
    config.check_limit("image_size", resolve_image_size(train_config, dataset))
    config.check_limit("classes", dataset.num_classes)


# One training at a time: see `tlcore.turns`.
TURNS = turns.Turns(slots=1, noun="training", cancelled=TrainingCancelled)


def _train_classifier(train_config: config.TrainConfig, dataset: data.Dataset,
                      runs_dir: Path | None, on_step: StepCallback | None,
                      should_stop: Callable[[], bool] | None,
                      resume: checkpoints.Checkpoint | None, run_id: str | None,
                      owner: str | None) -> runs.Run:
    started = time.perf_counter()
    expected = estimate.training_seconds(train_config, dataset)  # before the cache fills
    keras.utils.set_random_seed(train_config.seed)
    image_size = resolve_image_size(train_config, dataset)
    building = {"phase": f"building {backbones.get_spec(train_config.backbone).display_name} "
                         f"and loading its weights"}
    # Missing weights fail here, before any progress is reported.
    weights_path = backbones.resolve_weights(train_config.backbone, train_config.weights,
                                             image_size)
    _report(on_step, 0, 1, building)
    body = backbones.build_backbone(train_config.backbone, weights=weights_path,
                                    input_size=image_size)
    _report(on_step, 1, 1, building)
    runs_dir = Path(runs_dir or config.runs_dir())
    run_id = (resume.run_id if resume else
              run_id or runs.new_run_id(train_config.backbone, train_config.mode))
    session = _Session(checkpoints.folder_for(runs_dir, run_id), resume, {
        "config": train_config.to_dict(), "image_size": image_size,
        "data": {"source": dataset.source, "seed": train_config.seed,
                 "fingerprint": dataset.fingerprint()}})
    trainer = {"fast": _train_fast, "fine-tune": _train_fine_tune,
               "end-to-end": _train_end_to_end}[train_config.mode]
    try:
        classifier, history, extra, (scorer, inputs) = trainer(train_config, dataset, body,
                                                               on_step, should_stop, session)
    except TrainingCancelled:
        checkpoints.remove(session.folder)
        raise
    except head_training.TrainingDiverged:
        if resume is None:  # no epoch finished: the checkpoint holds nothing
            checkpoints.remove(session.folder)
        raise
    metrics = _final_metrics(scorer, inputs, dataset, on_step)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    info = {"config": {**train_config.to_dict(), "image_size": image_size},
            "weights_label": backbones.weights_label(train_config.weights),
            "data": {"source": dataset.source, "name": dataset.name, "seed": train_config.seed,
                     "fingerprint": dataset.fingerprint(), "synthetic": dataset.synthetic,
                     "split_sizes": dataset.split_sizes(),
                     # names inside the data set only: no server path, even in a public demo
                     "skipped_files": [{"file": data.relative_name(item.path, dataset),
                                        "reason": item.reason} for item in dataset.skipped]},
            "classes": list(dataset.class_names), "image_size": image_size,
            "history": history, "metrics": metrics, **extra,
            "estimated_seconds": round(expected.seconds, 2),
            **({"public_demo": True, "owner": owner} if config.public_demo() else {})}
    if resume is not None:
        info["resumed_from_epoch"] = resume.epochs_done
    run = runs.save_run(classifier, info, runs_dir, run_id=run_id)
    checkpoints.remove(session.folder)
    return run


def resume_training(checkpoint: checkpoints.Checkpoint, *, runs_dir: Path | None = None,
                    on_step: StepCallback | None = None,
                    should_stop: Callable[[], bool] | None = None) -> runs.Run:
    """Continue an interrupted training from its last finished epoch and save the run.

    The weights, the optimiser's state (its step count, which drives the learning-rate
    schedule, and Adam's moments), the history and the best epoch so far come from the
    checkpoint.

    Raises:
        ValueError: the data changed since the training started.
    """
    state = checkpoint.state
    dataset = data.load_dataset(state["data"]["source"], seed=int(state["data"]["seed"]))
    if dataset.fingerprint() != state["data"]["fingerprint"]:
        raise ValueError(f"the data at {state['data']['source']!r} changed since training "
                         f"{checkpoint.run_id} started; it cannot be resumed on other data")
    return train_classifier(checkpoint.train_config(), dataset,
                            runs_dir=runs_dir or checkpoint.folder.parent.parent,
                            on_step=on_step, should_stop=should_stop, resume=checkpoint)


def _labels(dataset: data.Dataset, split: str) -> np.ndarray:
    return dataset.labels[dataset.splits[split]].astype(np.int32)


def _train_fast(train_config: config.TrainConfig, dataset: data.Dataset, body: keras.Model,
                on_step: StepCallback | None, should_stop: Callable[[], bool] | None,
                session: _Session | None = None) -> TrainerResult:
    body.trainable = False  # a feature extractor: only the head learns
    embedder, key = _embedder_and_key(train_config, body, dataset)
    vectors = features.open_cached(key)
    cache_state = "hit" if vectors is not None else ("miss" if key else "off")
    if vectors is None or len(vectors) != len(dataset.paths):
        vectors = features.write_embeddings(
            key, len(dataset.paths), embedder.output_shape[-1],
            _embed_dataset(embedder, dataset, on_step, should_stop))
    trained = train_head(train_config, vectors, dataset.labels, dataset.splits,
                         dataset.num_classes, on_step, should_stop)
    classifier = models.build_classifier(train_config.backbone, body, dataset.num_classes,
                                         head=trained.head)
    extra = {"embedding_cache": cache_state, **_ending(trained.outcome),
             "pretrained_body": train_config.weights not in backbones.RANDOM_WEIGHTS}
    return classifier, trained.outcome.history, extra, (trained.head, trained.inputs)


def _embedder_and_key(train_config: config.TrainConfig, body: keras.Model,
                      dataset: data.Dataset) -> tuple[keras.Model, str | None]:
    """The pixels-to-vector model of a body, and the embedding-cache key of its vectors.

    The cache holds one vector per file of the data set, in order, whatever the split:
    runs with other seeds (other splits) of the same data reuse it correctly.
    """
    embedder = models.embedding_model(models.build_classifier(
        train_config.backbone, body, dataset.num_classes))
    return embedder, features.cache_key(train_config.backbone, train_config.weights,
                                        models.input_size(embedder), dataset.fingerprint())


def _ending(outcome: head_training.FitOutcome) -> dict[str, Any]:
    """The run.json facts of how a training ended."""
    return {"cancelled": outcome.cancelled, "best_epoch": outcome.best_epoch,
            **({"diverged": outcome.diverged} if outcome.diverged else {})}


@dataclasses.dataclass
class HeadTraining:
    """A head trained on embeddings, and the vectors per split to score it with."""

    head: keras.Model
    outcome: head_training.FitOutcome
    inputs: dict[str, np.ndarray | features.RowsView]


def train_head(train_config: config.TrainConfig, vectors: features.Embeddings,
               labels: np.ndarray, splits: dict[str, np.ndarray], num_classes: int,
               on_step: StepCallback | None = None,
               should_stop: Callable[[], bool] | None = None) -> HeadTraining:
    """Train a fast-mode head on embeddings (one vector and label per example).

    A split's vectors up to `IN_MEMORY_BYTES` are read into memory; a larger split stays
    in its file and streams through the training a block at a time, so memory stays
    bounded however many images there are (`bench/head_scaling.py` measures it).

    Args:
        vectors: all examples' embeddings; `splits` index into them and into `labels`.
    """
    inputs = {split: _in_memory_if_small(vectors.view(indices))
              for split, indices in splits.items()}
    mean, variance = vectors.moments(splits["train"])
    # Reseed: whether the embeddings came from the cache or were just computed must not
    # change the head's initialisation or shuffling.
    keras.utils.set_random_seed(train_config.seed)
    head = models.build_head(vectors.dim, num_classes, train_config.dropout_rate, mean, variance)
    split_labels = {split: labels[indices].astype(np.int32) for split, indices in splits.items()}
    outcome = head_training.fit_head(
        head, (inputs["train"], split_labels["train"]),
        (inputs["validation"], split_labels["validation"]), epochs=train_config.epochs,
        batch_size=train_config.batch_size,
        learning_rate=train_config.effective_learning_rate, seed=train_config.seed,
        class_weights=(balanced_class_weights(split_labels["train"])
                       if train_config.class_weights else None),
        on_step=on_step, should_stop=should_stop)
    return HeadTraining(head, outcome, inputs)


def _in_memory_if_small(rows: features.RowsView) -> np.ndarray | features.RowsView:
    return rows[:] if rows.nbytes <= IN_MEMORY_BYTES else rows


def _embed_dataset(embedder: keras.Model, dataset: data.Dataset, on_step: StepCallback | None,
                   should_stop: Callable[[], bool] | None,
                   starts: Sequence[int] | None = None) -> Iterator[np.ndarray]:
    """Yield the embeddings of the chunks of EMBED_CHUNK files beginning at `starts` (all
    of them by default), one chunk at a time (memory: one chunk)."""
    size = models.input_size(embedder)
    starts = range(0, len(dataset.paths), EMBED_CHUNK) if starts is None else starts
    total = _rows_in(starts, len(dataset.paths))
    phase = {"phase": "embedding images (once: cached for later trainings)"}
    done = 0
    _report(on_step, done, total, phase)
    for start in starts:
        chunk = data.load_images(list(dataset.paths[start:start + EMBED_CHUNK]), size)

        def batch_done(step: int, steps: int, _: dict, before: int = done,
                       count: int = len(chunk)) -> None:  # every batch, not every chunk
            _report(on_step, before + min(count, step * features.EMBED_BATCH_SIZE), total,
                    phase)

        try:
            yield features.embed(embedder, chunk, should_stop=should_stop, on_step=batch_done)
        except InterruptedError as error:
            raise TrainingCancelled("cancelled while embedding images; nothing saved") from error
        done += len(chunk)


def _rows_in(starts: Sequence[int], total: int) -> int:
    """How many of `total` files the chunks of EMBED_CHUNK beginning at `starts` hold."""
    return sum(min(EMBED_CHUNK, total - start) for start in starts)


def embed_on_workers(train_config: config.TrainConfig, dataset: data.Dataset, index: int,
                     count: int, *, on_step: StepCallback | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     timeout: float = 24 * 3600.0) -> features.Embeddings:
    """Fast mode across workers: embed this worker's share of the files and return the whole
    cache entry once every worker has written its part.

    Worker `index` of `count` embeds chunks `index`, `index + count`, ... and writes them as
    its part of the cache (`features.write_shard`); worker 0 joins the parts. The cache
    folder must be shared by the workers (the same `TLCORE_HOME` on a shared file system).
    A later `train_classifier` with the same settings then finds the embeddings cached.

    Raises:
        ValueError: random weights (never cached, so nothing to share), or a worker
            outside the cluster.
        TrainingCancelled: `should_stop()` turned True, or the other parts did not come
            within `timeout` seconds.
    """
    if not 0 <= index < count:
        raise ValueError(f"worker {index} is not one of {count}")
    embedder, key = _embedder_and_key(train_config, backbones.build_backbone(
        train_config.backbone, weights=train_config.weights,
        input_size=resolve_image_size(train_config, dataset)), dataset)
    if key is None:
        raise ValueError("sharing embeddings across workers needs pretrained or file weights: "
                         "random weights differ on every worker and are never cached")
    total, dim = len(dataset.paths), embedder.output_shape[-1]
    cached = features.open_cached(key)
    if cached is not None and len(cached) == total:
        return cached
    mine = list(range(0, total, EMBED_CHUNK))[index::count]
    features.write_shard(key, index, count, _rows_in(mine, total), dim,
                         _embed_dataset(embedder, dataset, on_step, should_stop, mine))
    parts = [features.shard_path(key, other, count) for other in range(count)]
    waiting_for = parts if index == 0 else [features.cache_path(key)]
    deadline = time.monotonic() + timeout
    while not all(path.is_file() for path in waiting_for):
        if (should_stop is not None and should_stop()) or time.monotonic() > deadline:
            raise TrainingCancelled("stopped while waiting for the other workers' embeddings")
        if on_step is not None:
            on_step(sum(path.is_file() for path in waiting_for), len(waiting_for),
                    {"phase": "waiting for the other workers"})
        time.sleep(0.2)
    if index == 0:
        return features.merge_shards(key, count, total, dim, EMBED_CHUNK)
    cached = features.open_cached(key)
    if cached is None:
        raise TrainingCancelled("the joined embeddings could not be read")
    return cached


def _train_end_to_end(train_config: config.TrainConfig, dataset: data.Dataset,
                      body: keras.Model, on_step: StepCallback | None,
                      should_stop: Callable[[], bool] | None, session: _Session) -> TrainerResult:
    pretrained = train_config.weights not in backbones.RANDOM_WEIGHTS
    blocks = train_config.effective_trainable_blocks if pretrained else -1
    backbones.set_trainable_blocks(body, train_config.backbone, blocks)
    # Pretrained BatchNorm statistics must not move (the BatchNorm trap); a body learned
    # from scratch needs them to.
    classifier = models.build_classifier(train_config.backbone, body, dataset.num_classes,
                                         dropout_rate=train_config.dropout_rate,
                                         freeze_batch_norm=pretrained)
    extra = {"pretrained_body": pretrained, "trainable_blocks": blocks}
    if session.resume is not None:
        session.resume.load_weights(classifier)
    images = _load_images(dataset, models.input_size(classifier), on_step)
    train_split = (images["train"], _labels(dataset, "train"))
    validation = (images["validation"], _labels(dataset, "validation"))
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):  # Keras fit fails
        outcome = multiworker.fit(
            classifier, strategy, train_config, train_split, validation, on_step,
            should_stop, balanced_class_weights(train_split[1])
            if train_config.class_weights else None)
    else:
        outcome = _fit(classifier, train_config, train_split, validation, on_step,
                       should_stop, patience=train_config.patience,
                       class_weights=train_config.class_weights, session=session, extra=extra)
    extra.update(_ending(outcome))
    return classifier, outcome.history, extra, (classifier, images)


def _train_fine_tune(train_config: config.TrainConfig, dataset: data.Dataset,
                     body: keras.Model, on_step: StepCallback | None,
                     should_stop: Callable[[], bool] | None, session: _Session) -> TrainerResult:
    """Train the head on the frozen body first, then the top blocks with it (Keras guide).

    A new head on a body being trained sends large, random gradients into pretrained
    filters; training it first, on cached embeddings, means the body only ever sees the
    small, informed gradients of a head that already works.
    """
    if train_config.weights in backbones.RANDOM_WEIGHTS:
        raise ValueError("fine-tune mode needs pretrained weights: with random weights there "
                         "is nothing to fine-tune; use mode 'end-to-end' to train from scratch")
    if session.resume is not None:  # the head stage finished before the interruption
        classifier, head_history, extra = _resumed_fine_tune(train_config, dataset, body,
                                                            session.resume)
    else:
        head_config = dataclasses.replace(train_config, mode="fast",
                                          epochs=train_config.head_epochs, learning_rate=None)
        classifier, head_history, extra, head_scored = _train_fast(head_config, dataset, body,
                                                                   on_step, should_stop)
        extra["head_epochs"] = len(head_history["loss"])
        if extra["cancelled"] or extra.get("diverged"):
            return classifier, head_history, extra, head_scored
    blocks = train_config.effective_trainable_blocks
    backbones.set_trainable_blocks(body, train_config.backbone, blocks)
    extra.update({"trainable_blocks": blocks, "augment": train_config.augment})
    images = _load_images(dataset, models.input_size(classifier), on_step)
    head_epochs = extra["head_epochs"]
    outcome = _fit(
        classifier, train_config, (images["train"], _labels(dataset, "train")),
        (images["validation"], _labels(dataset, "validation")), on_step, should_stop,
        patience=train_config.patience, class_weights=train_config.class_weights,
        augment=train_config.augment, phase="fine-tuning", cosine=True,
        baseline=max(head_history.get("val_accuracy") or [-1.0]),
        prior_history=head_history, session=session, extra=extra)
    extra.update({**_ending(outcome), "best_epoch": (head_epochs + outcome.best_epoch
                                                      if outcome.best_epoch
                                                      else extra["best_epoch"])})
    return classifier, outcome.history, extra, (classifier, images)


def _resumed_fine_tune(train_config: config.TrainConfig, dataset: data.Dataset,
                       body: keras.Model, resume: checkpoints.Checkpoint
                       ) -> tuple[keras.Model, dict[str, list[float]], dict[str, Any]]:
    """Rebuild the fine-tuning classifier and put the checkpointed weights in it."""
    size = body.output_shape[-1]
    head = models.build_head(size, dataset.num_classes, train_config.dropout_rate,
                             np.zeros(size), np.ones(size))  # statistics come with the weights
    classifier = models.build_classifier(train_config.backbone, body, dataset.num_classes,
                                         head=head)
    resume.load_weights(classifier)
    extra = dict(resume.state["extra"])
    return classifier, resume.state["history"], extra


def _load_images(dataset: data.Dataset, size: int, on_step: StepCallback | None
                 ) -> dict[str, np.ndarray]:
    """Decode every split's images at `size`, reporting every LOAD_CHUNK images."""
    total = sum(len(indices) for indices in dataset.splits.values())
    phase = {"phase": f"decoding the images at {size} px"}
    images, done = {}, 0
    _report(on_step, done, total, phase)
    for split in data.SPLIT_NAMES:
        paths = [dataset.paths[index] for index in dataset.splits[split]]
        images[split] = np.empty((len(paths), size, size, 3), dtype=np.uint8)
        for start in range(0, len(paths), LOAD_CHUNK):
            images[split][start:start + LOAD_CHUNK] = data.load_images(
                paths[start:start + LOAD_CHUNK], size)
            done += len(paths[start:start + LOAD_CHUNK])
            _report(on_step, done, total, phase)
    return images


def _report(on_step: StepCallback | None, step: int, total: int, metrics: dict[str, Any]
            ) -> None:
    if on_step is not None:
        on_step(step, total, dict(metrics))


def _fit(model: keras.Model, train_config: config.TrainConfig,
         train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
         on_step: StepCallback | None, should_stop: Callable[[], bool] | None, *,
         patience: int = 0, class_weights: bool = False, augment: bool = False,
         phase: str = "training", baseline: float | None = None, cosine: bool = False,
         prior_history: dict[str, list[float]] | None = None, session: _Session | None = None,
         extra: dict[str, Any] | None = None) -> head_training.FitOutcome:
    """Compile and fit `model`; return how it ended.

    With `cosine`, the learning rate decays to zero over the planned epochs (fine-tuning:
    big early steps would undo pretrained features late). A short training from scratch
    learns faster at a constant rate (demo set, 5 epochs: 0.92 with cosine, 0.97
    without). With a `baseline` (the validation accuracy the model starts with), the
    starting weights are kept unless an epoch beats it, and then best epoch is 0.

    With a `session`, every epoch is checkpointed, and a session that resumes starts at its
    checkpoint's epoch with its history and best epoch. The returned history is
    `prior_history` followed by this fit's epochs.
    """
    steps_per_epoch = max(1, -(-len(train[0]) // train_config.batch_size))
    rate = train_config.effective_learning_rate
    if cosine:
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=train_config.epochs * steps_per_epoch)
    model.compile(optimizer=keras.optimizers.Adam(rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    validation_steps = -(-len(validation[1]) // train_config.batch_size)
    progress = ProgressCallback(phase, train_config.epochs, steps_per_epoch, on_step,
                                should_stop, validation_steps)
    best = BestEpoch(baseline)
    initial_epoch = 0
    prior = {key: list(values) for key, values in (prior_history or {}).items()}
    if session is not None and session.resume is not None:
        state = session.resume.state
        initial_epoch, prior = session.resume.epochs_done, state["history"]
        best = BestEpoch()
        best.best_accuracy, best.best_epoch = state["best_accuracy"], state["best_epoch"]
        best.best_weights = session.resume.best_weights()
        progress.completed_epochs = initial_epoch
    callbacks: list[keras.callbacks.Callback] = [progress, best]
    if session is not None:
        callbacks.append(checkpoints.EpochCheckpoint(
            session.folder, {**session.state, "extra": extra or {}}, prior, best,
            resume=session.resume))
        if session.resume is not None and not checkpoints.restore_optimizer(model,
                                                                           session.resume):
            raise ValueError("the checkpoint's optimiser state does not fit this model; "
                             "the checkpoint is from another version: discard it")
    if patience and len(validation[1]):
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=patience))
    # A tiny data set can leave validation empty: then the last epoch is kept. Images stay
    # uint8 (a quarter of float32's memory); the model casts each batch.
    validation_data = validation if len(validation[1]) else None
    inputs: Any = train[0]
    labels: np.ndarray | None = train[1]
    if augment:
        inputs, labels = augmented_batches(train[0], train[1], train_config.batch_size,
                                           train_config.seed), None
    result = model.fit(inputs, labels, validation_data=validation_data,
                       epochs=train_config.epochs, initial_epoch=initial_epoch,
                       batch_size=None if augment else train_config.batch_size,
                       validation_batch_size=train_config.batch_size,
                       shuffle=not augment, verbose=0, callbacks=callbacks,
                       class_weight=balanced_class_weights(train[1]) if class_weights else None)
    # A diverged epoch ends like a cancelled one: Keras logs the partial epoch; drop it.
    finished = progress.completed_epochs - initial_epoch
    history = {key: prior.get(key, []) + [float(v) for v in values][:finished]
               for key, values in result.history.items()}
    diverged = (head_training.divergence_message(*progress.diverged,
                                                 train_config.effective_learning_rate)
                if progress.diverged else None)
    if progress.completed_epochs == 0 and baseline is None:
        if diverged:
            raise head_training.TrainingDiverged(diverged)
        if progress.cancelled:
            raise TrainingCancelled("cancelled before the first epoch finished; nothing saved")
    return head_training.FitOutcome(history, progress.cancelled, best.best_epoch, diverged)


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """Weight each present class by N / (K * count), so every class adds up to the same."""
    classes, counts = np.unique(labels, return_counts=True)
    return {int(c): float(len(labels) / (len(classes) * n)) for c, n in zip(classes, counts)}


def augmentation_layers(seed: int = 0) -> keras.Sequential:
    """Random flips, small rotations and zooms, and contrast changes, on [0, 255] pixels."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed),
        keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        keras.layers.RandomContrast(0.1, value_range=(0, 255), seed=seed),
    ], name="augmentation")


def augmented_batches(images: np.ndarray, labels: np.ndarray, batch_size: int,
                      seed: int = 0) -> tf.data.Dataset:
    """A shuffled, augmented, prefetched tf.data pipeline over uint8 images and labels."""
    augment = augmentation_layers(seed)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda batch, batch_labels: (
            tf.clip_by_value(augment(tf.cast(batch, tf.float32), training=True), 0.0, 255.0),
            batch_labels),
        num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _final_metrics(model: keras.Model, inputs: dict[str, np.ndarray | features.RowsView],
                   dataset: data.Dataset, on_step: StepCallback | None = None
                   ) -> dict[str, Any]:
    """Score validation and test with `model` on `inputs` (images, or cached embeddings),
    reporting every SCORE_CHUNK images (a fine-tuned VGG16 takes seconds per hundred)."""
    splits = [("validation", "val_accuracy"), ("test", "test_accuracy")]
    total = sum(len(dataset.splits[split]) for split, _ in splits)
    phase = {"phase": "scoring the validation and test images"}
    metrics: dict[str, Any] = {}
    done = 0
    _report(on_step, done, total, phase)
    for split, key in splits:
        labels = _labels(dataset, split)
        if len(labels):
            logits = []
            for start in range(0, len(labels), SCORE_CHUNK):
                logits.append(models.predict_logits(model,
                                                      inputs[split][start:start + SCORE_CHUNK]))
                done += len(logits[-1])
                _report(on_step, done, total, phase)
            report = evaluate.classification_report(labels, np.concatenate(logits),
                                                    list(dataset.class_names))
            metrics[key] = report["accuracy"]
    return metrics
