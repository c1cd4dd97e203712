"""inr_lib.book.selection: which runs a chapter trains and which it takes from the shipped zoo."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from inr_lib import book, pretrained
from inr_lib.book import heldout, runs, selection, zoo
from inr_lib.book.selection import NO_COUNTERPART, NOT_SHIPPED, TRAINED
from inr_lib.train import TrainConfig, train

#: runs shaped like chapter 10's: two seeds of the reference, one of the others
RUNS = [("reference", 0), ("reference", 1), ("shared-mlp", 0), ("tile-2", 0), ("norm-none", 1)]
ZOO = {("reference", 0): "abl-reference", ("reference", 1): "abl-reference-s1",
       ("shared-mlp", 0): "abl-shared-mlp", ("tile-2", 0): "abl-tile-2"}
SHIPPED_NOW = {"abl-reference", "abl-reference-s1", "abl-shared-mlp"}
CONFIGURED = SHIPPED_NOW | {"abl-tile-2"}


def _plan(profile="full", ticks=(), **kw):
    kw = {"shipped": SHIPPED_NOW, "configured": CONFIGURED, **kw}
    return selection.plan(RUNS, profile, ticks, ZOO, **kw)


def test_quick_profile_trains_every_run_whatever_the_ticks():
    for ticks in ((), ("shared-mlp",)):
        p = _plan("quick", ticks, run_minutes=60, limit=30)
        assert [c.source for c in p.choices.values()] == [TRAINED] * len(RUNS)
        assert p.present == RUNS and p.minutes == 0 and not p.notes


def test_full_profile_trains_the_ticked_variants_and_maps_the_others_to_the_zoo():
    p = _plan("full", ["shared-mlp"], run_minutes=5)
    assert p.trains(("shared-mlp", 0)) and p.shipped(("shared-mlp", 0)) is None
    assert p.shipped(("reference", 0)) == "abl-reference" and p.shipped(("reference", 1)) == "abl-reference-s1"
    assert p.choices[("tile-2", 0)] == selection.Choice(NOT_SHIPPED, "abl-tile-2")   # configured only
    assert p.choices[("norm-none", 1)].source == NO_COUNTERPART                      # nothing in the zoo
    assert p.present == [("reference", 0), ("reference", 1), ("shared-mlp", 0)]
    assert p.minutes == 5                                                          # one run trained
    lines = "\n".join(p.lines())
    assert "1 of 5 runs train here" in lines and "shared-mlp" in lines.splitlines()[0]
    assert "not shipped yet: tile-2 = abl-tile-2" in lines and "no shipped counterpart" in lines


def test_every_run_of_a_ticked_variant_trains_and_nothing_else_does():
    p = _plan("full", ["reference"])
    assert [r for r in RUNS if p.trains(r)] == [("reference", 0), ("reference", 1)]


def test_a_tick_or_a_counterpart_that_does_not_exist_is_an_error():
    with pytest.raises(ValueError, match="not variants of this chapter"):
        _plan("full", ["no-such-variant"])
    with pytest.raises(ValueError, match="neither shipped nor configured"):
        selection.plan(RUNS, "full", (), {("reference", 0): "abl-typo"}, shipped=SHIPPED_NOW,
                       configured=CONFIGURED)
    with pytest.raises(ValueError, match="profile must be"):
        _plan("fast")


def test_auto_trains_ticked_variants_only_within_the_limit():
    p = _plan("full", ["shared-mlp", "tile-2"], run_minutes=20, limit=30)
    assert p.trains(("shared-mlp", 0)) and not p.trains(("tile-2", 0))   # 20 min, then 40 > 30
    assert p.choices[("tile-2", 0)].source == NOT_SHIPPED and p.minutes == 20
    assert "ticked but not trained: tile-2" in p.notes[0] and 'PROFILE = "full"' in p.notes[0]
    over = _plan("full", ["shared-mlp"], run_minutes=60, limit=30)
    assert not over.trains(("shared-mlp", 0)) and over.shipped(("shared-mlp", 0)) == "abl-shared-mlp"
    assert _plan("full", ["shared-mlp"], run_minutes=60, limit=None).trains(("shared-mlp", 0))


def test_a_shipped_model_trained_on_a_test_scene_is_not_used():
    trained_on = pretrained.card("abl-reference")["data"]["train_scenes"]
    p = _plan("full", test_scenes=[trained_on[0], "not-a-scene"])
    assert not p.has(("reference", 0)) and trained_on[0] in p.choices[("reference", 0)].why
    assert f"abl-reference was trained on the test scenes ['{trained_on[0]}']" in "\n".join(p.lines())
    assert p.has(("shared-mlp", 0)) is False                         # same training scenes
    assert _plan("full", test_scenes=pretrained.card("abl-reference")["data"]["test_scenes"]).has(("reference", 0))


def test_row_labels_say_where_each_row_comes_from():
    p = _plan("full", ["shared-mlp"], here="full profile, recipe 'colab', 2400 steps")
    assert p.label("shared-mlp") == "trained here (full profile, recipe 'colab', 2400 steps)"
    card = pretrained.card("abl-reference")["training"]
    assert p.label("reference") == (f"shipped abl-reference, abl-reference-s1 (small model, {card['epochs']} "
                                    f"epochs = {card['steps']:,} steps of batch {card['batch_size']})")
    assert _plan("full").label("shared-mlp").startswith("shipped abl-shared-mlp (small model, ")
    assert p.label("tile-2") == "absent"
    assert p.summary.startswith("runs trained here: full profile") and "'from' cell" in p.summary
    assert _plan("quick", here="quick profile").summary == "quick profile"


def test_form_fields_are_read_from_the_cell_namespace():
    assert selection.field("shared-mlp") == "TRAIN_SHARED_MLP" and selection.field("tile-2") == "TRAIN_TILE_2"
    ns = {"TRAIN_REFERENCE": False, "TRAIN_SHARED_MLP": True}
    assert selection.ticked(ns, ["reference", "shared-mlp"]) == ["shared-mlp"]
    with pytest.raises(KeyError, match="TRAIN_TILE_2"):
        selection.ticked(ns, ["reference", "tile-2"])


def test_ablation_counterparts_come_from_the_committed_configs():
    mapping = selection.ablation_counterparts(zoo.ablation_table())
    assert mapping[("reference", 0)] == "abl-reference" and mapping[("reference", 1)] == "abl-reference-s1"
    assert ("norm-none", 1) not in mapping                       # no config of a second seed
    configured = {p.stem for p in (pretrained._root() / "configs").glob("*.yaml")}
    assert set(mapping.values()) <= configured
    assert set(selection.CONTINUOUS_COUNTERPARTS.values()) <= configured | set(pretrained.available())


def test_choose_uses_the_chapter_estimate_and_the_auto_limit(capsys):
    minutes = book.chapter_times()["chapters"]["11"]["full"]["run_minutes"]
    runs_ = [("cont-even", 0), ("cont-even", 1), ("bands-all", 0)]
    bk = SimpleNamespace(chapter="11", profile="full", auto=True)
    p = selection.choose(bk, runs_, ["cont-even"], selection.CONTINUOUS_COUNTERPARTS)
    assert p.minutes == pytest.approx(2 * minutes) and p.shipped(("bands-all", 0)) == "small"
    assert "3 runs" in capsys.readouterr().out
    with pytest.raises(ValueError, match="TRAIN_BANDS_ALL"):
        selection.choose(bk, runs_, [], {}, required=[("bands-all", 0)])
    # auto with a limit below one run: the tick is not followed (quick: always trained)
    bk10 = SimpleNamespace(chapter="10", profile="full", auto=True)
    assert not selection.choose(bk10, RUNS[:1], ["reference"], ZOO).trains(("reference", 0))
    bk10.auto = False
    assert selection.choose(bk10, RUNS[:1], ["reference"], ZOO).trains(("reference", 0))


def test_crop_scores_are_the_training_loops_crop_validation(tmp_path, train_val):
    train_scenes, val_scenes = train_val
    cfg = TrainConfig.preset("tiny").replace(epochs=1, val_every=1, val_mode="crops", val_crops=3,
                                             seed=4, amp="off")
    res = train(cfg, train_scenes, val_scenes, tmp_path / "run", device="cpu", progress=False)
    scores = selection.crop_scores(res.model, val_scenes, cfg.crop_size, cfg.val_crops, cfg.seed + 1, "cpu")
    logged = res.history[-1]
    for k in ("psnr", "ssim", "sam", "rmse", "mrae"):
        assert scores[k] == pytest.approx(logged[f"val_{k}"], rel=1e-5), k
    other = selection.crop_scores(res.model, val_scenes, cfg.crop_size, cfg.val_crops, cfg.seed + 2, "cpu")
    assert other["psnr"] != pytest.approx(logged["val_psnr"], rel=1e-6)   # other crops, other score


def test_a_shipped_model_is_evaluated_with_pretrained_and_reused_by_its_weights(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        out = cmd[cmd.index("--json") + 1]
        sha = pretrained.card("abl-reference")["weights"]["sha256"]
        (tmp_path / out).write_text(json.dumps({"protocol": {"checkpoint_sha256": sha}}))
        return SimpleNamespace(returncode=0, stdout="ok", stderr="")

    monkeypatch.setattr(runs.subprocess, "run", fake_run)
    out = tmp_path / "eval-tiled.json"
    assert runs.evaluate_checkpoint("pretrained:abl-reference", out, ["--mode", "tiled"])
    assert calls[0][calls[0].index("--pretrained") + 1] == "abl-reference" and "--checkpoint" not in calls[0]
    assert not runs.evaluate_checkpoint("pretrained:abl-reference", out, ["--mode", "tiled"])   # reused
    out.write_text(json.dumps({"protocol": {"checkpoint_sha256": "another"}}))
    assert runs.evaluate_checkpoint("pretrained:abl-reference", out, ["--mode", "tiled"]) and len(calls) == 2


def test_heldout_rows_can_say_where_each_model_comes_from():
    s = heldout.summarise([torch.full((31,), 0.01).numpy()])
    rows = heldout.table_rows({"a": s, "b": s}, {"a": "A", "b": "B"}, {"a": "trained here"})
    assert [r[-1] for r in rows] == ["trained here", ""] and len(rows[0]) == len(heldout.TABLE_HEADER) + 1
    assert len(heldout.table_rows({"a": s}, {"a": "A"})[0]) == len(heldout.TABLE_HEADER)
