"""Shared fixtures: an isolated TLCORE_HOME/KERAS_HOME, tiny generated data, a tiny run."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Isolate every path tlcore writes to before any test imports it, and keep Keras from
# finding (or fetching) real weights: nothing downloads at test time.
_HOME = Path(tempfile.mkdtemp(prefix="tlcore-tests-"))
os.environ["TLCORE_HOME"] = str(_HOME / "tlcore")
os.environ["KERAS_HOME"] = str(_HOME / "keras")
os.environ.pop("TLCORE_PUBLIC_DEMO", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COLOURS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def _make_image_folder(root: Path, per_class: int = 12, size: int = 32, seed: int = 0,
                       colours: dict[str, tuple[int, int, int]] = COLOURS) -> Path:
    """Write a folder of class folders: noisy squares whose colour is the class."""
    random = np.random.default_rng(seed)
    for name, colour in colours.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = random.normal(128, 30, (size, size, 3))
            top, left = random.integers(0, size // 2, 2)
            pixels[top:top + size // 2, left:left + size // 2] = colour
            pixels += random.normal(0, 10, pixels.shape)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / name / f"{name}_{index:03d}.png")
    return root


@pytest.fixture(scope="session")
def make_image_folder():
    """The function that writes a folder of noisy colour squares, one class folder each:
    `make_image_folder(root, per_class=12, size=32, seed=0, colours=COLOURS) -> root`."""
    return _make_image_folder


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """Three colour classes, 12 images each, 32 px."""
    return _make_image_folder(tmp_path_factory.mktemp("tiny") / "colours")


@pytest.fixture(scope="session")
def tiny_run(tiny_folder, tmp_path_factory):
    """A scratch CNN trained end to end on the tiny folder, saved as a run."""
    from tlcore import config, data, train

    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=15, image_size=32, batch_size=8, seed=0,
                                      learning_rate=5e-3, patience=0)
    dataset = data.from_folder(tiny_folder)
    return train.train_classifier(train_config, dataset)


@pytest.fixture(scope="session")
def two_conventions():
    """One small ReLU network (no biases, so its gradient does not change when its input is
    scaled) behind VGG16's convention (pixels minus a mean) and behind MobileNetV2's
    (pixels / 127.5 - 1): the same network per unit of its own input. Returns the two."""
    import keras

    from tlcore import layers

    keras.utils.set_random_seed(3)
    network = keras.Sequential([keras.Input((16, 16, 3)),
                                keras.layers.Conv2D(8, 3, activation="relu", use_bias=False),
                                keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(3, use_bias=False)])
    pixels = keras.Input((16, 16, 3))
    caffe_like = keras.Model(pixels, network(keras.layers.Rescaling(1.0, offset=-127.5)(pixels)))
    pixels = keras.Input((16, 16, 3))
    rescaling = keras.Model(pixels, network(layers.PixelPreprocessing("tf")(pixels)))
    return caffe_like, rescaling


class ServerDied(Exception):
    """Stands in for a killed process: the training stops without any cleanup."""


def _die_in_epoch(epoch: int, phase: str = "training"):
    """A progress callback that "kills the server" on the first batch of `epoch`."""
    def on_step(step: int, total: int, metrics: dict) -> None:
        if metrics.get("phase") == phase and metrics.get("epoch") == epoch:
            raise ServerDied
    return on_step


def _interrupted_training(folder: Path, runs_dir: Path | None = None, epochs: int = 3,
                          crash_epoch: int = 2):
    """Train from scratch until a simulated kill in `crash_epoch`; return its checkpoint."""
    from tlcore import checkpoints, config, data, train

    train_config = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                      epochs=epochs, image_size=32, batch_size=8, patience=0)
    with pytest.raises(ServerDied):
        train.train_classifier(train_config, data.from_folder(folder), runs_dir=runs_dir,
                               on_step=_die_in_epoch(crash_epoch))
    [interrupted] = checkpoints.list_interrupted(runs_dir)
    return interrupted


@pytest.fixture(scope="session")
def server_died() -> type[Exception]:
    """The exception a `die_in_epoch` callback raises, for `pytest.raises`."""
    return ServerDied


@pytest.fixture(scope="session")
def die_in_epoch():
    """The function that makes a progress callback which "kills the server" (raises
    `server_died`) on the first batch of an epoch: `die_in_epoch(epoch, phase="training")`."""
    return _die_in_epoch


@pytest.fixture(scope="session")
def interrupted_training():
    """The function that trains from scratch until a simulated kill and returns the
    checkpoint: `interrupted_training(folder, runs_dir=None, epochs=3, crash_epoch=2)`."""
    return _interrupted_training


def jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), value, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def petimages_like_zip() -> bytes:
    """The archive's layout with its kinds of damage: empty, truncated, Thumbs.db."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("CDLA-Permissive-2.0.pdf", b"%PDF-1.4")
        archive.writestr("readme[1].txt", b"Cats and dogs")
        for species in ("Cat", "Dog"):
            for index in range(4):
                archive.writestr(f"PetImages/{species}/{index}.jpg", jpeg(40 * index))
            archive.writestr(f"PetImages/{species}/Thumbs.db", b"\xd0\xcf\x11\xe0")
        archive.writestr("PetImages/Cat/666.jpg", b"")
        archive.writestr("PetImages/Dog/11702.jpg", jpeg(200)[:200])
    return buffer.getvalue()


@pytest.fixture
def served_petimages(monkeypatch, tmp_path):
    """PetImages-like archive served on loopback, with tlcore pointed at it."""
    from tlcore import petimages

    payload = petimages_like_zip()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(petimages, "URL", f"http://127.0.0.1:{httpd.server_address[1]}/a.zip")
    monkeypatch.setattr(petimages, "SIZE", len(payload))
    monkeypatch.setattr(petimages, "SHA256", hashlib.sha256(payload).hexdigest())
    yield
    httpd.shutdown()


def _train_small_run(home: Path) -> None:
    """Train one run into `home` from the command line, as a host would (not in a public
    demo): the small CNN, 2 epochs on the demo set at 32 px. For tests that serve the app
    over a home of their own."""
    import os
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items()
                   if key != "TLCORE_PUBLIC_DEMO"}
    environment.update(TLCORE_HOME=str(home), CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, "-m", "tlcore", "train", "--data", "demo", "--backbone",
                    "scratch_cnn", "--weights", "none", "--mode", "end-to-end", "--epochs", "2",
                    "--image-size", "32"], cwd=Path(__file__).resolve().parents[1],
                   env=environment, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def train_small_run():
    """The function that trains one small run into a home from the command line:
    `train_small_run(home)`."""
    return _train_small_run
