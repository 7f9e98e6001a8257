"""Take a run's classifier elsewhere: Keras, TensorFlow Lite, TensorFlow Serving, and a
Python snippet for each that loads the file, decodes images and prints the top classes.

Every exported model keeps tlcore's contract: float32 RGB pixels in [0, 255] in (the
backbone's preprocessing is inside), logits out; the SavedModel's serving signature also
returns the probabilities. Conversions go through a SavedModel, which is how Keras 3
models reach the TFLite converter and TensorFlow Serving. Exports are kept beside the
run's model and made again only when the model is newer.

A snippet must give the app's own answer: its `load_image` decodes and resizes exactly as
`images.load_image` does (JPEG draft scale, first frame, EXIF orientation, white behind
transparency, 16-bit levels, bilinear resize); tests/test_snippets.py runs each one on
exported files and compares its output with `models.predict_logits`.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import string
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tlcore import atomic, layers, models, predict, runs
from tlcore.config import StepCallback

TFLITE_FILE = "model.tflite"
SAVED_MODEL_ZIP = "saved_model.zip"
SERVING_VERSION = "1"  # TensorFlow Serving serves the numbered version folders of a model
SERVING_INPUT = "pixels"
CHECK_TOLERANCE = 1e-3  # logits of an export may differ from Keras's by float rounding


@dataclasses.dataclass(frozen=True)
class Format:
    """One way to take a model elsewhere.

    Attributes:
        label: its name for people.
        suffix: the end of the downloaded file's name, after the run id.
        needs: what the snippet needs installed (pip names).
        code: the snippet's part that loads the model and defines `predict(pixels)`
            (one (S, S, 3) image in, class probabilities out): a `string.Template`.
    """

    label: str
    suffix: str
    needs: str
    code: str


_KERAS_CODE = '''import keras


@keras.saving.register_keras_serializable(package="tlcore")
class PixelPreprocessing(keras.layers.Layer):
    """tlcore's first layer: [0, 255] RGB pixels to what the backbone was trained on."""

    # mode: (RGB to BGR first?, channel means, steps); output = (pixels - means) / steps
    CONVENTIONS = $conventions

    def __init__(self, mode="none", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, images):
        flip, means, steps = self.CONVENTIONS[self.mode]
        images = keras.ops.cast(images, "float32")
        if flip:
            images = keras.ops.flip(images, axis=-1)
        return (images - keras.ops.convert_to_tensor(means)) / keras.ops.convert_to_tensor(steps)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


model = keras.saving.load_model(MODEL, compile=False)


def predict(pixels):
    return softmax(model.predict(pixels[None], verbose=0)[0])
'''

_TFLITE_CODE = '''\
try:  # LiteRT, TensorFlow Lite's new home, needs no TensorFlow (phones, small boards)
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # TensorFlow's own copy (it warns that it has moved)
    import tensorflow as tf

    Interpreter = tf.lite.Interpreter

interpreter = Interpreter(model_path=MODEL)
interpreter.allocate_tensors()
INPUT = interpreter.get_input_details()[0]["index"]
OUTPUT = interpreter.get_output_details()[0]["index"]


def predict(pixels):
    interpreter.set_tensor(INPUT, pixels[None])
    interpreter.invoke()
    return softmax(interpreter.get_tensor(OUTPUT)[0])
'''

_SAVED_MODEL_CODE = '''import tensorflow as tf

# Unzip $zip here first. TensorFlow Serving serves that folder as it is:
#   docker run -p 8501:8501 -v "$$PWD/$folder:/models/classifier" \\
#       -e MODEL_NAME=classifier tensorflow/serving
# and answers POST http://localhost:8501/v1/models/classifier:predict with the body
#   {"instances": [IMAGE_SIZE x IMAGE_SIZE x 3 pixels in [0, 255], as nested lists]}
serve = tf.saved_model.load(MODEL).signatures["serving_default"]


def predict(pixels):
    return serve($input=tf.constant(pixels[None]))["probabilities"].numpy()[0]
'''

FORMATS = {
    "keras": Format("Keras (.keras)", ".keras", "keras tensorflow pillow numpy", _KERAS_CODE),
    "tflite": Format("TensorFlow Lite (.tflite)", ".tflite",
                     "ai-edge-litert pillow numpy; or tensorflow for ai-edge-litert",
                     _TFLITE_CODE),
    "saved_model": Format("TensorFlow Serving (SavedModel, zipped)", "_saved_model.zip",
                          "tensorflow pillow numpy", _SAVED_MODEL_CODE),
}

_SNIPPET = string.Template('''\
"""Print the top $k classes of each image given, by a model from tlcore.

Model: run $run_id, $label.
Usage: python predict.py IMAGE [IMAGE ...]   (needs: pip install $needs)
Prints one line per class: the image, the class, its probability; most probable first.
"""
import sys

import numpy as np
from PIL import Image, ImageOps

MODEL = $model
CLASSES = $classes
IMAGE_SIZE = $size  # the model takes IMAGE_SIZE x IMAGE_SIZE RGB pixels in [0, 255]
TOP_K = $k


def load_image(path):
    """Decode and resize an image exactly as tlcore does."""
    with Image.open(path) as image:
        image.draft("RGB", (IMAGE_SIZE, IMAGE_SIZE))  # a JPEG is decoded at a reduced scale
        image.seek(0)  # the first frame of an animation
        image = ImageOps.exif_transpose(image)  # upright, as the camera was held
        if image.mode.startswith("I"):  # 16-bit levels to 8-bit ones (65535 -> 255)
            levels = np.clip(np.asarray(image).astype(np.int64), 0, None)
            top = max(65535, int(levels.max()))
            image = Image.fromarray(((levels * 255 + top // 2) // top).astype(np.uint8))
        if image.mode == "P":
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA"):  # transparent pixels become white
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image.convert("RGBA"))
        image = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float32)


def softmax(logits):
    exponentials = np.exp(logits - logits.max())
    return exponentials / exponentials.sum()


$code

for path in sys.argv[1:]:
    probabilities = predict(load_image(path))
    for index in np.argsort(-probabilities, kind="stable")[:TOP_K]:
        print(f"{path}\\t{CLASSES[index]}\\t{probabilities[index]:.6f}")
''')


def file_name(run: runs.Run, kind: str) -> str:
    """The name a download of the run's model in format `kind` (a FORMATS key) gets."""
    return f"{run.run_id}{FORMATS[kind].suffix}"


def exported(run: runs.Run, kind: str) -> Path | None:
    """The run's file in format `kind` when it exists and is not older than the model."""
    path = {"keras": run.model_path, "tflite": run.run_dir / TFLITE_FILE,
            "saved_model": run.run_dir / SAVED_MODEL_ZIP}[kind]
    return path if _fresh(path, run) else None


def snippet(run: runs.Run, kind: str, k: int = predict.TOP_K) -> str:
    """Python code that loads the run's model in format `kind` from its downloaded file
    (`file_name`), decodes the images named on its command line as the app does and
    prints each one's top k classes with their probabilities.

    Args:
        run: a saved run.
        kind: a FORMATS key.
        k: how many classes to print per image (at most the run's classes).

    Raises:
        ValueError: an unknown format.
    """
    if kind not in FORMATS:
        raise ValueError(f"format {kind!r} is not one of {sorted(FORMATS)}")
    chosen = FORMATS[kind]
    folder = file_name(run, kind).removesuffix(".zip")
    model = f"{folder}/{SERVING_VERSION}" if kind == "saved_model" else file_name(run, kind)
    conventions = "{\n" + "".join(f"        {mode!r}: {values!r},\n" for mode, values
                                  in layers.PREPROCESSING.items()) + "    }"
    code = string.Template(chosen.code).substitute(
        conventions=conventions, zip=file_name(run, kind), folder=folder, input=SERVING_INPUT)
    classes = "[\n" + "".join(f"    {name!r},\n" for name in run.classes) + "]"
    return _SNIPPET.substitute(k=min(k, len(run.classes)), run_id=run.run_id,
                               label=chosen.label, needs=chosen.needs, model=repr(model),
                               classes=classes, size=run.image_size, code=code.rstrip())


def export_tflite(run: runs.Run, out: Path | None = None,
                  on_step: StepCallback | None = None) -> Path:
    """Convert a run's model to TFLite once (kept beside it) and return the file.

    Args:
        run: a saved run.
        out: where to write; None writes `model.tflite` in the run's folder.
        on_step: progress through the phases (loading, converting).
    """
    out = Path(out or run.run_dir / TFLITE_FILE)
    if _fresh(out, run):
        return out
    phases = _Phases(on_step, ("loading the model", "converting"))
    model = run.load_model()
    phases.next()
    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", verbose=False)
        converted = tf.lite.TFLiteConverter.from_saved_model(folder).convert()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_file(out, converted)
    phases.next()
    return out


def export_saved_model(run: runs.Run, out: Path | None = None,
                       on_step: StepCallback | None = None) -> Path:
    """Export a run's model for TensorFlow Serving as a zip, once (kept beside it), after
    checking that the exported model answers as the Keras one does.

    The zip holds `<run id>_saved_model/1/` (TensorFlow Serving's version folder): a
    SavedModel whose `serving_default` signature takes `pixels`, float32 (N, S, S, 3) in
    [0, 255], and returns `logits` and `probabilities`, (N, K).

    Args:
        run: a saved run.
        out: where to write the zip; None writes `saved_model.zip` in the run's folder.
        on_step: progress through the phases (loading, writing, checking, zipping).

    Raises:
        ValueError: the exported model's logits differ from the Keras model's (nothing
            is kept).
    """
    out = Path(out or run.run_dir / SAVED_MODEL_ZIP)
    if _fresh(out, run):
        return out
    phases = _Phases(on_step, ("loading the model", "writing the SavedModel",
                               "checking it against the Keras model", "zipping"))
    model = run.load_model()
    phases.next()
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = file_name(run, "saved_model").removesuffix(".zip")
    with tempfile.TemporaryDirectory(prefix=f"{atomic.TEMPORARY_PREFIX}export-",
                                     dir=out.parent) as staging:
        version = Path(staging) / folder / SERVING_VERSION
        _write_serving_model(model, version)
        phases.next()
        _check_serving_model(model, version)
        phases.next()
        archive = shutil.make_archive(str(Path(staging) / "export"), "zip", root_dir=staging,
                                      base_dir=folder)
        os.replace(archive, out)
    phases.next()
    return out


def serving_outputs(folder: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Run an exported SavedModel's serving signature on (N, S, S, 3) pixels in [0, 255].

    Returns:
        {"logits": (N, K), "probabilities": (N, K)}.
    """
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    outputs = serve(**{SERVING_INPUT: tf.constant(np.asarray(pixels, dtype=np.float32))})
    return {name: value.numpy() for name, value in outputs.items()}


def tflite_logits(path: Path, pixels: np.ndarray) -> np.ndarray:
    """Run a TFLite classifier on (N, S, S, 3) pixels one image at a time; return logits."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]
    outputs = []
    for image in np.asarray(pixels, dtype=np.float32):
        interpreter.set_tensor(source, image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target)[0])
    return np.stack(outputs)


def _write_serving_model(model: keras.Model, folder: Path) -> None:
    """Write a SavedModel whose serving signature maps pixels to logits and probabilities."""
    side = models.input_size(model)

    def serve(pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(pixels, training=False)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[
        tf.TensorSpec((None, side, side, 3), tf.float32, name=SERVING_INPUT)])
    archive.write_out(str(folder), verbose=False)


def _check_serving_model(model: keras.Model, folder: Path) -> None:
    """Refuse an export whose logits differ from the Keras model's on random pixels."""
    side = models.input_size(model)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, side, side, 3)).astype(np.float32)
    expected = models.predict_logits(model, pixels)
    served = serving_outputs(folder, pixels)["logits"]
    difference = float(np.abs(served - expected).max())
    if not difference <= CHECK_TOLERANCE * max(1.0, float(np.abs(expected).max())):
        raise ValueError(f"the exported SavedModel's logits differ from the Keras model's "
                         f"by up to {difference:.3g}; the export was not kept")


def _fresh(path: Path, run: runs.Run) -> bool:
    """True when `path` exists and was written after the run's model."""
    return path.is_file() and path.stat().st_mtime >= run.model_path.stat().st_mtime


class _Phases:
    """Report named phases as steps of one count: the next one begins at each `next()`."""

    def __init__(self, on_step: StepCallback | None, names: tuple[str, ...]) -> None:
        self.on_step, self.names, self.done = on_step, names, 0
        self._report()

    def next(self) -> None:
        """The current phase has ended."""
        self.done += 1
        self._report()

    def _report(self) -> None:
        if self.on_step is not None:
            phase = self.names[min(self.done, len(self.names) - 1)]
            self.on_step(self.done, len(self.names), {"phase": phase})
