"""The ImageNet paths end to end, offline, with weights files of the real shape and name.

Once per session, for MobileNetV2 (224 px), MobileNetV3Small and EfficientNetB0, the body
file and the whole-classifier file are written under the names Keras downloads, in
Keras's published legacy HDF5 format, into a `$KERAS_HOME/models` of their own. Their
values are random, but every BatchNorm holds the moving statistics of one batch, so
activations neither vanish nor explode and the 1000 logits differ (a top-5 then says
which file was read). No test may download or look a host up: `keras.utils.get_file`
fails the test and `downloads.reachable` answers False and counts its calls.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format  # the format Keras publishes
from keras.src.utils import file_utils
from streamlit.testing.v1 import AppTest

from tlcore import (attack, backbones, cli, config, data, downloads, evaluate, images, imagenet,
                    models, train)
from tlcore.layers import PixelPreprocessing
from ui import state

APP = str(Path(__file__).resolve().parents[1] / "app.py")
NAMES = ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0")
KERAS_CONSTRUCTORS = {"mobilenet_v2": keras.applications.MobileNetV2,
                      "mobilenet_v3_small": keras.applications.MobileNetV3Small,
                      "efficientnet_b0": keras.applications.EfficientNetB0}
FIRST_CONV = {"mobilenet_v2": "Conv1", "mobilenet_v3_small": "conv",
              "efficientnet_b0": "stem_conv"}
LAST_LAYER = {"mobilenet_v2": "predictions", "mobilenet_v3_small": "logits",
              "efficientnet_b0": "predictions"}
SIZE = 224
# What Keras's EfficientNet files hold in their input Normalization layer: the ImageNet
# means, and the standard deviations where variances belong (tensorflow/tensorflow#49930).
EFFICIENTNET_NORMALIZATION = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


@dataclasses.dataclass(frozen=True)
class FakeImagenet:
    """A `$KERAS_HOME` holding fake ImageNet files, and the networks they were saved from."""

    keras_home: Path
    classifiers: dict[str, keras.Model]  # include_top=True, logits
    bodies: dict[str, keras.Model]  # include_top=False


def _weighted(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


def _spread_statistics(model: keras.Model, name: str) -> None:
    """Give every BatchNorm the moving statistics of one batch of random pixels."""
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # the moving statistics become the batch's
    pixels = np.random.default_rng(1).uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)
    model(PixelPreprocessing(backbones.get_spec(name).preprocessing)(pixels), training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def _set_normalization(model: keras.Model, variance) -> None:
    """Give EfficientNet's input Normalization the ImageNet means and `variance`."""
    [normalization] = [layer for layer in model.layers
                       if isinstance(layer, keras.layers.Normalization)]
    normalization.set_weights([np.array(EFFICIENTNET_NORMALIZATION[0], np.float32),
                               np.array(variance, np.float32), np.array(0, np.int64)])
    normalization.finalize_state()  # it divides by a copy made when weights are loaded


def _save_legacy(model: keras.Model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as stored:
        legacy_h5_format.save_weights_to_hdf5_group(stored, model)


@pytest.fixture(scope="session")
def fake_imagenet(tmp_path_factory) -> FakeImagenet:
    """Both ImageNet files of each backbone in NAMES, written once per session: the body
    file holds the classifier's own body weights, as Keras's files do."""
    keras_home = tmp_path_factory.mktemp("fake-imagenet") / "keras"
    classifiers, bodies = {}, {}
    for name in NAMES:
        spec = backbones.get_spec(name)
        keras.utils.set_random_seed(NAMES.index(name))
        classifier = spec.constructor(SIZE, None, include_top=True)
        if name == "efficientnet_b0":  # the statistics of the network Keras builds
            _set_normalization(classifier, np.square(EFFICIENTNET_NORMALIZATION[1]))
        _spread_statistics(classifier, name)
        if name == "efficientnet_b0":  # and what its files hold
            _set_normalization(classifier, EFFICIENTNET_NORMALIZATION[1])
        body = spec.constructor(SIZE, None)
        for body_layer, layer in zip(_weighted(body), _weighted(classifier)):
            body_layer.set_weights(layer.get_weights())  # fails on any shape mismatch
        _save_legacy(classifier, keras_home / "models" / spec.imagenet_top_weights_file())
        _save_legacy(body, keras_home / "models" / spec.imagenet_weights_file(SIZE))
        classifiers[name], bodies[name] = classifier, body
    return FakeImagenet(keras_home, classifiers, bodies)


def _go_offline(patch: pytest.MonkeyPatch, keras_home: Path, tlcore_home: Path) -> list[str]:
    """Point tlcore at these homes with no network; return the addresses it looks up."""
    looked_up: list[str] = []

    def never_download(*args, **kwargs):
        raise AssertionError(f"tried to download {args or kwargs}")

    def unreachable(url: str, timeout: float = 2.0) -> bool:
        looked_up.append(url)
        return False
    patch.setenv("KERAS_HOME", str(keras_home))
    patch.setenv("TLCORE_HOME", str(tlcore_home))
    patch.setattr(keras.utils, "get_file", never_download)
    patch.setattr(downloads, "reachable", unreachable)
    return looked_up


@pytest.fixture(scope="module")
def imagenet_run(fake_imagenet, tmp_path_factory, make_image_folder):
    """MobileNetV2 at 224 px on the ImageNet file, fast mode, 2 epochs on 24 generated
    images, in a TLCORE_HOME of its own (other tests' run lists stay as they were)."""
    home = tmp_path_factory.mktemp("imagenet-run")
    folder = make_image_folder(home / "colours", per_class=8)
    with pytest.MonkeyPatch.context() as patch:
        looked_up = _go_offline(patch, fake_imagenet.keras_home, home / "tlcore")
        train_config = config.TrainConfig(backbone="mobilenet_v2", weights="imagenet",
                                          mode="fast", epochs=2, image_size=SIZE,
                                          batch_size=8, seed=0)
        run = train.train_classifier(train_config, data.from_folder(folder))
    assert looked_up == []
    return run


@pytest.fixture
def offline(monkeypatch, fake_imagenet, imagenet_run) -> list[str]:
    """The fake ImageNet files and the trained run's home, no network; after the test,
    the app's cached ImageNet classifiers (read from these files) are dropped."""
    from ui import cache

    looked_up = _go_offline(monkeypatch, fake_imagenet.keras_home,
                            imagenet_run.run_dir.parent.parent)
    yield looked_up
    cache.imagenet_model.clear()


def _kernel(model: keras.Model, layer_name: str) -> np.ndarray:
    """The kernel of a layer, looked for in nested models too."""
    for layer in model.layers:
        if layer.name == layer_name:
            return keras.ops.convert_to_numpy(layer.kernel)
        if isinstance(layer, keras.Model):
            try:
                return _kernel(layer, layer_name)
            except KeyError:
                pass
    raise KeyError(layer_name)


def _random_pixels(count: int = 2) -> np.ndarray:
    return np.random.default_rng(2).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_tlcore_reads_the_file_keras_would_download_and_computes_what_keras_computes(
        name, fake_imagenet, offline, monkeypatch):
    """Keras's own `weights="imagenet"` asks for exactly the files tlcore names, and
    tlcore's body and 1000-class classifier, built from them, give Keras's outputs."""
    requested = []

    def local_file(fname, origin=None, **kwargs):
        requested.append(fname)
        return str(fake_imagenet.keras_home / "models" / fname)
    monkeypatch.setattr(file_utils, "get_file", local_file)
    constructor = KERAS_CONSTRUCTORS[name]
    keras_body = constructor(include_top=False, weights="imagenet", input_shape=(SIZE, SIZE, 3))
    keras_classifier = constructor(include_top=True, weights="imagenet",
                                   input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert requested == [backbones.imagenet_weights_path(name, SIZE).name,
                         backbones.imagenet_top_weights_path(name).name]

    assert backbones.imagenet_availability(name, SIZE) == "on disk"
    body = backbones.build_backbone(name, weights="imagenet", input_size=SIZE)
    classifier = imagenet.imagenet_classifier(name)
    assert offline == []
    np.testing.assert_array_equal(_kernel(body, FIRST_CONV[name]),
                                  _kernel(fake_imagenet.bodies[name], FIRST_CONV[name]))
    np.testing.assert_array_equal(_kernel(classifier, LAST_LAYER[name]),
                                  _kernel(fake_imagenet.classifiers[name], LAST_LAYER[name]))

    pixels = _random_pixels()
    preprocessed = PixelPreprocessing(backbones.get_spec(name).preprocessing)(pixels)
    theirs, ours = np.asarray(keras_body(preprocessed)), np.asarray(body(preprocessed))
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())
    theirs = np.asarray(keras_classifier(preprocessed))
    logits = models.predict_logits(classifier, pixels)
    assert logits.shape == (2, 1000) and np.ptp(logits) > 0.1  # the statistics spread them
    np.testing.assert_allclose(logits, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.slow
def test_an_efficientnet_body_saved_by_tlcore_is_not_corrected_twice(offline, tmp_path):
    body = backbones.build_backbone("efficientnet_b0", weights="imagenet", input_size=SIZE)
    body.save_weights(tmp_path / "body.weights.h5")
    again = backbones.build_backbone("efficientnet_b0", weights=str(tmp_path / "body.weights.h5"),
                                     input_size=SIZE)
    pixels = _random_pixels(1)
    np.testing.assert_allclose(np.asarray(again(pixels)), np.asarray(body(pixels)), rtol=1e-5,
                               atol=1e-5)


def test_training_mobilenet_v2_at_224_on_imagenet_weights_keeps_the_file_s_body(
        imagenet_run, fake_imagenet):
    info = imagenet_run.info
    assert info["weights_label"] == "ImageNet" and info["pretrained_body"]
    assert imagenet_run.image_size == SIZE and info["embedding_cache"] == "miss"
    assert info["metrics"]["val_accuracy"] is not None
    model = imagenet_run.load_model()
    assert model.input_shape == (None, SIZE, SIZE, 3) and model.output_shape == (None, 3)
    np.testing.assert_array_equal(_kernel(model, "Conv1"),
                                  _kernel(fake_imagenet.bodies["mobilenet_v2"], "Conv1"))
    np.testing.assert_array_equal(_kernel(model, "block_16_project"),
                                  _kernel(fake_imagenet.bodies["mobilenet_v2"],
                                          "block_16_project"))


@pytest.mark.slow
def test_attacks_run_on_the_imagenet_classifier(offline):
    """Untargeted, targeted and minimum-norm attacks, a few steps each (FGSM and the ideal
    image run through the command line below)."""
    model = imagenet.imagenet_classifier("mobilenet_v2")
    siamese = imagenet.class_names().index("Siamese cat")
    pixels = _random_pixels(1)
    for attack_config in (config.AttackConfig(method="pgd", epsilon=4.0, steps=2),
                          config.AttackConfig(method="pgd", epsilon=4.0, steps=2, target=siamese),
                          config.AttackConfig(method="deepfool", steps=2)):
        made = attack.make_attack(attack_config)(model, pixels, target=attack_config.target)
        assert made.adversarial.shape == pixels.shape, attack_config
        assert made.adversarial_logits.shape == (1, 1000), attack_config
        assert made.target == attack_config.target, attack_config
        assert made.adversarial.min() >= 0 and made.adversarial.max() <= 255, attack_config
        if attack_config.method != "deepfool":
            assert made.linf[0] <= attack_config.epsilon + 1e-3, attack_config
    assert offline == []


def _cli_json(capsys, *arguments: str) -> dict:
    assert cli.main([*arguments, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_command_line_uses_the_imagenet_classifier(offline, capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["ideal", "--help"])
    assert "imagenet:BACKBONE" in capsys.readouterr().out
    weights = _cli_json(capsys, "weights", "mobilenet_v2", "--with-head")
    assert Path(weights["path"]) == backbones.imagenet_top_weights_path("mobilenet_v2")
    ideal = _cli_json(capsys, "ideal", "--model", "imagenet:mobilenet_v2", "--target",
                      "Siamese cat", "--preset", "clean", "--steps", "3", "--out",
                      str(tmp_path / "ideal.png"))
    assert ideal["target_index"] == 284 and ideal["steps"] == 3
    assert 0 <= ideal["probability"] <= 1 and ideal["preset"] == "clean"
    assert images.load_image(tmp_path / "ideal.png", SIZE).shape == (SIZE, SIZE, 3)
    images.save_png(images.to_uint8(_random_pixels(1)[0]), tmp_path / "photo.png")
    attacked = _cli_json(capsys, "attack", "--model", "imagenet:mobilenet_v2", "--image",
                         str(tmp_path / "photo.png"), "--method", "fgsm", "--out",
                         str(tmp_path / "adversarial.png"))
    assert attacked["clean_class"] in imagenet.class_names() and attacked["linf"] <= 4
    assert offline == []


def test_a_missing_file_names_the_file_and_the_folder(monkeypatch, tmp_path, tiny_folder,
                                                      capsys):
    looked_up = _go_offline(monkeypatch, tmp_path / "keras", tmp_path / "tlcore")
    folder = str(tmp_path / "keras" / "models")
    body_file = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert backbones.imagenet_availability("mobilenet_v2", SIZE) == "unavailable"
    for build, missing_file in (
            (lambda: backbones.build_backbone("mobilenet_v2", weights="imagenet",
                                              input_size=SIZE), body_file),
            (lambda: imagenet.imagenet_classifier("mobilenet_v2"),
             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
            (lambda: imagenet.imagenet_classifier("efficientnet_b0"), "efficientnetb0.h5")):
        with pytest.raises(backbones.WeightsUnavailableError) as caught:
            build()
        message = str(caught.value)
        assert missing_file in message and folder in message and "no network" in message
        assert caught.value.missing.file == missing_file
        assert str(caught.value.missing.folder) == folder
    steps = []
    with pytest.raises(backbones.WeightsUnavailableError, match=body_file):
        train.train_classifier(config.TrainConfig(backbone="mobilenet_v2", weights="imagenet",
                                                  image_size=SIZE),
                               data.from_folder(tiny_folder),
                               on_step=lambda *step: steps.append(step))
    assert not [step for step in steps if "building" in str(step[2].get("phase"))]
    assert cli.main(["attack", "--model", "imagenet:mobilenet_v3_small", "--image", "x.png",
                     "--out", str(tmp_path / "out.png")]) == 2
    error = capsys.readouterr().err
    assert "weights_mobilenet_v3_small_224_1.0_float.h5" in error and folder in error
    assert looked_up and not (tmp_path / "keras" / "models").exists()


# The app: what the backbone sees, and its ImageNet classifier on the Attack and Ideal
# image pages.

def _open_page(page: str, **session) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=180)
    for key, value in session.items():
        app.session_state[key] = value
    app.run()
    app.switch_page(page).run()
    assert not app.exception, [error.value for error in app.exception]
    return app


def _by_label(elements, label: str):
    return next(element for element in elements if element.label == label)


def _charts(app: AppTest) -> dict[str, dict]:
    """The page's plotly charts by title."""
    specs = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    return {spec["layout"].get("title", {}).get("text", ""): spec for spec in specs}


@pytest.mark.slow
def test_what_the_backbone_sees_is_the_top_5_of_the_file(offline, imagenet_run, fake_imagenet):
    from ui import charts

    app = _open_page("app_pages/evaluate.py", **{state.RUN_ID: imagenet_run.run_id},
                     **{"evaluate-view": "What the backbone sees"})
    bars = _charts(app)["MobileNetV2 on ImageNet: top 5"]["data"][0]
    # The same image, asked of the network the file was saved from (Keras's preprocessing).
    dataset = evaluate.dataset_of(imagenet_run)
    path = dataset.paths[dataset.splits["test"][0]]  # the page's first test image
    image = images.load_image(images.png_bytes(images.load_image(path, SIZE)), SIZE)
    logits = fake_imagenet.classifiers["mobilenet_v2"](
        keras.applications.mobilenet_v2.preprocess_input(image[None].astype(np.float32)))
    probabilities = models.softmax(np.asarray(logits))[0]
    expected = imagenet.top_k(probabilities, 5)
    assert bars["y"] == [charts.escaped(name) for name, _ in expected]
    np.testing.assert_allclose(bars["x"], [p for _, p in expected], rtol=1e-3, atol=1e-6)
    assert offline == []


@pytest.mark.slow
def test_what_the_backbone_sees_without_the_file_says_how_to_add_it(offline, imagenet_run,
                                                                     monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    app = _open_page("app_pages/evaluate.py", **{state.RUN_ID: imagenet_run.run_id},
                     **{"evaluate-view": "What the backbone sees"})
    message = app.info[0].value
    missing = backbones.missing_imagenet_weights("mobilenet_v2", with_head=True)
    assert missing.file in message and str(tmp_path / "empty" / "models") in message
    assert not _charts(app)


@pytest.mark.slow
def test_the_attack_page_attacks_with_the_imagenet_classifier(offline):
    app = _open_page("app_pages/attack.py")
    _by_label(app.radio, "Model").set_value("imagenet").run()
    backbone = _by_label(app.selectbox, "Backbone")
    assert backbone.options == ["MobileNetV2", "MobileNetV3Small", "EfficientNetB0"]
    assert backbone.value == "mobilenet_v2"
    _by_label(app.radio, "Image").set_value("sample").run()
    _by_label(app.radio, "Method").set_value("fgsm").run()
    next(button for button in app.button if button.label == "Attack").click().run()
    assert not app.exception, [error.value for error in app.exception]
    assert _by_label(app.metric, "Success").value in ("yes", "no")
    assert _by_label(app.metric, "L-inf (px)").value.endswith("/ 4")
    before = _charts(app)["Before"]["data"][0]["y"]
    assert len(before) == 5 and set(before) <= set(imagenet.class_names())
    assert offline == []


@pytest.mark.slow
def test_the_ideal_image_page_renders_with_the_imagenet_classifier(offline):
    app = _open_page("app_pages/ideal_image.py")
    _by_label(app.radio, "Model").set_value("imagenet").run()
    app.number_input(key="render-form-steps-custom").set_value(5)
    next(button for button in app.button if button.label == "Render").click().run()
    assert not app.exception, [error.value for error in app.exception]
    assert 0 <= float(_by_label(app.metric, "Class probability").value) <= 1
    assert offline == []
