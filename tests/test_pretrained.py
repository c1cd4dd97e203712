"""The shipped model zoo: cards validate, weights match their SHA-256, and every shipped model
still scores what its card says on the dev18 test scenes (a model-code change that silently
breaks the shipped weights fails here)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inr_lib import build_model, pretrained
from inr_lib.pretrained import PretrainedError, validate_card

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHIPPED = sorted(pretrained.available())


def _tiny_zoo(root: Path) -> str:
    """A zoo folder with one tiny model and a complete card; returns the model's name."""
    from safetensors.torch import save_file

    from inr_lib.files.atomic import sha256_file

    model = build_model("tiny", seed=3)
    (root / "weights").mkdir(parents=True)
    (root / "cards").mkdir()
    path = root / "weights" / "toy.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    result = {"mean": {"psnr": 1.0, "ssim": 0.5, "sam": 30.0, "mrae": 0.9}, "per_scene": [],
              "protocol": {"inference": {"mode": "tiled"}}}
    card = {
        "name": "toy", "description": "a tiny untrained model for tests", "arch": "inr",
        "model_config": model.config.to_dict(), "params": sum(p.numel() for p in model.parameters()),
        "config_file": "inr_lib/configs/tiny.yaml",
        "train_config": {"crop_size": 16, "val_overlap": 4, "rgb_source": "dataset"},
        "command": "python -m inr_lib train --config tiny --data synthetic --out runs/toy",
        "data": {"dataset": "synthetic", "split": "fallback", "train_scenes": [], "test_scenes": []},
        "training": {"epochs": 0, "steps": 0, "batch_size": 4, "samples": 0, "wall_time_s": 0,
                     "machine": "none", "torch": torch.__version__},
        "code_commit": "0" * 40,
        "weights": {"file": path.name, "sha256": sha256_file(path), "dtype": "float32",
                    "bytes": path.stat().st_size},
        "recommended_mode": "tiled", "evaluation": {"tiled": result},
    }
    (root / "cards" / "toy.json").write_text(json.dumps(card))
    return "toy"


@pytest.fixture
def toy_zoo(tmp_path, monkeypatch):
    name = _tiny_zoo(tmp_path / "zoo")
    monkeypatch.setattr(pretrained, "_root", lambda: tmp_path / "zoo")
    return tmp_path / "zoo", name


def test_load_gives_the_saved_function_in_eval_mode(toy_zoo):
    root, name = toy_zoo
    assert pretrained.available() == {name: "a tiny untrained model for tests"}
    model = pretrained.load(name)
    assert not model.training and model.checkpoint_info["path"] == f"pretrained:{name}"
    reference = build_model("tiny", seed=3).eval()
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_tampered_weights_are_refused(toy_zoo):
    root, name = toy_zoo
    path = root / "weights" / f"{name}.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01                          # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match="do not match their card"):
        pretrained.load(name)


def test_unknown_name_lists_the_shipped_ones(toy_zoo):
    with pytest.raises(PretrainedError, match=r"available: \['toy'\]"):
        pretrained.load("nope")
    with pytest.raises(PretrainedError, match="no shipped model"):
        pretrained.card("nope")


def test_invalid_cards_are_reported(toy_zoo):
    root, name = toy_zoo
    good = json.loads((root / "cards" / f"{name}.json").read_text())
    assert validate_card(good) == []
    for broken, pattern in (
        ({**good, "weights": {**good["weights"], "sha256": "abc"}}, "sha256"),
        ({k: v for k, v in good.items() if k != "command"}, "'command' missing"),
        ({**good, "recommended_mode": "whole"}, "no evaluation"),
        ({**good, "evaluation": {"tiled": {"mean": {}}}}, "not a result file"),
        ({**good, "training": {"epochs": 1}}, "training.steps missing"),
    ):
        assert any(pattern in p for p in validate_card(broken)), pattern
    (root / "cards" / f"{name}.json").write_text(json.dumps({**good, "arch": "gan"}))
    with pytest.raises(PretrainedError, match="arch must be"):
        pretrained.card(name)


def test_command_line_takes_a_shipped_model(toy_zoo, synth, tmp_path, run_cli):
    from PIL import Image

    out = tmp_path / "eval.json"
    rc, _, _, errors = run_cli(["evaluate", "--pretrained", "toy", "--data", synth,
                                "--json", out, "--no-progress"])
    assert rc == 0 and not errors
    protocol = json.loads(out.read_text())["protocol"]
    assert protocol["checkpoint"] == "pretrained:toy"
    assert protocol["inference"]["tile"] == 16 and protocol["inference"]["overlap"] == 4
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)).save(photo)
    rc, _, _, errors = run_cli(["reconstruct", "--pretrained", "toy", "--rgb", photo,
                                "--out", tmp_path / "cube.npy"])
    assert rc == 0 and not errors
    cube = np.load(tmp_path / "cube.npy")
    assert cube.shape == (31, 20, 24)
    with torch.no_grad():
        want = pretrained.load("toy").predict(torch.from_numpy(
            np.asarray(Image.open(photo), dtype=np.float32).transpose(2, 0, 1) / 255)[None], tile=16, overlap=4)
    np.testing.assert_allclose(cube, want[0].clamp(0, 1).numpy(), atol=1e-6)
    rc, _, _, errors = run_cli(["evaluate", "--pretrained", "nope", "--data", synth,
                                "--json", tmp_path / "x.json"])
    assert rc == 1 and "available: ['toy']" in errors[0]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_card_validates_and_weights_match(name):
    info = pretrained.card(name)
    assert info["name"] == name and info["data"]["split"] == "dev18"
    assert (Path(pretrained.__file__).parent / info["config_file"].split("pretrained/", 1)[1]).is_file()
    model = pretrained.load(name)
    assert sum(p.numel() for p in model.parameters()) == info["params"]


def test_shipped_weights_fit_the_size_limit():
    # 40 MB (was 30 MB): raised for the full ablation zoo, the continuous and coordinate heads and
    # the MST++-style baseline; the package must stay a quick pip install from git
    total = sum(p.stat().st_size for p in (Path(pretrained.__file__).parent / "weights").glob("*.safetensors"))
    assert total <= 40 * 2**20, f"shipped weights take {total / 2**20:.1f} MB, over 40 MB"


@pytest.mark.skipif(not SHIPPED, reason="no shipped models yet")
@pytest.mark.skipif(not (SHARED / "cave_extra").is_dir(),
                    reason="../shared/data (the dev18 scenes) is absent: shipped scores not re-checked")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_scores_what_its_card_says(name):
    from inr_lib.data import load_cave
    from inr_lib.evaluation import evaluate

    info = pretrained.card(name)
    model = pretrained.load(name)
    scenes = load_cave([SHARED / "cave", SHARED / "cave_extra"], info["data"]["test_scenes"], strict=True)
    for mode, result in info["evaluation"].items():
        inf = result["protocol"]["inference"]
        proto = result["protocol"]
        got = evaluate(model, scenes, mode=inf["mode"], tile=inf.get("tile") or 64,
                       overlap=inf.get("overlap") or 0, self_ensemble=inf["self_ensemble"],
                       border=proto["border"], rgb_source=proto["rgb"]["source"], progress=False)
        assert [s["scene"] for s in got["per_scene"]] == [s["scene"] for s in result["per_scene"]]
        for new, old in zip(got["per_scene"], result["per_scene"]):
            assert new["psnr"] == pytest.approx(old["psnr"], abs=0.01), (mode, old["scene"])


def test_label_and_summary_read_the_card(toy_zoo, monkeypatch):
    root, name = toy_zoo
    info = json.loads((root / "cards" / f"{name}.json").read_text())
    info["evaluation"]["tiled"]["mean"] = {"psnr": 31.234, "ssim": 0.9, "sam": 7.891, "mrae": 0.4}
    info["training"].update(epochs=12, steps=3456, wall_time_s=3900.0, machine="2-core box, shared")
    (root / "cards" / f"{name}.json").write_text(json.dumps(info))
    text = pretrained.label(name)
    assert "12 epochs = 3,456 steps" in text and "1 h 05 min on 2-core box;" in text
    assert "31.23 dB, SAM 7.89 deg" in text and "(0 scenes, full images, tiled)" in text
    (root / "baselines").mkdir()
    (root / "baselines" / "ridge.json").write_text(json.dumps(
        {"name": "ridge", "command": "python -m inr_lib baseline ridge",
         "evaluation": {"tiled": {"mean": {"psnr": 25.0, "ssim": 0.7, "sam": 20.0, "mrae": 0.9}}}}))
    rows = pretrained.summary()
    assert [r["name"] for r in rows] == [name, "ridge"]
    assert rows[0]["psnr_tiled"] == 31.234 and rows[0]["psnr_whole"] is None      # no whole eval
    assert rows[0]["steps"] == 3456 and rows[0]["wall_min"] == 65.0
    assert rows[1]["sam_whole"] == rows[1]["sam_tiled"] == 20.0 and rows[1]["params"] is None
    with pytest.raises(PretrainedError, match=r"available: \['ridge'\]"):
        pretrained.baseline("physics")


def test_first_available_prefers_in_order(toy_zoo):
    _, name = toy_zoo
    assert pretrained.first_available("not-yet", name) == name
    with pytest.raises(PretrainedError, match="none of .* is shipped; available: \\['toy'\\]"):
        pretrained.first_available("not-yet", "nor-this")


def test_shipped_ridge_result_is_a_dev18_evaluation():
    b = pretrained.baseline("ridge")
    res = b["evaluation"]["tiled"]
    assert "python -m inr_lib baseline ridge" in b["command"]
    assert res["protocol"]["split"] == "dev18:test" and res["baseline"]["name"] == "ridge"
    assert len(res["baseline"]["fitted_on"]) == 16
    assert 0 < res["mean"]["psnr"] < 60 and set(pretrained.METRICS) <= set(res["mean"])


def test_command_line_lists_the_models_and_a_card(toy_zoo, run_cli):
    rc, out, _, errors = run_cli(["models"])
    assert rc == 0 and not errors
    assert out.splitlines()[1].split()[:5] == ["toy", f"{pretrained.card('toy')['params']:,}", "0", "0", "0m"]
    assert "1.00" in out.splitlines()[1] and "dev18 test" in out          # the card's PSNR
    rc, out, _, _ = run_cli(["models", "--json"])
    assert json.loads(out) == pretrained.summary()
    rc, out, _, errors = run_cli(["models", "--card", "toy"])
    assert rc == 0 and out.startswith(pretrained.label("toy"))
    command = pretrained.runnable_command(pretrained.card("toy")["command"])
    assert f"retrain (real CAVE in $INR_DATA/cave): {command}" in out and " tiled: PSNR 1" in out
    assert pretrained.data_note("toy") in out
    rc, _, _, errors = run_cli(["models", "--card", "nope"])
    assert rc == 1 and "available: ['toy']" in errors[0]


def test_command_line_uses_the_cards_recommended_mode_unless_told(toy_zoo, tmp_path, run_cli):
    from PIL import Image

    root, name = toy_zoo
    info = json.loads((root / "cards" / f"{name}.json").read_text())
    info["evaluation"]["whole"] = info["evaluation"]["tiled"]
    info["recommended_mode"] = "whole"
    (root / "cards" / f"{name}.json").write_text(json.dumps(info))
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(1).random((40, 36, 3)) * 255).astype(np.uint8)).save(photo)
    x = torch.from_numpy(np.asarray(Image.open(photo), dtype=np.float32).transpose(2, 0, 1) / 255)[None]
    model = pretrained.load(name)
    with torch.no_grad():
        want = {"whole": model(x), "tiled": model.predict(x, tile=16, overlap=4)}
    assert (want["whole"] - want["tiled"]).abs().max() > 1e-4        # the two modes differ here
    for extra, mode in (([], "whole"), (["--mode", "tiled"], "tiled")):
        out = tmp_path / f"{mode}.npy"
        rc, _, err, errors = run_cli(["reconstruct", "--pretrained", name, "--rgb", photo,
                                      "--out", out, *extra])
        assert rc == 0 and not errors and ("whole image" in err) == (mode == "whole")
        np.testing.assert_allclose(np.load(out), want[mode][0].clamp(0, 1).numpy(), atol=1e-6)


def test_reconstruct_follows_the_cards_protocol(toy_zoo):
    from inr_lib.evaluation import reconstruct

    root, name = toy_zoo
    info = json.loads((root / "cards" / f"{name}.json").read_text())
    info["evaluation"]["tiled"]["protocol"]["inference"] = {"mode": "tiled", "tile": 16, "overlap": 4,
                                                            "self_ensemble": False}
    info["evaluation"]["tiled"]["per_scene"] = [{"scene": "a", "psnr": 20.5, "sam": 9.0,
                                                 "psnr_per_band": [1.0] * 31}]
    info["evaluation"]["whole"] = {**info["evaluation"]["tiled"],
                                   "protocol": {"inference": {"mode": "whole", "tile": None,
                                                              "overlap": None, "self_ensemble": False}}}
    (root / "cards" / f"{name}.json").write_text(json.dumps(info))
    rgb = torch.rand(1, 3, 40, 36)
    model = pretrained.load(name)
    tiled = pretrained.reconstruct(name, rgb)                       # the recommended mode: tiled
    torch.testing.assert_close(tiled, reconstruct(model, rgb, mode="tiled", tile=16, overlap=4))
    whole = pretrained.reconstruct(name, rgb, mode="whole", model=model)
    torch.testing.assert_close(whole, reconstruct(model, rgb, mode="whole"))
    assert not torch.equal(tiled, whole) and tiled.min() >= 0 and tiled.max() <= 1
    assert pretrained.inference(name)["tile"] == 16
    assert pretrained.scene_scores(name) == {"a": {"psnr": 20.5, "sam": 9.0}}
    with pytest.raises(PretrainedError, match="no 'other' evaluation"):
        pretrained.inference(name, "other")
