"""Authoring helpers for the book's notebooks (not part of inr_lib).

* ``write(path, cells, gpu=False)`` builds a clean ``.ipynb`` (no outputs) from a list of
  ``("md" | "code", source)`` pairs; ``gpu=True`` asks Colab for a GPU runtime.
* ``python tools/nbtool.py strip book/*.ipynb`` removes outputs, execution counts and
  widget state from notebooks in place (committed notebooks carry none; a test checks).
* ``python tools/nbtool.py sync-install [--check]`` writes every chapter's Colab install cell
  (the code cell tagged ``colab-install``) and the README's ``pip install`` line from the one
  setting ``repository: url, branch`` in ``_config.yml``. ``make book`` and ``make test`` run
  it; ``--check`` only reports files that are out of date (exit status 1).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: cell tag of the generated install cell
INSTALL_TAG = "colab-install"
#: the README's install line, whatever URL and branch it names now
PIP_LINE = re.compile(r'pip install "inr_lib @ git\+[^"@\s]+@[^"\s]+"')


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


def install_cell(url: str, branch: str) -> str:
    """Source of the chapters' first code cell: installs inr_lib in Colab only (the one place
    with a ``/content`` folder), keeping Colab's own torch build."""
    return f'''# Colab only (it has a /content folder): install inr_lib from the book's repository, keeping
# Colab's own torch. Written by tools/nbtool.py sync-install from _config.yml (repository).
!test -d /content && pip install -q "{pip_spec(url, branch)}"'''


def _install_cells(nb) -> tuple[list, bool]:
    """The tagged install cell(s); tags the old hand-written one or inserts one if none is."""
    cells = [c for c in nb.cells if INSTALL_TAG in c.metadata.get("tags", [])]
    if cells:
        return cells, False
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first is None or "pip" not in first.source or \
            not ("google.colab" in first.source or "/content" in first.source):
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
    """Write the install cells and the README's pip line from the setting; returns the files
    that were (``check``: would be) changed."""
    url, branch = repository(root)
    source, changed = install_cell(url, branch), []
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
        files = sync_install(Path(rest[0]) if rest else ROOT, check=check)
        url, branch = repository(Path(rest[0]) if rest else ROOT)
        verb = "out of date" if check else "updated"
        for f in files:
            print(f"{f.name}: {verb} (install from {url}@{branch})")
        if check and files:
            sys.exit(f"{len(files)} file(s) do not follow _config.yml's repository setting; "
                     f"run python tools/nbtool.py sync-install")
    else:
        sys.exit(USAGE)
