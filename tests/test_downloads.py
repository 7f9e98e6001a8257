"""Downloads resume after a broken connection and refuse damaged files (loopback server)."""
from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from tlcore import downloads

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; `break_after` cuts the first response short."""

    break_after: int | None = None
    ranges: list[str] = []

    def do_GET(self) -> None:
        start = 0
        header = self.headers.get("Range")
        Handler.ranges.append(header or "")
        if header:
            start = int(header.split("=")[1].rstrip("-"))
        body = PAYLOAD[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.break_after is not None:
            self.wfile.write(body[:Handler.break_after])
            Handler.break_after = None
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.ranges = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.zip"
    httpd.shutdown()


def test_an_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    Handler.break_after = 300_000
    target = tmp_path / "file.zip"
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(downloads.DownloadError, match="resumes"):
        downloads.download(server, target, expected_size=len(PAYLOAD), sha256=digest)
    assert not target.exists()
    progress = []
    downloads.download(server, target, expected_size=len(PAYLOAD), sha256=digest,
                       on_step=lambda done, total, _: progress.append((done, total)))
    assert target.read_bytes() == PAYLOAD
    assert Handler.ranges[-1] == f"bytes={300_000}-"
    assert progress[-1] == (len(PAYLOAD), len(PAYLOAD)) and progress[0][0] > 300_000
    downloads.download(server, target, expected_size=len(PAYLOAD))  # present: no request
    assert len(Handler.ranges) == 2


def test_a_damaged_download_is_deleted(server, tmp_path):
    with pytest.raises(downloads.DownloadError, match="SHA-256"):
        downloads.download(server, tmp_path / "f.zip", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_no_server_says_where_to_put_the_file(tmp_path):
    with pytest.raises(downloads.DownloadError, match=str(tmp_path / "f.zip")):
        downloads.download("http://127.0.0.1:9/f.zip", tmp_path / "f.zip", timeout=2)
