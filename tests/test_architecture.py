"""The library's layering, read from the source: no module imports a module above it."""
from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "inr_lib"

#: a package (or one module of it, where it sits lower than its package) imports only from
#: lower layers: the model never imports training, the data never import the model's network,
#: the core packages (files, data, model, evaluation, train) never import `pretrained`, `book`
#: or the command line. Modules of one unit may import each other. The package itself
#: ("inr_lib": its __init__ imports the model eagerly, the rest lazily) is exempt.
LAYERS = {
    "inr_lib": 2,
    "_version": 0, "spectral": 0, "runtime": 0, "evaluation.metrics": 0,
    "files": 1, "model.tiling": 1,
    "data": 2, "model": 2,
    "files.checkpoints": 3,
    "evaluation": 4,
    "train": 5,
    "pretrained": 6,
    "book": 7,
    "commands": 8,
    "cli": 9,
    "__main__": 10,
}
CORE = ("files", "data", "model", "evaluation", "train", "spectral", "runtime")


def _unit(module: str) -> str:
    """``inr_lib.files.checkpoints`` -> ``files.checkpoints`` (a unit of its own in LAYERS),
    ``inr_lib.data.cave`` -> ``data``; the package itself -> ``inr_lib``."""
    parts = module.split(".")
    if len(parts) > 2 and ".".join(parts[1:3]) in LAYERS:
        return ".".join(parts[1:3])
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
            for a in node.names:   # `from . import metrics` imports the module inr_lib.evaluation.metrics
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


def test_core_packages_never_import_book_cli_or_pretrained():
    problems = []
    for path in sorted(LIB.rglob("*.py")):
        if _unit(_name(path)).split(".")[0] not in CORE:
            continue
        for line, module in _imports(path):
            if _unit(module).split(".")[0] in ("book", "cli", "pretrained"):
                problems.append(f"{path.relative_to(LIB.parent)}:{line} imports {module}")
    assert not problems, "\n".join(problems)


#: size limits: a file, a function, a class (lines, not counting the function's or class's
#: docstring)
MAX_FILE, MAX_FUNCTION, MAX_CLASS = 500, 60, 200
#: imports that may stay inside functions: optional or slow-to-import dependencies, loaded
#: where they are used so that ``import inr_lib`` stays light; every other import is at the
#: top of its file
LAZY_OK = ("colour", "skimage", "scipy", "matplotlib", "IPython", "ipywidgets", "google.colab",
           "myst_nb", "tifffile", "platformdirs", "torch.distributed")
MAX_LAZY = 20
#: files still over MAX_FILE while they are being split, with the size they may not exceed
KNOWN_LONG: dict[str, int] = {}


def _sizes(path: Path):
    """``(kind, name, lines)`` of every function and class in ``path`` (docstrings not counted)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            n = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                n -= first.end_lineno - first.lineno + 1
            yield ("class" if isinstance(node, ast.ClassDef) else "function"), node.name, n


def test_no_file_function_or_class_is_too_long():
    problems = []
    for path in sorted(LIB.rglob("*.py")):
        rel = path.relative_to(LIB.parent)
        lines = len(path.read_text().splitlines())
        limit = max(MAX_FILE, KNOWN_LONG.get(rel.as_posix(), 0))
        if lines > limit:
            problems.append(f"{rel}: {lines} lines (at most {limit})")
        for kind, name, n in _sizes(path):
            limit = MAX_CLASS if kind == "class" else MAX_FUNCTION
            if n > limit:
                problems.append(f"{rel}: {kind} {name} has {n} lines (at most {limit})")
    over = [f"{name} ({n} lines)" for name in KNOWN_LONG
            if (n := len((LIB.parent / name).read_text().splitlines())) > MAX_FILE]
    print(f"files over {MAX_FILE} lines, still being split:", ", ".join(over) or "none")
    assert not problems, "\n".join(problems)


def _function_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import statement inside a function of ``path``."""
    found = set()
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    found |= {(node.lineno, a.name) for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    found.add((node.lineno, "." * node.level + (node.module or "")))
    return sorted(found)


def test_imports_are_at_the_top_except_optional_heavy_dependencies():
    lazy, misplaced = [], []
    for path in sorted(LIB.rglob("*.py")):
        for line, module in _function_imports(path):
            where = f"{path.relative_to(LIB.parent)}:{line} {module}"
            ok = any(module == m or module.startswith(m + ".") for m in LAZY_OK)
            (lazy if ok else misplaced).append(where)
    print(f"{len(lazy)} imports inside functions (at most {MAX_LAZY}):", *lazy, sep="\n  ")
    assert not misplaced, "move to the top of the file:\n" + "\n".join(misplaced)
    assert len(lazy) <= MAX_LAZY, "\n".join(lazy)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    fake = tmp_path / "inr_lib" / "data"
    fake.mkdir(parents=True)
    (fake / "x.py").write_text("def f():\n    from ..model import build_model\n    from .. import cli\n")
    (tmp_path / "inr_lib" / "cli.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "LIB", tmp_path / "inr_lib")
    assert _imports(fake / "x.py") == [(2, "inr_lib.model"), (3, "inr_lib.cli")]


def test_a_preset_and_a_shipped_model_of_one_name_are_one_design():
    """``build_model(NAME)`` builds the architecture of the shipped model ``NAME``: ``small`` is
    the recommended design at small width, ``small-paper`` the paper's design at that width."""
    from inr_lib import build_model, pretrained
    from inr_lib.model import PRESETS

    shared = sorted(set(PRESETS) & set(pretrained.available()))
    assert {"small", "small-paper"} <= set(shared)
    for name in shared:
        built, shipped = build_model(name), pretrained.load(name)
        print(f"{name}: build_model {built.num_parameters():,} parameters, "
              f"pretrained.load {shipped.num_parameters():,}")
        assert built.num_parameters() == shipped.num_parameters(), name
        assert built.config.to_dict() == shipped.config.to_dict(), name
