"""Data sets built in the browser: class folders under $TLCORE_HOME with immutable versions.

Layout, under `home(owner)` ($TLCORE_HOME/datasets, or a public-demo visitor's own folder,
so inside their disk quota):

    <name>/v0001/<class>/<id>.png   a saved version: never changed, only removed whole
    <name>/v0002/...                the next one; files it shares with v0001 are hard links
    <name>/.draft/<class>/...       the unsaved changes, only while there are some
    <name>/.origin.json             the data it was copied from (the Evaluate page finds it)

A version is a folder of class folders, so `data.load_dataset` opens it like any folder and
a run records its path and fingerprint: an edit makes a new version and the run's stays as
it was. Files are only ever added, linked, renamed or unlinked, never written over, so a
hard link never carries a change into an older version. Every image is decoded and checked
on the way in (`images.load_image`), bounded to STORED_SIDE and written again under a name
made from its content (never the uploaded name).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import time
import unicodedata
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image

from tlcore import atomic, checkpoints, config, folders, images, runs, visitors
from tlcore.config import StepCallback
from tlcore.folders import NAME_FILE, Dataset, SkippedFile

STORED_SIDE = 512  # the longest side kept: above every usual input size, a few dozen kB
NAME_LENGTH = 60
DRAFT = ".draft"
ORIGIN_FILE = ".origin.json"
# An unused older version stays this long after its successor: a training may have opened
# it and not yet written the checkpoint that records its source.
KEEP_SECONDS = 3600.0
_VERSION = re.compile(r"v(\d{4,})")
_STORED = re.compile(r"([0-9a-f]{16})\.(png|jpg)")
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # Unicode categories refused in names
_SAVE_ATTEMPTS = 5


def home(owner: str | None) -> Path:
    """The folder of built data sets: a public-demo visitor's own, else the server's."""
    return (config.tlcore_home() if owner is None else visitors.folder(owner)) / "datasets"


def check_name(name: str, what: str = "class name") -> str:
    """Return a class or data-set name without surrounding spaces and in one Unicode form
    (NFC: "é" typed as one character or as "e" and an accent is one name), or refuse it.

    Raises:
        ValueError: empty, longer than NAME_LENGTH, holding a slash, a backslash, a control
            character or an invisible one (a zero-width space, a right-to-left override:
            two classes would look alike, or a name would read backwards), or starting with
            a dot (a hidden folder is never read).
    """
    name = unicodedata.normalize("NFC", str(name)).strip()
    if not name:
        raise ValueError(f"a {what} cannot be empty")
    invisible = sorted({f"U+{ord(char):04X}" for char in name
                        if unicodedata.category(char) in _INVISIBLE})
    if invisible:
        raise ValueError(f"the {what} holds invisible or direction-changing characters "
                         f"({', '.join(invisible)}): type it again without them")
    if len(name) > NAME_LENGTH:
        raise ValueError(f"the {what} {name[:20]!r}... is {len(name)} characters long; at "
                         f"most {NAME_LENGTH} are allowed")
    if _UNSAFE.search(name) or folders.hidden(name):
        raise ValueError(f"the {what} {name!r} cannot start with a dot or hold a slash, a "
                         "backslash or a control character")
    return name


def encode(content: bytes) -> tuple[str, bytes]:
    """Check an image file and return (stored file name, stored bytes).

    The name is a hash of `content`, so the same file added twice is one image. JPEGs stay
    JPEGs (photos), anything else becomes a PNG; the longest side is at most STORED_SIDE.

    Raises:
        images.ImageError: not a readable image, or over the pixel limit.
    """
    pixels = images.load_image(content)
    picture = Image.fromarray(pixels)
    picture.thumbnail((STORED_SIDE, STORED_SIDE), Image.Resampling.LANCZOS)
    with Image.open(io.BytesIO(content)) as original:
        photo = original.format == "JPEG"
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG" if photo else "PNG", quality=92)
    return f"{_digest(content)}.{'jpg' if photo else 'png'}", buffer.getvalue()


def _digest(content: bytes) -> str:
    """The stored name of an image file with these bytes, without its extension."""
    return hashlib.sha256(content).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class BuiltDataset:
    """One data set built in the browser: its versions and its unsaved changes.

    Attributes:
        folder: `home(owner) / name`.
        owner: the public-demo visitor whose quota it counts in (None: the server's).
    """

    folder: Path
    owner: str | None = None

    @property
    def name(self) -> str:
        """Its name, given when it was created."""
        return self.folder.name

    def versions(self) -> list[Path]:
        """The saved versions, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted((entry for entry in self.folder.iterdir()
                       if _VERSION.fullmatch(entry.name) and entry.is_dir()),
                      key=version_number)

    def latest(self) -> Path | None:
        """The newest saved version, or None before the first save."""
        versions = self.versions()
        return versions[-1] if versions else None

    @property
    def draft(self) -> Path:
        """The folder of the unsaved changes (it exists only while there are some)."""
        return self.folder / DRAFT

    def has_changes(self) -> bool:
        """True when the data set differs from its newest version (or has none yet)."""
        if not self.draft.is_dir():
            return False
        latest = self.latest()
        return latest is None or _names(self.draft) != _names(latest)

    def classes(self) -> dict[str, list[Path]]:
        """Class name -> its image files, as the data set is now (unsaved changes included)."""
        return _contents(self.draft if self.draft.is_dir() else self.latest())

    def add_class(self, name: str) -> str:
        """Add an empty class; return its name as kept.

        Raises:
            ValueError: a bad or taken name (letter case aside), or over the class limit.
        """
        name = check_name(name)
        taken = list(self.classes())
        if name.casefold() in (other.casefold() for other in taken):
            raise ValueError(f"there is a class called {name!r} already")
        config.check_limit("classes", len(taken) + 1)
        (self._draft() / name).mkdir(exist_ok=True)
        return name

    def remove_class(self, name: str) -> None:
        """Remove a class and its images from the unsaved changes."""
        _remove_folder(self._class_folder(name))

    def add_images(self, class_name: str, files: Iterable[tuple[str, bytes]],
                   on_step: StepCallback | None = None,
                   should_stop: Callable[[], bool] | None = None
                   ) -> tuple[int, list[SkippedFile]]:
        """Check and add image files (name, content) to a class; `on_step` hears of each.
        A file already in the class (the same bytes) is skipped before it is decoded; once
        `should_stop()` is true the files not yet checked are left as they are (the ones
        added so far stay: adding them all again skips those at once).

        Returns:
            (images added, files refused with the reason). A file already in the class is
            neither added nor refused.

        Raises:
            config.LimitError: more than `added_images` files at once, the data set would
                hold more than `dataset_images`, or the visitor's disk quota would be
                exceeded; nothing is added.
        """
        files = list(files)
        config.check_limit("added_images", len(files))
        folder = self._class_folder(class_name)
        new: dict[str, tuple[str, bytes]] = {}  # {digest: (name, content)}, the first copy
        for name, content in files:
            digest = _digest(content)
            if digest not in new and not any(folder.glob(f"{digest}.*")):
                new[digest] = (name, content)
        self._check_room(len(new), sum(len(content) for _, content in new.values()))
        added, refused = 0, []
        for done, (name, content) in enumerate(new.values()):
            if should_stop is not None and should_stop():
                break
            if on_step is not None:
                on_step(done, len(new), {"phase": "checking images"})
            try:
                config.check_upload(len(content), "the file")
                stored, encoded = encode(content)
            except ValueError as error:  # ImageError and LimitError are ValueErrors
                refused.append(SkippedFile(name, str(error).removeprefix("uploaded image: ")))
                continue
            atomic.write_file(folder / stored, encoded)
            added += 1
        return added, refused

    def remove_images(self, image_ids: Iterable[str]) -> None:
        """Remove images ("class/file name") from the unsaved changes."""
        self._draft()
        for image_id in image_ids:
            self._image_path(self.draft, image_id).unlink(missing_ok=True)

    def move_images(self, image_ids: Iterable[str], class_name: str) -> None:
        """Move images ("class/file") to another class in the unsaved changes."""
        target = self._class_folder(class_name)
        for image_id in image_ids:
            source = self._image_path(self.draft, image_id)
            if source.parent != target and source.exists():
                os.replace(source, target / source.name)

    def start_from(self, dataset: Dataset, on_step: StepCallback | None = None) -> None:
        """Replace the unsaved state by a copy of `dataset`'s images (checked and stored as
        `add_images` does; unreadable ones are left out), and remember where it came from.
        Built all at once beside the draft: a copy stopped half-way changes nothing.

        Raises:
            config.LimitError: too many images or classes, or over the disk quota.
            ValueError: a class name this module refuses.
        """
        self._check_room(len(dataset.paths),
                         sum(os.path.getsize(path) for path in dataset.paths), replace=True)
        config.check_limit("classes", dataset.num_classes)
        names = [check_name(name) for name in dataset.class_names]
        folded: dict[str, str] = {}
        for name in names:
            if (twin := folded.setdefault(name.casefold(), name)) != name:
                raise ValueError(f"the data set has classes {twin!r} and {name!r}: names "
                                 "must differ by more than letter case (merge or rename one)")
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic.staged_folder(self.draft, replace_existing=True) as staging:
            for name in names:
                (staging / name).mkdir()
            for done, (path, label) in enumerate(zip(dataset.paths, dataset.labels.tolist())):
                _store_copy(Path(path), staging / names[label])
                if on_step is not None:
                    on_step(done + 1, len(dataset.paths), {"phase": "copying images"})
        atomic.write_file(self.folder / ORIGIN_FILE, json.dumps(
            {"source": dataset.source, "fingerprint": dataset.fingerprint(),
             "name": dataset.name}).encode())

    def image_count(self) -> int:
        """The images the data set holds now (unsaved changes included)."""
        return sum(len(files) for files in self.classes().values())

    def save(self) -> Path:
        """Make the unsaved changes the next version; return its folder.

        Raises:
            ValueError: fewer than two classes, or a class without images.
        """
        if not self.has_changes():
            latest = self.latest()
            if latest is None:
                raise ValueError("the data set has no classes yet")
            self.discard()
            return latest
        contents = self.classes()
        empty = [name for name, files in contents.items() if not files]
        if len(contents) < 2 or empty:
            raise ValueError(f"{', '.join(repr(name) for name in empty)} "
                             f"{'has' if len(empty) == 1 else 'have'} no images yet: add "
                             "some, or remove the class" if empty else
                             "a classifier needs at least two classes")
        version = self._write_version(lambda latest: contents)
        _remove_folder(self.draft)
        self.prune()
        return version

    def discard(self) -> None:
        """Forget the unsaved changes."""
        _remove_folder(self.draft)

    def revise(self, remove: Iterable[str] = (), move: dict[str, str] | None = None) -> Path:
        """Make a new version straight from the newest one, without some images or with
        some in another class; the unsaved changes, if any, get the same edits.

        Args:
            remove: images ("class/file") to leave out.
            move: image ("class/file") -> the class it goes to.

        Returns:
            The new version's folder.

        Raises:
            ValueError: an image that is not in the newest version, or a class it lacks.
        """
        remove, move = list(remove), dict(move or {})

        def edited(latest: Path | None) -> dict[str, list[Path]]:
            if latest is None:
                raise ValueError(f"{self.name} has no saved version to edit")
            contents = _contents(latest)
            for image_id in [*remove, *move]:
                if not self._image_path(latest, image_id).is_file():
                    raise ValueError(f"{image_id} is not in the newest version (removed or "
                                     "moved already?)")
            for image_id in [*remove, *move]:
                contents[image_id.split("/")[0]].remove(self._image_path(latest, image_id))
            for image_id, class_name in move.items():
                if class_name not in contents:
                    raise ValueError(f"the data set has no class {class_name!r}")
                contents[class_name].append(self._image_path(latest, image_id))
            return contents

        version = self._write_version(edited)
        if self.draft.is_dir():
            self.remove_images(remove)
            for image_id, class_name in move.items():
                self.move_images([image_id], class_name)
        self.prune()
        return version

    def find(self, path: str, class_name: str) -> str | None:
        """The id ("class/file") in the newest version of an image a run read from `path`
        as `class_name`, or None when it is not there (any more).

        The image is known by its stored name: the file's own for a file of a version,
        else the hash of the file a copy was made from (`start_from`).
        """
        latest = self.latest()
        source = Path(path)
        if latest is None or not source.is_file():
            return None
        stem = (source.stem if _STORED.fullmatch(source.name)
                and _VERSION.fullmatch(source.parent.parent.name)
                else _digest(source.read_bytes()))
        found = sorted((latest / class_name).glob(f"{stem}.*"))
        return f"{class_name}/{found[0].name}" if found else None

    def origin(self) -> dict:
        """What the data set was copied from ({"source", "fingerprint", "name"}), or {}."""
        try:
            return json.loads((self.folder / ORIGIN_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def prune(self, keep_seconds: float = KEEP_SECONDS) -> list[Path]:
        """Remove older versions that no run or checkpoint uses and whose successor is
        older than `keep_seconds`; return them. The newest version always stays."""
        versions = self.versions()
        used = _sources_in_use()
        removed = []
        for version, successor in zip(versions, versions[1:]):
            if (str(version.resolve()) in used
                    or time.time() - successor.stat().st_mtime < keep_seconds):
                continue
            _remove_folder(version)
            removed.append(version)
        return removed

    def _draft(self) -> Path:
        """The draft folder, started as a copy (hard links) of the newest version."""
        if not self.draft.is_dir():
            latest = self.latest()
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic.staged_folder(self.draft) as staging:  # another tab's may win
                for name, files in _contents(latest).items():
                    (staging / name).mkdir()
                    for path in files:
                        _link(path, staging / name / path.name)
        return self.draft

    def _class_folder(self, name: str) -> Path:
        folder = self._draft() / name
        if name not in self.classes() or not folder.is_dir():
            raise ValueError(f"the data set has no class {name!r}")
        return folder

    def _image_path(self, root: Path, image_id: str) -> Path:
        """The file of an image id ("class/file") under `root`; refuses any other form."""
        class_name, _, file_name = image_id.partition("/")
        if not _STORED.fullmatch(file_name) or check_name(class_name) != class_name:
            raise ValueError(f"{image_id!r} is not an image of a built data set")
        return root / class_name / file_name

    def _check_room(self, more_images: int, more_bytes: int, replace: bool = False) -> None:
        """Refuse adding images over `dataset_images` or the visitor's disk quota."""
        config.check_limit("dataset_images", (0 if replace else self.image_count())
                           + more_images, "the data set's images")
        if self.owner is not None:
            visitors.check_disk(self.owner, more_bytes)

    def _write_version(self, contents: Callable[[Path | None], dict[str, list[Path]]]) -> Path:
        """Write the next version (hard links to `contents(newest version)`), staged and
        renamed into place; if another writer took the number, again on top of theirs."""
        for _ in range(_SAVE_ATTEMPTS):
            latest = self.latest()
            number = version_number(latest) + 1 if latest else 1
            target = self.folder / f"v{number:04d}"
            try:
                with atomic.staged_folder(target, exist_ok=False) as staging:
                    for name, files in contents(latest).items():
                        (staging / name).mkdir()
                        for path in files:
                            _link(path, staging / name / path.name)
                    (staging / NAME_FILE).write_text(f"{self.name} (version {number})")
                return target
            except FileExistsError:
                continue
        raise ValueError(f"{self.name} is being edited elsewhere; try again")


def version_number(version: Path) -> int:
    """The number of a version folder (v0003 -> 3)."""
    return int(_VERSION.fullmatch(version.name).group(1))


def create(name: str, owner: str | None = None) -> BuiltDataset:
    """Start a new, empty data set.

    Raises:
        ValueError: a bad name, or one taken (letter case aside).
    """
    name = check_name(name, "data set name")
    if name.casefold() in (built.name.casefold() for built in list_built(owner)):
        raise ValueError(f"there is a data set called {name!r} already")
    built = BuiltDataset(home(owner) / name, owner)
    built._draft()
    return built


def list_built(owner: str | None = None) -> list[BuiltDataset]:
    """The built data sets of a visitor (None: the server's), by name."""
    root = home(owner)
    if not root.is_dir():
        return []
    return [BuiltDataset(folder, owner) for folder in sorted(root.iterdir())
            if folder.is_dir() and not folders.hidden(folder.name)]


def of_source(source: str, owner: str | None = None) -> BuiltDataset | None:
    """The built data set of which `source` is a version, or None."""
    path = Path(source)
    if not _VERSION.fullmatch(path.name):
        return None
    for built in list_built(owner):
        if path.parent.resolve() == built.folder.resolve():
            return built
    return None


def copy_of(fingerprint: str, owner: str | None = None) -> BuiltDataset | None:
    """The built data set copied from data with this fingerprint (`start_from`), or None."""
    return next((built for built in list_built(owner)
                 if built.origin().get("fingerprint") == fingerprint), None)


def _contents(root: Path | None) -> dict[str, list[Path]]:
    """Class name -> image files of a version or draft (None: no classes)."""
    if root is None or not root.is_dir():
        return {}
    return {folder.name: sorted(path for path in folder.iterdir() if _STORED.fullmatch(path.name))
            for folder in sorted(root.iterdir())
            if folder.is_dir() and not folders.hidden(folder.name)}


def _names(root: Path) -> dict[str, list[str]]:
    """Class name -> file names of a version or draft: what tells two of them apart."""
    return {name: [path.name for path in files] for name, files in _contents(root).items()}


def _store_copy(path: Path, folder: Path) -> None:
    """Copy one image of another data set into a class folder: a stored file of a version
    is linked as it is, any other file checked and stored (an unreadable one is left out)."""
    if _STORED.fullmatch(path.name) and _VERSION.fullmatch(path.parent.parent.name):
        _link(path, folder / path.name)
        return
    try:
        stored, encoded = encode(path.read_bytes())
    except (OSError, images.ImageError):
        return
    if not (folder / stored).exists():
        atomic.write_file(folder / stored, encoded)


def _link(source: Path, target: Path) -> None:
    """Hard-link a file (a copy where the disk cannot link)."""
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    except OSError:
        shutil.copy2(source, target)


def _remove_folder(folder: Path) -> None:
    """Rename a folder out of sight in one step, then delete it."""
    doomed = folder.with_name(f"{atomic.TEMPORARY_PREFIX}removed-{folder.name}-"
                              f"{secrets.token_hex(3)}")
    try:
        os.replace(folder, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _sources_in_use() -> set[str]:
    """The data folders every run and checkpoint was trained on (resolved)."""
    records = [run.info.get("data", {}) for run in runs.list_runs()]
    folder = config.runs_dir() / checkpoints.FOLDER
    for entry in (folder.iterdir() if folder.is_dir() else []):
        try:
            records.append(checkpoints.load(entry).state.get("data", {}))
        except ValueError:
            continue
    return {str(Path(record["source"]).resolve()) for record in records if record.get("source")}
