"""Microsoft PetImages: downloaded, checked, extracted; its broken files skipped and listed."""
from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from tlcore import data, downloads, petimages


def jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), value, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def petimages_like_zip() -> bytes:
    """The archive's layout with its kinds of damage: empty, truncated, Thumbs.db."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("CDLA-Permissive-2.0.pdf", b"%PDF-1.4")
        archive.writestr("readme[1].txt", b"Cats and dogs")
        for species in ("Cat", "Dog"):
            for index in range(4):
                archive.writestr(f"PetImages/{species}/{index}.jpg", jpeg(40 * index))
            archive.writestr(f"PetImages/{species}/Thumbs.db", b"\xd0\xcf\x11\xe0")
        archive.writestr("PetImages/Cat/666.jpg", b"")
        archive.writestr("PetImages/Dog/11702.jpg", jpeg(200)[:200])
    return buffer.getvalue()


@pytest.fixture
def served_archive(monkeypatch, tmp_path):
    payload = petimages_like_zip()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(petimages, "URL", f"http://127.0.0.1:{httpd.server_address[1]}/a.zip")
    monkeypatch.setattr(petimages, "SIZE", len(payload))
    monkeypatch.setattr(petimages, "SHA256", hashlib.sha256(payload).hexdigest())
    yield
    httpd.shutdown()


def test_petimages_skips_exactly_the_broken_files(served_archive):
    dataset = data.load_dataset("petimages")
    assert dataset.class_names == ("Cat", "Dog") and dataset.class_counts() == {"Cat": 4, "Dog": 4}
    skipped = sorted(item.path.rsplit("PetImages/", 1)[1] for item in dataset.skipped)
    assert skipped == ["Cat/666.jpg", "Cat/Thumbs.db", "Dog/11702.jpg", "Dog/Thumbs.db"]
    assert dataset.source == "petimages"
    again = data.load_dataset("petimages")  # extracted once: no second download needed
    assert again.fingerprint() == dataset.fingerprint()


def test_petimages_offline_names_the_file_and_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(petimages, "URL", "http://127.0.0.1:9/kagglecatsanddogs_5340.zip")
    with pytest.raises(downloads.DownloadError, match="kagglecatsanddogs_5340.zip"):
        data.load_dataset("petimages")
