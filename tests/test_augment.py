"""Augmentation's settings (`config.Augmentation`), the layers built from them
(`tlcore.augment`), the preview the Train page shows, and the fine-tuning that trains with
them and records them; the Train page's preview in an AppTest."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from tlcore import augment, backbones, checkpoints, config, data, runs, train

NOISE = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)


def test_the_defaults_are_the_augmentation_fine_tuning_always_made():
    made = augment.layers(config.Augmentation()).layers
    assert [type(layer) for layer in made] == [
        keras.layers.RandomFlip, keras.layers.RandomRotation, keras.layers.RandomZoom,
        keras.layers.RandomContrast]
    flip, rotation, zoom, contrast = (layer.get_config() for layer in made)
    assert flip["mode"] == "horizontal" and rotation["factor"] == (-0.05, 0.05)
    assert zoom["height_factor"] == 0.1 and zoom["width_factor"] is None  # same zoom on both
    assert contrast["factor"] == (0.1, 0.1)  # weaker or stronger, [0.9, 1.1]
    assert len({layer.seed for layer in made}) == 4  # kinds draw independent numbers
    assert config.Augmentation().describe() == (
        "flip horizontal, rotation up to 18°, zoom up to 10%, contrast up to 10%")
    assert set(config.AUGMENTATIONS) == {field.name for field in
                                         config.dataclasses.fields(config.Augmentation)}


def test_settings_are_checked_and_read_back_from_runs_and_old_checkpoints(tmp_path):
    with pytest.raises(ValueError, match=r"flip='upside down' is not one of"):
        config.Augmentation(flip="upside down")
    with pytest.raises(ValueError, match=r"rotation=0\.7 must be between 0 \(off\) and 0\.5"):
        config.Augmentation(rotation=0.7)
    chosen = config.TrainConfig(mode="fine-tune", augmentation=config.Augmentation(
        flip="both", erasing=0.2, saturation=0.5))
    recorded = chosen.to_dict()
    assert recorded["augmentation"]["erasing"] == 0.2  # run.json keeps every setting
    assert config.TrainConfig(**recorded).augmentation == chosen.augmentation
    old = {key: value for key, value in recorded.items() if key != "augmentation"}
    checkpoint = checkpoints.Checkpoint(tmp_path, {"config": {**old, "augment": False}})
    assert checkpoint.train_config().augmentation == config.Augmentation()
    assert not checkpoint.train_config().augment


def test_the_preview_is_seeded_so_a_changed_strength_shows_that_change_alone():
    flips = config.Augmentation(flip="both", rotation=0, zoom=0, contrast=0)
    drawn = augment.preview(NOISE, flips, draws=6, seed=3)
    assert drawn.shape == (3, 6, 24, 24, 3) and drawn.dtype == np.uint8
    assert np.array_equal(drawn, augment.preview(NOISE, flips, draws=6, seed=3))
    assert not np.array_equal(drawn, augment.preview(NOISE, flips, draws=6, seed=4))
    for image, versions in zip(NOISE, drawn):  # a flip is all it does
        mirrors = [image, image[:, ::-1], image[::-1], image[::-1, ::-1]]
        assert all(any(np.array_equal(version, mirror) for mirror in mirrors)
                   for version in versions)
    # Erasing added: the flips stay as they were, and at most the patches differ.
    erased = augment.preview(NOISE, config.Augmentation(**{**flips.__dict__, "erasing": 0.2}),
                             draws=6, seed=3)
    assert 0.0 < np.mean(np.any(erased != drawn, axis=-1)) <= 0.2
    unchanged = config.Augmentation(flip="none", rotation=0, zoom=0, contrast=0)
    assert unchanged.describe() == "no change"
    assert np.array_equal(augment.preview(NOISE, unchanged, draws=2),
                          np.stack([NOISE, NOISE], axis=1))


def test_fine_tuning_trains_with_the_chosen_augmentation_and_records_it(tiny_folder,
                                                                       tmp_path, monkeypatch):
    weights = tmp_path / "body.weights.h5"
    backbones.build_backbone("scratch_cnn", weights=None, input_size=32).save_weights(
        str(weights))
    chosen = config.Augmentation(flip="none", rotation=0.1, brightness=0.2)
    built: list[config.Augmentation] = []
    real_layers = augment.layers
    monkeypatch.setattr(augment, "layers", lambda settings, seed=0: (
        built.append(settings), real_layers(settings, seed))[1])
    run = train.train_classifier(
        config.TrainConfig(backbone="scratch_cnn", weights=str(weights), mode="fine-tune",
                           epochs=1, head_epochs=1, image_size=32, patience=0,
                           augmentation=chosen),
        data.from_folder(tiny_folder), runs_dir=tmp_path / "runs")
    assert built == [chosen]
    recorded = runs.load_run(Path(run.run_dir)).info["config"]
    assert config.Augmentation(**recorded["augmentation"]) == chosen and recorded["augment"]
