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


def _grid_of(app):
    """The augmentation preview's image address (its bytes' hash) and caption."""
    image = app.get("image")[0].proto.imgs[0]
    return image.url, image.caption


def test_the_train_page_shows_the_augmentation_that_fine_tuning_will_make(tiny_folder):
    from test_app import by_label, open_page

    from ui import augmentation

    app = open_page("app_pages/train.py", data_source=str(tiny_folder.resolve()))
    section = next(item for item in app.expander if item.label == augmentation.TITLE)
    assert [text.value for text in section.markdown] == [augmentation.OTHER_MODES]  # fast
    by_label(app.radio, "Mode").set_value("fine-tune").run()
    section = next(item for item in app.expander if item.label == augmentation.TITLE)
    assert section.markdown[0].value == augmentation.LESSON
    labels = [kind.label for kind in config.AUGMENTATIONS.values()]
    assert sorted(item.label for item in [*section.slider, *section.select_slider]) == sorted(
        labels)
    first = _grid_of(app)
    assert first[1] == config.Augmentation().describe().capitalize()
    by_label(section.slider, "Rotation").set_value(90).run()
    turned = _grid_of(app)
    assert turned[0] != first[0] and "rotation up to 90°" in turned[1]
    by_label(app.slider, "Rotation").set_value(18).run()
    assert _grid_of(app) == first  # the same draw until "New draw"
    app.button(key="train-augment-new-draw").click().run()
    assert _grid_of(app)[0] != first[0]
    by_label(app.select_slider, "Flip").set_value("both")
    by_label(app.slider, "Erasing").set_value(20).run()
    assert not app.exception, [error.value for error in app.exception]
    assert _grid_of(app)[1].startswith("Flip both,") and "erasing up to 20%" in _grid_of(app)[1]


def test_the_train_page_has_the_learning_rate_finder_and_a_bakeoff_tab(tiny_folder):
    from test_app import by_label, open_page

    from ui import bakeoff, lr_finder

    app = open_page("app_pages/train.py", data_source=str(tiny_folder.resolve()))
    assert [tab.label for tab in app.tabs] == ["Train a model", "Which backbone? Bake-off"]
    by_label(app.number_input, "Epochs").set_value(4).run()
    finder = next(item for item in app.expander if item.label == lr_finder.TITLE)
    assert finder.markdown[0].value == lr_finder.FAST_NOTE  # under the form, for its mode
    app.session_state["train-view"] = "Which backbone? Bake-off"
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    assert bakeoff.LESSON in [text.value for text in app.markdown]
    assert not any(item.label == "Epochs" for item in app.number_input)  # only the open tab
    app.session_state["train-view"] = "Train a model"
    app.run()
    assert by_label(app.number_input, "Epochs").value == 4  # the form kept its values


def _form_with_a_found_rate(folder: str) -> None:
    """The training form, and a button that puts a rate in it as the finder's does."""
    import streamlit as st

    from tlcore import data
    from ui import state, training

    state.keep_form(drawn=not st.session_state.get("hidden"), prefix=training.FORM_KEY)
    if not st.session_state.get("hidden"):
        training.form(data.from_folder(folder))
    st.button("Use this rate", key="use", on_click=training.use_learning_rate,
              args=(3.1623e-4,))


def test_the_learning_rate_finders_rate_goes_into_the_form_and_stays(tiny_folder):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(_form_with_a_found_rate, args=(str(tiny_folder),),
                                default_timeout=60).run()
    rate = next(item for item in app.select_slider if item.label == "Learning rate")
    assert rate.value == config.default_learning_rate("fast", "edges")
    app.button(key="use").click().run()
    rate = next(item for item in app.select_slider if item.label == "Learning rate")
    assert rate.value == 3.2e-4 and "0.00032" in rate.options
    app.session_state["hidden"] = True  # a training runs: the form is not drawn
    app.run()
    app.session_state["hidden"] = False
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    assert next(item for item in app.select_slider if item.label == "Learning rate"
                ).value == 3.2e-4
