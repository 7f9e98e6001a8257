"""Bound what uploaded files hold in the server's memory.

Streamlit keeps every uploaded file in memory (`MemoryUploadedFileManager`) until its widget
lets go of it or the session ends, and checks only each file's size (`server.maxUploadSize`):
one visitor's 200 files of 50 MB would be 10 GB on a box of 2-3 GB. `install` makes the
manager refuse a file that would take its session past `Limits.session_uploads_mb`, or all
sessions together past `Limits.server_uploads_mb`, with HTTP 413 and the reason, before the
file is kept. The page may redraw the uploader before its visitor sees the failed file, so
`say_refused` also tells them in the next script run. The check and the add are two steps,
so files arriving at the same moment may pass the bound by one file each.
"""
from __future__ import annotations

import collections
import threading
from typing import Any, Callable

import streamlit as st
from starlette.exceptions import HTTPException
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from tlcore import config
from ui import widgets

MB = 1024 * 1024
_MARK = "_tlcore_bounded"
_KEPT_SESSIONS = 1_000  # refusals not yet said, for at most this many sessions
_refused: collections.OrderedDict[str, list[str]] = collections.OrderedDict()
_refused_lock = threading.Lock()


def refusal(manager: MemoryUploadedFileManager, session_id: str, size: int) -> str | None:
    """Why `manager` must not keep one more file of `size` bytes for `session_id`, or None."""
    with manager._lock:  # Streamlit's own: the add below takes it again
        session = sum(len(file.data) for file in manager.file_storage.get(session_id, {}).values())
        server = manager._total_bytes
    limits = config.limits()
    where = "this public demo" if config.public_demo() else "this server"
    if limits.session_uploads_mb is not None and session + size > limits.session_uploads_mb * MB:
        return (f"your files in the uploaders would hold {(session + size) / MB:,.1f} MB of the "
                f"server's memory; {where} allows {limits.session_uploads_mb:,} MB per visitor. "
                "Remove files from the uploaders, or add fewer at once.")
    if limits.server_uploads_mb is not None and server + size > limits.server_uploads_mb * MB:
        return (f"all visitors' uploads would hold more than the {limits.server_uploads_mb:,} MB "
                f"of memory {where} allows. Try again in a minute.")
    return None


def install() -> None:
    """Make Streamlit's in-memory upload store refuse files over the limits (once per
    process; the limits are read at each upload)."""
    original: Callable[..., Any] = MemoryUploadedFileManager.add_file
    if getattr(original, _MARK, False):
        return

    def add_file(self: MemoryUploadedFileManager, session_id: str,
                 file: UploadedFileRec) -> None:
        reason = refusal(self, session_id, len(file.data))
        if reason is not None:
            _remember(session_id, file.name, reason)
            raise HTTPException(status_code=413, detail=reason)
        original(self, session_id, file)

    setattr(add_file, _MARK, True)
    MemoryUploadedFileManager.add_file = add_file  # type: ignore[method-assign]


def say_refused() -> None:
    """Say, in this session's script run, which files were refused since its last run."""
    session_id = getattr(get_script_run_ctx(), "session_id", None)
    with _refused_lock:
        said = _refused.pop(session_id, None) if session_id else None
    if said:
        # A toast: the page's own output goes when its run asks for another (the builder
        # does, after adding the files that did arrive).
        st.toast(widgets.plain("Not uploaded: " + "; ".join(said)), icon=":material/memory:",
                 duration="long")


def _remember(session_id: str, name: str, reason: str) -> None:
    with _refused_lock:
        said = _refused.setdefault(session_id, [])
        said[:] = [*said, f"{name}: {reason}"][-20:]
        _refused.move_to_end(session_id)
        while len(_refused) > _KEPT_SESSIONS:
            _refused.popitem(last=False)
