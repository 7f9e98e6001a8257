"""Train a whole classifier across the workers of a `MultiWorkerMirroredStrategy`.

Keras 3's `fit` fails under this strategy (keras-team/keras#20585; reproduced with Keras
3.15 and TensorFlow 2.21), but the strategy itself works: this loop splits every global
batch over the workers with `strategy.run`, and the optimiser sums their gradients over
the network (gRPC), so every worker holds the same weights after every step (and the same
BatchNorm statistics after every epoch, averaged over the workers). It keeps
what `train._fit` promises for the settings it supports: Adam at the configured rate,
class weights, per-epoch validation, and the best epoch's weights, progress, cancel and a
stop on a non-finite loss as every loop has them (`fitting.EpochRecord`). Checkpoints and
resuming are not supported here.
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, fitting, models
from tlcore.config import StepCallback


def fit(model: keras.Model, strategy: tf.distribute.Strategy, train_config: config.TrainConfig,
        train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
        on_step: StepCallback | None = None, should_stop: Callable[[], bool] | None = None,
        class_weights: dict[int, float] | None = None) -> fitting.FitOutcome:
    """Train `model` (built in `strategy`'s scope) on uint8 images; every worker calls this
    with the same data and gets the same weights.

    Each epoch runs N // batch_size global batches of a new permutation (the remainder is
    left out that epoch: every worker must take the same number of steps). For the same
    reason `should_stop` must answer alike on every worker: one worker stopping alone
    leaves the others waiting for its gradients.

    Raises:
        ValueError: fewer training images than one global batch.
        TrainingDiverged, TrainingCancelled: nothing finished (`EpochRecord.outcome`).
    """
    steps = len(train[1]) // train_config.batch_size
    if steps == 0:
        raise ValueError(f"{len(train[1])} training images are fewer than one batch of "
                         f"{train_config.batch_size}")
    with strategy.scope():
        optimizer = keras.optimizers.Adam(train_config.effective_learning_rate)
        optimizer.build(model.trainable_variables)
    batches = _global_batches(strategy, train, train_config, class_weights)
    step = _step_function(model, strategy, optimizer, train_config.batch_size)
    share_statistics = _statistics_sharing(model, strategy)
    record = fitting.EpochRecord(train_config.epochs, steps, on_step, should_stop,
                                 learning_rate=train_config.effective_learning_rate)
    for epoch in range(train_config.epochs):
        loss_sum = correct = 0.0
        for batch_index in range(steps):
            loss, batch_correct = step(next(batches))
            loss_sum, correct = loss_sum + float(loss), correct + float(batch_correct)
            finite = record.loss_is_finite(float(loss), epoch, batch_index)
            if not finite or record.cancel_requested():  # no poll once diverged
                break
        if record.stopped:
            break
        share_statistics()
        logs = {"loss": loss_sum / steps,
                "accuracy": correct / (steps * train_config.batch_size)}
        if len(validation[1]):
            predictions = models.predict_logits(model, validation[0]).argmax(axis=-1)
            logs["val_accuracy"] = float(np.mean(predictions == validation[1]))
        record.end_epoch(epoch, logs, model.get_weights)
    outcome = record.outcome()
    model.set_weights(record.best_weights)
    return outcome


def _global_batches(strategy: tf.distribute.Strategy, train: tuple[np.ndarray, np.ndarray],
                    train_config: config.TrainConfig,
                    class_weights: dict[int, float] | None) -> tf.distribute.DistributedIterator:
    """Endless global batches of (images, labels, sample weights), a new permutation each
    pass, every one split over the workers."""
    images, labels = train
    weights = np.array([(class_weights or {}).get(int(label), 1.0) for label in labels],
                       dtype=np.float32)
    dataset = (tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32), weights))
               .shuffle(len(labels), seed=train_config.seed, reshuffle_each_iteration=True)
               .batch(train_config.batch_size, drop_remainder=True).repeat())
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))


def _step_function(model: keras.Model, strategy: tf.distribute.Strategy,
                   optimizer: keras.optimizers.Optimizer, batch_size: int
                   ) -> Callable[[tuple], tuple[tf.Tensor, tf.Tensor]]:
    """One compiled training step on a global batch: its summed loss and correct count."""
    @tf.function
    def step(batch: tuple) -> tuple[tf.Tensor, tf.Tensor]:
        def replica(pixels: tf.Tensor, targets: tf.Tensor, sample_weights: tf.Tensor
                    ) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                logits = model(tf.cast(pixels, tf.float32), training=True)
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
                loss = tf.reduce_sum(losses * sample_weights) / batch_size
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            correct = tf.reduce_sum(tf.cast(
                tf.argmax(logits, -1, output_type=tf.int32) == targets, tf.float32))
            return loss, correct
        loss, correct = strategy.run(replica, args=batch)
        return (strategy.reduce("SUM", loss, axis=None),
                strategy.reduce("SUM", correct, axis=None))
    return step


def _statistics_sharing(model: keras.Model, strategy: tf.distribute.Strategy
                        ) -> Callable[[], None]:
    """A compiled function that averages the model's non-trainable float variables (BatchNorm's
    moving statistics) over the workers."""
    @tf.function
    def share_statistics() -> None:
        # BatchNorm's moving statistics are not gradients: each worker updates its own from
        # its share of the batches, and the workers drift apart (measured: one body, two
        # validation accuracies). Averaging them each epoch makes the workers one model.
        def replica() -> None:
            context = tf.distribute.get_replica_context()
            for variable in model.non_trainable_variables:
                if "float" in str(variable.dtype):
                    variable.assign(context.all_reduce("MEAN", tf.identity(variable.value)))
        strategy.run(replica)
    return share_statistics
