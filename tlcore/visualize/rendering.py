"""Render "ideal" images: climb an objective from noise (or a given image) by gradient steps.

One compiled step does everything: read the image from its parameterisation, transform it
randomly (if asked), score it, subtract the regularisers (on the untransformed image) and
update the parameters. A sweep renders one image per TV weight in a single batch: the
images are independent (the model runs in inference mode), so the batch costs about one
render's wall time per image on a CPU, and less on a GPU.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, features, images as image_utils, models, pace
from tlcore.config import StepCallback
from tlcore.visualize import objectives, parameterizations, regularizers, transforms

NOISE_STD = 20.0  # the default starting noise around mid-grey, in pixels



@dataclasses.dataclass(frozen=True)
class RenderResult:
    """An ideal image and how it was reached.

    Attributes:
        image: (S, S, 3) float pixels in [0, 255].
        target: the class the objective is about, or None (a channel or neuron objective).
        objective_trace: the objective (score minus penalties) after each step.
        logit_trace: the target's logit after each step (empty without a target).
        probabilities: (K,) softmax of the final image's logits.
        total_variation: of the final image, in pixel units.
        seconds: wall time of the whole render (a sweep's images share it).
        tv_weight: the TV weight this image was rendered with.
        description: the objective, for people.
        first_step_seconds: wall time to the end of the first step (it builds the graph).
        step_seconds: mean wall time of each later step (0 with a single step).
    """

    image: np.ndarray
    target: int | None
    objective_trace: list[float]
    logit_trace: list[float]
    probabilities: np.ndarray
    total_variation: float
    seconds: float
    tv_weight: float = 0.0
    description: str = ""
    first_step_seconds: float = 0.0
    step_seconds: float = 0.0

    @property
    def probability(self) -> float | None:
        """The target class's final probability, or None without a target."""
        return None if self.target is None else float(self.probabilities[self.target])

    @property
    def steps_per_second(self) -> float:
        """Optimisation steps per second of wall time."""
        return len(self.objective_trace) / max(self.seconds, 1e-9)


def start_noise(size: int, seed: int, std: float = NOISE_STD) -> np.ndarray:
    """Return the seeded starting image: mid-grey plus Gaussian noise, in [0, 255]."""
    noise = np.random.default_rng(seed).normal(regularizers.MID_GREY, std, (size, size, 3))
    return np.clip(noise, 0, 255).astype(np.float32)


def render(model: keras.Model, objective: objectives.Objective | int,
           render_config: config.RenderConfig, *, start_image: np.ndarray | None = None,
           on_step: StepCallback | None = None, should_stop: Callable[[], bool] | None = None,
           report_every: int = 10, compiled: bool = True) -> RenderResult:
    """Maximise an objective over the input image.

    The objective is `render_config.objective_weight * objective - tv_weight * TV - l2_weight
    * RMS(image - grey) - l1_weight * mean|image - grey| - blur_weight * mean|image - blur|`.

    Args:
        model: pixels in [0, 255] -> logits; never changed.
        objective: an `objectives.Objective`, or a class index: then the class's logit, or
            its log-probability when `render_config.objective` is "probability".
        render_config: steps, optimiser, parameterisation, transforms, weights, seed.
        start_image: (S, S, 3) pixels to start from; None starts from seeded noise.
        on_step: called every `report_every` steps with (step, steps, {"objective",
            "logit", "probability", "image"}) (logit and probability None without a target).
        should_stop: polled each step; True ends the render early with what it has.
        report_every: steps between `on_step` calls.
        compiled: run each step as one TensorFlow graph (False: eagerly, for comparison).

    Raises:
        ValueError: a class index outside the model's classes, a layer the model lacks, or
            a start image of the wrong shape.
        config.LimitError: more steps than `config.limits()` allows.
    """
    return _render_batch(model, objective, render_config, [render_config.tv_weight],
                         start_image, on_step, should_stop, report_every, compiled)[0]


def render_sweep(model: keras.Model, objective: objectives.Objective | int,
                 render_config: config.RenderConfig, tv_weights: Sequence[float], *,
                 start_image: np.ndarray | None = None, on_step: StepCallback | None = None,
                 should_stop: Callable[[], bool] | None = None, report_every: int = 10,
                 compiled: bool = True) -> list[RenderResult]:
    """Render one image per TV weight, optimised together in one batch from the same start.

    Args:
        model, objective, render_config, start_image, should_stop, compiled: as `render`.
        tv_weights: one weight >= 0 per image.
        on_step: as `render`'s, with one more entry, "images": (N, S, S, 3), every image
            of the batch now ("image" and the numbers are the first one's).
        report_every: steps between `on_step` calls.

    Returns:
        One RenderResult per weight, in the order given.

    Raises:
        config.LimitError: more steps or weights than `config.limits()` allows.
    """
    if not tv_weights or min(tv_weights) < 0:
        raise ValueError(f"tv_weights={list(tv_weights)} must be one or more weights >= 0")
    return _render_batch(model, objective, render_config, list(tv_weights), start_image,
                         on_step, should_stop, report_every, compiled)


def render_classes(model: keras.Model, classes: Sequence[int],
                   render_config: config.RenderConfig, *, on_step: StepCallback | None = None,
                   should_stop: Callable[[], bool] | None = None, report_every: int = 10
                   ) -> list[RenderResult]:
    """Render one image per class, every image from the same start, in batches of at most
    `config.limits().sweep_images` (a grid of what the model thinks each class looks like).

    Args:
        model: pixels in [0, 255] -> logits; never changed.
        classes: class indices, one image each.
        render_config: as `render`'s; its `objective` picks logit or log-probability.
        on_step: progress over every batch, as on_step(steps done, len(batches) x steps,
            {"phase": "render steps", "detail": which batch, "images": the batch now}).
        should_stop: polled each step; True ends the batch early and skips the rest.
        report_every: steps between `on_step` calls.

    Returns:
        One RenderResult per class, in the order given, its `target` the class (the
        images not reached after a stop are left out).

    Raises:
        ValueError: a class index outside the model's classes.
        config.LimitError: more steps than `config.limits()` allows.
    """
    count = model.output_shape[-1]
    if not classes or not all(0 <= int(index) < count for index in classes):
        raise ValueError(f"classes={list(classes)} must be one or more indices in [0, {count})")
    batches = _class_batches(classes)
    steps = render_config.steps
    results: list[RenderResult] = []
    for number, members in enumerate(batches):
        def progress(step: int, total: int, metrics: dict, before: int = number * steps,
                     detail: str = f"batch {number + 1} of {len(batches)}") -> None:
            if on_step is not None:
                on_step(before + step, len(batches) * steps, {
                    "phase": "render steps", "images": metrics["images"], "detail": detail})

        objective = objectives.each_class(members, render_config.objective == "probability")
        rendered = _render_batch(model, objective, render_config,
                                 [render_config.tv_weight] * len(members), None, progress,
                                 should_stop, report_every, True)
        results += [dataclasses.replace(result, target=int(index))
                    for result, index in zip(rendered, members)]
        if should_stop is not None and should_stop():
            break
    return results


def class_render_steps(count: int, steps: int) -> int:
    """The progress total of `render_classes` for `count` classes: its batches x steps."""
    return len(_class_batches(range(count))) * steps


def _class_batches(classes: Sequence[int]) -> list[list[int]]:
    """Classes in batches of at most `config.limits().sweep_images` (any number without)."""
    batch = config.limits().sweep_images or max(len(classes), 1)
    return [[int(index) for index in classes[start:start + batch]]
            for start in range(0, len(classes), batch)]


def expected_seconds(model: keras.Model, steps: int, images: int = 1) -> float | None:
    """The expected wall time of a render (images=1) or sweep on `model`, from the pace of
    the latest render of it in this process (`tlcore.pace`); None when it has not rendered
    yet. The first step (it builds the graph) is counted apart; a batch size never
    measured is scaled per image from the nearest one measured."""
    first = pace.seconds_per_step(model, "render-first", images)
    if first is None or steps <= 0:
        return None
    later = pace.seconds_per_step(model, "render", images)
    return first + (steps - 1) * (first if later is None else later)


def _record_pace(model: keras.Model, images: int, first: float, later: float) -> None:
    pace.record_step(model, "render-first", images, first)
    pace.record_step(model, "render", images, later)


def _as_objective(objective: objectives.Objective | int, render_config: config.RenderConfig,
                  num_classes: int) -> objectives.Objective:
    if isinstance(objective, objectives.Objective):
        chosen = objective
    else:
        target = int(objective)
        chosen = (objectives.class_probability(target) if render_config.objective == "probability"
                  else objectives.class_logit(target))
    if chosen.target is not None and not 0 <= chosen.target < num_classes:
        raise ValueError(f"target={chosen.target} is not a class index in [0, {num_classes})")
    return chosen


def _render_batch(model: keras.Model, objective: objectives.Objective | int,
                  render_config: config.RenderConfig, tv_weights: list[float],
                  start_image: np.ndarray | None, on_step: StepCallback | None,
                  should_stop: Callable[[], bool] | None, report_every: int,
                  compiled: bool) -> list[RenderResult]:
    config.check_limit("render_steps", render_config.steps)
    config.check_limit("sweep_images", len(tv_weights))
    started = time.perf_counter()
    size = models.input_size(model)
    objective = _as_objective(objective, render_config, model.output_shape[-1])
    scorer = (features.activation_model(model, list(objective.layers)) if objective.layers
              else model)
    count = len(tv_weights)
    if start_image is not None:
        start_image = np.asarray(start_image, dtype=np.float32)
        if start_image.shape != (size, size, 3):
            raise ValueError(f"start image has shape {start_image.shape}; the model needs "
                             f"{(size, size, 3)}")
    if render_config.parameterization == "fourier":
        image = parameterizations.FourierImage(
            (count, size, size, 3), None if start_image is None
            else np.repeat(start_image[None], count, axis=0), seed=render_config.seed)
    else:
        start = (start_noise(size, render_config.seed, render_config.noise_std)
                 if start_image is None else start_image)
        image = parameterizations.PixelImage(np.repeat(start[None], count, axis=0))
    optimizer = (keras.optimizers.SGD(render_config.learning_rate)
                 if render_config.optimizer == "sgd"
                 else keras.optimizers.Adam(render_config.learning_rate))
    step = _step_function(scorer, objective, image, optimizer, render_config, tv_weights)
    if compiled:
        step = tf.function(step)
    objective_trace: list[list[float]] = [[] for _ in range(count)]
    logit_trace: list[list[float]] = [[] for _ in range(count)]
    stepping = time.perf_counter()
    first_step = later_steps = 0.0
    for index in range(1, render_config.steps + 1):
        totals, logits = step()
        totals, logits = totals.numpy(), logits.numpy()
        now = time.perf_counter()
        if index == 1:
            first_step = now - started
        else:
            later_steps += now - stepping
        stepping = now
        for member in range(count):
            objective_trace[member].append(float(totals[member]))
            if objective.target is not None:
                logit_trace[member].append(float(logits[member, objective.target]))
        if on_step is not None and (index % report_every == 0 or index == render_config.steps):
            target = objective.target
            now_images = image.image().numpy()
            on_step(index, render_config.steps, {
                "objective": float(totals[0]),
                "logit": None if target is None else float(logits[0, target]),
                "probability": None if target is None
                else float(models.softmax(logits)[0, target]),
                "image": now_images[0], "images": now_images})
        if should_stop is not None and should_stop():
            break
    done = len(objective_trace[0])
    later_step = later_steps / (done - 1) if done > 1 else 0.0
    if done > 1:
        _record_pace(model, count, first_step, later_step)
    finals = image.image().numpy()
    probabilities = models.softmax(models.predict_logits(model, finals))
    seconds = time.perf_counter() - started
    return [RenderResult(finals[i], objective.target, objective_trace[i], logit_trace[i],
                         probabilities[i], image_utils.total_variation(finals[i]), seconds,
                         float(tv_weights[i]), objective.description, first_step,
                         later_step) for i in range(count)]


def _step_function(scorer: keras.Model, objective: objectives.Objective,
                   image: parameterizations.PixelImage | parameterizations.FourierImage,
                   optimizer: keras.Optimizer, render_config: config.RenderConfig,
                   tv_weights: list[float]) -> Callable[[], tuple[tf.Tensor, tf.Tensor]]:
    """One optimisation step: returns (objective per image, logits)."""
    tv = tf.constant(tv_weights, tf.float32)
    weights = [(tf.constant(weight, tf.float32), penalty) for weight, penalty in (
        (render_config.l2_weight, regularizers.l2_from_grey),
        (render_config.l1_weight, regularizers.l1_from_grey),
        (render_config.blur_weight, regularizers.blur_distance)) if weight > 0]
    scale = tf.constant(render_config.objective_weight, tf.float32)
    generator = tf.random.Generator.from_seed(render_config.seed)
    layers = list(objective.layers)

    def step() -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            pixels = image.image()
            seen = transforms.standard(pixels, generator) if render_config.transforms else pixels
            outputs = scorer(seen, training=False)
            logits, activations = ((outputs[0], dict(zip(layers, outputs[1:]))) if layers
                                   else (outputs, {}))
            total = scale * objective(logits, activations)
            total -= tv * regularizers.total_variation(pixels)
            for weight, penalty in weights:
                total -= weight * penalty(pixels)
            loss = -tf.reduce_sum(total)
        gradient = tape.gradient(loss, image.variable)
        optimizer.apply_gradients([(gradient, image.variable)])
        image.constrain()
        return total, logits

    return step
