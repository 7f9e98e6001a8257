"""Uploaded zips are extracted only when safe."""
from __future__ import annotations

import io
import stat
import zipfile

import pytest

from tlcore import archives


def make_zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_regular_archive_is_extracted(tmp_path):
    written = archives.extract_zip(make_zip({"cats/a.png": b"1", "dogs/b.png": b"2"}), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == ["cats/a.png", "dogs/b.png"]


def test_unpacking_reports_each_entry_against_the_count(tmp_path):
    reports = []
    archives.extract_zip(make_zip({f"cats/{n}.png": b"1" for n in range(3)}), tmp_path,
                         on_step=lambda step, total, metrics: reports.append(
                             (step, total, metrics["phase"])))
    assert reports == [(0, 3, "unpacking"), (1, 3, "unpacking"), (2, 3, "unpacking"),
                       (3, 3, "unpacking")]


@pytest.mark.parametrize("name", ["../evil.png", "cats/../../evil.png", "/etc/evil.png",
                                  "C:/evil.png", "..\\evil.png"])
def test_paths_leaving_the_folder_are_refused(tmp_path, name):
    with pytest.raises(archives.ArchiveError, match="outside"):
        archives.extract_zip(make_zip({name: b"x"}), tmp_path / "out")
    assert not (tmp_path / "evil.png").exists()


def test_symlinks_are_refused(tmp_path):
    with pytest.raises(archives.ArchiveError, match="symbolic link"):
        archives.extract_zip(make_zip({}, symlink="cats/link.png"), tmp_path)


def test_zip_bomb_ratio_is_refused(tmp_path):
    bomb = make_zip({"cats/zeros.png": b"\0" * (50 * 1024 * 1024)})
    with pytest.raises(archives.ArchiveError, match="zip bomb"):
        archives.extract_zip(bomb, tmp_path)
    assert not (tmp_path / "cats" / "zeros.png").exists()


def test_total_size_and_file_count_limits(tmp_path):
    data = make_zip({f"cats/{i}.png": bytes(range(256)) * 4 for i in range(5)})
    with pytest.raises(archives.ArchiveError, match="total size"):
        archives.extract_zip(data, tmp_path / "a", max_total_bytes=3000)
    with pytest.raises(archives.ArchiveError, match="entries"):
        archives.extract_zip(data, tmp_path / "b", max_files=4)


def test_not_a_zip(tmp_path):
    with pytest.raises(archives.ArchiveError, match="not a zip"):
        archives.extract_zip(b"plain text", tmp_path)


def _stored_zip(name: str, content: bytes, encrypted: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(name, content)
    data = bytearray(buffer.getvalue())
    if encrypted:  # set bit 0 of the flags in the local and the central header
        data[data.index(b"PK\x03\x04") + 6] |= 1
        data[data.index(b"PK\x01\x02") + 8] |= 1
    return bytes(data)


def test_a_damaged_entry_is_refused_and_named(tmp_path):
    data = bytearray(_stored_zip("cats/a.png", b"payload-bytes"))
    data[data.index(b"payload-bytes")] ^= 0xFF  # the CRC no longer matches
    with pytest.raises(archives.ArchiveError, match="cannot extract 'cats/a.png': it is damaged"):
        archives.extract_zip(bytes(data), tmp_path)


def test_an_encrypted_entry_is_refused(tmp_path):
    with pytest.raises(archives.ArchiveError, match="cannot extract 'cats/a.png'.*encrypted"):
        archives.extract_zip(_stored_zip("cats/a.png", b"x", encrypted=True), tmp_path)


def test_a_file_where_a_folder_must_go_is_refused(tmp_path):
    with pytest.raises(archives.ArchiveError) as refusal:
        archives.extract_zip(make_zip({"cats": b"a file", "cats/a.png": b"x"}), tmp_path)
    assert str(refusal.value) == ("cannot extract 'cats/a.png': the archive holds a file and "
                                  "a folder of the same name")
