"""Uploads held in the server's memory stay within the demo's limits."""
from __future__ import annotations

import dataclasses

import pytest
from starlette.exceptions import HTTPException
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from tlcore import config
from ui import upload_memory

MB = upload_memory.MB


def upload(manager, session: str, file_id: str, megabytes: float) -> None:
    manager.add_file(session, UploadedFileRec(file_id, f"{file_id}.png", "image/png",
                                              bytes(int(megabytes * MB))))


def test_a_session_and_the_server_are_refused_past_their_limits(monkeypatch):
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(
        config.DEMO_LIMITS, session_uploads_mb=3, server_uploads_mb=5))
    upload_memory.install()
    upload_memory.install()  # once is enough: a second call wraps nothing again
    manager = MemoryUploadedFileManager("/upload")
    upload(manager, "a", "1", 2)
    upload(manager, "a", "2", 1)  # exactly at the limit
    with pytest.raises(HTTPException) as refused:
        upload(manager, "a", "3", 0.5)
    assert refused.value.status_code == 413
    assert refused.value.detail.startswith(
        "your files in the uploaders would hold 3.5 MB of the server's memory; this public "
        "demo allows 3 MB per visitor.")
    assert [file.file_id for file in manager.get_files("a", ["1", "2", "3"])] == ["1", "2"]
    assert upload_memory._refused.pop("a")[0].startswith("3.png: your files in the uploaders")

    upload(manager, "b", "1", 2)  # another visitor: their own 3 MB, the server's 5
    with pytest.raises(HTTPException, match="413") as refused:
        upload(manager, "b", "2", 0.5)
    assert "all visitors' uploads would hold more than the 5 MB" in refused.value.detail
    manager.remove_file("a", "1")  # a widget let go of a file: room again
    upload(manager, "b", "2", 0.5)


def test_ones_own_server_keeps_streamlits_behaviour(monkeypatch):
    monkeypatch.delenv("TLCORE_PUBLIC_DEMO", raising=False)
    upload_memory.install()
    manager = MemoryUploadedFileManager("/upload")
    for number in range(3):
        upload(manager, "a", str(number), 4)
    assert len(manager.get_files("a", ["0", "1", "2"])) == 3
