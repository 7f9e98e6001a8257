"""Cats vs Dogs from the Microsoft PetImages archive, the one the lesson trains on.

`kagglecatsanddogs_5340.zip` (25,000 photos, 787 MB) is downloaded once with progress and
resume, checked against its published size and SHA-256, and extracted safely into the
cache. Its unreadable files (zero-byte files, truncated JPEGs, `Thumbs.db`) are skipped
and listed like in any folder: the lesson's TensorFlow notebook removes 231 of them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from tlcore import archives, atomic, config, downloads, folders
from tlcore.config import StepCallback

URL = ("https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
       "kagglecatsanddogs_5340.zip")
ARCHIVE = "kagglecatsanddogs_5340.zip"
SIZE = 824_887_076  # as published in TFDS's url_checksums for cats_vs_dogs
SHA256 = "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"
NAME = "Cats vs Dogs (Microsoft PetImages, as in the lesson)"


def is_ready() -> bool:
    """True when the archive is already extracted here (opening it downloads nothing)."""
    return (config.cache_dir() / "petimages" / "PetImages").is_dir()


def petimages_dataset(seed: int = 0, on_step: StepCallback | None = None,
                      should_stop: Callable[[], bool] | None = None) -> folders.Dataset:
    """Download (once), extract (once) and open PetImages as a Cat/Dog data set.

    Raises:
        downloads.DownloadError: no network and no archive placed by hand; the message
            names the file and where to put it.
    """
    folder = config.cache_dir() / "petimages"
    if not is_ready():
        archive = downloads.download(URL, config.cache_dir() / "downloads" / ARCHIVE,
                                     expected_size=SIZE, sha256=SHA256, on_step=on_step,
                                     should_stop=should_stop)
        if on_step is not None:
            on_step(0, 0, {"phase": "extracting"})
        _extract(archive, folder)
    dataset = folders.from_folder(folder / "PetImages", name=NAME, seed=seed, on_step=on_step)
    return dataclasses.replace(dataset, source="petimages")


def _extract(archive: Path, folder: Path) -> None:
    """Extract into a staging folder renamed into place: never a half-extracted set."""
    with atomic.staged_folder(folder, replace_existing=True) as staging:
        archives.extract_zip(archive, staging)
