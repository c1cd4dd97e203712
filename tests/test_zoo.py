"""The ablation table of the shipped zoo (inr_lib.book.zoo): seeds paired by name, mean and spread
over seeds, difference to the reference, variants without a card kept as "not trained yet", and
the verdict against the seed noise."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from inr_lib import pretrained
from inr_lib.book import zoo

METRICS = {"psnr": 0.0, "ssim": 0.9, "sam": 10.0, "mrae": 0.5}


def _config(name: str, model: dict, seed: int = 0, **recipe) -> dict:
    return {"name": name, "arch": "inr", "model": model, "model_preset": "small", "epochs": 50,
            "seed": seed, "lr": 1.0e-3, **recipe}


def _card(cfg: dict, psnr_tiled: float, psnr_whole: float, epochs: int = 50) -> dict:
    def result(mode: str, psnr: float) -> dict:
        return {"mean": {**METRICS, "psnr": psnr, "sam": 40.0 - psnr},
                "per_scene": [], "protocol": {"inference": {"mode": mode, "tile": 64, "overlap": 16}}}

    return {
        "name": cfg["name"], "description": f"test card {cfg['name']}", "arch": "inr",
        "model_config": {}, "params": 1, "config_file": f"configs/{cfg['name']}.yaml",
        "train_config": cfg,
        "command": f"python -m inr_lib train --config configs/{cfg['name']}.yaml --out runs/x",
        "data": {"dataset": "CAVE", "split": "dev18", "train_scenes": ["a", "b"],
                 "test_scenes": ["c", "d"]},
        "training": {"epochs": epochs, "steps": 64 * epochs, "batch_size": 16, "samples": 1,
                     "wall_time_s": 60.0 * epochs, "machine": "test machine, shared", "torch": "x"},
        "code_commit": "0" * 40,
        "weights": {"file": "x.safetensors", "sha256": "0" * 64, "dtype": "float16", "bytes": 1},
        "recommended_mode": "tiled",
        "evaluation": {"tiled": result("tiled", psnr_tiled), "whole": result("whole", psnr_whole)},
    }


def _zoo(root: Path, configs: list[dict], cards: dict[str, tuple]) -> None:
    """Write ``configs`` as ``configs/<name>.yaml`` and a card for each name in ``cards``
    (value: the card's arguments after the config)."""
    (root / "configs").mkdir(parents=True)
    (root / "cards").mkdir()
    by_name = {c["name"]: c for c in configs}
    for cfg in configs:
        (root / "configs" / f"{cfg['name']}.yaml").write_text(yaml.safe_dump(cfg))
    for name, args in cards.items():
        (root / "cards" / f"{name}.json").write_text(json.dumps(_card(by_name[name], *args)))


@pytest.fixture
def fake_zoo(tmp_path, monkeypatch):
    """reference (seeds 0, 1: 30 / 31 dB tiled), norm-none (seeds 0, 1: 32.4 / 32.6), tile-8
    (seed 0: 30.8), shared-mlp (no card), and a card of another model that is no ablation."""
    configs = [
        _config("abl-reference", {"norm": "instance", "encoding": "global", "tile": 4}),
        _config("abl-reference-s1", {"norm": "instance", "encoding": "global", "tile": 4}, seed=1),
        _config("abl-norm-none", {"norm": "none", "encoding": "global", "tile": 4}),
        _config("abl-norm-none-s1", {"norm": "none", "encoding": "global", "tile": 4}, seed=1),
        _config("abl-tile-8", {"norm": "instance", "encoding": "global", "tile": 8}),
        _config("abl-shared-mlp", {"norm": "instance", "encoding": "global", "tile": 4,
                                   "hyper": "shared"}),
        _config("small", {"norm": "none", "encoding": "tile"}),
    ]
    cards = {"abl-reference": (30.0, 29.0), "abl-reference-s1": (31.0, 28.0),
             "abl-norm-none": (32.4, 32.0), "abl-norm-none-s1": (32.6, 32.2),
             "abl-tile-8": (30.8, 30.0), "small": (40.0, 40.0)}
    _zoo(tmp_path / "zoo", configs, cards)
    monkeypatch.setattr(pretrained, "_root", lambda: tmp_path / "zoo")
    return tmp_path / "zoo"


def test_every_ablation_config_is_a_row_the_reference_first(fake_zoo):
    names = [v.name for v in zoo.ablation_table()]
    assert names == ["reference", "norm-none", "shared-mlp", "tile-8"]      # "small" is no ablation


def test_seeds_are_paired_by_name(fake_zoo):
    ref = zoo.find(zoo.ablation_table(), "reference")
    assert ref.configs == {0: "abl-reference", 1: "abl-reference-s1"}
    assert ref.seeds == [0, 1] and ref.missing == [] and ref.is_reference


def test_mean_and_half_range_over_seeds(fake_zoo):
    variants = zoo.ablation_table()
    ref, nn_ = zoo.find(variants, "reference"), zoo.find(variants, "norm-none")
    assert ref.mean["psnr_tiled"] == pytest.approx(30.5)
    assert ref.spread["psnr_tiled"] == pytest.approx(0.5)
    assert ref.mean["psnr_whole"] == pytest.approx(28.5)
    assert ref.spread["psnr_whole"] == pytest.approx(0.5)
    assert ref.mean["sam_tiled"] == pytest.approx(9.5)                        # 40 - psnr
    assert nn_.spread["psnr_tiled"] == pytest.approx(0.1)
    assert ref.per_seed[1]["psnr_tiled"] == 31.0
    assert set(ref.mean) == set(zoo.KEYS)


def test_one_seed_has_no_spread(fake_zoo):
    tile8 = zoo.find(zoo.ablation_table(), "tile-8")
    assert tile8.seeds == [0] and tile8.spread["psnr_tiled"] is None
    assert tile8.mean["psnr_tiled"] == 30.8


def test_difference_to_the_reference_mean(fake_zoo):
    variants = zoo.ablation_table()
    assert zoo.find(variants, "norm-none").diff["psnr_tiled"] == pytest.approx(32.5 - 30.5)
    assert zoo.find(variants, "norm-none").diff["psnr_whole"] == pytest.approx(32.1 - 28.5)
    assert zoo.find(variants, "tile-8").diff["sam_tiled"] == pytest.approx(9.2 - 9.5)
    assert zoo.find(variants, "reference").diff == {}


def test_a_variant_without_a_card_is_not_trained_yet(fake_zoo):
    variants = zoo.ablation_table()
    shared = zoo.find(variants, "shared-mlp")
    assert not shared.trained and shared.missing == ["abl-shared-mlp"]
    assert shared.mean == {} and shared.diff == {}
    assert zoo.verdict(shared, variants) == "not trained yet"


def test_a_missing_second_seed_is_listed(fake_zoo):
    (fake_zoo / "cards" / "abl-reference-s1.json").unlink()
    ref = zoo.find(zoo.ablation_table(), "reference")
    assert ref.seeds == [0] and ref.missing == ["abl-reference-s1"]
    assert ref.mean["psnr_tiled"] == 30.0 and ref.spread["psnr_tiled"] is None


def test_change_is_read_from_the_model_options(fake_zoo):
    variants = zoo.ablation_table()
    assert zoo.find(variants, "tile-8").change == {"tile": (4, 8)}
    assert zoo.find(variants, "shared-mlp").change == {"hyper": ("conv", "shared")}  # preset default
    assert zoo.find(variants, "norm-none").change == {"norm": ("instance", "none")}
    assert zoo.find(variants, "reference").change == {}
    assert zoo.format_change(zoo.find(variants, "tile-8")) == "tile: 4 -> 8"


def test_a_recipe_change_is_shown(tmp_path, monkeypatch):
    model = {"norm": "instance"}
    _zoo(tmp_path, [_config("abl-reference", model), _config("abl-lr", model, lr=1e-2)], {})
    monkeypatch.setattr(pretrained, "_root", lambda: tmp_path)
    lr = zoo.find(zoo.ablation_table(), "lr")
    assert lr.change == {} and lr.recipe_change == {"lr": (1e-3, 1e-2)}
    assert zoo.format_change(lr) == "lr: 0.001 -> 0.01"


def test_verdict_against_the_largest_seed_difference(fake_zoo):
    variants = zoo.ablation_table()
    assert zoo.seed_noise(variants, "psnr_tiled") == (pytest.approx(1.0), "reference")
    assert zoo.verdict(zoo.find(variants, "norm-none"), variants) == "larger than the seed spread"
    assert zoo.verdict(zoo.find(variants, "tile-8"), variants) == "within the seed spread"
    r = zoo.reading(variants, "psnr_tiled")
    assert r["larger than the seed spread"] == ["norm-none"]
    assert r["within the seed spread"] == ["tile-8"]
    assert r["not trained yet"] == ["shared-mlp"]


def test_no_verdict_without_two_seeds_or_without_the_reference(fake_zoo):
    for name in ("abl-reference-s1", "abl-norm-none-s1"):
        (fake_zoo / "cards" / f"{name}.json").unlink()
    variants = zoo.ablation_table()
    assert zoo.seed_noise(variants) is None
    assert zoo.reading(variants)["no seed spread yet"] == ["norm-none", "tile-8"]
    (fake_zoo / "cards" / "abl-reference.json").unlink()
    assert zoo.reading(zoo.ablation_table())["no reference yet"] == ["norm-none", "tile-8"]


def test_seed_suffix_must_match_the_config(tmp_path, monkeypatch):
    m = {"norm": "instance"}
    _zoo(tmp_path, [_config("abl-reference", m), _config("abl-reference-s1", m, seed=0)], {})
    monkeypatch.setattr(pretrained, "_root", lambda: tmp_path)
    with pytest.raises(ValueError, match="the name says seed 1 but its config has seed 0"):
        zoo.ablation_table()


def test_seeds_of_one_variant_must_share_the_model(tmp_path, monkeypatch):
    _zoo(tmp_path, [_config("abl-reference", {"norm": "instance"}),
                    _config("abl-reference-s1", {"norm": "none"}, seed=1)], {})
    monkeypatch.setattr(pretrained, "_root", lambda: tmp_path)
    with pytest.raises(ValueError, match="different model options"):
        zoo.ablation_table()


def test_protocol_reads_the_budget_from_the_cards(fake_zoo):
    text = zoo.protocol(zoo.ablation_table())
    assert "5 shipped ablation models" in text and "50 epochs = 3,200 steps of batch 16" in text
    assert "50 min of wall time" in text and "windows of 64 px overlapping by 16" in text
    cfg = _config("abl-tile-8", {"norm": "instance", "encoding": "global", "tile": 8})
    (fake_zoo / "cards" / "abl-tile-8.json").write_text(json.dumps(_card(cfg, 30.8, 30.0, epochs=20)))
    text = zoo.protocol(zoo.ablation_table())
    assert "50 / 20 epochs" in text and "20 to 50 min" in text           # disagreement shown


def test_the_shipped_zoo_table_matches_the_cards():
    """The real package data: every committed abl-*.yaml is a row; shipped numbers are the cards'."""
    variants = zoo.ablation_table()
    configs = {p.stem for p in (pretrained._root() / "configs").glob("abl-*.yaml")}
    assert {n for v in variants for n in v.configs.values()} >= configs
    for v in variants:
        for seed, name in v.configs.items():
            if seed in v.per_seed:
                tiled = pretrained.card(name)["evaluation"]["tiled"]["mean"]["psnr"]
                assert v.per_seed[seed]["psnr_tiled"] == tiled
            else:
                assert name not in pretrained.available()


def test_table_rows_show_mean_spread_difference_and_untrained(fake_zoo):
    variants = zoo.ablation_table()
    header, rows = zoo.format_rows(variants)
    by_name = {r[0]: dict(zip(header, r)) for r in rows}
    assert len(rows) == len(variants) and all(len(r) == len(header) for r in rows)
    assert by_name["reference"]["tiled PSNR (dB)"] == "30.50 ± 0.50"
    assert by_name["reference"]["seeds shipped"] == "0, 1"
    assert by_name["tile-8"]["tiled PSNR (dB)"] == "30.80"                       # one seed: no ±
    assert by_name["norm-none"]["Δ tiled PSNR"] == "+2.00"
    assert by_name["tile-8"]["Δ tiled SAM"] == "-0.30"
    assert by_name["norm-none"]["Δ tiled PSNR vs seed noise"] == "larger than the seed spread"
    shared = by_name["shared-mlp"]
    assert shared["tiled PSNR (dB)"] == "not trained yet" and shared["seeds shipped"] == "none"
    assert shared["change vs reference"] == "hyper: conv -> shared"


def test_reading_text_names_the_verdicts(fake_zoo):
    text = zoo.reading_text(zoo.ablation_table())
    assert "1.00 dB (`reference`)" in text
    assert "larger than that: `norm-none` (+2.00 dB); within it: `tile-8` (+0.30 dB)." in text


def test_reading_text_without_reference_or_second_seed(fake_zoo):
    for name in ("abl-reference-s1", "abl-norm-none-s1"):
        (fake_zoo / "cards" / f"{name}.json").unlink()
    text = zoo.reading_text(zoo.ablation_table(), "sam_tiled")
    assert "no measure of seed noise for tiled SAM" in text
    # SAM = 40 - PSNR: reference 10.0 (seed 0 only), norm-none 7.6, tile-8 9.2
    assert "(`norm-none` (-2.40°), `tile-8` (-0.80°)) cannot be judged" in text
    (fake_zoo / "cards" / "abl-reference.json").unlink()
    assert "The reference is not shipped yet" in zoo.reading_text(zoo.ablation_table())
