"""Training: both modes learn, the embedding cache hits, cancelling keeps what is done."""
from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from tlcore import backbones, config, data, features, fitting, train


def test_end_to_end_from_scratch_learns(tiny_run):
    history = tiny_run.info["history"]
    assert history["loss"][-1] < history["loss"][0]
    assert tiny_run.info["metrics"]["val_accuracy"] > 0.6  # chance is 1/3
    assert tiny_run.info["pretrained_body"] is False


def test_fast_mode_caches_embeddings_and_reuses_them(tiny_folder, tmp_path, monkeypatch):
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    weights = tmp_path / "body.weights.h5"
    body.save_weights(str(weights))
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=str(weights), mode="fast",
                                      epochs=3, image_size=32)
    dataset = data.from_folder(tiny_folder)
    calls = []
    real_embed = features.embed
    monkeypatch.setattr(features, "embed", lambda *args, **kwargs: calls.append(1) or
                        real_embed(*args, **kwargs))
    first = train.train_classifier(train_config, dataset, runs_dir=tmp_path / "runs")
    calls_first = len(calls)
    second = train.train_classifier(train_config, dataset, runs_dir=tmp_path / "runs")
    assert calls_first > 0 and len(calls) == calls_first  # the second run ran no extractor
    assert (first.info["embedding_cache"], second.info["embedding_cache"]) == ("miss", "hit")
    assert first.info["history"] == second.info["history"]
    assert first.info["config"]["learning_rate"] == config.default_learning_rate("fast", "x")


def test_random_weights_are_never_cached(tiny_folder, tmp_path):
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="fast",
                                      epochs=1, image_size=32)
    run = train.train_classifier(train_config, data.from_folder(tiny_folder), runs_dir=tmp_path)
    assert run.info["embedding_cache"] == "off"


@pytest.mark.slow
def test_transfer_beats_random_features_with_the_real_edges_body(tmp_path):
    # Shapes, not colours: only trained filters separate them with a linear head.
    from tlcore import demo
    folder = demo.ensure_demo_images(tmp_path / "demo", seed=5, images_per_class=16)
    dataset = data.from_folder(folder)
    accuracy = {}
    for weights in ("edges", None):
        train_config = config.TrainConfig(backbone="vgg16", weights=weights, mode="fast",
                                          epochs=15, image_size=64)
        run = train.train_classifier(train_config, dataset, runs_dir=tmp_path / "runs")
        accuracy[weights] = run.info["metrics"]["val_accuracy"]
    assert accuracy["edges"] > accuracy[None] + 0.1, accuracy


@pytest.mark.slow
def test_cancel_after_an_epoch_keeps_a_run(tiny_folder, tmp_path):
    progress = []

    def should_stop() -> bool:
        return any(metrics.get("epoch_end") for _, _, metrics in progress)

    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=5, image_size=32)
    run = train.train_classifier(train_config, data.from_folder(tiny_folder), runs_dir=tmp_path,
                                 on_step=lambda *event: progress.append(event),
                                 should_stop=should_stop)
    assert run.info["cancelled"] is True
    assert len(run.info["history"]["loss"]) < 5
    # The epoch it was stopped in is partial: the kept one is a whole epoch.
    assert 1 <= run.info["best_epoch"] <= len(run.info["history"]["loss"])
    phases = [metrics["phase"] for _, _, metrics in progress]
    phases = list(dict.fromkeys(phases))  # each once, in order
    assert phases[0].startswith("building") and phases[1].startswith("decoding")
    assert phases[2] == "training"


@pytest.mark.slow
def test_every_phase_says_so_before_its_work(tiny_folder, tmp_path):
    """A progress bar never sits on the previous phase's full bar while the next one works:
    each phase is first reported at step 0 (building the model, decoding, embedding,
    each training epoch), and embedding reports every batch, not every chunk."""
    progress = []
    # A copy of its own: other tests may have cached the embeddings of the tiny folder.
    dataset = data.from_folder(shutil.copytree(tiny_folder, tmp_path / "copy" / "colours"))
    for mode, weights, epochs in (("end-to-end", None, 2), ("fast", "edges", 2)):
        progress.clear()
        train_config = config.TrainConfig(backbone="scratch_cnn" if weights is None
                                          else "vgg16", weights=weights, mode=mode,
                                          epochs=epochs, image_size=32, batch_size=4)
        train.train_classifier(train_config, dataset, runs_dir=tmp_path,
                               on_step=lambda *event: progress.append(event))
        first_of_phase, first_of_epoch = {}, {}
        for step, total, metrics in progress:
            first_of_phase.setdefault(metrics["phase"], step)
            if metrics["phase"] == "training" and mode == "end-to-end":
                first_of_epoch.setdefault(metrics["epoch"], (step, total // epochs))
        assert set(first_of_phase.values()) == {0}, first_of_phase
        if mode == "end-to-end":  # each epoch's validation pass reports too
            assert {f"checking epoch {epoch} on the validation images"
                    for epoch in range(1, epochs + 1)} <= set(first_of_phase)
        for epoch, (step, per_epoch) in first_of_epoch.items():
            assert step == (epoch - 1) * per_epoch
        if mode == "fast":
            embedding = [step for step, _, metrics in progress
                         if metrics["phase"].startswith("embedding")]
            assert embedding == sorted(embedding) and embedding[-1] == len(dataset.paths)
            assert len(embedding) >= 1 + -(-len(dataset.paths) // features.EMBED_BATCH_SIZE)


@pytest.mark.slow
def test_cancel_stops_within_one_batch(tiny_folder, tmp_path):
    batches = []  # training batches reported, in order

    def on_step(step: int, total: int, metrics: dict) -> None:
        if (metrics["phase"] == "training" and not metrics["epoch_end"]
                and not metrics.get("epoch_begin")):
            batches.append(step)

    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=3, image_size=32, batch_size=2)
    run = train.train_classifier(train_config, data.from_folder(tiny_folder), runs_dir=tmp_path,
                                 on_step=on_step, should_stop=lambda: len(batches) >= 16)
    # Asked after batch 16 was reported: only the batch already in hand (17) finished.
    assert batches[-1] == 17 and len(batches) == 17, batches
    assert run.info["cancelled"] and len(run.info["history"]["loss"]) < 3


def test_cancel_before_anything_saves_nothing(tiny_folder, tmp_path):
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=str(tmp_path / "w.weights.h5"),
                                      mode="fast", epochs=2, image_size=32)
    backbones.build_backbone("scratch_cnn", input_size=32).save_weights(train_config.weights)
    with pytest.raises(fitting.TrainingCancelled):
        train.train_classifier(train_config, data.from_folder(tiny_folder), runs_dir=tmp_path / "r",
                               should_stop=lambda: True)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize("bad", [dict(mode="turbo"), dict(epochs=0), dict(image_size=8),
                                 dict(learning_rate=5.0), dict(dropout_rate=1.0)])
def test_bad_settings_are_refused_with_the_value(bad):
    with pytest.raises(ValueError, match=str(list(bad.values())[0])):
        config.TrainConfig(**bad)


def test_cancel_during_the_first_epoch_saves_nothing(tiny_folder, tmp_path):
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=3, image_size=32, batch_size=4)
    with pytest.raises(fitting.TrainingCancelled, match="first epoch"):
        train.train_classifier(train_config, data.from_folder(tiny_folder), runs_dir=tmp_path,
                               should_stop=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_training_without_a_validation_split_keeps_the_last_epoch(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "two", per_class=2, size=32)
    dataset = data.from_folder(folder)
    assert dataset.split_sizes()["validation"] == 0
    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=2, image_size=32)
    run = train.train_classifier(train_config, dataset, runs_dir=tmp_path / "runs")
    assert len(run.info["history"]["loss"]) == 2 and "val_accuracy" not in run.info["metrics"]
    assert run.info["best_epoch"] == 2


def test_embedding_cache_serves_runs_with_other_splits(tiny_folder, tmp_path):
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    weights = tmp_path / "body2.weights.h5"
    body.save_weights(str(weights))
    runs_of = {}
    for seed in (0, 1):
        train_config = config.TrainConfig(backbone="scratch_cnn", weights=str(weights),
                                          mode="fast", epochs=2, image_size=32, seed=seed)
        runs_of[seed] = train.train_classifier(train_config, data.from_folder(tiny_folder, seed=seed),
                                               runs_dir=tmp_path / "runs")
    assert runs_of[1].info["embedding_cache"] == "hit"
    # The second run's reported accuracy is its own split's, as a fresh evaluation shows.
    from tlcore import evaluate
    report = evaluate.evaluate_run(runs_of[1], "validation")
    assert report["accuracy"] == pytest.approx(runs_of[1].info["metrics"]["val_accuracy"])


def test_two_threads_storing_the_same_embeddings_both_succeed():
    import threading
    errors = []

    def store() -> None:
        try:
            for _ in range(20):
                features.write_embeddings("race", 50, 8, [np.ones((50, 8), dtype=np.float32)])
        except Exception as error:  # the assertion below reports it
            errors.append(error)
    threads = [threading.Thread(target=store) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and features.open_cached("race").shape == (50, 8)


def test_embedding_files_read_any_rows_and_reject_incomplete_ones():
    table = np.random.default_rng(0).normal(size=(1000, 24)).astype(np.float32)
    vectors = features.write_embeddings("rows", 1000, 24, np.array_split(table, 7))
    picked = np.array([999, 3, 3, 500, 0])
    np.testing.assert_array_equal(vectors.rows(picked), table[picked])
    assert vectors.rows(np.array([], dtype=int)).shape == (0, 24)  # an empty split
    assert vectors.view(np.array([], dtype=int))[:].shape == (0, 24)
    with pytest.raises(IndexError, match="outside"):
        vectors.rows(np.array([-1]))
    np.testing.assert_array_equal(vectors.view(np.arange(10, 20))[2:5], table[12:15])
    mean, variance = vectors.moments(np.arange(1000), block_rows=128)
    np.testing.assert_allclose(mean, table.mean(0), atol=1e-5)
    np.testing.assert_allclose(variance, table.var(0), rtol=1e-4)
    with pytest.raises(ValueError, match="expected 1000 embeddings, got 999"):
        features.write_embeddings("short", 1000, 24, [table[:999]])
    assert features.open_cached("short") is None  # nothing half-written is left
    path = config.cache_dir() / "embeddings" / "rows.npy"
    path.write_bytes(path.read_bytes()[:-4])  # truncated on disk
    assert features.open_cached("rows") is None


def body_with_a_dead_top_block(path) -> str:
    """A scratch CNN whose last block outputs a constant: frozen, its features say nothing."""
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    convolution = body.get_layer("block4_conv")
    convolution.set_weights([np.zeros_like(w) for w in convolution.get_weights()])
    gamma, beta, mean, variance = body.get_layer("block4_bn").get_weights()
    body.get_layer("block4_bn").set_weights([gamma, beta + 0.5, mean, variance])  # ReLU stays open
    body.save_weights(str(path))
    return str(path)


@pytest.mark.slow
def test_fine_tuning_beats_head_only_when_the_top_block_must_change(tiny_folder, tmp_path):
    weights = body_with_a_dead_top_block(tmp_path / "dead.weights.h5")
    dataset = data.from_folder(tiny_folder)
    head_only = train.train_classifier(
        config.TrainConfig(backbone="scratch_cnn", weights=weights, mode="fast", epochs=8,
                           image_size=32), dataset, runs_dir=tmp_path / "runs")
    tuned = train.train_classifier(
        config.TrainConfig(backbone="scratch_cnn", weights=weights, mode="fine-tune", epochs=10,
                           head_epochs=2, trainable_blocks=1, augment=False, patience=0,
                           learning_rate=1e-2, batch_size=8, image_size=32),
        dataset, runs_dir=tmp_path / "runs")
    assert head_only.info["metrics"]["val_accuracy"] <= 0.5
    assert tuned.info["metrics"]["val_accuracy"] >= 0.8
    assert tuned.info["head_epochs"] == 2 and len(tuned.info["history"]["loss"]) == 12
    assert tuned.info["trainable_blocks"] == 1 and tuned.info["embedding_cache"] == "hit"


@pytest.mark.slow
def test_fine_tuning_that_makes_things_worse_keeps_the_trained_head(tiny_folder, tmp_path):
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    body.save_weights(str(tmp_path / "body.weights.h5"))
    run = train.train_classifier(
        config.TrainConfig(backbone="scratch_cnn", weights=str(tmp_path / "body.weights.h5"),
                           mode="fine-tune", epochs=2, head_epochs=4, learning_rate=0.9,
                           trainable_blocks=-1, patience=0, image_size=32),
        data.from_folder(tiny_folder), runs_dir=tmp_path / "runs")
    head_best = max(run.info["history"]["val_accuracy"][:4])
    assert max(run.info["history"]["val_accuracy"][4:]) < head_best  # lr 0.9 wrecks the body
    assert run.info["best_epoch"] <= 4
    assert run.info["metrics"]["val_accuracy"] == pytest.approx(head_best)


def test_fine_tune_needs_pretrained_weights(tiny_folder, tmp_path):
    with pytest.raises(ValueError, match="nothing to fine-tune"):
        train.train_classifier(config.TrainConfig(backbone="scratch_cnn", weights=None,
                                                  mode="fine-tune", image_size=32),
                               data.from_folder(tiny_folder), runs_dir=tmp_path)


def test_augmentation_keeps_labels_shapes_and_pixel_range():
    images = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(10)
    batches = list(train.augmented_batches(images, labels, batch_size=4, seed=1))
    seen = np.concatenate([batch_labels.numpy() for _, batch_labels in batches])
    assert sorted(seen.tolist()) == labels.tolist()
    pixels = np.concatenate([batch.numpy() for batch, _ in batches])
    assert pixels.shape == (10, 16, 16, 3) and pixels.min() >= 0 and pixels.max() <= 255
    assert not np.array_equal(np.sort(pixels.ravel()), np.sort(images.astype(np.float32).ravel()))


def test_balanced_class_weights_by_hand():
    weights = train.balanced_class_weights(np.array([0, 0, 0, 1]))
    assert weights == pytest.approx({0: 4 / 6, 1: 2.0})


class _Scale(keras.layers.Layer):
    """Multiplies by a non-trainable scalar, which a test can set to NaN mid-training."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", trainable=False)

    def call(self, inputs):
        return inputs * self.scale


def _poisonable_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), _Scale(name="scale"), keras.layers.Dense(2)])


def _poison_at(model, epoch):
    """An on_step that puts NaN into the model after the first batch of `epoch`."""
    def on_step(step, total, metrics):
        if (metrics.get("epoch") == epoch and not metrics.get("epoch_end")
                and not metrics.get("epoch_begin")):
            model.get_layer("scale").scale.assign(float("nan"))
    return on_step


def _record(settings, on_step):
    """The record `_fit` reports to, for 64 examples."""
    return fitting.EpochRecord(settings.epochs, fitting.steps_per_epoch(64, settings.batch_size),
                               on_step, learning_rate=settings.effective_learning_rate)


def test_a_loss_that_turns_nan_stops_training_and_keeps_the_best_finished_epoch():
    generator = np.random.default_rng(0)
    vectors = generator.normal(size=(64, 4)).astype(np.float32)
    labels = (vectors[:, 0] > 0).astype(np.int32)
    model = _poisonable_model()
    settings = config.TrainConfig(backbone="scratch_cnn", mode="end-to-end", epochs=5,
                                  batch_size=16, learning_rate=0.01, patience=0,
                                  class_weights=False)
    outcome = train._fit(model, settings, (vectors, labels), (vectors, labels),
                         _record(settings, _poison_at(model, 3)))
    assert outcome.diverged.startswith("the loss became NaN or infinite in epoch 3, batch 2")
    assert "learning rate (it was 0.01)" in outcome.diverged
    assert len(outcome.history["loss"]) == 2 and outcome.best_epoch in (1, 2)
    assert all(np.isfinite(weight).all() for weight in model.get_weights())
    assert all(np.isfinite(outcome.history["loss"]))
    model = _poisonable_model()
    with pytest.raises(fitting.TrainingDiverged, match="epoch 1, batch 2"):
        train._fit(model, settings, (vectors, labels), (vectors, labels),
                   _record(settings, _poison_at(model, 1)))


def test_an_end_to_end_training_that_diverges_at_once_leaves_no_run_or_checkpoint(
        tiny_folder, tmp_path, monkeypatch):
    real_fit = train._fit

    def fit_with_poison(model, *args, **kwargs):
        bias = model.trainable_weights[-1]  # the logits' bias
        bias.assign(bias * float("nan"))
        return real_fit(model, *args, **kwargs)
    monkeypatch.setattr(train, "_fit", fit_with_poison)
    settings = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                  epochs=2, image_size=32)
    with pytest.raises(fitting.TrainingDiverged, match="epoch 1, batch 1"):
        train.train_classifier(settings, data.from_folder(tiny_folder), runs_dir=tmp_path)
    assert list(tmp_path.rglob("*")) == []


def test_an_epoch_record_reports_what_the_pages_read():
    seen = []
    record = fitting.EpochRecord(3, 2, lambda *event: seen.append(event), learning_rate=0.01)
    record.epoch_begins(0)
    record.batch_ends(0, 0, {"loss": 0.75})
    record.validating(0, 1, 4)
    record.end_epoch(0, {"loss": 0.5, "val_accuracy": 0.9}, lambda: "weights")
    assert seen == [
        (0, 6, {"phase": "training", "epoch": 1, "epochs": 3, "epoch_end": False,
                "epoch_begin": True}),
        (1, 6, {"phase": "training", "epoch": 1, "epochs": 3, "epoch_end": False,
                "loss": 0.75}),
        (1, 4, {"phase": "checking epoch 1 on the validation images", "epoch": 1,
                "epochs": 3, "epoch_end": False, "validating": True}),
        (2, 6, {"phase": "training", "epoch": 1, "epochs": 3, "epoch_end": True,
                "loss": 0.5, "val_accuracy": 0.9})]


def test_the_starting_weights_stay_until_an_epoch_beats_the_baseline():
    record = fitting.EpochRecord(3, 1, learning_rate=0.01, history={"loss": [1.0]},
                                 baseline=0.8)
    record.begin(lambda: "head")
    record.end_epoch(0, {"loss": 0.5, "val_accuracy": 0.7}, lambda: "worse")
    assert (record.best_epoch, record.best_weights) == (0, "head")
    record.end_epoch(1, {"loss": float("nan"), "val_accuracy": 0.95}, lambda: "diverged")
    record.end_epoch(2, {"loss": 0.4, "val_accuracy": 0.85}, lambda: "better")
    assert (record.best_epoch, record.best_weights, record.best_accuracy) == (3, "better", 0.85)
    without_validation = fitting.EpochRecord(2, 1, learning_rate=0.01)
    for epoch in range(2):
        without_validation.end_epoch(epoch, {"loss": 0.5}, lambda epoch=epoch: epoch)
    assert (without_validation.best_epoch, without_validation.best_weights) == (2, 1)


def test_a_cancel_keeps_the_whole_epochs_and_an_earlier_stage():
    asked = []
    record = fitting.EpochRecord(3, 1, should_stop=lambda: bool(asked), learning_rate=0.01)
    with pytest.raises(fitting.TrainingCancelled, match="first epoch"):
        record.outcome()  # nothing finished
    record.end_epoch(0, {"loss": 0.5}, lambda: "first")
    assert not record.cancel_requested()
    asked.append(1)
    assert record.cancel_requested() and record.stopped
    record.end_epoch(1, {"loss": 0.4}, lambda: "partial")  # Keras ends a stopped epoch too
    outcome = record.outcome()
    assert (outcome.history, outcome.cancelled) == ({"loss": [0.5]}, True)
    # The partial epoch saw part of the data: it is never the one kept.
    assert (outcome.best_epoch, record.best_weights) == (1, "first")
    fine_tuning = fitting.EpochRecord(3, 1, should_stop=lambda: True, learning_rate=0.01,
                                      history={"loss": [0.9, 0.8]}, baseline=-1.0)
    assert fine_tuning.cancel_requested()
    assert fine_tuning.outcome().history == {"loss": [0.9, 0.8]}  # the head stage stays
