"""Each format's copy-paste snippet, run as a user would (its own Python process, no tlcore,
the downloaded file beside it), prints the app's own top classes and probabilities."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from tlcore import export, images, models

pytestmark = pytest.mark.slow  # exports, then three Python processes import TensorFlow


@pytest.fixture(scope="module")
def downloads(tiny_run, tmp_path_factory):
    """A folder as a user has it: each format's file under its download name (the
    SavedModel unzipped), and the test images."""
    folder = tmp_path_factory.mktemp("downloads")
    # Made beside the model (once: tests/test_export.py may have made them already).
    export.export_tflite(tiny_run)
    export.export_saved_model(tiny_run)
    for kind in ("keras", "tflite"):
        (folder / export.file_name(tiny_run, kind)).write_bytes(
            export.exported(tiny_run, kind).read_bytes())
    with zipfile.ZipFile(export.exported(tiny_run, "saved_model")) as archive:
        archive.extractall(folder)
    return folder


def write_images(folder) -> list[str]:
    """Images that take each of load_image's paths: a JPEG decoded at a reduced scale, a
    PNG with transparency, a 16-bit greyscale PNG; all larger than the model's side."""
    random = np.random.default_rng(1)
    photo = random.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    photo[10:40, 20:60] = (220, 40, 40)
    Image.fromarray(photo).save(folder / "photo.jpg", quality=90)
    clear = random.integers(0, 256, (48, 48, 4), dtype=np.uint8)
    clear[..., 3] = np.where(np.arange(48) < 24, 255, 60)[None, :]
    Image.fromarray(clear, "RGBA").save(folder / "clear.png")
    levels = (random.integers(0, 65536, (40, 40))).astype(np.uint16)
    Image.fromarray(levels).save(folder / "levels.png")
    return ["photo.jpg", "clear.png", "levels.png"]


def test_each_snippet_prints_the_apps_prediction(tiny_run, downloads):
    names = write_images(downloads)
    model = tiny_run.load_model()
    pixels = np.stack([images.load_image(downloads / name, tiny_run.image_size)
                       for name in names]).astype(np.float32)
    probabilities = models.softmax(models.predict_logits(model, pixels))
    processes = {}
    for kind in export.FORMATS:  # all three at once: each spends seconds importing
        script = downloads / f"predict_{kind}.py"
        script.write_text(export.snippet(tiny_run, kind, k=2))
        processes[kind] = subprocess.Popen([sys.executable, script.name, *names],
                                           cwd=downloads, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    for kind, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{kind}: {err[-2000:]}"
        lines = [line.split("\t") for line in out.strip().splitlines()]
        assert [line[0] for line in lines] == [name for name in names for _ in range(2)], out
        for index, name in enumerate(names):
            order = np.argsort(-probabilities[index], kind="stable")[:2]
            printed = lines[2 * index:2 * index + 2]
            assert [line[1] for line in printed] == [tiny_run.classes[i] for i in order], kind
            assert [float(line[2]) for line in printed] == pytest.approx(
                probabilities[index][order].tolist(), abs=1e-4), kind


def test_a_snippet_names_the_runs_files_and_classes(tiny_run):
    code = export.snippet(tiny_run, "saved_model")
    assert f"MODEL = '{tiny_run.run_id}_saved_model/1'" in code
    assert f"Unzip {tiny_run.run_id}_saved_model.zip here first" in code
    assert f"IMAGE_SIZE = {tiny_run.image_size}" in code and "TOP_K = 3" in code
    assert all(f"    {name!r},\n" in code for name in tiny_run.classes)
    compile(code, "predict.py", "exec")
    with pytest.raises(ValueError, match="'onnx' is not one of"):
        export.snippet(tiny_run, "onnx")
