"""Hygiene of the book: committed notebooks are clean and every chapter follows the conventions."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "book").glob("*.ipynb"))


def _toc_files():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part["chapters"]:
            files.append(ch["file"])
            files += [s["file"] for s in ch.get("sections", [])]
    return files


def test_there_are_chapters():
    assert NOTEBOOKS, "book/ has no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs_or_widget_state(path):
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata, f"{path.name}: widget state in metadata; run tools/nbtool.py strip"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs; run tools/nbtool.py strip"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


def _nbtool():
    spec = importlib.util.spec_from_file_location("nbtool", REPO / "tools" / "nbtool.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_installs_inr_lib_only_in_colab_pinned_to_the_books_library(path):
    nbtool = _nbtool()
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert nbtool.INSTALL_TAG in first.metadata.get("tags", []), \
        f"{path.name}: first code cell is not the tagged install cell; run tools/nbtool.py sync-install"
    url, _ = nbtool.repository(REPO)
    pin = nbtool.PIN.search(first.source).group(1)
    assert first.source == nbtool.install_cell(url, pin), \
        f"{path.name}: install cell differs from _config.yml's repository; run tools/nbtool.py sync-install"
    assert re.fullmatch(r"[0-9a-f]{40}|v[\w.]+", pin), f"{path.name}: installs {pin!r}, not a commit or tag"
    assert nbtool.same_library(REPO, pin) is not False or _library_dirty(), \
        f"{path.name}: {pin} holds another inr_lib than this checkout; run tools/nbtool.py sync-install"
    pip_lines = [line.strip() for line in first.source.splitlines() if line.strip().startswith("%pip")]
    assert pip_lines == [f'%pip install -q "{nbtool.pip_spec(url, pin)}"'], pip_lines
    assert 'if "google.colab" in sys.modules:' in first.source, "pip runs only in a Colab kernel"
    assert "raise SystemExit(" in first.source, "a failed install stops the notebook"
    assert "torch" not in pip_lines[0], "the install cell must not (re)install torch"
    others = [c.source for c in nb.cells if c is not first]
    assert not any("git+http" in s or "github.com/inr-hsisr" in s for s in others), \
        f"{path.name} hard-codes a repository URL outside its install cell"


def _library_dirty() -> bool:
    """inr_lib has uncommitted changes (a developer's tree): the pin cannot name them yet."""
    out = subprocess.run(["git", "status", "--porcelain", "--", "inr_lib", "pyproject.toml"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    return bool(out.stdout.strip())


def test_install_cell_stops_the_notebook_when_pip_fails():
    """Run the install cell's Python with %pip replaced by a failing command: one line, stopped."""
    nbtool = _nbtool()
    src = nbtool.install_cell("https://example.org/repo", "0" * 40)
    code = src.replace('"google.colab" in sys.modules', "True")
    code = re.sub(r"^(\s*)%pip .*$", r"\1_exit_code = 1", code, flags=re.M)
    with pytest.raises(SystemExit, match="Installing inr_lib failed .* run this cell again"):
        exec(compile(code, "install-cell", "exec"), {})
    ok = re.sub(r"_exit_code = 1", "_exit_code = 0", code)
    exec(compile(ok, "install-cell", "exec"), {})


TRAINS = re.compile(r'torch\.optim\.|(?<![\w.])train\(|bk\.cli\("train"')


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapters_that_train_ask_colab_for_a_gpu_and_set_up_through_the_helper(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = code[1]
    assert "chapter-setup" in setup.metadata.get("tags", []) and "book.setup(" in setup.source
    assert '# @param ["auto", "quick", "full"]' in setup.source, "the profile is a Colab form field"
    assert 'USE_DRIVE = True  # @param {type:"boolean"}' in setup.source and "drive=USE_DRIVE" in setup.source
    assert len(setup.source.splitlines()) <= 8, f"{path.name}: setup cell longer than a few lines"
    if any(TRAINS.search(c.source) for c in code):
        assert nb.metadata.get("accelerator") == "GPU", f"{path.name} trains but does not ask for a GPU"
        assert nb.metadata.get("colab", {}).get("gpuType") == "T4"
        assert "gpu=True" in setup.source, f"{path.name} trains: book.setup(..., gpu=True)"


def _copy_book(dest: Path) -> Path:
    """The files the book's build and the install tool read, copied to ``dest``."""
    for name in ("_config.yml", "_toc.yml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "book", dest / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(REPO / "tools", dest / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _move_repository(root: Path, url: str, branch: str) -> tuple[str, str]:
    """Point ``root/_config.yml`` at another repository; returns the old (url, branch)."""
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    old = cfg["repository"]["url"], cfg["repository"]["branch"]
    text = (root / "_config.yml").read_text()
    (root / "_config.yml").write_text(text.replace(f"url: {old[0]}", f"url: {url}")
                                      .replace(f"branch: {old[1]}", f"branch: {branch}"))
    return old


def test_changing_the_repository_setting_moves_every_install_line(tmp_path):
    """Outside a git checkout (a copy) the URL moves and the install cells keep their pin."""
    pin = _nbtool()._current_pin(REPO)
    root = _copy_book(tmp_path)
    new = "https://github.com/someone/their-fork"
    old_url, _ = _move_repository(root, new, "stable")
    tool = [sys.executable, str(root / "tools" / "nbtool.py"), "sync-install"]
    assert subprocess.run([*tool, "--check", str(root)], capture_output=True).returncode == 1
    subprocess.run([*tool, str(root)], check=True, capture_output=True)
    assert subprocess.run([*tool, "--check", str(root)], capture_output=True).returncode == 0
    for path in [root / "README.md", *sorted((root / "book").glob("*.ipynb"))]:
        text = path.read_text()
        assert old_url not in text, f"{path.name} still names {old_url}"
    readme = (root / "README.md").read_text()
    assert f'pip install "inr_lib @ git+{new}@stable"' in readme
    for path in sorted((root / "book").glob("*.ipynb")):
        assert f"git+{new}@{pin}" in path.read_text(), path.name


@pytest.mark.skipif(shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) is None,
                    reason="jupyter-book is not installed next to this Python")
def test_built_html_follows_the_setting_and_ships_the_css(tmp_path):
    root = _copy_book(tmp_path)
    new = "https://github.com/someone/their-fork"
    old_url, _ = _move_repository(root, new, "stable")
    subprocess.run([sys.executable, str(root / "tools" / "nbtool.py"), "sync-install", str(root)],
                   check=True, capture_output=True)
    cfg = (root / "_config.yml").read_text().replace("execute_notebooks: force", "execute_notebooks: \"off\"")
    (root / "_config.yml").write_text(cfg)
    jb = Path(sys.executable).parent / "jupyter-book"
    out = subprocess.run([str(jb), "build", str(root), "--builder", "html"], capture_output=True,
                         text=True, cwd=root)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    pages = sorted((root / "_build" / "html").rglob("*.html"))
    assert len(pages) >= len(NOTEBOOKS)
    for page in pages:
        text = page.read_text(errors="replace")
        assert old_url not in text, f"{page.relative_to(root)} still names {old_url}"
        assert str(REPO) not in text and str(tmp_path) not in text, f"absolute path in {page.name}"
    chapter = (root / "_build" / "html" / "book" / "07_training.html").read_text()
    assert new in chapter and "book.css" in chapter
    assert (root / "_build" / "html" / "_static" / "book.css").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_is_in_the_table_of_contents(path):
    assert f"book/{path.stem}" in _toc_files()


def test_toc_entries_exist():
    for f in _toc_files():
        assert any((REPO / f).with_suffix(s).exists() for s in (".ipynb", ".md")), f
