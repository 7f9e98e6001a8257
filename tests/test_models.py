"""Classifiers take pixels and give logits; saved runs reload identically and safely."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tlcore import backbones, models, runs


def tiny_classifier(num_classes: int = 3) -> keras.Model:
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    return models.build_classifier("scratch_cnn", body, num_classes)


def test_classifier_maps_pixels_to_logits():
    classifier = tiny_classifier(4)
    logits = models.predict_logits(classifier, np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)))
    assert logits.shape == (2, 4)
    last = classifier.get_layer("head").layers[-1]
    assert last.name == "logits" and last.activation.__name__ == "linear"
    assert models.embedding_model(classifier).output_shape == (None, 256)


def test_head_standardises_with_a_variance_floor():
    mean, variance = np.zeros(3), np.array([1.0, 1.0, 0.0])
    head = models.build_head(3, 2, 0.0, mean, variance)
    normalised = head.get_layer("standardize")(np.array([[0.0, 0.0, 1.0]], dtype=np.float32))
    assert np.isfinite(keras.ops.convert_to_numpy(normalised)).all()
    assert float(keras.ops.convert_to_numpy(normalised)[0, 2]) < 20


def test_saved_run_reloads_with_identical_predictions_in_safe_mode(tmp_path):
    classifier = tiny_classifier()
    run = runs.save_run(classifier, {"classes": ["a", "b", "c"], "image_size": 32,
                                     "config": {"backbone": "scratch_cnn", "mode": "fast"}},
                        tmp_path)
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    assert np.array_equal(models.predict_logits(classifier, images),
                          models.predict_logits(run.load_model(), images))
    assert [r.run_id for r in runs.list_runs(tmp_path)] == [run.run_id]


def test_half_written_and_broken_runs_are_not_listed(tmp_path):
    (tmp_path / ".staging-x").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{}")
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "run.json").write_text("{")
    (tmp_path / "badjson" / "model.keras").write_bytes(b"")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "run.json").write_text("{}")
    (tmp_path / "foreign" / "model.keras").write_bytes(b"")
    assert runs.list_runs(tmp_path) == []
    with pytest.raises(ValueError, match="not a tlcore run"):
        runs.load_run(tmp_path / "broken")


def test_loading_refuses_garbage_and_lambda_layers(tmp_path):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="safe mode"):
        models.load_model(garbage)
    inputs = keras.Input((4,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    for name in ("lambda.keras", "lambda.h5"):
        unsafe.save(tmp_path / name)
        with pytest.raises(ValueError, match="safe mode"):
            models.load_model(tmp_path / name)


def _two_input_model() -> keras.Model:
    first, second = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    scores = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Add()([first, second])))
    return keras.Model([first, second], scores)


@pytest.mark.parametrize("build, reason", [
    (lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), "input shape"),
    (lambda: keras.Sequential([keras.Input((8, 6, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(3)]), "fixed square RGB"),
    (lambda: keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(3)]), "fixed square RGB"),
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Dense(3)]), "output shape"),
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(1)]), "at least two classes"),
    (lambda: _two_input_model(), "2 inputs and 1 outputs"),
])
def test_uploaded_models_that_are_not_image_classifiers_are_refused(tmp_path, build, reason):
    build().save(tmp_path / "odd.keras")
    with pytest.raises(ValueError, match=reason):
        models.wrap_external_model(models.load_model(tmp_path / "odd.keras"), "tf")


def test_external_softmax_model_is_wrapped_to_pixels_and_logits(tmp_path):
    inputs = keras.Input((8, 8, 3))
    probabilities = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    external = keras.Model(inputs, probabilities)
    external.save(tmp_path / "external.keras")
    wrapped = models.wrap_external_model(models.load_model(tmp_path / "external.keras"), "tf")
    pixels = np.full((1, 8, 8, 3), 255.0, dtype=np.float32)
    expected = keras.ops.convert_to_numpy(external(np.ones((1, 8, 8, 3), dtype=np.float32)))
    logits = models.predict_logits(wrapped, pixels)
    assert np.allclose(models.softmax(logits), expected, atol=1e-5)
    with pytest.raises(ValueError, match="preprocess"):
        models.wrap_external_model(external, "sepia")


def _pre_softmax_cases() -> dict[str, keras.Model]:
    """Softmax classifiers ending in each way a softmax is written, over 8 px RGB input."""
    def features(inputs):
        return keras.layers.Dense(5, activation="relu")(keras.layers.Flatten()(inputs))

    cases = {}
    inputs = keras.Input((8, 8, 3))
    cases["dense with softmax"] = keras.Model(
        inputs, keras.layers.Dense(3, activation="softmax")(features(inputs)))
    inputs = keras.Input((8, 8, 3))
    cases["softmax layer"] = keras.Model(
        inputs, keras.layers.Softmax()(keras.layers.Dense(3)(features(inputs))))
    cases["sequential"] = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                            keras.layers.Dense(3, activation="softmax")])
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    inputs = keras.Input((8, 8, 3))
    cases["nested"] = keras.Model(inputs, inner(features(inputs)))
    return cases


@pytest.mark.parametrize("case", sorted(_pre_softmax_cases()))
def test_softmax_models_are_read_before_their_softmax(tmp_path, case):
    """The wrapper returns the pre-softmax scores (not log p, which differs from them by a
    per-image constant), so a class-logit objective climbs the real logit; the saved
    original keeps its softmax."""
    external = _pre_softmax_cases()[case]
    external.save(tmp_path / "external.keras")
    loaded = models.load_model(tmp_path / "external.keras")
    wrapped = models.wrap_external_model(loaded, "tf")
    logits, probabilities = _wrapped_and_original(wrapped, loaded, seed=0)
    assert models.scores_kind(wrapped) == models.SCORES_PRE_SOFTMAX
    assert np.allclose(models.softmax(logits), probabilities, atol=1e-5)
    # Logits, not log-probabilities: their exponentials do not sum to one.
    assert not np.allclose(np.exp(logits).sum(axis=-1), 1.0, atol=1e-3)
    assert np.allclose(probabilities.sum(-1), 1.0, atol=1e-5), "the original lost its softmax"


def _wrapped_and_original(wrapped: keras.Model, original: keras.Model, seed: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The wrapper's scores and the original's outputs on the same random pixels (the
    original fed them in its own [-1, 1] convention)."""
    pixels = np.random.default_rng(seed).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    return (models.predict_logits(wrapped, pixels),
            keras.ops.convert_to_numpy(original(pixels / 127.5 - 1)))


def test_softmax_that_cannot_be_taken_off_falls_back_to_log_probabilities():
    """A final layer called twice (its first input is not the model's path to it) is caught
    by the check on random inputs: log p stands in rather than wrong logits."""
    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(inputs)
    shared = keras.layers.Dense(3, activation="softmax")
    shared(keras.layers.Dense(flat.shape[-1])(flat))  # its first call, not the model's output
    external = keras.Model(inputs, shared(flat))
    wrapped = models.wrap_external_model(external, "tf")
    logits, expected = _wrapped_and_original(wrapped, external, seed=1)
    assert models.scores_kind(wrapped) == models.SCORES_LOG_PROBABILITIES
    assert np.allclose(np.exp(logits), expected, atol=1e-5)


def test_models_without_softmax_keep_their_outputs():
    wrapped = models.wrap_external_model(tiny_classifier(3), "none")
    assert models.scores_kind(wrapped) == models.SCORES_LOGITS


def test_run_json_is_plain_json(tmp_path):
    run = runs.save_run(tiny_classifier(), {"classes": ["a", "b", "c"], "image_size": 32,
                                            "config": {}, "metrics": {"accuracy": np.float32(0.5)}},
                        tmp_path)
    assert json.loads((run.run_dir / "run.json").read_text())["metrics"]["accuracy"] == 0.5


def test_rename_delete_and_summary(tmp_path):
    run = runs.save_run(tiny_classifier(), {"classes": ["a", "b", "c"], "image_size": 32,
                                            "config": {"backbone": "scratch_cnn", "mode": "fast"},
                                            "metrics": {"val_accuracy": 0.5, "seconds": 2.0}},
                        tmp_path)
    renamed = runs.rename_run(run, "  my first run ")
    assert runs.load_run(run.run_dir).name == "my first run" == renamed.name
    row = renamed.summary()
    assert row["backbone"] == "scratch_cnn" and row["val_accuracy"] == 0.5 and row["model_mb"] > 0
    with pytest.raises(ValueError, match="1 to 80"):
        runs.rename_run(run, "   ")
    runs.delete_run(renamed)
    assert runs.list_runs(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_the_compiled_call_matches_the_model_from_many_threads():
    import concurrent.futures

    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    classifier = models.build_classifier("scratch_cnn", body, 3, freeze_batch_norm=False)
    pixels = np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    expected = classifier(pixels, training=False).numpy()
    call = models.compiled(classifier)
    assert models.compiled(classifier) is call  # built once per model
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda n: call(pixels[:n]).numpy(), [1, 2, 5, 5, 3, 4]))
    for count, output in zip([1, 2, 5, 5, 3, 4], outputs):
        np.testing.assert_allclose(output, expected[:count], rtol=1e-5, atol=1e-5)
