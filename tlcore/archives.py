"""Extract uploaded zip archives without trusting them.

Refused: entries that would land outside the target (`../`, absolute paths, drive letters),
symbolic links, more than MAX_FILES entries, more than MAX_TOTAL_BYTES uncompressed, and
entries that expand more than MAX_RATIO times (zip bombs). Sizes are enforced while
streaming, not read from the (forgeable) header alone.
"""
from __future__ import annotations

import errno
import io
import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tlcore.config import StepCallback

MAX_FILES = 100_000
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_RATIO = 200
CHUNK = 1024 * 1024


class ArchiveError(ValueError):
    """An archive that is unsafe, oversized or not a zip; the message says which."""


def extract_zip(data: bytes | Path, target: Path, *, max_files: int = MAX_FILES,
                max_total_bytes: int = MAX_TOTAL_BYTES,
                on_step: StepCallback | None = None) -> list[Path]:
    """Extract a zip archive's regular files into `target`.

    Args:
        data: the archive's bytes, or its path (large archives are read from disk).
        target: an existing empty folder.
        max_files: refuse archives with more entries.
        max_total_bytes: refuse archives that expand to more bytes.
        on_step: `on_step(entries_done, entries_total, {"phase": "unpacking"})` after each
            entry (folders included).

    Returns:
        The extracted file paths.

    Raises:
        ArchiveError: not a zip, or unsafe (see module docstring).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except zipfile.BadZipFile as error:
        raise ArchiveError("not a zip archive (another kind of file, renamed?)") from error
    with archive:
        members = archive.infolist()
        if len(members) > max_files:
            raise ArchiveError(f"the archive has {len(members):,} entries; at most "
                               f"{max_files:,} are allowed")
        written: list[Path] = []
        total = 0
        for number, member in enumerate(members, start=1):
            if on_step is not None:
                on_step(number - 1, len(members), {"phase": "unpacking"})
            relative = _safe_relative_path(member)
            if relative is None:
                continue
            destination = target.joinpath(*relative.parts)
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                total += _copy_member(archive, member, destination, max_total_bytes - total)
            except ArchiveError:
                raise
            # Encrypted entries (RuntimeError), unknown compression (NotImplementedError),
            # bad CRCs or cut-off data (BadZipFile, EOFError, zlib.error), and names the
            # file system refuses (OSError: too long, a file where a folder must go).
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, EOFError,
                    zlib.error, OSError) as error:
                raise ArchiveError(f"cannot extract {member.filename!r}: "
                                   f"{_plain_reason(error)}") from error
            written.append(destination)
        if on_step is not None:
            on_step(len(members), len(members), {"phase": "unpacking"})
        return written


def _plain_reason(error: Exception) -> str:
    """Why an entry could not be extracted, in words (no errno, no server path)."""
    if isinstance(error, (FileExistsError, NotADirectoryError, IsADirectoryError)):
        return "the archive holds a file and a folder of the same name"
    if isinstance(error, OSError) and error.errno == errno.ENAMETOOLONG:
        return "its name is too long for this server's file system"
    if isinstance(error, RuntimeError) and "encrypted" in str(error):
        return "it is encrypted (a zip with a password cannot be read here)"
    if isinstance(error, NotImplementedError):
        return "it is compressed with a method this app cannot read (use plain zip)"
    if isinstance(error, OSError):
        return f"the server could not write it ({error.strerror or 'a file system error'})"
    return "it is damaged (its data is cut short or fails its checksum)"


def expanded_size(data: bytes | Path) -> int:
    """The bytes a zip's entries declare (its directory, nothing extracted); 0 for a file
    that is not a zip (extraction then refuses it with the reason)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return 0


def _safe_relative_path(member: zipfile.ZipInfo) -> PurePosixPath | None:
    """Return the member's path inside the target, None for folders; refuse anything unsafe."""
    name = member.filename.replace("\\", "/")
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveError(f"the archive holds a symbolic link ({member.filename!r}); refused")
    path = PurePosixPath(name)
    if (path.is_absolute() or (path.parts and re.match(r"[A-Za-z]:", path.parts[0]))
            or ".." in path.parts):
        raise ArchiveError(f"the archive entry {member.filename!r} points outside the "
                           "extraction folder; refused")
    if member.is_dir() or not path.parts:
        return None
    return path


def _copy_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path,
                 budget: int) -> int:
    """Stream one member to disk, stopping at the byte budget or a bomb-like ratio."""
    limit = min(budget, max(member.compress_size, 1) * MAX_RATIO)
    written = 0
    with archive.open(member) as source, open(destination, "wb") as sink:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > limit:
                sink.close()
                destination.unlink(missing_ok=True)
                reason = ("the archive expands to more than the allowed total size"
                          if written > budget else
                          f"{member.filename!r} expands more than {MAX_RATIO}x (a zip bomb?)")
                raise ArchiveError(f"{reason}; refused")
            sink.write(chunk)
    return written
