"""MST++ (``inr_lib.model.mstpp``, registered as ``"mstpp"``): shapes for any size, the paper's
parameter count, seeding, the per-head spectral attention map, learning, checkpoints, the
registry, inference, the shipped training config, the zoo's card check and the command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inr_lib import pretrained
from inr_lib.files.checkpoints import load_model, save_checkpoint
from inr_lib.model import registry as archs
from inr_lib.model.mstpp import MSTPlusPlus, MSTPlusPlusConfig, SpectralAttentionMap
from inr_lib.model.tiling import predict_image
from inr_lib.train import TrainConfig, grad_scaler, train_step
from inr_lib.train.loop import build_for_config

#: a one-stage model: the same parts, a third of the time
ONE_STAGE = {"stages": 1}


@pytest.fixture(scope="module")
def paper_model() -> MSTPlusPlus:
    return MSTPlusPlus().eval()


@pytest.mark.parametrize("size", [(1, 1), (37, 45), (3, 64)])
def test_any_size_gives_31_bands_of_that_size(paper_model, size):
    rgb = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = paper_model(rgb)
    assert out.shape == (2, 31, *size) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_input_is_checked_like_the_other_models(paper_model):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        paper_model(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="floating point"):
        paper_model(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with torch.no_grad():                         # float64 is computed in the model's float32
        assert paper_model(torch.rand(1, 3, 5, 6, dtype=torch.float64)).dtype == torch.float32


def test_default_configuration_has_the_papers_parameter_count(paper_model):
    n = paper_model.num_parameters()
    assert n == 1_621_485 == sum(p.numel() for p in paper_model.parameters())
    assert abs(n - 1.62e6) / 1.62e6 < 0.03
    assert paper_model.config == MSTPlusPlusConfig()
    assert len(paper_model.stages) == 3


def test_same_seed_same_weights_other_seed_other_weights():
    before = torch.get_rng_state()
    a, b, c = MSTPlusPlus(**ONE_STAGE), MSTPlusPlus(**ONE_STAGE), MSTPlusPlus(**ONE_STAGE, seed=1)
    assert torch.equal(torch.get_rng_state(), before)       # the global RNG is left alone
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_config_is_checked_and_round_trips_through_a_dict():
    cfg = MSTPlusPlusConfig(stages=1, blocks=[1, 2, 1])
    assert cfg.blocks == (1, 2, 1) and cfg.to_dict()["blocks"] == [1, 2, 1]
    assert MSTPlusPlusConfig(**cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="head_dim"):
        MSTPlusPlusConfig(head_dim=4)                       # 4 does not divide 31
    with pytest.raises(ValueError, match="blocks must list 2"):
        MSTPlusPlusConfig(levels=1)
    with pytest.raises(TypeError, match="unknown option"):
        MSTPlusPlus(width=64)


def test_spectral_attention_map_is_per_head_d_h_by_d_h_whatever_the_image_size():
    model = MSTPlusPlus(**ONE_STAGE).eval()
    maps: list = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: maps.append(out))
             for m in model.modules() if isinstance(m, SpectralAttentionMap)]
    shapes = {}
    with torch.no_grad():
        for size in ((8, 8), (20, 28)):
            maps.clear()
            model(torch.rand(2, 3, *size))
            shapes[size] = [tuple(a.shape) for a in maps]
            assert all(torch.allclose(a.sum(-1), torch.ones(())) for a in maps)   # softmax rows
    for h in hooks:
        h.remove()
    # encoder, bottom, decoder: 1, 2, 4, 2, 1 heads of d_h = 31 channels
    expected = [(2, heads, 31, 31) for heads in (1, 2, 4, 2, 1)]
    assert shapes[(8, 8)] == shapes[(20, 28)] == expected


def test_a_few_adam_steps_lower_the_l1_loss(smooth_scene):
    scenes = [smooth_scene(f"s{i}", i, size=16) for i in range(4)]
    rgb = torch.stack([torch.from_numpy(s.rgb) for s in scenes])
    hsi = torch.stack([torch.from_numpy(s.hsi) for s in scenes])
    model = MSTPlusPlus(**ONE_STAGE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = [float(train_step(model, (rgb, hsi), optimizer, grad_scaler(False), None))
              for _ in range(5)]
    assert losses[-1] < 0.75 * losses[0], losses


def test_checkpoint_round_trip_and_registry(tmp_path):
    model = archs.build("mstpp", {"stages": 1, "blocks": [1, 2, 1]}, seed=2)
    assert isinstance(model, MSTPlusPlus) and archs.arch_of(model) == "mstpp"
    assert model.config.seed == 2 and model.config.blocks == (1, 2, 1)
    assert archs.build("mstpp").config == MSTPlusPlusConfig()
    with pytest.raises(ValueError, match="unknown mstpp config keys"):
        archs.build("mstpp", {"channels": 8})
    path = save_checkpoint(tmp_path / "last.pt", model, epoch=3, train_config={"crop_size": 16})
    loaded = load_model(path)
    assert isinstance(loaded, MSTPlusPlus) and loaded.config == model.config
    assert loaded.checkpoint_info["arch"] == "mstpp"
    rgb = torch.rand(1, 3, 13, 19)
    with torch.no_grad():
        assert torch.equal(loaded(rgb), model.eval()(rgb))


def test_inference_entry_whole_and_tiled():
    model = MSTPlusPlus(**ONE_STAGE)
    rgb = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(1))
    whole = predict_image(model, rgb, mode="whole")
    tiled = predict_image(model, rgb, mode="tiled", tile=16, overlap=4)
    assert whole.shape == tiled.shape == (1, 31, 40, 36)
    assert torch.isfinite(tiled).all() and model.training            # the mode is restored
    # a window as large as the image is the whole image
    assert torch.equal(predict_image(model, rgb, mode="tiled", tile=64), whole)


def test_the_shipped_training_config_builds_the_papers_model():
    cfg = TrainConfig.load(Path(pretrained.__file__).parent / "configs" / "mstpp.yaml")
    assert (cfg.arch, cfg.lr, cfg.batch_size, cfg.crop_size) == ("mstpp", 4e-4, 16, 64)
    with torch.device("meta"):
        model = build_for_config(cfg)
    assert isinstance(model, MSTPlusPlus) and model.config == MSTPlusPlusConfig()


def test_the_zoo_accepts_an_mstpp_card():
    card = {**pretrained.card("cnn"), "arch": "mstpp", "model_config": MSTPlusPlusConfig().to_dict()}
    assert pretrained.validate_card(card) == []
    assert any("arch must be" in p for p in pretrained.validate_card({**card, "arch": "gan"}))


def test_baseline_command_trains_and_scores_mstpp(synth, tmp_path, run_cli):
    out = tmp_path / "mst.json"
    rc, _, err, _ = run_cli(["baseline", "mstpp", "--data", synth, "--config", "tiny", "--epochs", 1,
                             "--set", "crops_per_scene=1", "--set", "model.stages=1",
                             "--set", "val_every=0", "--mode", "whole", "--json", out, "--no-progress"])
    assert rc == 0, err
    res = json.loads(out.read_text())
    assert res["baseline"]["options"]["config"]["arch"] == "mstpp" and len(res["per_scene"]) == 2
    run = tmp_path / "mst_mstpp_run"                       # next to --json
    rc, _, err, _ = run_cli(["evaluate", "--checkpoint", run / "last.pt", "--data", synth,
                             "--mode", "whole", "--json", tmp_path / "eval.json", "--no-progress"])
    assert rc == 0, err
    again = json.loads((tmp_path / "eval.json").read_text())
    assert again["mean"] == res["mean"]                     # the checkpoint is the trained model
