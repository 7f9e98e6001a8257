"""Large downloads that show progress, resume after an interruption and verify what came.

Bytes stream into `<target>.partial`; a broken connection keeps them, and the next call asks
the server for the rest (HTTP Range) instead of starting again. Only a file whose size and
SHA-256 match is renamed to `target`, so a present target is always complete.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from tlcore.config import StepCallback

CHUNK = 1024 * 1024
REACHABLE_TTL_S = 60.0  # how long an answer of `reachable` is remembered
_reachable: dict[str, tuple[float, bool]] = {}


class DownloadError(ValueError):
    """A download that failed or arrived damaged; the message says what to do by hand."""


def download(url: str, target: Path, *, expected_size: int | None = None,
             sha256: str | None = None, on_step: StepCallback | None = None,
             should_stop: Callable[[], bool] | None = None, timeout: float = 30.0) -> Path:
    """Fetch `url` into `target` once, resuming a partial download.

    Args:
        url: http(s) address.
        target: where the complete file goes.
        expected_size: bytes the file must have, or None.
        sha256: hex digest the file must have, or None.
        on_step: called as on_step(bytes_done, bytes_total, {"phase": "downloading"}).
        should_stop: polled between chunks; True stops, keeping the partial file.
        timeout: seconds to wait for the server.

    Returns:
        `target`.

    Raises:
        DownloadError: no connection, a server error, a cancel, or a size or checksum
            mismatch (the damaged file is deleted).
    """
    target = Path(target)
    if target.is_file() and (expected_size is None or target.stat().st_size == expected_size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    done = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if done and response.status != 206:  # the server ignored Range: start again
                done = 0
            total = expected_size or (done + int(response.headers.get("Content-Length", 0)))
            with open(partial, "ab" if done else "wb") as sink:
                while chunk := response.read(CHUNK):
                    sink.write(chunk)
                    done += len(chunk)
                    if on_step is not None:
                        on_step(done, total, {"phase": "downloading"})
                    if should_stop is not None and should_stop():
                        raise DownloadError(f"download of {target.name} cancelled at {done:,} "
                                            "bytes; the next attempt resumes from there")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise DownloadError(
            f"could not download {url} ({type(error).__name__}: {str(error)[:120]}). "
            f"{done:,} bytes are kept and the next attempt resumes. Without a network, "
            f"download it elsewhere and put it at {target}.") from error
    _verify(partial, expected_size, sha256)
    os.replace(partial, target)
    return target


def _verify(path: Path, expected_size: int | None, sha256: str | None) -> None:
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        if size > expected_size:
            path.unlink()
        raise DownloadError(f"{path.name} has {size:,} bytes, expected {expected_size:,}"
                            + ("; deleted, try again" if size > expected_size else
                               "; the next attempt resumes"))
    if sha256 is not None:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            while block := stream.read(CHUNK):
                digest.update(block)
        if digest.hexdigest() != sha256:
            path.unlink()
            raise DownloadError(f"{path.name} is damaged (SHA-256 mismatch); deleted, try again")


def reachable(url: str, timeout: float = 2.0) -> bool:
    """True when `url`'s host name resolves within `timeout` seconds (remembered for a
    minute). Cheap, and enough to tell an offline machine, where a download would retry
    for minutes, from one with a network; a host that resolves may still refuse, and the
    download then says so."""
    host = urllib.parse.urlsplit(url).hostname or ""
    known = _reachable.get(host)
    if known is not None and time.monotonic() - known[0] < REACHABLE_TTL_S:
        return known[1]
    answers: list[bool] = []

    def look_up() -> None:
        try:
            answers.append(bool(socket.getaddrinfo(host, 443)))
        except OSError:
            answers.append(False)

    # getaddrinfo takes no timeout: ask in a thread and stop waiting for it.
    thread = threading.Thread(target=look_up, name="dns-look-up", daemon=True)
    thread.start()
    thread.join(timeout)
    answer = bool(answers and answers[0])
    _reachable[host] = (time.monotonic(), answer)
    return answer
