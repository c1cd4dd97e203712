"""Data specifications: ``"synthetic"``, ``"cave:DIR"``, ... plus a split -> loaded scenes.

:func:`load_data` is what the command line's ``--data``/``--split`` options do, so a
chapter or script can load exactly what a command would::

    from inr_lib import data
    d = data.load_data("cave:~/data/cave", "dev8", need=("train", "test"))
    d["train"], d["test"]          # lists of Scene
"""
from __future__ import annotations

import sys
from pathlib import Path

from .cave import list_cave_scenes, load_cave, split_available
from .roots import default_data_root, resolve_cave_root
from .synthetic import ensure_synthetic_cave

__all__ = ["DATA_HELP", "parse_split", "load_data", "PARTS"]

PARTS = ("train", "test", "all")

DATA_HELP = """\
Data (--data):
  synthetic, synthetic:DIR  the synthetic CAVE-layout dataset, generated on first use
                            (in $INR_DATA/synthetic_cave, or in DIR)
  cave:DIR                  real CAVE scenes in DIR (plain 'cave': $INR_DATA/cave or
                            $INR_CAVE)
  cave:DIR1,DIR2            the scenes of several folders together (a scene name found in
                            two folders is an error naming both)
  auto                      real CAVE if found, else synthetic

Splits (--split NAME, PART or NAME:PART):
  NAME is a shipped split (default, dev8, dev18; inr_lib/data/splits/cave.json) restricted to
  the scenes present; PART is train, test or all. Without NAME the split is automatic:
  a shipped split whose scenes are exactly the ones present, else 'default' restricted
  to them when all are CAVE scenes, else a fallback (sorted names, every 4th scene to
  test). 'train' fits on the train part and validates on the test part (as the released
  code did; --set val_every=0 trains without looking at it); 'evaluate' and 'baseline'
  score the test part unless another PART is given; 'train --split all' trains on every
  scene without validation (no best.pt), e.g. on a single scene.
"""


def parse_split(value: str | None) -> tuple[str | None, str | None]:
    """``"dev8:test"`` -> ("dev8", "test"); ``"test"`` -> (None, "test"); ``"dev8"`` -> ("dev8", None)."""
    if not value:
        return None, None
    if ":" in value:
        name, part = value.split(":", 1)
        return name or None, part or None
    return (None, value) if value in PARTS else (value, None)


def _resolve_spec(spec: str, verbose: bool) -> tuple[str, Path | list]:
    """``(kind, root)`` of a data spec; ``root`` is a list for several CAVE folders."""
    kind, _, path = spec.partition(":")
    if kind == "synthetic":
        root = Path(path).expanduser() if path else default_data_root() / "synthetic_cave"
        if verbose:
            print(f"synthetic CAVE-layout data at {root} (generated on first use)", file=sys.stderr)
        ensure_synthetic_cave(root)
        return kind, root
    if kind == "cave":
        roots = ([Path(p).expanduser() for p in path.split(",") if p] if path
                 else [resolve_cave_root("cave").path])
        for r in roots:
            if not r.exists():
                raise FileNotFoundError(
                    f"--data cave:{path}: folder {r} does not exist; expected the CAVE scenes "
                    f"there (download them with python -c \"import inr_lib.data as d; "
                    f"d.download_cave({str(r)!r})\", or use --data synthetic)")
        return kind, roots[0] if len(roots) == 1 else roots
    if kind == "auto" and not path:
        found = resolve_cave_root()
        if verbose:
            print(f"using {found}", file=sys.stderr)
        return found.kind, found.path
    raise ValueError(f"--data {spec!r}: expected 'synthetic', 'synthetic:DIR', 'cave:DIR', "
                     f"'cave:DIR1,DIR2' or 'auto'")


def load_data(spec: str, split: str | None = None, need: tuple = ("train", "test"),
              verbose: bool = True, allow_empty: bool = False) -> dict:
    """Resolve a data spec and a split, and load the parts in ``need``.

    Args:
        spec: ``"synthetic"``, ``"synthetic:DIR"``, ``"cave:DIR"``, ``"cave:DIR1,DIR2"``,
            ``"cave"`` or ``"auto"`` (see :data:`DATA_HELP`).
        split: ``NAME``, ``PART`` or ``NAME:PART`` (only ``NAME`` matters here; the part
            to use is the caller's choice), or None for the automatic split.
        need: the parts to load, of ``("train", "test")``.
        verbose: say what is loaded, on stderr.
        allow_empty: a part of ``need`` may have no scenes (e.g. a folder of test scenes only,
            or training on every scene); otherwise each part of ``need`` must have one.

    Returns:
        ``{"train": [Scene], "test": [Scene], "dataset": "cave" | "synthetic", "root": str,
        "split_name": str}`` (a part not in ``need`` is an empty list).
    """
    kind, root = _resolve_spec(spec, verbose)
    name, _ = parse_split(split)
    where = ",".join(map(str, root)) if isinstance(root, list) else str(root)
    found = list_cave_scenes(root)
    if not found:
        raise FileNotFoundError(f"no CAVE scenes found in {where}")
    # evaluation needs only the part it scores: a folder of test scenes alone is fine
    require = () if set(need) == {"train", "test"} and allow_empty else need
    parts = split_available(found, name, require=require)
    if parts["missing"] and verbose:
        print(f"note: {len(parts['missing'])} scenes of split {parts['split']!r} are not in {where}; "
              f"using the {len(parts['train'])} train / {len(parts['test'])} test scenes present",
              file=sys.stderr)
    if verbose:
        print(f"loading {sum(len(parts[p]) for p in need)} scenes ({' + '.join(need)}) from {where} "
              f"(split {parts['split']!r})", file=sys.stderr)
    out = {p: load_cave(root, parts[p], strict=True) if p in need and parts[p] else []
           for p in ("train", "test")}
    return {**out, "dataset": kind, "root": where, "split_name": parts["split"]}
