"""Exports give the Keras model's answers from raw pixels: TFLite's logits, and the
SavedModel's serving signature (logits and probabilities), made from the Runs page."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tlcore import export, models

pytestmark = pytest.mark.slow  # converts models (and trains the session's tiny run)


def random_pixels(count: int = 3, side: int = 32) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (count, side, side, 3)).astype(np.float32)


def shown(app, run, kind: str) -> bool:
    """Whether the page shows the format's snippet (st.code drops the last newline)."""
    return export.snippet(run, kind).rstrip() in [code.value for code in app.code]


def test_tflite_matches_keras(tiny_run):
    path = export.export_tflite(tiny_run)  # beside the model, where the snippets' test finds it
    pixels = random_pixels()
    expected = models.predict_logits(tiny_run.load_model(), pixels)
    assert np.allclose(export.tflite_logits(path, pixels), expected, atol=1e-3)
    stamp = path.stat().st_mtime_ns
    assert export.export_tflite(tiny_run) == path and path.stat().st_mtime_ns == stamp
    assert export.exported(tiny_run, "tflite") == path


def test_export_from_the_command_line(tiny_run, tmp_path, capsys):
    from tlcore import cli
    assert cli.main(["export", str(tiny_run.run_dir), "--out", str(tmp_path / "m.tflite"),
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bytes"] > 1000 and result["tflite"].endswith("m.tflite")


def test_the_runs_page_exports_a_saved_model_that_answers_as_keras(tiny_run, tmp_path):
    from test_app import by_label, open_page

    app = open_page("app_pages/runs.py", run_id=tiny_run.run_id)
    assert shown(app, tiny_run, "keras")
    if export.exported(tiny_run, "saved_model") is None:  # not made by another test yet
        assert not shown(app, tiny_run, "saved_model")
        by_label(app.button, "Export for TensorFlow Serving").click().run()
        assert not app.exception, [error.value for error in app.exception]
    assert shown(app, tiny_run, "saved_model")
    folder = f"{tiny_run.run_id}_saved_model/{export.SERVING_VERSION}"
    with zipfile.ZipFile(export.exported(tiny_run, "saved_model")) as archive:
        assert all(name.startswith(f"{tiny_run.run_id}_saved_model/")
                   for name in archive.namelist())
        assert f"{folder}/saved_model.pb" in archive.namelist()
        archive.extractall(tmp_path)
    pixels = random_pixels()
    outputs = export.serving_outputs(tmp_path / folder, pixels)
    logits = models.predict_logits(tiny_run.load_model(), pixels)
    assert np.allclose(outputs["logits"], logits, atol=1e-4)
    assert np.allclose(outputs["probabilities"], models.softmax(logits), atol=1e-5)


def test_a_saved_model_that_answers_otherwise_is_not_kept(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "serving_outputs",
                        lambda folder, pixels: {"logits": np.full((len(pixels), 3), 1e3)})
    with pytest.raises(ValueError, match="logits differ from the Keras model's by up to"):
        export.export_saved_model(tiny_run, tmp_path / "saved.zip")
    assert list(tmp_path.iterdir()) == []
