"""Who made what in a public demo: visitors' tokens, their folders, disk quotas and expiry.

A visitor is an unguessable token (128 random bits) that the app keeps in the browser's
address (`?visitor=...`), so a reload of the same page is the same visitor. The server
never stores the token itself: runs and folders carry the visitor's *owner id*, a hash of
the token, so reading the disk does not let anyone act as a visitor, and no id can be
guessed from another.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path

from tlcore import atomic, config

TOKEN_BYTES = 16  # 128 bits
_TOKEN = re.compile(r"[0-9a-f]{32}")
_OWNER = re.compile(r"[0-9a-f]{24}")
CHOICE_FILE = "data_choice.txt"  # in a visitor's folder: the data set they chose last


def new_token() -> str:
    """Return a new visitor token: 32 hex digits from the system's secure generator."""
    return secrets.token_hex(TOKEN_BYTES)


def is_token(value: object) -> bool:
    """True when `value` has the form of a token (anything else is never trusted)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def owner_id(token: str) -> str:
    """Return the id stored with a visitor's work: a hash of the token (24 hex digits).

    Raises:
        ValueError: `token` is not a token.
    """
    if not is_token(token):
        raise ValueError("a visitor token is 32 hexadecimal digits")
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def root() -> Path:
    """The folder that holds every visitor's folder."""
    return config.tlcore_home() / "visitors"


def folder(owner: str) -> Path:
    """The folder of one visitor's uploads and extracted data sets.

    Raises:
        ValueError: `owner` is not an owner id (so it can never name another folder).
    """
    if _OWNER.fullmatch(owner or "") is None:
        raise ValueError("an owner id is 24 hexadecimal digits")
    return root() / owner


def uploads_folder(owner: str) -> Path:
    """Where a visitor's uploaded zips are extracted."""
    return folder(owner) / "uploads"


def owns_source(owner: str, source: str) -> bool:
    """True when a visitor may train on or open `source`: a built-in set, or a folder
    inside the visitor's own folder (never another visitor's, never a server path)."""
    from tlcore import data  # data reads files; imported late, it imports archives etc.

    if source == "demo" or source in data.DOWNLOADED_SOURCES:
        return True
    try:
        Path(source).resolve().relative_to(folder(owner).resolve())
    except ValueError:
        return False
    return True


def remember_source(owner: str, source: str) -> None:
    """Keep the data set a visitor chose, so that their link opens it again: a reload is a
    new session, and its session state starts empty."""
    path = folder(owner) / CHOICE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_file(path, source.encode())


def remembered_source(owner: str) -> str | None:
    """The data set a visitor chose last, while it is theirs and still there; else None."""
    try:
        source = (folder(owner) / CHOICE_FILE).read_text()
    except (OSError, ValueError):
        return None
    from tlcore import data  # as in owns_source

    if source == "demo" or source in data.DOWNLOADED_SOURCES:
        return source
    return source if owns_source(owner, source) and Path(source).is_dir() else None


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 when it does not exist); links are not followed,
    and a file hard-linked several times (a built data set's versions) counts once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for root, _, files in os.walk(path):
        for name in files:
            try:
                status = (Path(root) / name).lstat()
            except OSError:
                continue
            if status.st_nlink > 1:
                if (status.st_dev, status.st_ino) in seen:
                    continue
                seen.add((status.st_dev, status.st_ino))
            total += status.st_size
    return total


def usage_bytes(owner: str | None = None) -> int:
    """Disk used by one visitor (uploads and runs), or by all visitors when owner is None."""
    from tlcore import runs  # runs loads models; imported late to keep this module light

    return _usage(runs.list_runs(), owner)


def _usage(all_runs: list, owner: str | None) -> int:
    """`usage_bytes` over runs already listed."""
    made = [run for run in all_runs if run.info.get("public_demo")
            and (owner is None or run.owner == owner)]
    uploads = folder_bytes(root() if owner is None else folder(owner))
    return uploads + sum(folder_bytes(run.run_dir) for run in made)


def check_disk(owner: str, incoming_bytes: int = 0) -> None:
    """Refuse new work when it would take a visitor, or all visitors, over their quota.

    Args:
        owner: the visitor.
        incoming_bytes: what the new work will write (e.g. an archive's extracted size).

    Raises:
        config.LimitError: over `visitor_disk_mb` or `total_disk_mb`.
    """
    from tlcore import runs

    limits = config.limits()
    if limits.visitor_disk_mb is None and limits.total_disk_mb is None:
        return
    all_runs = runs.list_runs()  # read once for both quotas
    where = "this public demo" if config.public_demo() else "this server"
    if limits.visitor_disk_mb is not None:
        mine = _mb(_usage(all_runs, owner) + incoming_bytes)
        if mine > limits.visitor_disk_mb:
            raise config.LimitError(
                f"your uploads and runs would take {mine:,.1f} MB of disk; {where} allows "
                f"{limits.visitor_disk_mb:,} MB per visitor. Delete a run on the Runs page.")
    if limits.total_disk_mb is not None:
        everyone = _mb(_usage(all_runs, None) + incoming_bytes)
        if everyone > limits.total_disk_mb:
            raise config.LimitError(
                f"all visitors' uploads and runs would take {everyone:,.1f} MB of disk; "
                f"{where} allows {limits.total_disk_mb:,} MB. Try again later.")


def _mb(size: int) -> float:
    return round(size / 2**20, 1)


def sweep(max_age_hours: float | None = None) -> list[str]:
    """Remove visitors' folders in which nothing changed for `max_age_hours`; return the
    owner ids. The age defaults to `config.limits().visitor_run_hours` (None: keep)."""
    if max_age_hours is None:
        max_age_hours = config.limits().visitor_run_hours
        if max_age_hours is None:
            return []
    if not root().is_dir():
        return []
    cutoff = (datetime.datetime.now() - datetime.timedelta(hours=max_age_hours)).timestamp()
    removed = []
    for owner_folder in root().iterdir():
        try:
            if owner_folder.is_dir() and atomic.last_change(owner_folder) < cutoff:
                shutil.rmtree(owner_folder)
                removed.append(owner_folder.name)
        except OSError:
            continue  # in use, or another sweep took it first
    return removed
