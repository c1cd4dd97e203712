"""Reliability of downloads: interrupted transfers, error pages, corrupt and oversized archives, links.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do (cases covered elsewhere are listed in
``tests/conftest.py``).
"""
from __future__ import annotations

import http.server
import threading
import zipfile

import pytest

from inr_lib.data import DataFormatError, DownloadError, download_cave, list_cave_scenes
from inr_lib.data.download import download_file, safe_extract_zip


class _Server:
    """A localhost HTTP server whose behaviour each test sets (``handler``)."""

    def __init__(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/complete_ms_data.zip"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(payload: bytes, behaviour: list):
    """Serves ``payload``; ``behaviour`` holds one entry per request: "cut" (announce the
    whole file, send half, close), "range" (honour Range) or "html" (an error page, 200)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        ranges: list = []

        def do_GET(self):  # noqa: N802
            what = behaviour.pop(0)
            rng = self.headers.get("Range")
            Handler.ranges.append(rng)
            if what == "html":
                body = b"<html><body>Service temporarily unavailable</body></html>"
                self.send_response(200)
            elif rng and what == "range":
                start = int(rng.split("=")[1].split("-")[0])
                body = payload[start:]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
            else:
                body = payload
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if what == "cut" else body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    return Handler


def test_connection_closed_early_keeps_the_part_file_and_resumes(tmp_path, make_cave_zip):
    z = make_cave_zip(tmp_path / "src.zip", shape=(2, 3))
    payload = z.read_bytes()
    handler = _handler(payload, ["cut", "range"])
    server = _Server(handler)
    try:
        target = tmp_path / "dl" / "complete_ms_data.zip"
        part = target.with_name(target.name + ".part")
        with pytest.raises(DownloadError, match=r"stopped after \d+ of \d+ bytes.*kept: call "
                                                r"again to resume"):
            download_file(server.url, target, progress=False)
        assert 0 < part.stat().st_size < len(payload) and not target.exists()
        download_file(server.url, target, progress=False)  # the second call resumes
        assert handler.ranges == [None, f"bytes={len(payload) // 2}-"]
        assert target.read_bytes() == payload and not part.exists()
    finally:
        server.close()


def test_error_page_instead_of_the_zip_is_removed(tmp_path, make_cave_zip):
    z = make_cave_zip(tmp_path / "src.zip", shape=(2, 3))
    server = _Server(_handler(z.read_bytes(), ["html", "plain"]))
    dest = tmp_path / "cave"
    try:
        with pytest.raises(DataFormatError, match=r"not a zip archive \(it starts with b'<html>.*"
                                                  r"removed\. Check the URL, then call download_cave"):
            download_cave(dest, url=server.url, progress=False)
        assert list(dest.iterdir()) == []           # nothing kept, nothing extracted
        download_cave(dest, url=server.url, progress=False)  # so a second call just works
        assert [s.name for s in list_cave_scenes(dest)] == ["tiny"]
    finally:
        server.close()


def test_archive_with_a_corrupt_member_is_removed_and_nothing_extracted(tmp_path, make_cave_zip):
    z = make_cave_zip(tmp_path / "complete_ms_data.zip", shape=(2, 3))
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[5]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10] ^= 0xFF  # inside the member's compressed bytes: its CRC fails
    z.write_bytes(bytes(data))
    dest = tmp_path / "cave"
    with pytest.raises(DataFormatError, match="corrupt member.*damaged archive was removed"):
        download_cave(dest, url=z.as_uri(), progress=False)
    assert list(dest.iterdir()) == []


def test_extraction_that_would_fill_the_disk_is_refused_first(tmp_path, monkeypatch, make_cave_zip):
    import shutil
    from types import SimpleNamespace

    z = make_cave_zip(tmp_path / "c.zip", shape=(2, 3))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: SimpleNamespace(total=1, used=1, free=100))
    with pytest.raises(DownloadError, match=r"needs \d+ KiB but .* has only 100 bytes free.*"
                                            r"nothing was extracted"):
        safe_extract_zip(z, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_link_already_in_the_destination_is_neither_replaced_nor_followed(tmp_path,
                                                                            make_cave_zip):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    dest = tmp_path / "cave"
    dest.mkdir()
    (dest / "tiny_ms").symlink_to(outside, target_is_directory=True)
    with pytest.raises(FileExistsError, match="tiny_ms is in the way .* a file or a link"):
        safe_extract_zip(make_cave_zip(tmp_path / "c.zip", shape=(2, 3)), dest)
    assert (dest / "tiny_ms").is_symlink()                       # the user's link stays
    assert [p.name for p in outside.iterdir()] == ["keep.txt"]  # untouched
    assert sorted(p.name for p in dest.iterdir()) == ["tiny_ms"]  # nothing extracted
