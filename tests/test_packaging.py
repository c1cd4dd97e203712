"""Packaging and citation metadata: LICENSE, CITATION.cff (CFF 1.2.0), CHANGELOG, extras.

CITATION.cff is checked against the required keys and value types of the Citation File
Format 1.2.0 schema (cff-version, message, title, authors; for each reference type,
title, authors) with PyYAML only, so the test needs no extra package. (The file also
passes ``cffconvert --validate``.)
"""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.9/3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomli on Python < 3.11")

# The enumerations of the CFF 1.2.0 schema that this file uses.
CFF_TYPES = {"software", "dataset"}
CFF_REFERENCE_TYPES = {
    "art", "article", "audiovisual", "bill", "blog", "book", "catalogue", "conference-paper",
    "conference", "data", "database", "dictionary", "edited-work", "encyclopedia",
    "film-broadcast", "generic", "government-document", "grant", "hearing", "historical-work",
    "legal-case", "legal-rule", "magazine-article", "manual", "map", "multimedia", "music",
    "newspaper-article", "pamphlet", "patent", "personal-communication", "proceedings",
    "report", "serial", "slides", "software-code", "software-container",
    "software-executable", "software-virtual-machine", "software", "sound-recording",
    "standard", "statute", "thesis", "unpublished", "video", "website",
}
PERSON_KEYS = {"family-names", "given-names", "name-particle", "name-suffix", "affiliation",
               "email", "orcid", "alias", "website", "address", "city", "country", "fax",
               "post-code", "region", "tel"}


@pytest.fixture(scope="module")
def cff():
    path = REPO / "CITATION.cff"
    assert path.is_file(), "CITATION.cff is missing at the repository root"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _check_authors(authors, where: str) -> None:
    assert isinstance(authors, list) and authors, f"{where}: authors must be a non-empty list"
    for a in authors:
        assert isinstance(a, dict), f"{where}: each author is a mapping, found {a!r}"
        if "name" in a:  # an entity: name is required
            assert isinstance(a["name"], str) and a["name"].strip(), f"{where}: empty entity name"
        else:  # a person: only person keys, and a family or given name
            assert set(a) <= PERSON_KEYS, f"{where}: unknown person keys {set(a) - PERSON_KEYS}"
            assert a.get("family-names") or a.get("given-names"), f"{where}: person without a name"


def test_citation_cff_required_keys(cff):
    assert cff["cff-version"] == "1.2.0"  # a string: an unquoted 1.2 would be a float
    for key in ("message", "title"):
        assert isinstance(cff[key], str) and cff[key].strip(), f"CITATION.cff: {key} is empty"
    assert cff.get("type", "software") in CFF_TYPES
    _check_authors(cff["authors"], "CITATION.cff")


def test_citation_cff_references(cff):
    refs = cff["references"]
    assert isinstance(refs, list) and refs
    for i, ref in enumerate(refs):
        where = f"CITATION.cff references[{i}]"
        assert ref["type"] in CFF_REFERENCE_TYPES, f"{where}: type {ref['type']!r} is not a CFF type"
        assert isinstance(ref["title"], str) and ref["title"].strip()
        _check_authors(ref["authors"], where)
        if "year" in ref:
            assert isinstance(ref["year"], int)
    titles = " | ".join(r["title"] for r in refs)
    assert "Implicit Neural Representation Learning for Hyperspectral Image Super-Resolution" in titles
    data = [r["title"] for r in refs if r["type"] == "data"]
    for name in ("CAVE", "NUS", "NTIRE 2018"):
        assert any(name in t for t in data), f"CITATION.cff: no data reference for {name}"


def _version() -> str:
    """The package version: ``inr_lib/_version.py`` (pyproject.toml reads it from there)."""
    text = (REPO / "inr_lib" / "_version.py").read_text(encoding="utf-8")
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def test_citation_matches_package_metadata(cff, pyproject):
    project = pyproject["project"]
    assert project["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "inr_lib._version.__version__"
    assert str(cff["version"]) == _version()
    assert cff["license"] == project["license"] == "MIT"


def test_license_is_mit():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert re.search(r"Copyright \(c\) \d{4} the INR-HSISR book authors", text)
    assert "WITHOUT WARRANTY OF ANY KIND" in text


def test_changelog_has_current_version(pyproject):
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [0.1.0]" in text
    assert f"## [{_version()}]" in text or "## [Unreleased]" in text


def test_py_typed_is_shipped(pyproject):
    assert (REPO / "inr_lib" / "py.typed").is_file()
    data = pyproject["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data.get("inr_lib", []) + data.get("*", [])


def _names(reqs) -> set:
    """Distribution names (lower case, '-' for '_') of requirement strings."""
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_extras(pyproject):
    project = pyproject["project"]
    extras = project["optional-dependencies"]
    assert {"notebook", "dev", "docs"} <= set(extras)
    assert "safetensors" in _names(project["dependencies"])
    assert {"ipywidgets", "ipykernel"} <= _names(extras["notebook"])
    assert {"pytest", "hypothesis", "nbval", "nbformat"} <= _names(extras["dev"])
    assert "jupyter-book" in _names(extras["docs"])


# Import name -> distribution name where they differ.
_DIST_OF = {"PIL": "pillow", "yaml": "pyyaml", "IPython": "ipython", "skimage": "scikit-image",
            "png": "pypng", "colour": "colour-science", "myst_nb": "myst-nb"}


def _chapter_imports() -> set:
    mods = set()
    for nb_path in sorted((REPO / "book").rglob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            code = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Import):
                    mods |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    mods.add(node.module.split(".")[0])
    return mods


def test_notebook_extra_covers_chapter_imports(pyproject):
    """`pip install inr_lib[notebook]` installs every package a chapter imports."""
    project = pyproject["project"]
    provided = _names(project["dependencies"]) | _names(project["optional-dependencies"]["notebook"])
    stdlib = getattr(sys, "stdlib_module_names", None)
    if stdlib is None:  # pragma: no cover - Python 3.9
        pytest.skip("sys.stdlib_module_names needs Python 3.10+")
    mods = _chapter_imports()
    assert "inr_lib" in mods and "torch" in mods
    local = {p.stem for p in (REPO / "book").glob("*.py")}       # e.g. book/_figures.py
    third_party = {m for m in mods if m not in stdlib | local and m != "inr_lib"}
    missing = {m for m in third_party if _DIST_OF.get(m, m).lower() not in provided}
    assert not missing, (
        f"chapters import {sorted(missing)}, which neither the dependencies nor the 'notebook' "
        f"extra of pyproject.toml install: add them to [project.optional-dependencies] notebook."
    )


# Modules whose public functions promise full type hints (the package ships py.typed).
TYPED_MODULES = ["__init__", "cli", "commands", "runtime", "spectral", "pretrained/__init__",
                 "model/basis", "model/baselines", "model/config", "model/encoding", "model/hypernet",
                 "model/inr", "model/pixelwise", "model/registry", "model/tiling",
                 "train/config", "train/loop", "train/rundir", "evaluation/metrics", "evaluation/scoring",
                 "files/atomic", "files/ownership", "files/checkpoints", "files/images", "files/outputs",
                 "files/readers",
                 "book/__init__", "book/display", "book/figures", "book/folds", "book/heldout", "book/manifest",
                 "book/runs",
                 "book/selection", "book/training", "book/zoo", "model/queries", "book/diagnose",
                 "model/coordinate", "model/mstpp",
                 "data/cave", "data/cave_splits", "data/download", "data/ntire2018", "data/nus",
                 "data/patches", "data/roots", "data/scene", "data/spec", "data/synthetic", "book/quiz"]


def test_typed_modules_cover_every_public_module():
    """Every public module of inr_lib (and every package ``__init__`` defining functions) is checked."""
    lib = REPO / "inr_lib"
    expected = set()
    for path in lib.rglob("*.py"):
        rel = path.relative_to(lib).with_suffix("").as_posix()
        if path.name == "__init__.py":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body):
                expected.add(rel)
        elif not path.name.startswith("_"):
            expected.add(rel)
    assert expected <= set(TYPED_MODULES), f"add to TYPED_MODULES: {sorted(expected - set(TYPED_MODULES))}"


def _functions_lacking_hints(path: Path) -> list[str]:
    """Public functions and methods of public classes in ``path`` without full annotations
    (every parameter except self/cls, and the return value except for ``__init__``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            candidates = [(f"{node.name}.{f.name}", f, True) for f in node.body
                          if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                          and (not f.name.startswith("_") or f.name in ("__init__", "__call__"))]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            candidates = [(node.name, node, False)]
        else:
            continue
        for name, f, is_method in candidates:
            a = f.args
            params = a.posonlyargs + a.args + a.kwonlyargs
            if is_method and params and params[0].arg in ("self", "cls"):
                params = params[1:]
            params += [p for p in (a.vararg, a.kwarg) if p is not None]
            missing = [p.arg for p in params if p.annotation is None]
            if f.returns is None and f.name != "__init__":
                missing.append("return")
            if missing:
                found.append(f"{name} ({', '.join(missing)})")
    return found


@pytest.mark.parametrize("module", TYPED_MODULES)
def test_public_functions_have_type_hints(module):
    path = REPO / "inr_lib" / f"{module}.py"
    lacking = _functions_lacking_hints(path)
    assert not lacking, f"inr_lib/{module}.py: public functions without full type hints: {lacking}"
