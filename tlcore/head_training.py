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
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tlcore import features, fitting
from tlcore.config import StepCallback

BLOCK_BYTES = 32 * 2**20  # vectors read and standardised at once
Rows = np.ndarray | features.RowsView
_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-7  # Keras Adam's defaults


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
             ) -> fitting.FitOutcome:
    """Train a head from `models.build_head` in place with Adam.

    The weights of the epoch with the best validation accuracy are kept (the last epoch's
    without validation). `on_step(step, total, metrics)` is called once before the first
    block and after every epoch with the metrics `fit` would log (`fitting.EpochRecord`);
    `should_stop` is polled between blocks, and a partial epoch is dropped, as is one
    whose loss is not finite (training stops there: `FitOutcome.diverged` says so).

    Raises:
        TrainingCancelled: stopped before the first epoch finished.
        TrainingDiverged: the loss diverged in the first epoch: there is nothing to keep.
    """
    rows, labels = train
    loop = _HeadLoop.start(head, rows, labels, batch_size=batch_size, seed=seed,
                           learning_rate=learning_rate, class_weights=class_weights)
    record = fitting.EpochRecord(epochs, fitting.steps_per_epoch(len(labels), batch_size),
                                 on_step, should_stop, phase=phase, learning_rate=learning_rate)
    record.epoch_begins(0)  # the first block also traces the step (once per process)
    for epoch in range(epochs):
        logs = loop.train_epoch(epoch, record)
        if logs is None:
            break
        if len(validation[1]):
            logs.update(_score(loop.weights, validation, loop.prepare, loop.block_rows))
        record.end_epoch(epoch, logs, lambda: loop.weights)
    outcome = record.outcome()
    head.get_layer("logits").set_weights([value.numpy() for value in record.best_weights])
    return outcome


@dataclasses.dataclass
class _HeadLoop:
    """What the compiled step needs through one head's training: the data, the settings,
    and the weights and Adam's moments and step count it carries from block to block."""

    rows: Rows
    labels: np.ndarray
    sample_weights: np.ndarray
    prepare: Callable[[np.ndarray], tf.Tensor]  # vectors in, standardised tensor out
    block_rows: int
    batch_size: int
    seed: int
    learning_rate: float
    dropout: float
    weights: tuple
    moments: tuple
    step: tf.Tensor

    @classmethod
    def start(cls, head: keras.Model, rows: Rows, labels: np.ndarray, *, batch_size: int,
              seed: int, learning_rate: float, class_weights: dict[int, float] | None
              ) -> _HeadLoop:
        """Read the head's weights and settings; Adam starts from zero moments."""
        standardize = (head.get_layer("standardize")
                       if "standardize" in [layer.name for layer in head.layers] else None)

        def prepare(block: np.ndarray) -> tf.Tensor:
            block = np.asarray(block, dtype=np.float32)
            return tf.constant(block if standardize is None else standardize(block))

        kernel, bias = (tf.constant(value) for value in head.get_layer("logits").get_weights())
        sample_weights = (np.ones(len(labels), np.float32) if not class_weights else
                          np.array([class_weights[int(label)] for label in labels], np.float32))
        block_rows = max(batch_size,
                         BLOCK_BYTES // (4 * rows.shape[1]) // batch_size * batch_size)
        return cls(rows, labels, sample_weights, prepare, block_rows, batch_size, seed,
                   learning_rate, float(head.get_layer("dropout").rate), (kernel, bias),
                   tuple(tf.zeros_like(value) for value in (kernel, kernel, bias, bias)),
                   tf.constant(0.0))

    def train_epoch(self, epoch: int, record: fitting.EpochRecord) -> dict[str, float] | None:
        """Train one epoch, block by block of one permutation; its loss and accuracy, or
        None when it was cancelled or diverged (`record` knows which)."""
        order = np.random.default_rng((self.seed, epoch)).permutation(len(self.labels))
        loss_sum = correct = 0.0
        for block, start in enumerate(range(0, len(order), self.block_rows)):
            if record.cancel_requested():
                return None
            positions = order[start:start + self.block_rows]
            self.weights, self.moments, self.step, block_loss, block_correct = _train_block(
                self.weights, self.moments, self.step, self.prepare(self.rows[positions]),
                tf.constant(self.labels[positions], tf.int32),
                tf.constant(self.sample_weights[positions]),
                tf.constant([self.seed, epoch * 100_003 + block]),
                tf.constant(self.learning_rate, tf.float32),
                tf.constant(self.dropout, tf.float32), tf.constant(self.batch_size))
            if not record.loss_is_finite(float(block_loss), epoch):
                return None
            loss_sum, correct = loss_sum + float(block_loss), correct + float(block_correct)
        return {"loss": loss_sum / len(self.labels), "accuracy": correct / len(self.labels)}


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
