"""Reliability of checkpoints: untrusted pickles are refused unexecuted, foreign files give clear errors.

Every case checks that nothing is corrupted or executed and that the message says what was
expected, what was found and what to do (cases covered elsewhere are listed in
``tests/conftest.py``).
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from inr_lib import build_model
from inr_lib.files.checkpoints import CheckpointError, load_checkpoint, load_model


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["torch-zip", "torch-legacy", "raw-pickle"])
def test_untrusted_pickles_are_refused_without_running_code(tmp_path, kind, run_cli):
    marker = tmp_path / "CODE_RAN"
    obj = {"format": "inr_lib.checkpoint", "format_version": 1, "payload": _Payload(marker)}
    path = tmp_path / "stranger.pt"
    if kind == "raw-pickle":
        path.write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=kind == "torch-zip")
    with pytest.raises(CheckpointError, match="refused.*could run arbitrary code"):
        load_checkpoint(path)
    rc, _, _, errors = run_cli(["reconstruct", "--checkpoint", path, "--rgb", path, "--out",
                                tmp_path / "c.npy"])
    assert rc == 1 and "refused" in errors[0]
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:'torch.load' received a zip")
def test_foreign_files_and_folders_give_clear_errors(tmp_path, tiny_ckpt):
    ts = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(ts))
    with pytest.raises(CheckpointError, match="TorchScript model archive.*refused"):
        load_checkpoint(ts)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        load_checkpoint(tmp_path / "empty.pt")
    np.save(tmp_path / "cube.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match=r"starts with b'\\x93NUM'"):
        load_checkpoint(tmp_path / "cube.npy")
    with pytest.raises(CheckpointError, match=r"is a folder, not a file.*\(last\.pt\)"):
        load_checkpoint(tiny_ckpt.parent)       # the run folder instead of a file in it


def test_model_config_is_validated_against_this_version(tmp_path, tiny_ckpt):
    ck = torch.load(tiny_ckpt, weights_only=True)
    bad = {**ck, "model_config": {**ck["model_config"], "tile": 3}}
    torch.save(bad, tmp_path / "tile3.pt")
    with pytest.raises(CheckpointError, match="not valid for this inr_lib.*power of two"):
        load_model(tmp_path / "tile3.pt")
    other = {**ck, "model_config": build_model("small").config.to_dict()}  # tiny weights
    torch.save(other, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="weights do not match its model configuration"):
        load_model(tmp_path / "mismatch.pt")
    torch.save({**ck, "arch": "transformer"}, tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="unknown arch 'transformer'"):
        load_checkpoint(tmp_path / "arch.pt")
