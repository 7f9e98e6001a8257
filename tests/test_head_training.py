"""The fast-mode head's compiled trainer (tlcore.head_training): Keras's Adam, streamed
from disk like from memory, and a diverging loss that keeps the best finished epoch."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tlcore import config, features, fitting, head_training, models, train


def test_a_head_streamed_from_disk_learns_like_one_in_memory(monkeypatch):
    # Separable classes; the streamed head reads the train split in blocks of 2 batches.
    generator = np.random.default_rng(1)
    labels = generator.integers(0, 3, 600)
    table = (generator.normal(size=(600, 16)) + 2.0 * np.eye(16)[labels]).astype(np.float32)
    vectors = features.write_embeddings(None, 600, 16, [table])
    splits = {"train": np.arange(0, 400), "validation": np.arange(400, 500),
              "test": np.arange(500, 600)}
    train_config = config.TrainConfig(backbone="scratch_cnn", mode="fast", epochs=8,
                                      batch_size=32)
    in_memory = train.train_head(train_config, vectors, labels, splits, 3)
    monkeypatch.setattr(train, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(head_training, "BLOCK_BYTES", 2 * 32 * 16 * 4)  # 2 batches a block
    streamed = train.train_head(train_config, vectors, labels, splits, 3)
    assert isinstance(streamed.inputs["train"], features.RowsView)
    accuracy = [result.outcome.history["val_accuracy"][-1] for result in (in_memory, streamed)]
    assert accuracy[0] > 0.8 and abs(accuracy[1] - accuracy[0]) < 0.1


def test_the_compiled_head_step_is_keras_adam():
    # Without dropout and with one batch per epoch, fit_head and Keras's fit do the same
    # arithmetic: the weights must agree after several steps.
    generator = np.random.default_rng(2)
    vectors = generator.normal(size=(48, 10)).astype(np.float32)
    labels = generator.integers(0, 4, 48)
    heads = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        heads.append(models.build_head(10, 4, 0.0, vectors.mean(0), vectors.var(0)))
    weights = {0: 1.0, 1: 2.0, 2: 0.5, 3: 1.5}
    outcome = head_training.fit_head(
        heads[0], (vectors, labels), (vectors[:0], labels[:0]), epochs=5, batch_size=48,
        learning_rate=0.01, class_weights=weights)
    heads[1].compile(optimizer=keras.optimizers.Adam(0.01),
                     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    reference = heads[1].fit(vectors, labels, epochs=5, batch_size=48, shuffle=False,
                             class_weight=weights, verbose=0)
    for ours, theirs in zip(heads[0].get_weights(), heads[1].get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(outcome.history["loss"], reference.history["loss"], rtol=1e-4)
    assert (outcome.cancelled, outcome.best_epoch, outcome.diverged) == (False, 5, None)


def test_a_head_whose_loss_turns_nan_keeps_its_best_finished_epoch(monkeypatch):
    generator = np.random.default_rng(0)
    vectors = generator.normal(size=(64, 4)).astype(np.float32)
    labels = (vectors[:, 0] > 0).astype(np.int64)
    real_block, calls = head_training._train_block, []

    def poisoned(*args):
        calls.append(1)
        result = real_block(*args)
        return result[:3] + (float("nan") if len(calls) >= 3 else result[3],) + result[4:]
    monkeypatch.setattr(head_training, "_train_block", poisoned)
    head = models.build_head(4, 2, 0.0, vectors.mean(0), vectors.var(0))
    outcome = head_training.fit_head(head, (vectors, labels), (vectors, labels), epochs=5,
                                     batch_size=16, learning_rate=0.01)
    assert outcome.diverged.startswith("the loss became NaN or infinite in epoch 3")
    assert len(outcome.history["loss"]) == 2 and outcome.best_epoch in (1, 2)
    calls.extend([1, 1])  # every block from now on diverges
    with pytest.raises(fitting.TrainingDiverged, match="epoch 1"):
        head_training.fit_head(models.build_head(4, 2), (vectors, labels), (vectors, labels),
                               epochs=2, batch_size=16, learning_rate=0.01)
