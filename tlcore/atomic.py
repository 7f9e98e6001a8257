"""Write files and folders so that readers see the old state or the new one, never half.

Everything is written under a temporary name in the same folder and renamed into place in
one step: a crash, a kill or a concurrent reader never meets a half-written file, run,
cache entry or extracted data set.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

# Every temporary name starts with this, so leftovers of a killed process can be found.
TEMPORARY_PREFIX = ".tmp-"
# The process's umask, read once: temporary files and folders are made private (0600,
# 0700) and get, once renamed into place, the permissions an ordinary `open` or `mkdir`
# would give them (a served SavedModel or a shared runs folder must stay readable).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_file(path: Path, data: bytes) -> None:
    """Write bytes to `path` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    handle, temporary = temporary_file(path.parent, path.name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged_folder(target: Path, *, replace_existing: bool = False,
                  exist_ok: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; when the block ends well, it becomes
    `target` in one rename, and when it fails it is removed.

    Args:
        target: the folder to create.
        replace_existing: what to do if `target` appeared meanwhile (another visitor or
            process made it): True replaces it, False keeps it and discards this copy
            (right when both are the same thing, such as one upload or the demo set).
        exist_ok: with replace_existing False, whether an existing `target` is fine
            (False: FileExistsError, for things that must never be confused, like runs).

    Raises:
        FileExistsError: `target` exists and neither replace_existing nor exist_ok.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent,
                                    prefix=f"{TEMPORARY_PREFIX}staging-{target.name}-"))
    os.chmod(staging, 0o777 & ~_UMASK)
    try:
        yield staging
        if target.exists() and replace_existing:
            # Out of the way in one rename, removed only once the new one is in place: a
            # kill in between leaves the old folder (as a temporary the sweep removes).
            retired = Path(tempfile.mkdtemp(dir=target.parent,
                                            prefix=f"{TEMPORARY_PREFIX}old-{target.name}-"))
            os.replace(target, retired / target.name)
            try:
                os.replace(staging, target)
            except BaseException:
                try:
                    os.replace(retired / target.name, target)  # put the old one back
                    shutil.rmtree(retired, ignore_errors=True)
                except OSError:
                    pass  # another writer's folder is there now: keep the old one aside
                raise
            shutil.rmtree(retired, ignore_errors=True)
            return
        if target.exists() and not exist_ok:
            raise FileExistsError(f"{target.name} exists already; nothing was replaced")
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            if not exist_ok:
                raise FileExistsError(f"{target.name} exists already; nothing was replaced")
            shutil.rmtree(staging, ignore_errors=True)  # another writer finished first
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def temporary_file(folder: Path, name: str) -> tuple[int, str]:
    """Create an empty temporary file for `name` in `folder` with the permissions of an
    ordinary new file (the umask's, not mkstemp's 0600); return (descriptor, path)."""
    handle, path = tempfile.mkstemp(dir=folder, prefix=f"{TEMPORARY_PREFIX}{name}.")
    os.fchmod(handle, 0o666 & ~_UMASK)
    return handle, path


def sweep(root: Path, older_than_seconds: float = 3600.0) -> list[Path]:
    """Remove temporaries under `root` that a killed process left behind; return them.

    Only names starting with TEMPORARY_PREFIX that have not changed for
    `older_than_seconds` go: for a folder, nothing anywhere inside it changed (a live
    writer, such as an extraction, adds files to it far more often).
    """
    removed: list[Path] = []
    now = time.time()
    for folder, subfolders, files in os.walk(root):
        for name in [*subfolders, *files]:
            path = Path(folder) / name
            try:
                if (not name.startswith(TEMPORARY_PREFIX)
                        or now - last_change(path) < older_than_seconds):
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError:
                continue  # gone already, or not ours to remove
            removed.append(path)
        subfolders[:] = [name for name in subfolders if not name.startswith(TEMPORARY_PREFIX)]
    return removed


def last_change(path: Path) -> float:
    """The newest modification time of a file, or of a folder and everything in it."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for folder, _, files in os.walk(path):
            for name in [".", *files]:
                try:
                    newest = max(newest, (Path(folder) / name).lstat().st_mtime)
                except OSError:
                    continue
    return newest
