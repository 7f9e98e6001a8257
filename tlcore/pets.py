"""Oxford-IIIT Pets through TensorFlow Datasets: 37 breeds, or the same photos by species.

TFDS downloads and prepares `oxford_iiit_pet` once (about 800 MB, into `$TFDS_DATA_DIR`,
default `~/tensorflow_datasets`); tlcore then writes each photo's original JPEG bytes into
`$TLCORE_HOME/cache/pets/<breed>/<split>__<file>` once, so the pets are an ordinary folder
data set (embedding cache, splits, evaluation and attacks all work the same). TFDS's own
test split (3,669 photos) stays the test split, so accuracies compare with published ones;
its train split (3,680) is divided into train and validation.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tlcore import atomic, config, folders
from tlcore.config import StepCallback

TFDS_NAME = "oxford_iiit_pet"
BREEDS_NAME = "Oxford-IIIT Pets (37 breeds)"
SPECIES_NAME = "Cats vs Dogs (the Oxford-IIIT Pets photos by species)"
SPECIES_FILE = "species.json"
VALIDATION_FRACTION = 0.15
DOWNLOAD_HOST = "thor.robots.ox.ac.uk"  # where TFDS fetches the pets archives from
DOWNLOAD_BYTES = 791_918_971 + 19_173_078  # images + annotations, from TFDS's checksums.tsv
EXAMPLES = 7349  # photos in TFDS's train and test splits


def is_ready() -> bool:
    """True when the photos are already exported here (opening them downloads nothing)."""
    return (config.cache_dir() / "pets" / SPECIES_FILE).is_file()


def pets_dataset(species: bool = False, seed: int = 0, on_step: StepCallback | None = None,
                 should_stop: Callable[[], bool] | None = None) -> folders.Dataset:
    """Return Oxford-IIIT Pets by breed (37 classes) or by species (cat, dog).

    Args:
        species: relabel the photos as cat or dog.
        seed: seed of the train/validation split.
        on_step: progress of the download, the export and the file check.
        should_stop: polled while exporting; True cancels (nothing half-made is kept).

    Raises:
        ValueError: TFDS cannot download or read the data set, or a cancel; the message
            says what to do.
    """
    folder = export_pets(config.cache_dir() / "pets", on_step=on_step, should_stop=should_stop)
    breeds = folders.from_folder(folder, name=BREEDS_NAME, seed=seed, on_step=on_step)
    breeds = dataclasses.replace(breeds, splits=official_splits(breeds, seed), source="pets")
    if not species:
        return breeds
    species_of = json.loads((folder / SPECIES_FILE).read_text())
    names = tuple(sorted(set(species_of.values())))
    labels = np.array([names.index(species_of[breeds.class_names[label]])
                       for label in breeds.labels], dtype=np.int64)
    return dataclasses.replace(breeds, name=SPECIES_NAME, class_names=names,
                               labels=labels, source="pets-species")


def species_of_breeds(breeds: list[str]) -> list[str] | None:
    """The species ("cat" or "dog") of each breed, from the export; None if not exported."""
    try:
        species_of = json.loads((config.cache_dir() / "pets" / SPECIES_FILE).read_text())
        return [species_of[breed] for breed in breeds]
    except (OSError, ValueError, KeyError):
        return None


def official_splits(dataset: folders.Dataset, seed: int) -> dict[str, np.ndarray]:
    """TFDS's test files are the test split; its train files are split train/validation."""
    is_test = np.array([Path(path).name.startswith("test__") for path in dataset.paths])
    train_indices = np.flatnonzero(~is_test)
    inner = folders.stratified_splits(dataset.labels[train_indices],
                                      (1 - VALIDATION_FRACTION, VALIDATION_FRACTION, 0.0), seed)
    return {"train": train_indices[inner["train"]],
            "validation": train_indices[inner["validation"]],
            "test": np.flatnonzero(is_test)}


def export_pets(target: Path, on_step: StepCallback | None = None,
                should_stop: Callable[[], bool] | None = None) -> Path:
    """Write the TFDS photos as JPEG files under `target/<breed>/` once; return `target`.

    Written into a staging folder and renamed into place, so an interrupted export leaves
    nothing half-made behind and the next call starts again.

    Raises:
        ValueError: TFDS failed (see `_load`), or `should_stop()` turned True.
    """
    if (target / SPECIES_FILE).is_file():
        return target
    import tensorflow_datasets as tfds  # slow to import; only needed once

    with atomic.staged_folder(target, replace_existing=True) as staging:
        builder_splits, info = _load(tfds, on_step)
        species_of: dict[str, str] = {}
        breed_names = info.features["label"].names
        species_names = [name.lower() for name in info.features["species"].names]
        written = 0
        for split, examples in builder_splits.items():
            for example in tfds.as_numpy(examples):
                breed = breed_names[int(example["label"])]
                species_of[breed] = species_names[int(example["species"])]
                name = Path(example["file_name"].decode()).name
                (staging / breed).mkdir(exist_ok=True)
                (staging / breed / f"{split}__{name}").write_bytes(example["image"])
                written += 1
                if on_step is not None and written % 100 == 0:
                    on_step(written, EXAMPLES, {"phase": "exporting"})
                if should_stop is not None and should_stop():
                    raise ValueError("export of Oxford-IIIT Pets cancelled; the download is "
                                     "kept and the next attempt exports again")
        (staging / SPECIES_FILE).write_text(json.dumps(species_of, indent=1, sort_keys=True))
    return target


def _tfds_data_dir() -> Path:
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))


@contextlib.contextmanager
def _watch_download(on_step: StepCallback | None) -> Iterator[None]:
    """Report TFDS's download progress by watching its downloads folder grow."""
    if on_step is None:
        yield
        return
    folder = _tfds_data_dir() / "downloads"
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            on_step(min(_folder_bytes(folder), DOWNLOAD_BYTES), DOWNLOAD_BYTES,
                    {"phase": "downloading (TensorFlow Datasets)"})

    watcher = threading.Thread(target=watch, name="pets-download-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` now (files may vanish while TFDS renames them)."""
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total


def _load(tfds, on_step: StepCallback | None = None) -> tuple[dict, object]:
    """Load both TFDS splits with the JPEG bytes undecoded; turn failures into advice."""
    try:
        # Offline, TFDS retries its downloads with back-off for minutes: ask DNS first.
        if not tfds.builder(TFDS_NAME).is_prepared():
            socket.getaddrinfo(DOWNLOAD_HOST, 443)
        with _watch_download(on_step):
            splits, info = tfds.load(TFDS_NAME, split=["train", "test"], with_info=True,
                                     decoders={"image": tfds.decode.SkipDecoding()})
    except Exception as error:  # TFDS raises many types for network and disk failures
        data_dir = _tfds_data_dir()
        raise ValueError(
            f"TensorFlow Datasets could not download or read '{TFDS_NAME}' "
            f"({type(error).__name__}: {str(error)[:160]}). It needs a network once (about "
            f"800 MB). Without one: on a machine with a network run `python -c \"import "
            f"tensorflow_datasets as tfds; tfds.load('{TFDS_NAME}')\"`, then copy its "
            f"~/tensorflow_datasets/{TFDS_NAME} folder to {data_dir}/{TFDS_NAME} here "
            "(or set TFDS_DATA_DIR to where it is).") from error
    return dict(zip(["train", "test"], splits)), info
