"""TFLite export gives the same logits as the Keras model, from raw pixels."""
from __future__ import annotations

import numpy as np
import pytest

from tlcore import export, models


@pytest.mark.slow
def test_tflite_matches_keras(tiny_run, tmp_path):
    path = export.export_tflite(tiny_run, tmp_path / "model.tflite")
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    expected = models.predict_logits(tiny_run.load_model(), pixels)
    assert np.allclose(export.tflite_logits(path, pixels), expected, atol=1e-3)
    stamp = path.stat().st_mtime_ns
    assert export.export_tflite(tiny_run, path) == path and path.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_export_from_the_command_line(tiny_run, tmp_path, capsys):
    import json
    from tlcore import cli
    assert cli.main(["export", str(tiny_run.run_dir), "--out", str(tmp_path / "m.tflite"),
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bytes"] > 1000 and result["tflite"].endswith("m.tflite")
