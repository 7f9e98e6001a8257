"""Train the fast-mode head on embeddings with one compiled step shared by every head.

Keras `fit` traces new train and test functions for every new model: on the demo set that
is 0.6-0.9 s of a 1.1-1.8 s head training, paid again by every retraining. The head is one
dense layer on standardised, dropped-out features (`models.build_head`), so its training is
written here once as a function of the weights rather than of one model's variables: it is
traced once per process, and every later head trains 10 epochs on 636 vectors in about
0.04 s. The result goes back into the Keras head, which is what runs and is saved.

The vectors come as an array or as `features.RowsView` (a split of a file too big for
memory); either way they go through the compiled step a block at a time, in the order of
one permutation per epoch (a full shuffle), so memory holds one block.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tlcore import features
from tlcore.config import StepCallback, TrainingCancelled

BLOCK_BYTES = 32 * 2**20  # vectors read and standardised at once
Rows = np.ndarray | features.RowsView
_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-7  # Keras Adam's defaults


@dataclasses.dataclass
class FitOutcome:
    """How a training loop (the head's here, or Keras `fit` in `train`) ended.

    Attributes:
        history: per-epoch metrics of the finished epochs ("loss", "accuracy", "val_...").
        cancelled: stopped by the user.
        best_epoch: the epoch whose weights were kept (0: the starting weights).
        diverged: why training stopped on its own, when the loss became NaN or infinite;
            the partial epoch is dropped and the best finished epoch kept.
    """

    history: dict[str, list[float]]
    cancelled: bool
    best_epoch: int
    diverged: str | None = None


class TrainingDiverged(ValueError):
    """The loss stopped being finite before any epoch finished: there is nothing to keep."""


def divergence_message(epoch: int, batch: int | None, learning_rate: float) -> str:
    """Say where the loss stopped being finite and what to change."""
    where = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
    return (f"the loss became NaN or infinite in {where}: training diverged. Lower the "
            f"learning rate (it was {learning_rate:g}) or check the data")


class EpochRecord:
    """What Keras `fit`'s History, `train.BestEpoch` and `train.ProgressCallback` do, for a
    hand-written loop (the head's here, `multiworker.fit`): per-epoch history, the best
    epoch by validation accuracy (the last one without validation), progress reports."""

    def __init__(self, epochs: int, steps_per_epoch: int, on_step: StepCallback | None,
                 phase: str = "training") -> None:
        self.epochs, self.steps_per_epoch, self.on_step, self.phase = (
            epochs, steps_per_epoch, on_step, phase)
        self.history: dict[str, list[float]] = {}
        self.best_epoch, self.best_accuracy, self.best_weights = 0, -1.0, None

    def add(self, epoch: int, logs: dict[str, float], weights: Callable[[], Any]) -> None:
        """Record finished epoch `epoch` (from 0); `weights()` is called only to keep them."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        accuracy = logs.get("val_accuracy")
        if accuracy is None or accuracy > self.best_accuracy:
            self.best_epoch, self.best_weights = epoch + 1, weights()
            self.best_accuracy = -1.0 if accuracy is None else accuracy
        if self.on_step is not None:
            self.on_step((epoch + 1) * self.steps_per_epoch, self.epochs * self.steps_per_epoch,
                         {"phase": self.phase, "epoch": epoch + 1, "epochs": self.epochs,
                          "epoch_end": True, **logs})

    def outcome(self, cancelled: bool, diverged: str | None) -> FitOutcome:
        """How the loop ended.

        Raises:
            TrainingDiverged, TrainingCancelled: no epoch finished: there is nothing to keep.
        """
        if not self.history:
            if diverged:
                raise TrainingDiverged(diverged)
            raise TrainingCancelled("cancelled before the first epoch finished; nothing saved")
        return FitOutcome(self.history, cancelled, self.best_epoch, diverged)


def _adam(value: tf.Tensor, first: tf.Tensor, second: tf.Tensor, gradient: tf.Tensor,
          step: tf.Tensor, rate: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    first = _BETA_1 * first + (1.0 - _BETA_1) * gradient
    second = _BETA_2 * second + (1.0 - _BETA_2) * tf.square(gradient)
    scale = rate * tf.sqrt(1.0 - _BETA_2 ** step) / (1.0 - _BETA_1 ** step)
    return value - scale * first / (tf.sqrt(second) + _EPSILON), first, second


@tf.function(reduce_retracing=True)
def _train_block(weights: tuple, moments: tuple, step: tf.Tensor, vectors: tf.Tensor,
                 labels: tf.Tensor, sample_weights: tf.Tensor, seed: tf.Tensor,
                 rate: tf.Tensor, dropout: tf.Tensor, batch_size: tf.Tensor) -> tuple:
    """Adam over the block's batches in order; returns the new weights, moments and step,
    and the block's summed loss and correct count (dropout on, as Keras reports them)."""
    kernel, bias = weights
    kernel_first, kernel_second, bias_first, bias_second = moments
    count = tf.shape(vectors)[0]
    loss_sum, correct = tf.constant(0.0), tf.constant(0.0)
    for batch in tf.range((count + batch_size - 1) // batch_size):
        x = vectors[batch * batch_size:(batch + 1) * batch_size]
        y = labels[batch * batch_size:(batch + 1) * batch_size]
        size = tf.cast(tf.shape(x)[0], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch([kernel, bias])
            keep = tf.random.stateless_uniform(tf.shape(x), seed + tf.stack([0, batch])) >= dropout
            logits = tf.where(keep, x / (1.0 - dropout), 0.0) @ kernel + bias
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            loss = tf.reduce_sum(losses * sample_weights[batch * batch_size:
                                                         (batch + 1) * batch_size]) / size
        kernel_gradient, bias_gradient = tape.gradient(loss, [kernel, bias])
        step += 1.0
        kernel, kernel_first, kernel_second = _adam(kernel, kernel_first, kernel_second,
                                                    kernel_gradient, step, rate)
        bias, bias_first, bias_second = _adam(bias, bias_first, bias_second, bias_gradient,
                                              step, rate)
        loss_sum += loss * size
        correct += tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == y,
                                         tf.float32))
    return ((kernel, bias), (kernel_first, kernel_second, bias_first, bias_second), step,
            loss_sum, correct)


@tf.function(reduce_retracing=True)
def _score_block(weights: tuple, vectors: tf.Tensor, labels: tf.Tensor) -> tuple:
    """Summed loss and correct count of standardised vectors (dropout off)."""
    logits = vectors @ weights[0] + weights[1]
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    return (tf.reduce_sum(losses),
            tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == labels,
                                  tf.float32)))


def fit_head(head: keras.Model, train: tuple[Rows, np.ndarray],
             validation: tuple[Rows, np.ndarray], *, epochs: int, batch_size: int,
             learning_rate: float, seed: int = 0, class_weights: dict[int, float] | None = None,
             on_step: StepCallback | None = None,
             should_stop: Callable[[], bool] | None = None, phase: str = "training"
             ) -> FitOutcome:
    """Train a head from `models.build_head` in place with Adam.

    The weights of the epoch with the best validation accuracy are kept (the last epoch's
    without validation). `on_step(step, total, metrics)` is called after every epoch with
    the metrics `fit` would log and "phase", "epoch", "epochs", "epoch_end"; `should_stop`
    is polled between blocks, and a partial epoch is dropped, as is one whose loss is not
    finite (training stops there: `FitOutcome.diverged` says so).

    Raises:
        TrainingCancelled: stopped before the first epoch finished.
        TrainingDiverged: the loss diverged in the first epoch: there is nothing to keep.
    """
    dense = head.get_layer("logits")
    standardize = (head.get_layer("standardize")
                   if "standardize" in [layer.name for layer in head.layers] else None)
    dropout = float(head.get_layer("dropout").rate)
    kernel, bias = (tf.constant(value) for value in dense.get_weights())
    weights = (kernel, bias)
    moments = tuple(tf.zeros_like(value) for value in (kernel, kernel, bias, bias))
    step = tf.constant(0.0)
    rows, labels = train
    sample_weights = (np.ones(len(labels), np.float32) if not class_weights else
                      np.array([class_weights[int(label)] for label in labels], np.float32))
    block_rows = max(batch_size, BLOCK_BYTES // (4 * rows.shape[1]) // batch_size * batch_size)
    record = EpochRecord(epochs, max(1, -(-len(labels) // batch_size)), on_step, phase)

    def prepare(block: np.ndarray) -> tf.Tensor:
        block = np.asarray(block, dtype=np.float32)
        return tf.constant(block if standardize is None else standardize(block))

    cancelled, diverged = False, None
    if on_step is not None:  # the first block also traces the step (once per process)
        on_step(0, epochs * record.steps_per_epoch, {"phase": phase, "epoch": 1,
                                                    "epochs": epochs, "epoch_end": False})
    for epoch in range(epochs):
        order = np.random.default_rng((seed, epoch)).permutation(len(labels))
        loss_sum = correct = 0.0
        for block, start in enumerate(range(0, len(order), block_rows)):
            if should_stop is not None and should_stop():
                cancelled = True
                break
            positions = order[start:start + block_rows]
            weights, moments, step, block_loss, block_correct = _train_block(
                weights, moments, step, prepare(rows[positions]),
                tf.constant(labels[positions], tf.int32), tf.constant(sample_weights[positions]),
                tf.constant([seed, epoch * 100_003 + block]), tf.constant(learning_rate, tf.float32),
                tf.constant(dropout, tf.float32), tf.constant(batch_size))
            if not math.isfinite(float(block_loss)):
                diverged = divergence_message(epoch + 1, None, learning_rate)
                break
            loss_sum, correct = loss_sum + float(block_loss), correct + float(block_correct)
        if cancelled or diverged:
            break
        logs = {"loss": loss_sum / len(labels), "accuracy": correct / len(labels)}
        if len(validation[1]):
            logs.update(_score(weights, validation, prepare, block_rows))
        record.add(epoch, logs, lambda: weights)
    outcome = record.outcome(cancelled, diverged)
    dense.set_weights([value.numpy() for value in record.best_weights])
    return outcome


def _score(weights: tuple, validation: tuple[Rows, np.ndarray],
           prepare: Callable[[np.ndarray], tf.Tensor], block_rows: int) -> dict[str, float]:
    rows, labels = validation
    loss_sum = correct = 0.0
    for start in range(0, len(labels), block_rows):
        block_loss, block_correct = _score_block(
            weights, prepare(rows[start:start + block_rows]),
            tf.constant(labels[start:start + block_rows], tf.int32))
        loss_sum, correct = loss_sum + float(block_loss), correct + float(block_correct)
    return {"val_loss": loss_sum / len(labels), "val_accuracy": correct / len(labels)}
