"""download_cave / download_file / safe_extract_zip, offline: file:// URLs, a localhost HTTP
server with Range support, and malicious zip fixtures."""
from __future__ import annotations

import http.server
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from inr_lib.data import (
    DataFormatError,
    DownloadError,
    UnsafeArchiveError,
    download_cave,
    list_cave_scenes,
    load_cave_scene,
)
from inr_lib.data.download import download_file, safe_extract_zip
from inr_lib.files.atomic import sha256_file


@pytest.fixture
def cave_zip(tmp_path, make_cave_zip) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    return make_cave_zip(src / "complete_ms_data.zip", scenes=("tiny", "small"))


# --------------------------------------------------------------------------------------------
# file:// downloads


def test_download_cave_from_file_url(tmp_path, cave_zip):
    dest = tmp_path / "cave"
    out = download_cave(dest, url=cave_zip.as_uri(), sha256=sha256_file(cave_zip),
                        size=cave_zip.stat().st_size, progress=False)
    assert out == dest
    assert [s.name for s in list_cave_scenes(dest)] == ["small", "tiny"]
    scene = load_cave_scene(dest / "tiny_ms")
    assert scene.hsi.shape == (31, 4, 6) and scene.rgb.shape == (3, 4, 6)
    assert not list(dest.glob("*.zip*"))  # archive and .part removed
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_second_call_is_a_noop(tmp_path, cave_zip):
    dest = tmp_path / "cave"
    download_cave(dest, url=cave_zip.as_uri(), progress=False)
    before = sorted(p.stat().st_mtime_ns for p in dest.rglob("*"))
    # an unreachable URL proves that nothing is fetched
    assert download_cave(dest, url="file:///nonexistent/x.zip", progress=False) == dest
    assert sorted(p.stat().st_mtime_ns for p in dest.rglob("*")) == before


def test_keep_archive_and_force(tmp_path, cave_zip):
    dest = tmp_path / "cave"
    download_cave(dest, url=cave_zip.as_uri(), progress=False, keep_archive=True)
    assert (dest / "complete_ms_data.zip").is_file()
    (dest / "complete_ms_data.zip").unlink()
    with pytest.raises(DownloadError):  # force re-fetches, and this URL does not exist
        download_cave(dest, url="file:///nonexistent/complete_ms_data.zip", progress=False,
                      force=True)
    assert [s.name for s in list_cave_scenes(dest)] == ["small", "tiny"]  # data untouched


def test_checksum_mismatch_removes_file(tmp_path, cave_zip):
    dest = tmp_path / "cave"
    with pytest.raises(DownloadError, match="SHA-256 mismatch: expected 0000"):
        download_cave(dest, url=cave_zip.as_uri(), sha256="0" * 64, progress=False)
    assert not list(dest.glob("complete_ms_data.zip*"))


def test_size_mismatch_removes_file(tmp_path, cave_zip):
    target = tmp_path / "dl" / "f.zip"
    with pytest.raises(DownloadError, match="expected 12"):
        download_file(cave_zip.as_uri(), target, size=12, progress=False)
    assert not target.exists() and not target.with_name("f.zip.part").exists()


def test_stale_part_restarted_cleanly_for_file_urls(tmp_path, cave_zip):
    target = tmp_path / "dl" / "complete_ms_data.zip"
    target.parent.mkdir()
    target.with_name(target.name + ".part").write_bytes(b"garbage that must not be kept")
    download_file(cave_zip.as_uri(), target, sha256=sha256_file(cave_zip), progress=False)
    assert sha256_file(target) == sha256_file(cave_zip)


def test_one_sha256_definition_for_data_and_io(tmp_path):
    import inr_lib.data.download as download
    import inr_lib.files.atomic as atomic

    assert download.sha256_file is atomic.sha256_file  # imported, not a second copy
    lib = Path(atomic.__file__).parents[1]
    defined = [p for p in lib.rglob("*.py") if "def sha256_file(" in p.read_text()]
    assert defined == [Path(atomic.__file__)]
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 "abc"


def test_missing_source_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match="could not download"):
        download_file((tmp_path / "none.zip").as_uri(), tmp_path / "x.zip", progress=False)


# --------------------------------------------------------------------------------------------
# HTTP with Range (localhost server)


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    honour_range = True
    seen_ranges: list = []

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        type(self).seen_ranges.append(rng)
        data = self.payload
        if rng and self.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(cave_zip):
    class Handler(_Handler):
        payload = cave_zip.read_bytes()
        seen_ranges = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server, Handler, f"http://127.0.0.1:{server.server_port}/complete_ms_data.zip"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("honour_range", [True, False])
def test_http_resume_or_clean_restart(tmp_path, cave_zip, http_server, honour_range):
    server, handler, url = http_server
    handler.honour_range = honour_range
    payload = cave_zip.read_bytes()
    target = tmp_path / "dl" / "complete_ms_data.zip"
    target.parent.mkdir()
    part = target.with_name(target.name + ".part")
    part.write_bytes(payload[:1000])  # an interrupted earlier download
    download_file(url, target, sha256=sha256_file(cave_zip), progress=False)
    assert handler.seen_ranges == ["bytes=1000-"]
    assert target.read_bytes() == payload and not part.exists()


def test_http_download_cave(tmp_path, http_server):
    _, handler, url = http_server
    dest = download_cave(tmp_path / "cave", url=url, progress=False)
    assert [s.name for s in list_cave_scenes(dest)] == ["small", "tiny"]
    assert handler.seen_ranges == [None]


# --------------------------------------------------------------------------------------------
# unsafe archives


def _zip_with(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok_ms/ok_ms/ok_ms_01.png", b"fine")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
            info.create_system = 3  # unix
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "member, mode, match",
    [
        ("../evil.txt", None, r"contains '\.\.'"),
        ("a/../../evil.txt", None, r"contains '\.\.'"),
        ("..\\evil.txt", None, r"contains '\.\.'"),
        ("/tmp/evil_abs.txt", None, "absolute path"),
        ("C:/evil.txt", None, "absolute path"),
        ("link", stat.S_IFLNK | 0o777, "symbolic link"),
    ],
)
def test_zip_slip_refused(tmp_path, member, mode, match):
    bad = _zip_with(tmp_path / "bad.zip", member, b"../../outside" if mode else b"x", mode)
    dest = tmp_path / "out" / "dest"
    with pytest.raises(UnsafeArchiveError, match=match):
        safe_extract_zip(bad, dest)
    assert not dest.exists()  # nothing extracted, not even the harmless member
    assert not (tmp_path / "out" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_malicious_download_leaves_nothing(tmp_path):
    bad = _zip_with(tmp_path / "complete_ms_data.zip", "../../evil.txt")
    dest = tmp_path / "a" / "cave"
    with pytest.raises(UnsafeArchiveError):
        download_cave(dest, url=bad.as_uri(), progress=False)
    assert not (tmp_path / "evil.txt").exists()
    assert [p.name for p in dest.iterdir()] == ["complete_ms_data.zip"]  # only the archive


def test_wrapper_folder_and_not_a_zip(tmp_path, make_cave_zip):
    z = make_cave_zip(tmp_path / "w.zip", scenes=("wrapped",), wrapper="complete_ms_data/")
    dest = tmp_path / "cave"
    download_cave(dest, url=z.as_uri(), progress=False)
    assert [s.name for s in list_cave_scenes(dest)] == ["wrapped"]
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="not a zip archive"):
        safe_extract_zip(tmp_path / "junk.zip", tmp_path / "j")


def test_zip_without_cave_scenes(tmp_path):
    z = tmp_path / "other.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DataFormatError, match="found no CAVE scenes"):
        download_cave(tmp_path / "cave", url=z.as_uri(), progress=False)
