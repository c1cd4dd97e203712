"""Authoring helpers for the book's notebooks (not part of inr_lib).

* ``write(path, cells, gpu=False)`` builds a clean ``.ipynb`` (no outputs) from a list of
  ``("md" | "code", source)`` pairs; ``gpu=True`` asks Colab for a GPU runtime.
* ``python tools/nbtool.py strip book/*.ipynb`` removes outputs, execution counts and
  widget state from notebooks in place (committed notebooks carry none; a test checks).
* ``python tools/nbtool.py sync-install [--check]`` writes every chapter's Colab install cell
  (the code cell tagged ``colab-install``) and the README's ``pip install`` line from the one
  setting ``repository: url, branch`` in ``_config.yml``. The install cell is pinned to the
  book's library: the release tag or commit of the last change to ``inr_lib/`` or
  ``pyproject.toml`` (:func:`library_pin`), so a reader in Colab gets the code the book was
  built with, not whatever the branch holds that day; the README's line names the branch.
  ``make book`` and ``make test`` run it; ``--check`` only reports files that are out of date
  (exit status 1).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: cell tag of the generated install cell
INSTALL_TAG = "colab-install"
#: the README's install line, whatever URL and branch it names now
PIP_LINE = re.compile(r'pip install "inr_lib @ git\+[^"@\s]+@[^"\s]+"')
#: the files that make the installed library: a pin stays valid while they are unchanged
LIBRARY = ("inr_lib", "pyproject.toml")
#: the install cell's pin, as written by install_cell
PIN = re.compile(r'git\+[^"@\s]+@([^"\s]+)"')


def repository(root: Path = ROOT) -> tuple[str, str]:
    """``(url, branch)`` of the book's repository, from ``root/_config.yml``."""
    cfg = yaml.safe_load((root / "_config.yml").read_text()).get("repository") or {}
    url, branch = str(cfg.get("url", "")).rstrip("/"), str(cfg.get("branch", "main"))
    if not url.startswith(("https://", "http://", "file://")):
        sys.exit(f"{root / '_config.yml'}: set repository.url to the book's repository "
                 f"(https://...), found {url!r}")
    return url, branch


def pip_spec(url: str, branch: str) -> str:
    """The pip requirement that installs inr_lib from the repository."""
    return f"inr_lib @ git+{url}@{branch}"


def install_cell(url: str, ref: str) -> str:
    """Source of the chapters' first code cell: in Colab only (its kernel imports
    ``google.colab`` at start), ``%pip install`` inr_lib at ``ref`` keeping Colab's own torch;
    a failed install stops the notebook with one line saying what to do."""
    return f'''# Colab only (its kernel has imported google.colab): install inr_lib at the version this book
# was built with, keeping Colab's own torch. Written by tools/nbtool.py sync-install (_config.yml).
import sys
if "google.colab" in sys.modules:
    %pip install -q "{pip_spec(url, ref)}"
    if globals().get("_exit_code"):
        raise SystemExit("Installing inr_lib failed (pip's message is above): check that the runtime "
                         "is online, then Runtime > Restart session and run this cell again.")'''


def _git(root: Path, *args: str) -> str | None:
    """Output of ``git ARGS`` in ``root`` (stripped), or None when git fails."""
    try:
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return r.stdout.strip()


def same_library(root: Path, ref: str) -> bool | None:
    """True when ``ref`` holds the library of the working tree (``inr_lib/``, ``pyproject.toml``
    unchanged since), False when it does not, None when git cannot tell (no checkout, or a
    shallow clone without ``ref``)."""
    if _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
        return None
    try:
        r = subprocess.run(["git", "diff", "--quiet", ref, "--", *LIBRARY], cwd=root,
                           capture_output=True, check=False)
    except OSError:
        return None
    return r.returncode == 0 if r.returncode in (0, 1) else None


def library_pin(root: Path = ROOT, current: str | None = None) -> str | None:
    """The ref the install cells name: ``current`` while it still holds the working tree's
    library; else the release tag (``git describe --exact-match``) or the full commit of the
    last commit that changed ``inr_lib/`` or ``pyproject.toml``. None outside a git checkout.

    Pinning the last *library* commit, not HEAD, lets the notebooks that carry the pin be
    committed afterwards: the commit they name installs the code they were run with."""
    fixed = current and (re.fullmatch(r"[0-9a-f]{40}", current)
                         or _git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{current}"))
    if fixed and same_library(root, current) is not False and _in_history(root, current):
        return current
    commit = _git(root, "log", "-1", "--format=%H", "--", *LIBRARY)
    if not commit:
        return None
    tag = _git(root, "describe", "--tags", "--exact-match", commit)
    return tag or commit


def _in_history(root: Path, ref: str) -> bool:
    """False when ``ref`` is a commit that HEAD does not contain (e.g. rewritten by a rebase,
    so it will never be pushed); True otherwise, also when git cannot tell."""
    try:
        r = subprocess.run(["git", "merge-base", "--is-ancestor", ref, "HEAD"], cwd=root,
                           capture_output=True, check=False)
    except OSError:
        return True
    return r.returncode != 1


def _current_pin(root: Path) -> str | None:
    """The ref the first chapter's install cell names now, if any."""
    for path in sorted((root / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            if INSTALL_TAG in c.metadata.get("tags", []):
                m = PIN.search(c.source)
                return m.group(1) if m else None
    return None


def _install_cells(nb) -> tuple[list, bool]:
    """The tagged install cell(s); tags the old hand-written one or inserts one if none is."""
    cells = [c for c in nb.cells if INSTALL_TAG in c.metadata.get("tags", [])]
    if cells:
        return cells, False
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first is None or "pip" not in first.source or \
            not ("google.colab" in first.source or "/content" in first.source):  # older cells
        at = nb.cells.index(first) if first is not None else len(nb.cells)
        first = nbformat.v4.new_code_cell("")
        first["id"] = INSTALL_TAG
        nb.cells.insert(at, first)
    first.metadata["tags"] = [*first.metadata.get("tags", []), INSTALL_TAG]
    return [first], True


def _sync_notebook(nb, source: str) -> bool:
    """Write ``source`` into the notebook's install cell; True if the notebook changed."""
    cells, changed = _install_cells(nb)
    for c in cells:
        if c.source != source:
            c.source, changed = source, True
    return changed


def sync_install(root: Path = ROOT, check: bool = False) -> list[Path]:
    """Write the install cells (pinned, :func:`library_pin`) and the README's pip line (the
    branch) from the setting; returns the files that were (``check``: would be) changed."""
    url, branch = repository(root)
    pin = library_pin(root, _current_pin(root))
    if pin is None:
        print(f"{root}: not a git checkout; the install cells name the branch {branch!r}")
        pin = branch
    dirty = _git(root, "status", "--porcelain", "--", *LIBRARY)
    if dirty:
        print(f"note: inr_lib has uncommitted changes; the install cells name {pin}. Commit "
              f"them, then run python tools/nbtool.py sync-install again.")
    source, changed = install_cell(url, pin), []
    for path in sorted((root / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if _sync_notebook(nb, source):
            changed.append(path)
            if not check:
                nbformat.write(nb, path)
    readme = root / "README.md"
    if readme.is_file():
        text = readme.read_text()
        new = PIP_LINE.sub(f'pip install "{pip_spec(url, branch)}"', text)
        if new != text:
            changed.append(readme)
            if not check:
                readme.write_text(new)
    return changed


def write(path: str, cells: list[tuple[str, str]], gpu: bool = False) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    if gpu:
        nb.metadata["accelerator"] = "GPU"
        nb.metadata["colab"] = {"gpuType": "T4", "provenance": []}
    for kind, src in cells:
        src = src.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md"
                        else nbformat.v4.new_code_cell(src))
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i:03d}"
    nbformat.validate(nb)
    nbformat.write(nb, path)


def strip(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
        c.metadata.pop("execution", None)
    nbformat.write(nb, path)


USAGE = ("usage: python tools/nbtool.py strip NOTEBOOK.ipynb ...\n"
         "       python tools/nbtool.py sync-install [--check] [REPOSITORY_ROOT]")

if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "strip":
        for p in sys.argv[2:]:
            strip(p)
    elif len(sys.argv) >= 2 and sys.argv[1] == "sync-install":
        rest = [a for a in sys.argv[2:] if a != "--check"]
        check = "--check" in sys.argv[2:]
        root = Path(rest[0]) if rest else ROOT
        files = sync_install(root, check=check)
        url, _ = repository(root)
        verb = "out of date" if check else "updated"
        for f in files:
            print(f"{f.name}: {verb} (install from {url} at {library_pin(root, _current_pin(root))})")
        if check and files:
            sys.exit(f"{len(files)} file(s) do not follow _config.yml's repository setting; "
                     f"run python tools/nbtool.py sync-install")
    else:
        sys.exit(USAGE)
