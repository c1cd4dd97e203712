"""The fold protocol's paired comparison (inr_lib.book.folds), on hand-made result files."""
from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from inr_lib.book import folds
from inr_lib.data import cave_split


def _write(root, design, mode, psnr_of):
    for fold in folds.FOLDS:
        scenes = cave_split(fold)["test"]
        per_scene = [{"scene": s, "psnr": psnr_of(s), "sam": 10.0 - psnr_of(s) / 10} for s in scenes]
        (root / f"{design}@{fold}.{mode}.json").write_text(json.dumps({"per_scene": per_scene}))


def test_folds_cover_the_18_scenes_once():
    tests = [s for f in folds.FOLDS for s in cave_split(f)["test"]]
    dev18 = cave_split("dev18")
    assert sorted(tests) == sorted(dev18["train"] + dev18["test"]) and len(tests) == 18
    for f in folds.FOLDS:
        s = cave_split(f)
        assert not set(s["train"]) & set(s["test"]) and len(s["train"]) == 12


def test_compare_is_a_paired_t_interval(tmp_path):
    scenes = sorted(s for f in folds.FOLDS for s in cave_split(f)["test"])
    offset = {s: 0.1 * (i % 5) for i, s in enumerate(scenes)}           # scene-dependent gap
    _write(tmp_path, "a", "whole", lambda s: 30.0 + offset[s] + 0.5)
    _write(tmp_path, "b", "tiled", lambda s: 30.0 + scenes.index(s) * 0.3)  # scene difficulty
    assert folds.designs(tmp_path) == {"a": ("whole",), "b": ("tiled",)}
    c = folds.compare("a", "b", "psnr", modes=("whole", "tiled"), root=tmp_path)
    d = [0.5 + offset[s] - scenes.index(s) * 0.3 for s in scenes]
    mean = sum(d) / 18
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 17)
    half = stats.t.ppf(0.975, 17) * sd / math.sqrt(18)
    assert c.mean == pytest.approx(mean) and c.sd == pytest.approx(sd)
    assert (c.low, c.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert c.wins == sum(x > 0 for x in d) and len(c.diffs) == 18
    assert set(c.per_fold) == set(folds.FOLDS)


def test_verdict_resolves_a_consistent_lead_and_not_noise(tmp_path):
    scenes = sorted(s for f in folds.FOLDS for s in cave_split(f)["test"])
    _write(tmp_path, "good", "tiled", lambda s: 31.0 + 0.01 * scenes.index(s))
    _write(tmp_path, "base", "tiled", lambda s: 30.0)
    _write(tmp_path, "noisy", "tiled", lambda s: 30.0 + (1.0 if scenes.index(s) % 2 else -1.0))
    lead = folds.compare("good", "base", modes=("tiled", "tiled"), root=tmp_path)
    assert lead.verdict.startswith("good leads") and lead.low > 0
    tie = folds.compare("noisy", "base", modes=("tiled", "tiled"), root=tmp_path)
    assert tie.verdict.startswith("no difference resolved") and tie.low < 0 < tie.high
    # lower SAM is better: "good" has the lower SAM, so it leads on SAM too
    sam = folds.compare("good", "base", "sam", modes=("tiled", "tiled"), root=tmp_path)
    assert sam.mean < 0 and sam.verdict.startswith("good leads") and sam.wins == 18


def test_missing_fold_is_one_clear_error(tmp_path):
    _write(tmp_path, "a", "tiled", lambda s: 30.0)
    (tmp_path / "a@dev18-fold2.tiled.json").unlink()
    assert folds.designs(tmp_path) == {}
    with pytest.raises(FileNotFoundError, match="a@dev18-fold2.tiled.json"):
        folds.scene_scores("a", "tiled", tmp_path)
