"""Download and safely extract the CAVE database (urllib only; ``file://`` URLs work too).

:func:`download_cave` fetches the official ``complete_ms_data.zip`` into ``dest``:

1. **No-op** when ``dest`` already holds CAVE scenes (``force=True`` to fetch anyway).
2. Download to ``dest/<zip name>.part`` with a tqdm progress bar. An existing ``.part`` is
   **resumed** with an HTTP ``Range`` request; when the server answers with the whole file
   instead (status 200, or any ``file://`` URL), the ``.part`` is **restarted cleanly**
   (truncated, never appended to). A transfer cut short (network error, or the server
   closing the connection early) keeps the ``.part`` and says to call again to resume.
3. **Verify** the size (``Content-Length`` / ``size=``) and, when given, the SHA-256. On a
   mismatch (more bytes than announced, or another checksum) the bad file is deleted and
   :class:`DownloadError` says what was expected. A downloaded file that is not a readable
   zip (e.g. an HTML error page) is deleted too.
4. **Extract safely**: every member name is checked first; absolute paths, drive letters,
   ``..`` components and link entries (symlinks) are refused before anything is written,
   and so is an archive whose unpacked size exceeds the free disk space.
   Members are extracted into a temporary folder inside ``dest`` and then renamed into
   place, so an interrupted extraction never leaves half a dataset behind.
5. The archive is deleted unless ``keep_archive=True``.
"""
from __future__ import annotations

import http.client
import os
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from ..files.atomic import sha256_file
from ..files.ownership import NotOwnedError, require_owned, write_manifest
from ..files.readers import DataFormatError
from .cave import list_cave_scenes
from .roots import default_data_root

__all__ = ["CAVE_URL", "DownloadError", "UnsafeArchiveError", "download_cave", "download_file",
           "safe_extract_zip"]

#: Official location of the CAVE archive (Columbia University).
CAVE_URL = "https://cave.cs.columbia.edu/old/databases/multispectral/zip/complete_ms_data.zip"
_CHUNK = 1 << 20
#: Written into every folder :func:`safe_extract_zip` extracts: it lists every entry, so a
#: later extraction may replace that folder (and nothing else).
EXTRACTED_MANIFEST = ".inr_lib-extracted.json"


class DownloadError(RuntimeError):
    """The download failed or the file does not match the expected size / checksum."""


class UnsafeArchiveError(DataFormatError):
    """An archive member would be written outside the destination (zip-slip) or is a link."""


# --------------------------------------------------------------------------------------------
# download


def _open(url: str, start: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "inr_lib"})
    if start > 0:
        req.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (scheme chosen by caller)


def _total_size(resp, resumed_from: int):
    crange = resp.headers.get("Content-Range")  # "bytes 100-999/1000"
    if crange and "/" in crange and not crange.endswith("/*"):
        return int(crange.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    return None if length is None else resumed_from + int(length)


def _connect(url: str, part: Path, start: int, timeout: float) -> tuple:
    """Open ``url`` from byte ``start``; ``(response, start)``, where ``start`` is 0 again
    when the server refused the range (HTTP 416: the ``.part`` is removed)."""
    try:
        return _open(url, start, timeout), start
    except urllib.error.HTTPError as e:
        if e.code == 416 and start > 0:  # range beyond the end: start again from zero
            part.unlink()
            return _open(url, 0, timeout), 0
        raise DownloadError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(
            f"could not download {url}: {getattr(e, 'reason', e)}. Check the network or pass "
            "url= a mirror (file:// URLs work for a local copy)"
        ) from None


def _stream(resp, url: str, part: Path, start: int, size: int | None, progress: bool,
            desc: str) -> int | None:
    """Append (resumed, status 206) or write ``resp``'s body to ``part`` with a progress bar;
    returns the total size the server announced (bytes), or ``None``."""
    resumed = start > 0 and getattr(resp, "status", None) == 206
    if not resumed:
        start = 0  # server sent the whole file (or file:// URL): restart cleanly
    total = _total_size(resp, start)
    if size is not None and total is not None and total != size:
        raise DownloadError(f"{url}: server reports {total} bytes, expected {size}")
    with open(part, "ab" if resumed else "wb") as out, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, disable=not progress, desc=desc,
    ) as bar:
        try:
            for block in iter(lambda: resp.read(_CHUNK), b""):
                out.write(block)
                bar.update(len(block))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise DownloadError(
                f"download of {url} interrupted after {out.tell()} bytes "
                f"({type(e).__name__}: {e}); call again to resume from the .part file"
            ) from None
    return total


def _verify(url: str, part: Path, expected: int | None, sha256: str | None) -> None:
    """Check the size (bytes) and SHA-256 of the finished ``part``: a short file is kept for
    resuming; a longer one, or one with another checksum, is removed."""
    got = part.stat().st_size
    if expected is not None and got < expected:  # the connection closed early: keep for resuming
        raise DownloadError(
            f"download of {url} stopped after {got} of {expected} bytes (the connection was "
            f"closed early); the partial file {part} is kept: call again to resume"
        )
    if expected is not None and got != expected:
        part.unlink()
        raise DownloadError(
            f"{url}: downloaded {got} bytes, expected {expected}; the partial file was removed, "
            "call again to restart"
        )
    if sha256 is not None:
        digest = sha256_file(part)
        if digest.lower() != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"{url}: SHA-256 mismatch: expected {sha256.lower()}, found {digest}. The file "
                "was removed; call again to re-download, or check the URL / checksum"
            )


def download_file(url: str, target: str | os.PathLike, sha256: str | None = None, size: int | None = None,
                  progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` via ``target + ".part"``, resuming a partial ``.part``.

    Args:
        url: ``http(s)://`` or ``file://`` URL.
        target: final file path (written only once the download is complete and verified).
        sha256: expected hex digest, or ``None`` to skip the check.
        size: expected size in bytes, or ``None`` to trust ``Content-Length`` when sent.
        progress: show a tqdm progress bar.
        timeout: seconds to wait for the server to answer.

    Returns:
        ``Path(target)``.

    Raises:
        DownloadError: network failure, or size / checksum mismatch (the bad file is removed).
    """
    target = Path(target)
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    resp, start = _connect(url, part, start, timeout)
    with resp:
        total = _stream(resp, url, part, start, size, progress, target.name)
    _verify(url, part, size if size is not None else total, sha256)
    os.replace(part, target)
    return target


# --------------------------------------------------------------------------------------------
# extraction


def _member_parts(info: zipfile.ZipInfo) -> tuple:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(
            f"archive member {info.filename!r} has an absolute path; refusing to extract. "
            "The archive is not the official CAVE zip (or is damaged)"
        )
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(
            f"archive member {info.filename!r} contains '..' and would be written outside the "
            "destination; refusing to extract"
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(
            f"archive member {info.filename!r} is a symbolic link; the CAVE archive contains "
            "none, refusing to extract (a link could point outside the destination)"
        )
    return parts


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB"
    return f"{n / 2**10:.0f} KiB" if n >= 2**10 else f"{n} bytes"


def safe_extract_zip(archive: str | os.PathLike, dest: str | os.PathLike) -> list:
    """Extract a zip into ``dest`` after checking every member; returns the top-level names.

    All members are checked before anything is written. Files are extracted into a temporary
    folder inside ``dest`` and renamed into place at the end. Each top-level folder gets a
    manifest (:data:`EXTRACTED_MANIFEST`) listing its entries; an existing entry of the same
    name is replaced only when it is such a folder holding nothing else, otherwise the call
    is refused before anything is extracted (``FileExistsError`` naming what is in the way).

    Raises:
        FileExistsError: a top-level name of the archive exists in ``dest`` and is not a
            folder this function extracted (the user's files are never replaced).
        UnsafeArchiveError: absolute paths, ``..`` components, or link entries.
        DataFormatError: not a zip file, or a member fails its CRC check.
        DownloadError: the extracted files would not fit on the disk (checked first).
    """
    archive, dest = Path(archive), Path(dest)
    if not zipfile.is_zipfile(archive):
        raise DataFormatError(f"{archive} is not a zip archive; delete it and download again")
    with zipfile.ZipFile(archive) as zf:
        members = [(info, _member_parts(info)) for info in zf.infolist()]  # check all first
        for top in sorted({parts[0] for _, parts in members if parts}):
            _check_replaceable(dest / top, archive)
        dest.mkdir(parents=True, exist_ok=True)
        need = sum(info.file_size for info, _ in members)
        free = shutil.disk_usage(dest).free
        if need > free:
            raise DownloadError(
                f"extracting {archive} needs {_size(need)} but {dest} has only {_size(free)} "
                "free; free some space or choose another folder (nothing was extracted)"
            )
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
        try:
            for info, parts in members:
                if not parts:
                    continue
                out = tmp.joinpath(*parts)
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            tops = sorted(p.name for p in tmp.iterdir())
            for name in tops:
                final = dest / name
                if (tmp / name).is_dir():
                    write_manifest(tmp / name, EXTRACTED_MANIFEST,
                                   {"extracted_by": "inr_lib", "archive": archive.name})
                _check_replaceable(final, archive)      # again: it may have changed meanwhile
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)                # proven: a folder extracted here before
                os.replace(tmp / name, final)
        except zipfile.BadZipFile as e:
            raise DataFormatError(f"{archive}: corrupt member ({e}); download it again") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return tops


def _check_replaceable(final: Path, archive: Path) -> None:
    """Raise FileExistsError unless ``final`` is absent or a folder this module extracted
    (its manifest lists every entry inside): the user's files are never replaced."""
    advice = (f"Move it away or extract {archive.name} into another folder")
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise NotOwnedError(f"{final} is in the way and inr_lib cannot prove it is a folder it "
                            f"extracted (it is a file or a link); it is left untouched. {advice}")
    require_owned(final, EXTRACTED_MANIFEST, "a folder it extracted", advice,
                  is_ours=lambda m: m.get("extracted_by") == "inr_lib")


# --------------------------------------------------------------------------------------------
# CAVE


def _has_scenes(dest: Path) -> bool:
    try:
        return bool(list_cave_scenes(dest))
    except (FileNotFoundError, DataFormatError):
        return False


def _check_is_zip(archive: Path, url: str, downloaded: bool) -> None:
    """Raise DataFormatError unless ``archive`` is a zip; a bad file is removed only when this
    call downloaded it."""
    if zipfile.is_zipfile(archive):
        return
    with open(archive, "rb") as f:
        head = f.read(16)
    what = ("a truncated or damaged zip archive (it starts like a zip but its directory at the "
            "end is missing)" if head.startswith(b"PK") else
            f"not a zip archive (it starts with {head!r}: an error page?)")
    if downloaded:
        archive.unlink()
        raise DataFormatError(f"the file downloaded from {url} is {what}; it was removed. Check "
                              "the URL, then call download_cave again")
    raise DataFormatError(f"{archive} is {what}; it is left untouched. Replace it with a good "
                          "copy, or move it away and call download_cave again to download it")


def download_cave(dest: str | os.PathLike | None = None, url: str = CAVE_URL, sha256: str | None = None,
                  size: int | None = None, progress: bool = True, force: bool = False,
                  keep_archive: bool = False) -> Path:
    """Download and extract the CAVE database into ``dest``; returns ``Path(dest)``.

    Args:
        dest: folder that will hold ``<scene>_ms/<scene>_ms/...``; default ``cave`` in the
            data folder (``$INR_DATA``, else the user's cache folder:
            :func:`inr_lib.data.default_data_root`), where the book and ``--data auto`` look.
        url: where to fetch ``complete_ms_data.zip`` (default :data:`CAVE_URL`; a mirror or a
            ``file://`` URL of a local copy also works).
        sha256: expected SHA-256 of the zip, checked when given (no official checksum is
            published, so the default is ``None``).
        size: expected size in bytes, checked when given.
        progress: tqdm progress bar.
        force: download even if ``dest`` already holds CAVE scenes.
        keep_archive: keep the zip in ``dest`` after extraction. A zip that was already in
            ``dest`` (e.g. ``url`` is a ``file://`` URL of ``dest/complete_ms_data.zip``) is
            never deleted, damaged or not: only a file this call downloaded is.

    Does nothing (no network access) when ``dest`` already holds CAVE scenes. A partial
    ``.part`` download from an earlier call is resumed. See the module docstring for the
    safety checks. Afterwards ``inr_lib.data.list_cave_scenes(dest)`` finds the scenes. With
    ``progress``, a line on stderr says where the data are.
    """
    if dest is None:
        dest = default_data_root() / "cave"
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise DownloadError(f"download_cave: dest {dest} is a file, not a folder; pass the folder "
                            f"that should hold the CAVE scenes")
    name = Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name or "cave.zip"
    if name in (".", "..") or not isinstance(url, str) or "://" not in url:
        raise DownloadError(f"download_cave: url {url!r} does not name a zip file (expected "
                            f"https://.../complete_ms_data.zip or file:///.../complete_ms_data.zip)")
    if not force and dest.is_dir() and _has_scenes(dest):
        _say(progress, f"CAVE is already in {dest}; nothing downloaded")
        return dest
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"download_cave: cannot create the folder {dest} ({e.strerror or e}); "
                            f"choose another dest") from None
    archive = dest / name
    downloaded = False        # only a file this call downloaded is ever deleted
    if not archive.exists():
        download_file(url, archive, sha256=sha256, size=size, progress=progress)
        downloaded = True
    elif sha256 is not None and sha256_file(archive).lower() != sha256.lower():
        raise DataFormatError(
            f"{archive} exists but its SHA-256 is not {sha256.lower()}; it is left untouched. "
            "Move or delete it yourself, then call download_cave again")
    _check_is_zip(archive, url, downloaded)
    try:
        safe_extract_zip(archive, dest)
    except UnsafeArchiveError:
        raise  # kept for inspection; nothing of it was extracted
    except DataFormatError as e:  # a damaged member: don't reuse this archive
        if not downloaded:
            raise DataFormatError(f"{e} (the file {archive} is left as it is: replace it with a "
                                  "good copy, or move it away and call download_cave again to "
                                  "download it)") from None
        archive.unlink()
        raise DataFormatError(f"{e}; the damaged archive was removed (it was downloaded by this "
                              "call), so calling download_cave again downloads it afresh") from None
    if not _has_scenes(dest):
        raise DataFormatError(
            f"extracted {archive} into {dest} but found no CAVE scenes there; is {url} the "
            "CAVE complete_ms_data.zip?"
        )
    if downloaded and not keep_archive:
        archive.unlink()
    _say(progress, f"CAVE is in {dest}")
    return dest


def _say(on: bool, message: str) -> None:
    if on:
        print(message, file=sys.stderr)
