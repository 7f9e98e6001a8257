"""Train a classifier and save it as a run.

*Fast* mode embeds every image once with the frozen body (cached on disk), trains only the
head on the vectors, then joins body and head into one classifier. *End-to-end* mode trains
through the body as well: needed for `scratch_cnn`, and for pretrained bodies it trains the
top `trainable_blocks` with BatchNorm kept in inference mode.

Progress goes out through `on_step(step, total, metrics)`; `should_stop()` is polled every
batch, and a cancelled training still saves what it has (marked cancelled). Every loop
follows the rules of `tlcore.fitting`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from tlcore import (adversarial, augment, backbones, checkpoints, config, data, distribute,
                    estimate, evaluate, features, fitting, head_training, models, multiworker,
                    runs, turns)
from tlcore.config import StepCallback
from tlcore.fitting import TrainingCancelled

EMBED_CHUNK = 256  # images decoded at once while embedding
LOAD_CHUNK = 64  # images decoded between progress reports before end-to-end training
SCORE_CHUNK = 128  # images scored between progress reports after training
IN_MEMORY_BYTES = 128 * 2**20  # a split's embeddings up to this size train from memory
# (classifier, history, facts for run.json, (model, inputs per split) to score val/test with)
TrainerResult = tuple[keras.Model, dict[str, list[float]], dict[str, Any],
                      tuple[keras.Model, dict[str, "np.ndarray | features.RowsView"]]]


@dataclasses.dataclass(frozen=True)
class _Session:
    """Where this training checkpoints, what it resumes from, and what resuming needs; it
    starts the body's training where the checkpoint left off."""

    folder: Path
    resume: checkpoints.Checkpoint | None
    state: dict[str, Any]

    def record(self, train_config: config.TrainConfig, examples: int,
               on_step: StepCallback | None, should_stop: Callable[[], bool] | None,
               head_history: dict[str, list[float]] | None = None) -> fitting.EpochRecord:
        """The record of the body's training on `examples` images: a resumed one goes on
        from its checkpoint's history and best epoch; fine-tuning's second stage from the
        head's history, whose best validation accuracy is the baseline to beat."""
        record = fitting.EpochRecord(
            train_config.epochs, fitting.steps_per_epoch(examples, train_config.batch_size),
            on_step, should_stop, learning_rate=train_config.effective_learning_rate,
            phase="fine-tuning" if train_config.mode == "fine-tune" else "training",
            history=self.resume.state["history"] if self.resume else head_history,
            baseline=(max(head_history.get("val_accuracy") or [-1.0])
                      if head_history is not None and self.resume is None else None))
        if self.resume is not None:
            record.best_epoch = self.resume.state["best_epoch"]
            record.best_accuracy = self.resume.state["best_accuracy"]
            record.best_weights = self.resume.best_weights()
        return record

    def checkpointing(self, record: fitting.EpochRecord, extra: dict[str, Any]
                      ) -> list[keras.callbacks.Callback]:
        """The callback that checkpoints every epoch of a fit that tells `record`."""
        return [checkpoints.EpochCheckpoint(self.folder, {**self.state, "extra": extra},
                                            record.history, record, resume=self.resume)]


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
    phase "waiting" with how many are ahead (`turns.TRAINING`).

    Raises:
        TrainingCancelled: stopped before the first training epoch finished (or while
            waiting for its turn).
        backbones.WeightsUnavailableError: pretrained weights are missing.
        config.LimitError: over a limit of `config.limits()` (epochs, image side, classes).
    """
    check_limits(train_config, dataset)
    with turns.TRAINING.turn(on_step, should_stop), (strategy.scope() if strategy is not None
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
    config.check_limit("image_size", estimate.resolve_image_size(train_config, dataset))
    config.check_limit("classes", dataset.num_classes)


def _train_classifier(train_config: config.TrainConfig, dataset: data.Dataset,
                      runs_dir: Path | None, on_step: StepCallback | None,
                      should_stop: Callable[[], bool] | None,
                      resume: checkpoints.Checkpoint | None, run_id: str | None,
                      owner: str | None) -> runs.Run:
    started = time.perf_counter()
    expected = estimate.training_seconds(train_config, dataset)  # before the cache fills
    keras.utils.set_random_seed(train_config.seed)
    image_size = estimate.resolve_image_size(train_config, dataset)
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
    except fitting.TrainingDiverged:
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
    dataset = data.reopen(state["data"], f"training {checkpoint.run_id} started; it cannot "
                                          "be resumed on other data")
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
            _embed_dataset(embedder, dataset, on_step, should_stop, cached=key is not None))
    trained = train_head(train_config, vectors, dataset.labels, dataset.splits,
                         dataset.num_classes, on_step, should_stop)
    classifier = models.build_classifier(train_config.backbone, body, dataset.num_classes,
                                         head=trained.head)
    extra = {"embedding_cache": cache_state, **trained.outcome.run_facts(),
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


@dataclasses.dataclass
class HeadTraining:
    """A head trained on embeddings, and the vectors per split to score it with."""

    head: keras.Model
    outcome: fitting.FitOutcome
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
        class_weights=_class_weights(train_config, split_labels["train"]),
        on_step=on_step, should_stop=should_stop)
    return HeadTraining(head, outcome, inputs)


def _in_memory_if_small(rows: features.RowsView) -> np.ndarray | features.RowsView:
    return rows[:] if rows.nbytes <= IN_MEMORY_BYTES else rows


def _embed_dataset(embedder: keras.Model, dataset: data.Dataset, on_step: StepCallback | None,
                   should_stop: Callable[[], bool] | None,
                   starts: Sequence[int] | None = None, cached: bool = True
                   ) -> Iterator[np.ndarray]:
    """Yield the embeddings of the chunks of EMBED_CHUNK files beginning at `starts` (all
    of them by default), one chunk at a time (memory: one chunk); `cached` says whether
    they are kept for later trainings (random weights never are)."""
    size = models.input_size(embedder)
    starts = range(0, len(dataset.paths), EMBED_CHUNK) if starts is None else starts
    total = _rows_in(starts, len(dataset.paths))
    phase = {"phase": "embedding images (once: cached for later trainings)" if cached
             else "embedding images (random weights: not kept)"}
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
        input_size=estimate.resolve_image_size(train_config, dataset)), dataset)
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
        if train_config.adversarial_epsilon:
            raise ValueError("adversarial training runs on one machine: the multi-worker loop "
                             "trains on the images as they are")
        outcome = multiworker.fit(classifier, strategy, train_config, train_split, validation,
                                  on_step, should_stop,
                                  _class_weights(train_config, train_split[1]))
    else:
        record = session.record(train_config, len(train_split[1]), on_step, should_stop)
        outcome = _fit(classifier, train_config, train_split, validation, record,
                       session.checkpointing(record, extra), session.resume)
    extra.update(outcome.run_facts())
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
        head_config = dataclasses.replace(train_config, mode="fast", adversarial_epsilon=0.0,
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
    train_split = (images["train"], _labels(dataset, "train"))
    record = session.record(train_config, len(train_split[1]), on_step, should_stop,
                            head_history)
    outcome = _fit(classifier, train_config, train_split,
                   (images["validation"], _labels(dataset, "validation")), record,
                   session.checkpointing(record, extra), session.resume)
    best_epoch = (extra["head_epochs"] + outcome.best_epoch if outcome.best_epoch
                  else extra["best_epoch"])  # no fine-tuning epoch beat the head
    extra.update({**outcome.run_facts(), "best_epoch": best_epoch})
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
         record: fitting.EpochRecord, callbacks: Sequence[keras.callbacks.Callback] = (),
         resume: checkpoints.Checkpoint | None = None) -> fitting.FitOutcome:
    """Compile and fit `model` with Keras, telling `record` what happens; return how it ended.

    The settings come from `train_config`: class weights, early stopping after `patience`
    epochs without a better validation accuracy, and in fine-tuning's second stage
    augmentation and a learning rate that decays to zero over the planned epochs (cosine:
    big early steps would undo pretrained features late). A short training from scratch
    learns faster at a constant rate (demo set, 5 epochs: 0.92 with cosine, 0.97 without).

    `callbacks` (a session's checkpoint) run after the record's, so they see the epoch's
    best weights. A `resume`d training starts at its checkpoint's epoch with its
    optimiser's state; `record` holds the history and best epoch before it.

    Raises:
        TrainingCancelled, TrainingDiverged: no epoch finished (`EpochRecord.outcome`).
        ValueError: the checkpoint's optimiser state does not fit this model.
    """
    fine_tuning = train_config.mode == "fine-tune"
    model = adversarial.trainer(model, train_config)  # the same variables, perturbed batches
    _compile(model, train_config, fitting.steps_per_epoch(len(train[1]), train_config.batch_size)
             if fine_tuning else None)
    if resume is not None and not checkpoints.restore_optimizer(model, resume):
        raise ValueError("the checkpoint's optimiser state does not fit this model; "
                         "the checkpoint is from another version: discard it")
    callbacks = [_RecordCallback(record, -(-len(validation[1]) // train_config.batch_size)),
                 *callbacks]
    if train_config.patience and len(validation[1]):
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy",
                                                       patience=train_config.patience))
    augmenting = fine_tuning and train_config.augment
    inputs, labels = ((augmented_batches(*train, train_config.batch_size, train_config.seed,
                                         train_config.augmentation), None)
                      if augmenting else train)
    # A tiny data set can leave validation empty: then the last epoch is kept. Images stay
    # uint8 (a quarter of float32's memory); the model casts each batch.
    model.fit(inputs, labels, validation_data=validation if len(validation[1]) else None,
              epochs=train_config.epochs, initial_epoch=resume.epochs_done if resume else 0,
              batch_size=None if augmenting else train_config.batch_size,
              validation_batch_size=train_config.batch_size, shuffle=not augmenting, verbose=0,
              callbacks=callbacks, class_weight=_class_weights(train_config, train[1]))
    return record.outcome()


def _compile(model: keras.Model, train_config: config.TrainConfig,
             cosine_steps_per_epoch: int | None) -> None:
    """Compile for training with Adam on logits; with `cosine_steps_per_epoch`, the rate
    decays to zero over `train_config.epochs` such epochs."""
    rate = train_config.effective_learning_rate
    if cosine_steps_per_epoch:
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=train_config.epochs * cosine_steps_per_epoch)
    model.compile(optimizer=keras.optimizers.Adam(rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


class _RecordCallback(keras.callbacks.Callback):
    """Tell a `fitting.EpochRecord` what Keras `fit` does, and stop `fit` when it says so;
    the rules (progress, cancel, divergence, best epoch) are the record's."""

    def __init__(self, record: fitting.EpochRecord, validation_steps: int) -> None:
        super().__init__()
        self.record, self.validation_steps, self.epoch = record, validation_steps, 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Keep the starting weights when they are the baseline to beat."""
        self.record.begin(self.model.get_weights)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Say that the epoch began."""
        self.epoch = epoch
        self.record.epoch_begins(epoch)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Poll for a cancel, check the loss, and report the batch."""
        logs = logs or {}
        cancelled = self.record.cancel_requested()
        finite = self.record.loss_is_finite(float(logs.get("loss", 0.0)), self.epoch, batch)
        if cancelled or not finite:
            self.model.stop_training = True
        self.record.batch_ends(self.epoch, batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Say that the epoch's validation pass began (a fine-tuned VGG16 spends seconds
        there, after its last batch)."""
        self.record.validating(self.epoch, 0, self.validation_steps)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Report the validation pass batch by batch."""
        self.record.validating(self.epoch, batch + 1, self.validation_steps)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record the epoch (the record keeps its weights if it is the best)."""
        self.record.end_epoch(epoch, logs or {}, self.model.get_weights)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Put the best epoch's weights back."""
        if self.record.best_weights is not None:
            self.model.set_weights(self.record.best_weights)


def _class_weights(train_config: config.TrainConfig, labels: np.ndarray
                   ) -> dict[int, float] | None:
    """Balanced class weights of the training labels when the config asks for them."""
    return balanced_class_weights(labels) if train_config.class_weights else None


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """Weight each present class by N / (K * count), so every class adds up to the same."""
    classes, counts = np.unique(labels, return_counts=True)
    return {int(c): float(len(labels) / (len(classes) * n)) for c, n in zip(classes, counts)}


def augmented_batches(images: np.ndarray, labels: np.ndarray, batch_size: int,
                      seed: int = 0,
                      augmentation: config.Augmentation = config.Augmentation()
                      ) -> tf.data.Dataset:
    """A shuffled, prefetched tf.data pipeline over uint8 images and labels, each batch
    changed at random as `augmentation` says (`tlcore.augment`, as the Train page's
    preview)."""
    augmenter = augment.layers(augmentation, seed)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda batch, batch_labels: (augment.apply(augmenter, batch), batch_labels),
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
