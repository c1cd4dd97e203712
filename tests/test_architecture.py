"""The library's layering, read from the source: no module imports a module above it."""
from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "inr_lib"

#: lower imports from lower only: model code never imports training, data never imports the
#: model, nothing imports the command line (modules of one package, e.g. data.*, may import
#: each other). The package itself ("inr_lib": its __init__ imports the model eagerly, the
#: rest lazily) counts as the model's layer.
LAYERS = {
    "inr_lib": 2,
    "_version": 0, "_hashing": 0, "runtime": 0, "spectral": 0, "metrics": 0, "tiling": 0,
    "encoding": 0, "hypernet": 0, "pixelwise": 0,
    "spectral_basis": 1,
    "data": 1,
    "io": 2, "model": 2, "baselines": 2,
    "archs": 3,
    "outputs": 3,
    "checkpoint": 4, "evaluate": 4, "pretrained": 4,
    "train": 5, "zoo": 5, "heldout": 5,
    "book": 6, "figures": 6,
    "cli": 7,
    "__main__": 8,
}


def _unit(module: str) -> str:
    """``inr_lib.data.cave`` -> ``data``; the package itself -> ``inr_lib``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "inr_lib"


def _name(path: Path) -> str:
    """``.../inr_lib/data/cave.py`` -> ``inr_lib.data.cave`` (a package's ``__init__``: the package)."""
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every inr_lib module imported anywhere in ``path``."""
    package = _name(path) if path.name == "__init__.py" else _name(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "inr_lib"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "inr_lib":
                continue
            for a in node.names:   # `from . import metrics` imports the module inr_lib.metrics
                sub = f"{base}.{a.name}"
                found.append((node.lineno, sub if (LIB.parent / (sub.replace(".", "/") + ".py")).exists()
                              or (LIB.parent / sub.replace(".", "/")).is_dir() else base))
    return found


def test_no_module_imports_a_module_above_it():
    problems = []
    for path in sorted(LIB.rglob("*.py")):
        me = _unit(_name(path))
        if me == "inr_lib":          # the package's __init__ re-exports (lazily) what is public
            continue
        assert me in LAYERS, f"{path}: add its module to LAYERS in {__file__}"
        for line, module in _imports(path):
            other = _unit(module)
            if other == me:
                continue
            if LAYERS.get(other, 99) >= LAYERS[me]:
                problems.append(f"{path.relative_to(LIB.parent)}:{line} ({me}, layer {LAYERS[me]}) "
                                f"imports {module} (layer {LAYERS.get(other, '?')})")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    fake = tmp_path / "inr_lib" / "data"
    fake.mkdir(parents=True)
    (fake / "x.py").write_text("def f():\n    from ..model import build_model\n    from .. import cli\n")
    (tmp_path / "inr_lib" / "cli.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "LIB", tmp_path / "inr_lib")
    assert _imports(fake / "x.py") == [(2, "inr_lib.model"), (3, "inr_lib.cli")]
