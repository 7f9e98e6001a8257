"""Render an "ideal" class image: climb the class logit from noise, in pixel space."""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, evaluate, images as image_utils, models
from tlcore.visualize import regularizers

StepCallback = Callable[[int, int, dict], None]
NOISE_STD = 20.0


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """An ideal image and how it was reached.

    Attributes:
        image: (S, S, 3) float pixels in [0, 255].
        target: the class index climbed.
        objective_trace: the objective (logit minus penalties) after each step.
        logit_trace: the target logit after each step.
        probabilities: (K,) softmax of the final image's logits.
        total_variation: of the final image, in pixel units.
        seconds: wall time.
    """

    image: np.ndarray
    target: int
    objective_trace: list[float]
    logit_trace: list[float]
    probabilities: np.ndarray
    total_variation: float
    seconds: float

    @property
    def probability(self) -> float:
        """The target class's final probability."""
        return float(self.probabilities[self.target])


def start_noise(size: int, seed: int) -> np.ndarray:
    """Return the seeded starting image: mid-grey plus Gaussian noise, in [0, 255]."""
    noise = np.random.default_rng(seed).normal(regularizers.MID_GREY, NOISE_STD, (size, size, 3))
    return np.clip(noise, 0, 255).astype(np.float32)


def render(model: keras.Model, target: int, render_config: config.RenderConfig, *,
           start_image: np.ndarray | None = None, on_step: StepCallback | None = None,
           should_stop: Callable[[], bool] | None = None, report_every: int = 10
           ) -> RenderResult:
    """Maximise one class logit over the input image with Adam, inside [0, 255].

    Objective: logit[target] - tv_weight * TV(image) - l2_weight * RMS(image - grey).
    The logit, not the probability, is climbed: raising the probability can be done by
    lowering the other classes, which gives worse images.

    Args:
        model: pixels in [0, 255] -> logits; not changed.
        target: class index.
        render_config: steps, learning rate, weights, seed.
        start_image: (S, S, 3) pixels to start from; None starts from seeded noise.
        on_step: called every `report_every` steps with (step, steps, {"objective",
            "logit", "probability", "image"}).
        should_stop: polled each step; True ends the render early with what it has.

    Returns:
        A RenderResult.
    """
    started = time.perf_counter()
    size = models.input_size(model)
    num_classes = model.output_shape[-1]
    if not 0 <= target < num_classes:
        raise ValueError(f"target={target} is not a class index in [0, {num_classes})")
    start = start_noise(size, render_config.seed) if start_image is None else np.asarray(
        start_image, dtype=np.float32)
    if start.shape != (size, size, 3):
        raise ValueError(f"start image has shape {start.shape}; the model needs {(size, size, 3)}")
    image = tf.Variable(start[None])
    optimizer = keras.optimizers.Adam(render_config.learning_rate)
    step = _compiled_step(model, image, optimizer, target, render_config)
    objective_trace, logit_trace = [], []
    for index in range(1, render_config.steps + 1):
        objective, logits = step()
        objective_trace.append(float(objective))
        logit_trace.append(float(logits[0, target]))
        if on_step is not None and (index % report_every == 0 or index == render_config.steps):
            on_step(index, render_config.steps,
                    {"objective": objective_trace[-1], "logit": logit_trace[-1],
                     "probability": float(evaluate.softmax(logits.numpy())[0, target]),
                     "image": image.numpy()[0]})
        if should_stop is not None and should_stop():
            break
    final = image.numpy()[0]
    probabilities = evaluate.softmax(evaluate.predict_logits(model, final[None]))[0]
    return RenderResult(final, target, objective_trace, logit_trace, probabilities,
                        image_utils.total_variation(final), time.perf_counter() - started)


def _compiled_step(model: keras.Model, image: tf.Variable, optimizer: keras.Optimizer,
                   target: int, render_config: config.RenderConfig) -> Callable:
    tv_weight = tf.constant(render_config.tv_weight, tf.float32)
    l2_weight = tf.constant(render_config.l2_weight, tf.float32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model(image, training=False)
            objective = (logits[:, target]
                         - tv_weight * regularizers.total_variation(image)
                         - l2_weight * regularizers.l2_from_grey(image))
            loss = -tf.reduce_mean(objective)
        gradient = tape.gradient(loss, image)
        optimizer.apply_gradients([(gradient, image)])
        image.assign(tf.clip_by_value(image, 0.0, 255.0))
        return -loss, logits

    return step
