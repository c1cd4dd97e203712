"""Authoring helpers for the book's notebooks (not part of inr_lib).

* ``write(path, cells, gpu=False)`` builds a clean ``.ipynb`` (no outputs) from a list of
  ``("md" | "code", source)`` pairs; ``gpu=True`` asks Colab for a GPU runtime.
* ``python tools/nbtool.py strip book/*.ipynb`` removes outputs, execution counts and
  widget state from notebooks in place (committed notebooks carry none; a test checks).
"""
from __future__ import annotations

import sys

import nbformat

REPO_URL = "https://github.com/inr-hsisr/inr-hsisr-book"

#: first code cell of every chapter
COLAB_INSTALL = f'''# Setup: in Google Colab, install inr_lib from the book's repository (Colab's own torch is kept).
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "inr_lib @ git+{REPO_URL}@main"], check=True)'''


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


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "strip":
        sys.exit("usage: python tools/nbtool.py strip NOTEBOOK.ipynb ...")
    for p in sys.argv[2:]:
        strip(p)
