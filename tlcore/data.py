"""Data sources: the table of data sets opened by name, and `load_dataset`, which opens
one of them, a folder of class folders or a zip of one.

Each named source is one `SOURCES` entry: its label for people, how to open it, whether it
is here already, what its first opening downloads and what the Data page says about it.
The Data page's choices, its download panel, the background download job (which opens the
source once) and the command line's `--data` help all read this table.

The `Dataset` and the reading of folders and zips live in `tlcore.folders`, which every
source builds on; their names are kept here, where callers have always found them.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Callable

from tlcore import config, pets, petimages
from tlcore.config import StepCallback
from tlcore.demo import demo_dataset
from tlcore.folders import (SPLIT_NAMES, Dataset, SkippedFile, extracted_zips, from_folder,
                            from_zip, load_images, relative_name, stratified_splits,
                            uploads_folder)

__all__ = ["SOURCES", "DOWNLOADED_SOURCES", "DataSource", "Dataset", "SPLIT_NAMES",
           "SkippedFile", "demo_dataset", "extracted_zips", "from_folder", "from_zip",
           "load_dataset", "load_images", "needs_download", "relative_name", "source_stamp",
           "sources_in_words", "stratified_splits", "uploads_folder"]


def _always_here() -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class DataSource:
    """A data set opened by name.

    Attributes:
        label: for people (the Data page's choice, the command line's help).
        open: open(seed=..., on_step=..., should_stop=...) -> Dataset, downloading it
            first if it is not here; on_step reports downloading, extracting and
            checking, should_stop is polled while downloading.
        is_ready: True when opening it downloads nothing.
        download_bytes: what its first opening downloads (0: nothing).
        note: what the Data page says about it, or "".
    """

    label: str
    open: Callable[..., Dataset]
    is_ready: Callable[[], bool] = _always_here
    download_bytes: int = 0
    note: str = ""


PETS_NOTE = ("Downloaded once through TensorFlow Datasets (about 800 MB), then read from disk. "
             "TFDS's own test split is kept, so results compare with published ones.")
SOURCES: dict[str, DataSource] = {
    "demo": DataSource(label="Built-in demo set (synthetic, offline)", open=demo_dataset),
    "pets": DataSource(label=pets.BREEDS_NAME, open=pets.pets_dataset, is_ready=pets.is_ready,
                       download_bytes=pets.DOWNLOAD_BYTES, note=PETS_NOTE),
    "pets-species": DataSource(label=pets.SPECIES_NAME,
                               open=functools.partial(pets.pets_dataset, species=True),
                               is_ready=pets.is_ready, download_bytes=pets.DOWNLOAD_BYTES,
                               note=PETS_NOTE),
    "petimages": DataSource(
        label="Cats vs Dogs (Microsoft PetImages, the lesson's 787 MB archive)",
        open=petimages.petimages_dataset, is_ready=petimages.is_ready,
        download_bytes=petimages.SIZE,
        note="Downloaded once (resumable, checksum-checked), then read from disk; its "
             "unreadable files are skipped and listed below."),
}
DOWNLOADED_SOURCES = tuple(name for name, source in SOURCES.items() if source.download_bytes)


def sources_in_words() -> str:
    """What `load_dataset` opens, for people: the names, a folder or a zip."""
    return f"{', '.join(SOURCES)}, a folder of class folders, or a .zip"


def needs_download(source: str) -> bool:
    """True when opening `source` would first download it (a named set not yet here)."""
    return source in SOURCES and not SOURCES[source].is_ready()


def source_stamp(source: str) -> str:
    """Return a cheap token that changes when files are added to or removed from a source.

    A folder's modification time changes when an entry is added, removed or renamed, so
    the stamp of the root and its class folders is enough to know a cached read is stale.
    """
    if source in SOURCES:
        return f"{source}:{needs_download(source)}"
    root = Path(source)
    if not root.is_dir():
        return "missing"
    folders = [root, *(p for p in root.iterdir() if p.is_dir())]
    return str(max(folder.stat().st_mtime_ns for folder in folders))


def load_dataset(source: str, *, seed: int = 0, on_step: StepCallback | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Dataset:
    """Open a data set: a name in `SOURCES`, a folder of class folders or a .zip.

    Args:
        source: which data set.
        seed: seed of the train/validation/test split.
        on_step: progress of downloading, extracting and checking files, as
            on_step(done, total, {"phase": ...}).
        should_stop: polled during a download; True cancels it (the next call resumes).

    Raises:
        ValueError: the source is none of those, or cannot be downloaded (the message
            says where to put the files by hand).
    """
    if source in SOURCES:
        if config.public_demo() and needs_download(source):
            raise ValueError("this data set is not available in this demo (downloads are up "
                             "to its host); choose the demo set or upload a zip")
        return SOURCES[source].open(seed=seed, on_step=on_step, should_stop=should_stop)
    path = Path(source)
    if path.is_dir():
        return from_folder(path, seed=seed, on_step=on_step)
    if path.is_file() and path.suffix.lower() == ".zip":
        return from_zip(path, seed=seed)
    names = ", ".join(repr(name) for name in SOURCES)
    raise ValueError(f"data={source!r} is not {names}, a folder of class folders, or a .zip "
                     "file")


def reopen(record: dict, changed: str) -> Dataset:
    """Reopen the data set a run or a checkpoint recorded ({"source", "seed",
    "fingerprint"}) with the same seed, and so the same splits.

    Args:
        record: the "data" entry of a run.json or checkpoint state.
        changed: what a change of the files since then breaks, for the message.

    Raises:
        ValueError: the data cannot be read any more, or its files changed since (added,
            removed or edited files reshuffle the splits).
    """
    location = record.get("source", "?")
    try:
        dataset = load_dataset(location, seed=int(record.get("seed", 0)))
    except ValueError as error:
        raise ValueError(f"the data set at {location} cannot be read any more: {error}") from error
    if record.get("fingerprint") and dataset.fingerprint() != record["fingerprint"]:
        raise ValueError(f"the files at {location!r} changed since {changed}")
    return dataset
