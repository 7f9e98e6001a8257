"""Find a learning rate before training: the learning-rate range test, as fastai's `lr_find`.

A fresh copy of the model the training would train takes one optimiser step per batch at a
learning rate that grows exponentially from `start` to `end` (Smith 2017, "Cyclical
Learning Rates"); the loss of each batch is smoothed (an exponential moving average with
bias correction, as fastai's `AvgSmoothLoss`), and the test stops once the smoothed loss
passes `diverge` times its lowest value. A rule then reads a rate off the smoothed curve
(`RULES`: fastai's valley, steep, minimum and slide; valley, fastai's default, is the one
suggested).

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
from tlcore.config import StepCallback
from tlcore.fitting import TrainingCancelled

START, END, STEPS = 1e-7, 10.0, 100  # fastai's defaults
SMOOTHING, DIVERGE = 0.98, 4.0  # fastai's: the average's weight, and the stop at 4x the minimum
MAX_STEPS = 500
SAMPLE_IMAGES = 256  # training images the batches are drawn from (and the head learns on)
SKIP_END = 5  # the last points lag the blow-up in the smoothed loss: no rule reads them
MIN_POINTS = 8  # fewer points left to read: no suggestion
LOAD_CHUNK = 64  # images decoded between progress reports
FINE_TUNE_PASSES, END_TO_END_PASSES = 2.0, 3.0  # forward passes per image and step
Curve = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


def _valley(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """The rate about halfway down the longest decreasing run of the curve (fastai's index:
    a third plus a sixth of the way)."""
    lengths = np.ones(len(losses), dtype=int)  # longest decreasing subsequence ending here
    for right in range(1, len(losses)):
        lower = losses[:right] > losses[right]
        if lower.any():
            lengths[right] = lengths[:right][lower].max() + 1
    end = int(np.argmax(lengths))
    begin = end - int(lengths[end])
    third = (end - begin) / 3
    index = max(0, begin + int(third) + int(third / 2))
    return float(rates[index]), float(losses[index])


def _steep(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """The rate where the loss falls fastest per unit of log rate."""
    slopes = np.diff(losses) / np.diff(np.log(rates))
    index = int(np.argmin(slopes))
    return float(rates[index]), float(losses[index])


def _minimum(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """A tenth of the rate of the lowest loss (kept inside the swept rates)."""
    rate = max(float(rates[int(np.argmin(losses))]) / 10, float(rates[0]))
    return rate, _loss_at(rate, rates, losses)


def _slide(rates: np.ndarray, losses: np.ndarray, width: int = 15,
           threshold: float = 0.005) -> tuple[float, float]:
    """Slide a window of `width` points from the highest rates down until the loss's slope
    is the same at both its ends (within `threshold`); its left end (fastai's slide)."""
    slopes = np.gradient(losses)
    right = len(losses) - 1
    left = max(0, right - width)
    rate = rates[left]
    while left >= 0 and abs(slopes[right] - slopes[left]) > threshold:
        rate = rates[left]
        right, left = right - 1, left - 1
    rate = float(rate)
    return rate, _loss_at(rate, rates, losses)


def _loss_at(rate: float, rates: np.ndarray, losses: np.ndarray) -> float:
    return float(np.interp(math.log(rate), np.log(rates), losses))


@dataclasses.dataclass(frozen=True)
class Rule:
    """One way to read a learning rate off the smoothed loss curve.

    Attributes:
        label: its name for people.
        explanation: one sentence for a newcomer: what the rule picks and why.
        pick: pick(rates, smoothed losses) -> (the rate, the smoothed loss there), on the
            part of the curve that rules read (`readable`).
    """

    label: str
    explanation: str
    pick: Curve


# The one table of rules, fastai's four; DEFAULT_RULE is the one suggested.
RULES = {
    "valley": Rule("Valley", "The loss falls over a longest stretch of rates; this rate lies "
                             "about halfway down it, where the loss still falls fast and is far "
                             "from blowing up (fastai's default).", _valley),
    "steep": Rule("Steepest", "The rate where the smoothed loss falls fastest as the rate "
                              "grows.", _steep),
    "minimum": Rule("Minimum / 10", "A tenth of the rate where the smoothed loss was lowest: "
                                    "the lowest point itself is already close to where the "
                                    "loss blows up.", _minimum),
    "slide": Rule("Slide", "Coming down from the highest rates, the first place where the "
                           "curve's slope is the same over a window of 15 steps, where the "
                           "curve has settled before the blow-up.", _slide),
}
DEFAULT_RULE = "valley"


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """A rule's learning rate and the smoothed loss there (where the chart marks it)."""

    rule: str
    learning_rate: float
    loss: float

    @property
    def explanation(self) -> str:
        """The rule's one sentence."""
        return RULES[self.rule].explanation


@dataclasses.dataclass(frozen=True)
class LRFindResult:
    """A range test's curve and what the rules read off it.

    Attributes:
        learning_rates: the rate of each step taken, growing by a constant factor.
        losses: each step's batch loss (before its update), as the training reports it.
        smoothed: the losses' moving average with bias correction.
        suggestions: each rule's suggestion by name; empty when too few steps were taken.
        rule: the rule whose rate is suggested (`DEFAULT_RULE`).
        ended: "diverged" (the smoothed loss passed `diverge` x its minimum, or a loss was
            not finite), "end of range" or "stopped" (`should_stop`).
        diverged_at: the rate of the step that diverged, or None.
        start, end, steps: the sweep asked for.
        images: training images the batches were drawn from.
        seconds: how long the test took, its wait for a turn left out.
        settings: the training settings it measured (`TrainConfig.to_dict()`).
    """

    learning_rates: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    suggestions: dict[str, Suggestion]
    rule: str
    ended: str
    diverged_at: float | None
    start: float
    end: float
    steps: int
    images: int
    seconds: float
    settings: dict[str, Any]

    @property
    def suggestion(self) -> Suggestion | None:
        """The suggested rate (by `rule`), or None when too few steps were taken."""
        return self.suggestions.get(self.rule)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data, with each suggestion's rule label and sentence."""
        result = dataclasses.asdict(self)
        result["suggestions"] = {name: {**dataclasses.asdict(found), "label": RULES[name].label,
                                        "explanation": found.explanation}
                                 for name, found in self.suggestions.items()}
        result["suggested_learning_rate"] = (self.suggestion.learning_rate
                                             if self.suggestion else None)
        return result


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


def suggest(rates: np.ndarray, smoothed: np.ndarray, steps: int) -> dict[str, Suggestion]:
    """Every rule's suggestion from a sweep's curve, as fastai reads it: the first tenth of
    the planned steps and the last `SKIP_END` points are left out (the start is flat and
    noisy, the end lags the blow-up).

    Args:
        rates: the rates tried, ascending.
        smoothed: the smoothed loss at each.
        steps: the steps planned.

    Returns:
        {rule name: Suggestion}, empty when fewer than `MIN_POINTS` points are left.
    """
    readable = slice(steps // 10, max(0, len(rates) - SKIP_END))
    rates, smoothed = np.asarray(rates)[readable], np.asarray(smoothed)[readable]
    if len(rates) < MIN_POINTS:
        return {}
    return {name: Suggestion(name, *rule.pick(rates, smoothed)) for name, rule in RULES.items()}


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


def describe(result: dict[str, Any]) -> str:
    """A range test's result (`LRFindResult.to_dict()`) in lines for people: the sweep, how
    it ended, the suggestion and its rule, the other rules' rates, and every tenth point."""
    settings = result["settings"]
    tried = len(result["learning_rates"])
    ending = {"diverged": f"the loss blew up at {result['diverged_at'] or 0:.2g}",
              "end of range": "it reached the last rate",
              "stopped": "it was stopped"}[result["ended"]]
    lines = [f"{settings['backbone']} ({settings['mode']}, batch {settings['batch_size']}) on "
             f"{result['images']} training images: {tried} of {result['steps']} rates from "
             f"{result['start']:g} to {result['end']:g}; {ending}."]
    found = result["suggestions"].get(result["rule"])
    if found is None:
        lines.append("No suggestion: too few rates were tried before the end.")
    else:
        lines.append(f"Suggested learning rate: {found['learning_rate']:.2g} "
                     f"({found['label']}: {found['explanation']})")
        lines.append("Other rules: " + ", ".join(
            f"{other['label']} {other['learning_rate']:.2g}"
            for name, other in result["suggestions"].items() if name != result["rule"]))
    lines.append(f"{'rate':>10} {'loss':>8} {'smoothed':>9}")
    lines += [f"{rate:>10.2e} {loss:>8.3f} {smooth:>9.3f}" for rate, loss, smooth in list(zip(
        result["learning_rates"], result["losses"], result["smoothed"]))[::max(1, tried // 10)]]
    return "\n".join(lines)
