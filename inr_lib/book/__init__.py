"""The book's chapter setup and the helpers several chapters share.

A chapter's first code cell is::

    PROFILE = "auto"  # @param ["auto", "quick", "full"]
    USE_DRIVE = True  # @param {type:"boolean"}
    from inr_lib import book
    bk = book.setup("07", PROFILE, gpu=True, drive=USE_DRIVE)

:func:`setup` picks the profile (``quick`` | ``full``, see :mod:`inr_lib.runtime`) and the
device, finds the data (real CAVE if present, else the synthetic CAVE-layout dataset) and the
folder for training runs, and prints one short summary. In Google Colab it also offers to
mount Google Drive (once per runtime: not when it is mounted already) and keeps the data and
the runs there (``MyDrive/inr-hsisr/``), so CAVE is downloaded once for all chapters and chapter
8 finds the model chapter 7 trained. ``auto`` never picks a profile that trains for more than
about half an hour in one chapter (:data:`AUTO_LIMIT_MINUTES`, checked against the chapter's
recorded times, :func:`chapter_times`).

Numbers in the prose are printed by the cell that computes them: :func:`say` shows a Markdown
sentence filled in with this run's values, in Colab and Jupyter as in the built book, so the
chapters' Markdown cells hold only what Colab renders.

Printed paths are relative to the repository, to ``$INR_DATA`` or to the home folder
(:func:`shown`), never absolute paths of the machine that built the book.

The module imports nothing heavy at import time (torch, IPython and the data code are imported
by the functions that need them).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .. import __version__, data
from ..data import default_data_root, resolve_cave_root
from ..runtime import describe_device, get_profile
from .display import GLUED, glue, say, table

if TYPE_CHECKING:      # for the annotations only: `import inr_lib.book` stays light
    import torch

    from ..data import DataRoot

#: Google Drive folder (under ``MyDrive``) that holds the data and the runs in Colab
DRIVE_FOLDER = "inr-hsisr"
#: ``auto`` picks the quick profile where the full one would train longer than this in a chapter
AUTO_LIMIT_MINUTES = 30
#: size of the CAVE download: 32 scenes at 12.9 MB a scene, the mean of the 18 scenes of the
#: development copy (231,897,192 bytes, measured with ``du -sb``); PNGs barely compress in a zip
CAVE_DOWNLOAD_MB = 410
#: the measured (quick) and estimated (full) time of every chapter, written by
#: ``tools/time_chapters.py``
TIMES_FILE = Path(__file__).with_name("chapter_times.json")
#: profile -> training preset of chapters 7 and 8 (in Colab, ``full`` uses ``colab``: the paper
#: model on a schedule that fits a T4 session)
CONFIG_OF_PROFILE = {"quick": "quick", "full": "paper"}

_ROOTS: dict[str, Path] = {}      # short names for printing, filled by setup()


def in_colab() -> bool:
    """True inside a Google Colab kernel (``google.colab`` is imported there and the runtime
    sets ``COLAB_RELEASE_TAG``; a test sets that variable to simulate one)."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def colab_content() -> Path:
    """Colab's working folder, ``/content`` (``$INR_COLAB_CONTENT`` in a simulated runtime)."""
    return Path(os.environ.get("INR_COLAB_CONTENT") or "/content")


def drive_mount() -> Path:
    """Where Colab mounts Google Drive: ``/content/drive``."""
    return colab_content() / "drive"


def repository_root(cwd: Path | None = None) -> Path:
    """The repository root when run from it or from its ``book/`` folder, else the working folder."""
    here = Path.cwd() if cwd is None else Path(cwd)
    for d in (here, here.parent):
        if (d / "inr_lib").is_dir() and (d / "book").is_dir():
            return d
    return here


def shown(path: str | os.PathLike) -> str:
    """``path`` as printed by the book: relative to the repository (``runs/book/...``,
    ``../shared/...``), to ``$INR_DATA`` or to the home folder; a path outside all of them is
    printed as ``.../<last two parts>``. Never an absolute path of the building machine."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    repo = _ROOTS.get("repo", repository_root())
    labelled = [("$INR_DATA", _ROOTS.get("data")), ("$DRIVE", _ROOTS.get("drive")),
                *((k, v) for k, v in _ROOTS.items() if k.startswith("$"))]
    for label, root in labelled:
        if root is not None and p.is_relative_to(root):
            rel = p.relative_to(root).as_posix()
            return label if rel == "." else f"{label}/{rel}"
    if p.is_relative_to(repo):
        return p.relative_to(repo).as_posix() or "."
    up = os.path.relpath(p, repo)
    if up.count("..") <= 2:
        return Path(up).as_posix()
    home = Path.home()
    if p.is_relative_to(home):
        return "~/" + p.relative_to(home).as_posix()
    return ".../" + "/".join(p.parts[-2:])


def alias(path: str | os.PathLike, label: str) -> None:
    """Print ``path`` (e.g. a temporary folder) as ``label`` (e.g. ``"$TMP"``) from now on."""
    if not label.startswith("$"):
        raise ValueError(f"an alias is printed like a variable: start it with '$', got {label!r}")
    _ROOTS[label] = Path(os.path.abspath(Path(path).expanduser()))


def shorten(text: str) -> str:
    """Replace the absolute folders :func:`shown` knows in ``text`` (e.g. a command's output)."""
    roots = [(r, shown(r)) for r in _ROOTS.values()] + [(Path.home(), "~")]
    for root, short in sorted(roots, key=lambda x: -len(str(x[0]))):
        text = text.replace(str(root) + os.sep, "" if short == "." else short + "/")
        text = text.replace(str(root), short)
    return text


class _ShortPaths:
    """A text stream that prints the folders :func:`shorten` knows in their short form."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        self._stream.write(shorten(text) if isinstance(text, str) else text)
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def short_paths() -> None:
    """From now on, text printed to ``sys.stdout`` / ``sys.stderr`` (the chapter's and the
    library's messages, e.g. ``resuming <run folder>``) shows folders as :func:`shorten` does."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _ShortPaths):
            setattr(sys, name, _ShortPaths(stream))


@dataclass
class Book:
    """What :func:`setup` found: use ``bk.device``, ``bk.data.path``, ``bk.source``, ...

    Attributes:
        chapter: chapter number as a string, e.g. ``"07"``.
        profile: ``"quick"`` (CPU-sized) or ``"full"`` (the paper recipe on a GPU).
        device: the ``torch.device`` the chapter uses.
        data: :class:`inr_lib.data.DataRoot` ``(path, kind, source)`` of the CAVE-layout data.
        source: label for figure titles: ``"real CAVE"`` or ``"synthetic CAVE-layout data"``.
        root: the repository root (or the working folder outside the repository).
        runs: the folder that holds the book's training runs (on Google Drive in Colab).
        colab: running in Google Colab.
        auto: the profile was picked automatically (``PROFILE = "auto"``, no ``$INR_PROFILE``):
            chapters then start no more than :data:`AUTO_LIMIT_MINUTES` of training
            (:func:`inr_lib.book.selection.choose`).
        t0: ``time.perf_counter()`` when the chapter started.
    """

    chapter: str
    profile: str
    device: torch.device
    data: DataRoot
    source: str
    root: Path
    runs: Path
    colab: bool = False
    auto: bool = False
    t0: float = field(default_factory=time.perf_counter)

    @property
    def real(self) -> bool:
        """True on real CAVE data."""
        return self.data.kind == "cave"

    @property
    def config(self) -> str:
        """The training preset of this profile (chapters 7 and 8): ``quick``, ``colab`` or ``paper``."""
        if self.profile == "full" and self.colab:
            return "colab"
        return CONFIG_OF_PROFILE[self.profile]

    def run_dir(self, name: str) -> Path:
        """``runs/<name>-<config>``: chapter 8's ``run_dir("ch07")`` is chapter 7's run."""
        return self.runs / f"{name}-{self.config}"

    def split(self) -> dict:
        """The train/test split of this chapter's data (:func:`inr_lib.data.split_available`):
        ``dev18`` when the data hold its 18 scenes, so a reader's runs are scored on the same
        test scenes as the shipped models; otherwise the split that matches the data."""
        available = [s.name for s in data.list_cave_scenes(self.data.path)]
        dev18 = data.cave_split("dev18")
        use = "dev18" if set(dev18["train"]) | set(dev18["test"]) <= set(available) else None
        return data.split_available(available, use)

    def env(self) -> dict:
        """Environment for a ``python -m inr_lib`` subprocess: this profile, one thread on a CPU."""
        env = {**os.environ, "INR_PROFILE": self.profile}
        if getattr(self.device, "type", "cpu") == "cpu":
            env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        return env

    def elapsed(self) -> float:
        """Seconds since :func:`setup`."""
        return time.perf_counter() - self.t0

    def done(self) -> None:
        """Print the chapter's last line: how long it ran, with which profile, device and data."""
        print(f"This chapter ran in {self.elapsed():.0f} s (profile {self.profile}, "
              f"device {self.device.type}, data: {self.source}).")

    def cli(self, *args: object, json_out: Path | None = None,
            stamp_after: Path | None = None) -> Any:
        """Run ``python -m inr_lib ARGS`` in the repository root (see :func:`run_cli`)."""
        return run_cli(*args, json_out=json_out, cwd=self.root, env=self.env(),
                       stamp_after=stamp_after)


# ----------------------------------------------------------------------------- setup


def _mount_drive(mount: bool) -> Path | None:
    """Mount Google Drive in Colab unless it is mounted already (one prompt per runtime); the
    book's folder on it, or None if not wanted or declined."""
    if not mount:
        return None
    mount_point = drive_mount()
    if not (mount_point / "MyDrive").is_dir():
        try:
            from google.colab import drive
            drive.mount(str(mount_point))
        except Exception as e:  # declined, or no Drive in this runtime
            print(f"Google Drive not mounted ({type(e).__name__}: {e}).")
            return None
    folder = mount_point / "MyDrive" / DRIVE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _colab_home(drive: bool) -> Path:
    """The folder holding ``data/`` and ``runs/`` in Colab; sets ``$INR_DATA`` to its ``data/``."""
    home = _mount_drive(drive)
    if home is not None:
        _ROOTS["drive"] = home
    else:
        home = colab_content() / DRIVE_FOLDER
        why = ("USE_DRIVE is off (tick it to keep them on Google Drive)" if not drive
               else "Google Drive is not mounted")
        print(f"data and runs go to {home} on this runtime's disk and are lost when the runtime "
              f"ends: {why}.")
    os.environ.setdefault("INR_DATA", str(home / "data"))
    return home


def _pick_profile(requested: str | None, has_real: bool, colab: bool, cuda: bool,
                  chapter: str | None = None) -> str:
    """``quick`` or ``full``; ``auto`` picks ``full`` on a GPU (in Colab on any GPU, elsewhere
    with real data) unless the chapter's full profile trains longer than
    :data:`AUTO_LIMIT_MINUTES`, and says why it chose what it chose."""
    if requested in (None, "", "auto") and not os.environ.get("INR_PROFILE"):
        full_min = _full_minutes(chapter)
        if cuda and full_min is not None and full_min > AUTO_LIMIT_MINUTES:
            print(f"profile: quick (auto: this chapter's full profile trains for about "
                  f"{_duration(full_min * 60)}, longer than {AUTO_LIMIT_MINUTES} min; set "
                  f"PROFILE = \"full\" to run it)")
            return "quick"
        if colab and cuda:
            print("profile: full (automatic: a Colab GPU; CAVE is fetched once)")
            return "full"
    if requested in ("", "auto"):
        requested = None
    return get_profile(requested, has_real_data=has_real)


def _full_minutes(chapter: str | None) -> float | None:
    """The chapter's full-profile training time in minutes (recorded estimate), or None."""
    entry = chapter_times().get("chapters", {}).get(str(chapter or ""), {})
    full = entry.get("full") or {}
    return full.get("train_minutes")


def chapter_times() -> dict:
    """The recorded chapter times (``chapter_times.json`` next to this module; ``{}`` if absent):
    ``{"chapters": {"07": {"quick": {"seconds": ...}, "full": {"minutes": ...,
    "train_minutes": ..., "basis": ...}}}, "quick_protocol": ...}``."""
    try:
        return json.loads(TIMES_FILE.read_text())
    except (OSError, ValueError):
        return {}


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min`` or ``3.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _times_line(chapter: str) -> str | None:
    """One line: the chapter's measured quick time and its full-profile time, labelled."""
    entry = chapter_times().get("chapters", {}).get(str(chapter), {})
    quick, full = entry.get("quick"), entry.get("full")
    if not quick and not full:
        return None
    parts = []
    if quick:
        parts.append(f"quick profile {_duration(quick['seconds'])} (measured on a shared 2-core CPU)")
    if full:
        ticks = (f", with the default ticks of the chapter's form; each run ticked beyond them adds "
                 f"about {_duration(full['run_minutes'] * 60)}" if full.get("run_minutes") else "")
        parts.append(f"full profile {_duration(full['minutes'] * 60)} ({full['label']}{ticks})")
    return "time: " + "; ".join(parts)


def _find_data(download: bool):
    """Real CAVE if present (downloaded once when ``download``), else the synthetic dataset."""
    root = data.resolve_cave_root()
    if root.kind != "cave" and download:
        dest = data.default_data_root() / "cave"
        print(f"downloading CAVE once to {shown(dest)}: about {CAVE_DOWNLOAD_MB} MB (32 scenes); "
              f"{_download_estimate()}; later chapters reuse it")
        data.download_cave(dest)
        root = data.resolve_cave_root("cave")
    return root


def _download_estimate() -> str:
    """How long the CAVE download takes, labelled: not measured here (no network)."""
    fast, slow = CAVE_DOWNLOAD_MB / 20, CAVE_DOWNLOAD_MB / 5        # seconds at 20 and 5 MB/s
    return (f"about {_duration(fast)} to {_duration(slow)} at 20 to 5 MB/s "
            f"(an estimate: the time depends on the CAVE server)")


def _gpu_note(chapter: str, gpu: bool, device, colab: bool) -> str | None:
    if not gpu:
        return None
    if device.type == "cuda":
        return "this chapter trains models: GPU found."
    where = (" In Colab: Runtime > Change runtime type > T4 GPU, then run the chapter again."
             if colab else "")
    return (f"chapter {chapter} trains models and asks for a GPU; none found, so it runs the "
            f"quick profile's small runs on the CPU (minutes).{where}")


def setup(chapter: str, profile: str | None = "auto", *, gpu: bool = False, drive: bool = True,
          download: bool | None = None, verbose: bool = True,
          shorten_output: bool | None = None) -> Book:
    """Set a chapter up; returns a :class:`Book` and prints what it found.

    Args:
        chapter: the chapter's number, e.g. ``"07"`` (labels and run folder names).
        profile: ``"auto"`` (``$INR_PROFILE`` if set; else ``full`` on a GPU with real data,
            and in Colab on any GPU, unless the chapter's full profile trains longer than
            :data:`AUTO_LIMIT_MINUTES`; else ``quick``), ``"quick"`` or ``"full"``.
        gpu: the chapter trains models (it says so, and how to get a GPU if there is none).
        drive: in Colab, keep data and runs on Google Drive, mounting it if it is not mounted
            yet (the chapters' ``USE_DRIVE`` form field); else on the runtime's disk.
        download: fetch CAVE into ``$INR_DATA/cave`` when it is missing. ``None``: in the full
            profile, and in Colab when Drive is mounted (fetched once for every chapter).
        verbose: print the summary.
        shorten_output: print folders in their short form from now on (:func:`short_paths`),
            so a built page shows no absolute path of the machine that built it. ``None``: in a
            notebook kernel (ipykernel), not in scripts or tests.
    """
    colab = in_colab()
    repo = repository_root()
    _ROOTS["repo"] = repo
    home = _colab_home(drive) if colab else None

    _ROOTS["data"] = default_data_root()
    device = describe_device(verbose=verbose)
    prof = _pick_profile(profile, _has_cave(), colab, torch.cuda.is_available(), str(chapter))
    if download is None:
        download = prof == "full" or (colab and "drive" in _ROOTS)
    root = _find_data(download)
    _ROOTS["cave"] = Path(os.path.abspath(root.path))
    runs = home / "runs" if home is not None else repo / "runs" / "book"
    source = "real CAVE" if root.kind == "cave" else "synthetic CAVE-layout data"
    auto = profile in (None, "", "auto") and not os.environ.get("INR_PROFILE")
    bk = Book(chapter=str(chapter), profile=prof, device=device, data=root, source=source,
              root=repo, runs=runs, colab=colab, auto=auto)
    manifest.record(bk)   # publish builds: which data this chapter used (INR_BOOK_MANIFEST)
    if shorten_output or (shorten_output is None and "ipykernel" in sys.modules):
        short_paths()
    if verbose:
        _summary(bk, _gpu_note(chapter, gpu, device, colab))
        times = _times_line(str(chapter))
        if times:
            print(times)
    return bk


def _has_cave() -> bool:
    """True when real CAVE scenes are where :func:`inr_lib.data.resolve_cave_root` looks first."""
    try:
        return resolve_cave_root("cave").kind == "cave"
    except FileNotFoundError:
        return False


def _summary(bk: Book, note: str | None) -> None:
    print(f"data: {bk.source} in {shown(bk.data.path)}")
    print(f"runs: {shown(bk.runs)}" + (" (Google Drive)" if "drive" in _ROOTS and bk.colab else ""))
    if note:
        print(note)
    print(f"inr_lib {__version__} | torch {torch.__version__}")


# the run helpers print paths with shorten() above, hence imported last
from . import manifest  # noqa: E402
from .runs import Evaluations, evaluate_checkpoint, installed_from, repository_files, run_cli, scene_folder, sha256  # noqa: E402

__all__ = ["setup", "Book", "in_colab", "colab_content", "drive_mount", "chapter_times",
           "repository_root", "shown", "alias", "shorten", "short_paths", "table", "glue", "say", "GLUED",
           "Evaluations", "evaluate_checkpoint", "installed_from",
           "repository_files", "run_cli", "scene_folder", "sha256"]
