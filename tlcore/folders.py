"""A `Dataset` read from files: a folder of class folders, or a zip of one.

A `Dataset` is class names, a list of image files with labels, the files that were skipped
(and why), and seeded stratified train/validation/test splits. Unreadable files are listed,
never fatal. Every data source builds on this module (the demo set and the downloaded sets
are folders too); `data` is the table of sources that opens one by name.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from tlcore import archives, atomic, config, images
from tlcore.config import StepCallback

SPLIT_NAMES = ("train", "validation", "test")
NAME_FILE = ".tlcore-name"  # beside an extracted zip's files: the name it was uploaded as
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


@dataclasses.dataclass(frozen=True)
class SkippedFile:
    """A file that is not part of the data set, and why."""

    path: str
    reason: str


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled image files with fixed splits.

    Attributes:
        name: for people.
        class_names: sorted class names; label i is class_names[i].
        paths: image files, one per example.
        labels: int array, one label per path.
        splits: "train"/"validation"/"test" -> int array of indices into paths.
        skipped: files that were left out, with the reason.
        native_size: the side the images were made at (the demo set), or None.
        synthetic: True for generated data, so the UI can say so.
        source: how to open it again with `data.load_dataset` (a name in `data.SOURCES`,
            such as "demo", or a folder path).
    """

    name: str
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    skipped: tuple[SkippedFile, ...] = ()
    native_size: int | None = None
    synthetic: bool = False
    source: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def class_counts(self) -> dict[str, int]:
        """Return the number of images per class."""
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return dict(zip(self.class_names, counts.tolist()))

    def split_sizes(self) -> dict[str, int]:
        """Return the number of images in each split."""
        return {name: len(indices) for name, indices in self.splits.items()}

    def fingerprint(self) -> str:
        """Return a short hash of the files (path, size, modification time) and labels.

        Computed once per Dataset (a stat of every file): it describes the files as they
        were read, like the paths and labels it is kept with.
        """
        return self._fingerprint

    @functools.cached_property
    def _fingerprint(self) -> str:
        digest = hashlib.sha256("\n".join(self.class_names).encode())
        for path, label in zip(self.paths, self.labels.tolist()):
            stat = os.stat(path)
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{label}\n".encode())
        return digest.hexdigest()[:16]

    def sample_paths(self, per_class: int) -> dict[str, list[str]]:
        """Return up to `per_class` training-split files of each class, for a preview."""
        train = set(self.splits["train"].tolist())
        samples: dict[str, list[str]] = {name: [] for name in self.class_names}
        for index, (path, label) in enumerate(zip(self.paths, self.labels.tolist())):
            bucket = samples[self.class_names[label]]
            if index in train and len(bucket) < per_class:
                bucket.append(path)
        return samples

    def split_arrays(self, split: str, size: int, limit: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Load one split's images, resized to a square side, with their labels.

        Args:
            split: "train", "validation" or "test".
            size: the square side.
            limit: load only the split's first `limit` images.

        Returns:
            (images uint8 (N, size, size, 3), labels int32 (N,)).
        """
        if split not in self.splits:
            raise ValueError(f"split={split!r} is not one of {SPLIT_NAMES}")
        indices = self.splits[split][:limit]
        return (load_images([self.paths[i] for i in indices], size),
                self.labels[indices].astype(np.int32))


def relative_name(path: str, dataset: Dataset) -> str:
    """A file's name inside its data set (e.g. `cats/1.png`), for showing to people who
    need not know where the server keeps it; the name itself when it lies elsewhere."""
    roots = [Path(dataset.source)] if dataset.source not in ("", "demo") else []
    roots += [Path(item).parent.parent for item in dataset.paths[:1]]
    for root in roots:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            continue
    return Path(path).name


def stratified_splits(labels: np.ndarray, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Split example indices per class into train/validation/test, seeded.

    Every class keeps at least one training example; validation and test take their share
    (rounded) of what remains, so a class with one image lands in train only.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions={fractions} must be non-negative and sum to 1")
    random = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for label in np.unique(labels):
        members = random.permutation(np.flatnonzero(labels == label))
        count = len(members)
        test = min(int(round(count * fractions[2])), max(count - 1, 0))
        validation = min(int(round(count * fractions[1])), count - 1 - test)
        parts["test"].append(members[:test])
        parts["validation"].append(members[test:test + validation])
        parts["train"].append(members[test + validation:])
    return {name: np.sort(np.concatenate(chunks)).astype(np.int64)
            for name, chunks in parts.items()}


def from_folder(folder: str | os.PathLike, *, name: str | None = None, seed: int = 0,
                native_size: int | None = None, synthetic: bool = False,
                on_step: StepCallback | None = None) -> Dataset:
    """Read a folder whose sub-folders are the classes (searched recursively for images).

    Every image is decoded once to find broken ones (remembered in the cache, so reopening
    decodes only new or changed files); `on_step(files_done, files_total, {"phase": ...})`
    reports that check's progress.

    Raises:
        ValueError: the folder is missing, or fewer than two classes have a readable image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"data folder {str(root)!r} does not exist or is not a folder")
    class_folders = sorted(p for p in root.iterdir() if p.is_dir() and not hidden(p.name))
    config.check_limit("classes", len(class_folders), "class folders")
    verdicts = _load_verdicts(root)
    tick = _progress(class_folders, on_step)
    paths: list[str] = []
    labels: list[int] = []
    # Images beside the class folders have no class: say so (a README there is normal).
    skipped = [SkippedFile(str(path), "not inside a class folder")
               for path in sorted(root.iterdir()) if not path.is_dir() and not hidden(path.name)
               and path.suffix.lower() in images.IMAGE_EXTENSIONS]
    class_names: list[str] = []
    for class_folder in class_folders:
        good, bad = _scan_class_folder(class_folder, verdicts, tick)
        skipped.extend(bad)
        if not good:
            skipped.append(SkippedFile(str(class_folder), "class folder has no readable image"))
            continue
        labels.extend([len(class_names)] * len(good))
        class_names.append(class_folder.name)
        paths.extend(good)
    seen = set(paths) | {item.path for item in skipped}
    _store_verdicts(root, {path: verdict for path, verdict in verdicts.items() if path in seen})
    if len(class_names) < 2:
        found = ", ".join(class_names) or "none"
        raise ValueError(
            f"{name or _uploaded_name(root) or root.name} has {len(class_names)} class "
            f"folder(s) with readable images (found: {found}); a classifier needs at least "
            "two: put each class's images in its own sub-folder, e.g. cats/ and dogs/")
    label_array = np.asarray(labels, dtype=np.int64)
    return Dataset(name=name or _uploaded_name(root) or root.name,
                   class_names=tuple(class_names), paths=tuple(paths),
                   labels=label_array, splits=stratified_splits(label_array, seed=seed),
                   skipped=tuple(skipped), native_size=native_size, synthetic=synthetic,
                   source=str(root.resolve()))


def hidden(name: str) -> bool:
    """A file or folder name every reader skips: hidden ones (".*") and macOS's zip
    leftovers ("__MACOSX")."""
    return name.startswith((".", "__MACOSX"))


def _progress(class_folders: list[Path], on_step: StepCallback | None
              ) -> Callable[[int], None]:
    """Return tick(n): n more files checked, reported to `on_step` against the file count."""
    if on_step is None:
        return lambda files: None
    total = sum(1 for folder in class_folders for path in folder.rglob("*")
                if not path.is_dir()
                and not any(hidden(part) for part in path.relative_to(folder).parts))
    done = 0

    def tick(files: int) -> None:
        nonlocal done
        done += files
        on_step(done, total, {"phase": "checking images"})

    return tick


def _scan_class_folder(folder: Path, verdicts: dict[str, list],
                       tick: Callable[[int], None] = lambda files: None
                       ) -> tuple[list[str], list[SkippedFile]]:
    """Sort a class folder's files into readable images and skipped files.

    `verdicts` maps a path to [size, mtime_ns, reason or None] from earlier scans; files
    whose size and time are unchanged are not decoded again, and new verdicts are added.
    `tick(n)` is called as files are checked.
    """
    candidates: list[Path] = []
    bad: list[SkippedFile] = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() or any(hidden(part) for part in path.relative_to(folder).parts):
            continue
        if path.is_symlink():
            bad.append(SkippedFile(str(path), "symbolic link"))
        elif path.suffix.lower() not in images.IMAGE_EXTENSIONS:
            bad.append(SkippedFile(str(path), f"not an image file type ({path.suffix or 'none'})"))
        elif path.stat().st_size == 0:
            bad.append(SkippedFile(str(path), "empty file"))
        else:
            candidates.append(path)
    stamps = {str(path): [path.stat().st_size, path.stat().st_mtime_ns] for path in candidates}
    unknown = [path for path in candidates if verdicts.get(str(path), [None, None])[:2]
               != stamps[str(path)]]
    tick(len(bad) + len(candidates) - len(unknown))
    with concurrent.futures.ThreadPoolExecutor(max_workers=_decoders()) as pool:
        for path, reason in zip(unknown, pool.map(_unreadable_reason, unknown)):
            verdicts[str(path)] = [*stamps[str(path)], reason]
            tick(1)
    good: list[str] = []
    for path in candidates:
        reason = verdicts[str(path)][2]
        if reason:
            bad.append(SkippedFile(str(path), reason))
        else:
            good.append(str(path))
    return good, bad


def _verdicts_path(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return config.cache_dir() / "scans" / f"{key}.json"


def _load_verdicts(root: Path) -> dict[str, list]:
    """Earlier scans of this folder (decoding 25,000 photos takes minutes; reopening should
    not), or an empty dict."""
    try:
        return json.loads(_verdicts_path(root).read_text())
    except (OSError, ValueError):
        return {}


def _store_verdicts(root: Path, verdicts: dict[str, list]) -> None:
    path = _verdicts_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_file(path, json.dumps(verdicts).encode())


def _decoders() -> int:
    """Images decoded at once: each thread holds one full-size decoded image (up to the
    pixel limit), so a demo decodes fewer (`Limits.compute_threads`)."""
    return config.limits().compute_threads or 4


def _unreadable_reason(path: Path) -> str | None:
    """Decode the whole file the way training will (a truncated JPEG passes a header
    check; an EXIF or colour-mode error shows only in the conversion); return why it fails."""
    try:
        images.load_image(path, reduce_to=images.CHECK_SIDE)
    except images.ImageError as error:  # Pillow may quote the path too: the name will do
        return str(error).removeprefix(f"{path}: ").replace(str(path), path.name)
    return None


def from_zip(archive: str | os.PathLike | bytes, *, name: str | None = None,
             seed: int = 0, into: Path | None = None,
             on_step: StepCallback | None = None) -> Dataset:
    """Extract a zip of class folders safely and read it like a folder.

    The archive may hold the class folders at its top or inside one top-level folder. It
    is extracted into a staging folder (files, bytes and declared pixels are checked
    there, against `config.limits()`), renamed to `<into>/<hash of the zip>` and read
    (classes, readable images); a zip refused at any step leaves nothing behind.

    Args:
        archive: the zip's bytes (an upload) or its path (a zip on this server).
        name: the data set's name (an upload's file name), kept beside its files so that
            opening the folder again finds it; None takes the zip's file name (bytes:
            "upload-" and a hash).
        seed: seed of the split.
        into: the folder that keeps extracted zips; None: `uploads_folder()`.
        on_step: progress of unpacking (`archives.extract_zip`), then of checking the
            images, as in `from_folder`.

    Raises:
        archives.ArchiveError: unsafe or oversized archive.
        config.LimitError: over a limit (upload size, pixels, classes).
        ValueError: fewer than two classes with a readable image.
    """
    if isinstance(archive, bytes):  # an upload (a zip on disk is the server's own)
        config.check_upload(len(archive), "the zip")
    content = archive if isinstance(archive, bytes) else Path(archive).read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:16]
    target = Path(into or uploads_folder()) / digest
    default_name = Path(archive).stem if not isinstance(archive, bytes) else f"upload-{digest[:8]}"
    if target.is_dir():  # extracted before: it takes this upload's name (its folder is a hash)
        kept = _uploaded_name(target)
        if kept is None or (name is not None and name[:200] != kept):
            atomic.write_file(target / NAME_FILE, (name or default_name).encode())
        return from_folder(_class_root(target), name=name or kept or default_name, seed=seed)
    limits = config.limits()
    with atomic.staged_folder(target) as staging:  # the same zip twice: one copy stays
        archives.extract_zip(content, staging, max_files=limits.archive_files,
                             max_total_bytes=limits.extracted_mb * 2**20, on_step=on_step)
        _check_declared_pixels(staging)
        (staging / NAME_FILE).write_text(name or default_name)
    root = _class_root(target)
    try:
        return from_folder(root, name=name or default_name, seed=seed, on_step=on_step)
    except ValueError:  # one class, no readable image, too many classes: keep nothing
        _verdicts_path(root).unlink(missing_ok=True)  # its scan goes too
        shutil.rmtree(target, ignore_errors=True)
        raise


def uploads_folder() -> Path:
    """Where `from_zip` extracts zips by default (the server's own, not a demo visitor's)."""
    return config.cache_dir() / "uploads"


def extracted_zips(folder: Path) -> dict[str, str]:
    """The zips extracted into `folder` by `from_zip`, newest first: {source: name}."""
    if not folder.is_dir():
        return {}
    found = sorted((entry for entry in folder.iterdir() if (entry / NAME_FILE).is_file()),
                   key=lambda entry: entry.stat().st_mtime, reverse=True)
    return {str(_class_root(entry).resolve()): (entry / NAME_FILE).read_text()[:200]
            for entry in found}


def _uploaded_name(root: Path) -> str | None:
    """The name a zip was uploaded as, when `root` is (inside) its extracted folder."""
    for folder in (root, root.parent):
        try:
            return (folder / NAME_FILE).read_text()[:200] or None
        except OSError:
            continue
    return None


def _class_root(folder: Path) -> Path:
    """The folder holding the class folders: `folder`, or its only sub-folder."""
    entries = [p for p in folder.iterdir() if not hidden(p.name)]
    if len(entries) == 1 and entries[0].is_dir() and any(
            p.is_dir() and not hidden(p.name) for p in entries[0].iterdir()):
        return entries[0]
    return folder


def _check_declared_pixels(folder: Path) -> None:
    """Refuse a folder whose images declare more pixels in all than the limit
    `archive_megapixels` (read from their headers: a few bytes each, nothing decoded)."""
    limit = config.limits().archive_megapixels
    if limit is None:
        return
    total = 0
    for path in folder.rglob("*"):
        if path.suffix.lower() in images.IMAGE_EXTENSIONS and path.is_file():
            try:
                width, height = images.declared_size(path)
            except images.ImageError:
                continue  # the scan reports it
            total += width * height
            if total > limit * 1e6:
                break
    config.check_limit("archive_megapixels", round(total / 1e6, 1),
                       "the images of the zip (megapixels in all)")


def load_images(paths: list[str], size: int, workers: int | None = None) -> np.ndarray:
    """Decode files into one uint8 batch (N, size, size, 3), in parallel threads (None:
    `Limits.compute_threads`, else 4; each holds one full-size decoded image).

    Raises:
        images.ImageError: a file fails to decode (callers scan files first; see from_folder).
    """
    batch = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or _decoders()) as pool:
        for index, image in enumerate(pool.map(lambda p: images.load_image(p, size), paths)):
            batch[index] = image
    return batch
