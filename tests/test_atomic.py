"""Atomic files and folders: a failure leaves nothing, a finished write appears whole."""
from __future__ import annotations

import pytest

from tlcore import atomic


def test_a_failed_folder_leaves_no_trace(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic.staged_folder(tmp_path / "set") as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_kept_or_replaced(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "old.txt").write_text("old")
    with atomic.staged_folder(tmp_path / "set") as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "set").iterdir()] == ["old.txt"]
    with atomic.staged_folder(tmp_path / "set", replace_existing=True) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "set").iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_write_file_replaces_whole(tmp_path):
    atomic.write_file(tmp_path / "a.json", b"{}")
    atomic.write_file(tmp_path / "a.json", b'{"b": 1}')
    assert (tmp_path / "a.json").read_bytes() == b'{"b": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_replacement_keeps_the_old_folder(tmp_path, monkeypatch):
    import os
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "old.txt").write_text("old")
    real_replace, calls = os.replace, []

    def failing_second_rename(source, destination):
        calls.append(source)
        if len(calls) == 2:  # the new folder moving into place
            raise OSError("disk trouble")
        real_replace(source, destination)
    monkeypatch.setattr(atomic.os, "replace", failing_second_rename)
    with pytest.raises(OSError, match="disk trouble"):
        with atomic.staged_folder(tmp_path / "set", replace_existing=True) as staging:
            (staging / "new.txt").write_text("new")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert [p.name for p in (tmp_path / "set").iterdir()] == ["old.txt"]


def test_what_is_written_gets_an_ordinary_files_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    atomic.write_file(tmp_path / "a.json", b"{}")
    with atomic.staged_folder(tmp_path / "run") as staging:
        (staging / "model.keras").write_bytes(b"weights")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o777 & ~umask
