"""Find a learning rate before training: the learning-rate range test, as fastai's `lr_find`.

A fresh copy of the model the training would train takes one optimiser step per batch at a
learning rate that grows exponentially from `start` to `end` (Smith 2017, "Cyclical
Learning Rates"); the loss of each batch is smoothed (an exponential moving average with
bias correction, as fastai's `AvgSmoothLoss`), and the test stops once the smoothed loss
passes `diverge` times its lowest value. A rule then reads a rate off the smoothed curve
(`lr_curve.RULES`: fastai's valley, steep, minimum and slide; valley, fastai's default,
is the one suggested).

Which model: the training's own (`train`'s builders and pipeline: same backbone, weights,
image size, class weights, augmentation, adversarial batches). End to end, the whole model
(a pretrained body's top `trainable_blocks`, BatchNorm frozen, as `train` does). In
fine-tuning the rate asked for is the second stage's, so the sweep starts where that stage
starts: the head is first trained as the training's first stage trains it (its epochs at
the feature-extractor rate on frozen-body embeddings), then the top blocks are unfrozen.
A head trained on the sample below, not on the whole split, keeps the test bounded; the
body only has to meet an informed head, not the identical one.

Bounded: the batches come from a stratified sample of at most `SAMPLE_IMAGES` training
images, the steps are at most `MAX_STEPS`; the page adds its time budget through
`should_stop`. It takes the training turn (`turns.TRAINING`), since it draws weights and
dropout masks from Keras's process-wide random state as a training does. Nothing is saved:
no run, no checkpoint, no cache entry (the head's embeddings go to a scratch file).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Iterator

import keras
import numpy as np

from tlcore import (adversarial, backbones, config, data, estimate, evaluate, features, models,
                    train, turns)
from tlcore.lr_curve import DEFAULT_RULE, LRFindResult, suggest
from tlcore.config import StepCallback
from tlcore.fitting import TrainingCancelled

START, END, STEPS = 1e-7, 10.0, 100  # fastai's defaults
SMOOTHING, DIVERGE = 0.98, 4.0  # fastai's: the average's weight, and the stop at 4x the minimum
MAX_STEPS = 500
SAMPLE_IMAGES = 256  # training images the batches are drawn from (and the head learns on)
LOAD_CHUNK = 64  # images decoded between progress reports
FINE_TUNE_PASSES, END_TO_END_PASSES = 2.0, 3.0  # forward passes per image and step


def range_test(train_config: config.TrainConfig, dataset: data.Dataset, *,
               start: float = START, end: float = END, steps: int = STEPS,
               smoothing: float = SMOOTHING, diverge: float = DIVERGE,
               on_step: StepCallback | None = None,
               should_stop: Callable[[], bool] | None = None) -> LRFindResult:
    """Train a fresh copy of the model one batch per rate, from `start` up to `end`, and
    suggest a learning rate for `train_config`'s training (see the module's docstring).

    Args:
        train_config: the training to find a rate for: fine-tune (the rate of the body's
            stage) or end-to-end; its learning rate and epochs play no part.
        dataset: the data; batches come from its training split.
        start, end: the first and last rates, 0 < start < end.
        steps: rates tried, each one batch: `start * (end / start) ** (i / (steps - 1))`.
        smoothing: the moving average's weight of the past, in [0, 1) (0: raw losses).
        diverge: stop once the smoothed loss passes this multiple of its minimum (> 1).
        on_step: progress `(step, total, metrics)`; metrics["phase"] names the phase, and
            while rates are tried "learning_rate", "loss" (smoothed) and "detail".
        should_stop: polled before each step; True ends the sweep with what it has
            (`ended` "stopped").

    Returns:
        The curve and the suggestions; nothing is saved.

    Raises:
        ValueError: fast mode, fine-tuning random weights, an empty training split, or a
            sweep setting out of range.
        config.LimitError: over a limit of `config.limits()` (image side, classes).
        backbones.WeightsUnavailableError: pretrained weights are missing.
        TrainingCancelled: `should_stop()` turned True before the first rate was tried.
    """
    _check(train_config, dataset, start, end, steps, smoothing, diverge)
    with turns.TRAINING.turn(on_step, should_stop):  # at once if the caller holds it
        began = time.perf_counter()
        keras.utils.set_random_seed(train_config.seed)
        size = estimate.resolve_image_size(train_config, dataset)
        images, labels = _sample(train_config, dataset, size, on_step)
        model = adversarial.trainer(
            _classifier(train_config, dataset, size, images, labels, on_step, should_stop),
            train_config)
        if should_stop is not None and should_stop():
            raise TrainingCancelled("stopped before the first learning rate was tried")
        rates = np.geomspace(start, end, steps)
        curve = _sweep(model, _batches(images, labels, train_config),
                       _class_weights(train_config, dataset), rates, smoothing, diverge,
                       on_step, should_stop)
    losses, smoothed, ended, diverged_at = curve
    tried = rates[:len(losses)]
    return LRFindResult(
        tuple(map(float, tried)), tuple(losses), tuple(smoothed),
        suggest(tried, np.asarray(smoothed), steps), DEFAULT_RULE, ended, diverged_at, start,
        end, steps, len(labels), round(time.perf_counter() - began, 2), train_config.to_dict())


def _check(train_config: config.TrainConfig, dataset: data.Dataset, start: float, end: float,
           steps: int, smoothing: float, diverge: float) -> None:
    if train_config.mode == "fast":
        raise ValueError("the learning-rate finder is for fine-tuning and end-to-end training; "
                         "a feature extractor's head trains in seconds at "
                         f"{config.default_learning_rate('fast', train_config.weights):g}")
    if train_config.mode == "fine-tune" and train_config.weights in backbones.RANDOM_WEIGHTS:
        raise ValueError("fine-tune mode needs pretrained weights: with random weights there "
                         "is nothing to fine-tune; use mode 'end-to-end' to train from scratch")
    if not 0 < start < end:
        raise ValueError(f"start={start:g} and end={end:g} must satisfy 0 < start < end")
    if not 2 <= steps <= MAX_STEPS:
        raise ValueError(f"steps={steps} must be between 2 and {MAX_STEPS}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing={smoothing:g} must be in [0, 1)")
    if not diverge > 1:
        raise ValueError(f"diverge={diverge:g} must be above 1 (fastai uses 4)")
    if not len(dataset.splits["train"]):
        raise ValueError(f"{dataset.name} has no training images")
    train.check_limits(train_config, dataset)


def sample_size(train_config: config.TrainConfig, dataset: data.Dataset) -> int:
    """The training images a range test draws its batches from: at most `SAMPLE_IMAGES`, a
    whole number of batches when there is more than one (every step a full batch)."""
    count = min(len(dataset.splits["train"]), SAMPLE_IMAGES)
    batch = train_config.batch_size
    return count - count % batch if count >= batch else count


def _sample(train_config: config.TrainConfig, dataset: data.Dataset, size: int,
            on_step: StepCallback | None) -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of the training split at `size` px, decoded a chunk at a time."""
    chosen = evaluate.sample_split(dataset, "train", sample_size(train_config, dataset),
                                   seed=train_config.seed)
    phase = {"phase": f"decoding {len(chosen)} training images at {size} px"}
    parts = []
    _report(on_step, 0, len(chosen), phase)
    for begin in range(0, len(chosen), LOAD_CHUNK):
        parts.append(evaluate.sample_pixels(dataset, chosen[begin:begin + LOAD_CHUNK], size))
        _report(on_step, min(begin + LOAD_CHUNK, len(chosen)), len(chosen), phase)
    return np.concatenate([images for images, _ in parts]), np.concatenate(
        [labels for _, labels in parts])


def _classifier(train_config: config.TrainConfig, dataset: data.Dataset, size: int,
                images: np.ndarray, labels: np.ndarray, on_step: StepCallback | None,
                should_stop: Callable[[], bool] | None) -> keras.Model:
    """The model as the training's body stage starts it (see the module's docstring)."""
    name = train_config.backbone
    building = {"phase": f"building {backbones.get_spec(name).display_name} and loading its "
                         "weights"}
    _report(on_step, 0, 1, building)
    body = backbones.build_backbone(name, weights=backbones.resolve_weights(
        name, train_config.weights, size), input_size=size)
    _report(on_step, 1, 1, building)
    if train_config.mode == "end-to-end":
        pretrained = train_config.weights not in backbones.RANDOM_WEIGHTS
        backbones.set_trainable_blocks(
            body, name, train_config.effective_trainable_blocks if pretrained else -1)
        return models.build_classifier(name, body, dataset.num_classes,
                                       dropout_rate=train_config.dropout_rate,
                                       freeze_batch_norm=pretrained)
    body.trainable = False
    head = _trained_head(train_config, dataset.num_classes, models.embedding_model(
        models.build_classifier(name, body, dataset.num_classes)), images, labels, on_step,
        should_stop)
    classifier = models.build_classifier(name, body, dataset.num_classes, head=head)
    backbones.set_trainable_blocks(body, name, train_config.effective_trainable_blocks)
    return classifier


def _trained_head(train_config: config.TrainConfig, num_classes: int, embedder: keras.Model,
                  images: np.ndarray, labels: np.ndarray, on_step: StepCallback | None,
                  should_stop: Callable[[], bool] | None) -> keras.Model:
    """Fine-tuning's first stage on the sample: the head on the frozen body's embeddings."""
    phase = {"phase": "embedding the images for the head"}

    def embedded(step: int, total: int, _: dict) -> None:
        _report(on_step, step, total, phase)

    try:
        vectors = features.embed(embedder, images, on_step=embedded, should_stop=should_stop)
    except InterruptedError as error:
        raise TrainingCancelled("stopped while embedding the images; nothing measured") \
            from error
    head_config = dataclasses.replace(train_config, mode="fast", adversarial_epsilon=0.0,
                                      epochs=train_config.head_epochs, learning_rate=None)

    def head_step(step: int, total: int, metrics: dict) -> None:
        _report(on_step, step, total, {**metrics, "phase": "training the head first, as the "
                                                           "training will"})

    scratch = features.write_embeddings(None, len(vectors), vectors.shape[1], [vectors])
    everything = np.arange(len(labels))
    return train.train_head(head_config, scratch, labels, {
        "train": everything, "validation": everything[:0]}, num_classes, head_step,
        should_stop).head


def _batches(images: np.ndarray, labels: np.ndarray, train_config: config.TrainConfig
             ) -> Iterator[tuple[Any, np.ndarray]]:
    """Endless full batches of the sample, reshuffled each pass; augmented as the training
    augments them (fine-tuning's body stage)."""
    batch = min(train_config.batch_size, len(labels))
    if train_config.mode == "fine-tune" and train_config.augment:
        for pixels, classes in train.augmented_batches(
                images, labels, batch, train_config.seed, train_config.augmentation).repeat():
            yield pixels, classes.numpy()  # endless
    random = np.random.default_rng(train_config.seed)
    while True:
        order = random.permutation(len(labels))
        for begin in range(0, len(order) - batch + 1, batch):
            chosen = order[begin:begin + batch]
            yield images[chosen].astype(np.float32), labels[chosen]


def _class_weights(train_config: config.TrainConfig, dataset: data.Dataset
                   ) -> dict[int, float] | None:
    """The training's class weights: balanced over the whole training split."""
    if not train_config.class_weights:
        return None
    return train.balanced_class_weights(dataset.labels[dataset.splits["train"]])


def _sweep(model: keras.Model, batches: Iterator[tuple[Any, np.ndarray]],
           class_weights: dict[int, float] | None, rates: np.ndarray, smoothing: float,
           diverge: float, on_step: StepCallback | None, should_stop: Callable[[], bool] | None
           ) -> tuple[list[float], list[float], str, float | None]:
    """One step per rate; return the losses, the smoothed losses, how it ended and the rate
    that diverged (the curve keeps the step that passed the threshold, to show the rise)."""
    model.compile(optimizer=keras.optimizers.Adam(float(rates[0])),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses: list[float] = []
    smoothed: list[float] = []
    average, lowest = 0.0, math.inf
    # No count yet (total 0) while the training step is traced: the time left is timed from
    # the first step taken.
    _report(on_step, 0, 0, {"phase": "trying learning rates",
                             "detail": "preparing the training step"})
    for index, (rate, (images, labels)) in enumerate(zip(rates, batches)):
        if should_stop is not None and should_stop():
            return losses, smoothed, "stopped", None
        model.optimizer.learning_rate = float(rate)
        loss = float(model.train_on_batch(images, labels, class_weight=class_weights,
                                          return_dict=True)["loss"])
        if not math.isfinite(loss):
            return losses, smoothed, "diverged", float(rate)
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (index + 1))  # the average starts at 0: unbias
        losses.append(loss)
        smoothed.append(value)
        lowest = min(lowest, value)
        _report(on_step, index + 1, len(rates), {
            "phase": "trying learning rates", "learning_rate": float(rate), "loss": value,
            "detail": f"learning rate {rate:.1e}, smoothed loss {value:.3f}"})
        if value > diverge * lowest:
            return losses, smoothed, "diverged", float(rate)
    return losses, smoothed, "end of range", None


def _report(on_step: StepCallback | None, step: int, total: int, metrics: dict) -> None:
    if on_step is not None:
        on_step(step, total, dict(metrics))


def expected_seconds(train_config: config.TrainConfig, dataset: data.Dataset,
                     steps: int = STEPS, speed: float = 1.0) -> estimate.Estimate:
    """How long a range test of `steps` takes at most (it usually stops earlier, where the
    loss blows up), counted in forward passes as `estimate.training_seconds` counts them.

    Args:
        speed: this server against the reference machine (`estimate.speed_from_runs`).
    """
    size = estimate.resolve_image_size(train_config, dataset)
    per_image = estimate.forward_seconds(train_config.backbone, size, speed)
    images = sample_size(train_config, dataset)
    passes = FINE_TUNE_PASSES if train_config.mode == "fine-tune" else END_TO_END_PASSES
    parts = {"building the model": estimate.BUILD_SECONDS,
             "decoding": images * estimate.DECODE_SECONDS}
    if train_config.mode == "fine-tune":
        parts["the head first"] = images * per_image + estimate.HEAD_SECONDS
    parts["trying rates"] = estimate.TRACE_SECONDS + steps * min(
        train_config.batch_size, images) * (passes + estimate.attack_passes(train_config)) \
        * per_image
    return estimate.Estimate(sum(parts.values()), parts, speed, cached=False)
