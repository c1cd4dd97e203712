"""Shared test fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
#: the development copy of 8 real CAVE scenes (not part of the repository)
SHARED_CAVE = REPO.parent / "shared" / "data" / "cave"

os.environ.setdefault("INR_PROFILE", "quick")


@pytest.fixture(scope="session")
def cave_root() -> Path:
    """Folder of real CAVE scenes; the test is skipped (with the reason) when absent."""
    if not SHARED_CAVE.is_dir():
        pytest.skip(f"real CAVE scenes not found at {SHARED_CAVE} (development data; "
                    f"not shipped with the repository)")
    return SHARED_CAVE


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one torch thread: the models in tests are tiny, and two threads on a
    busy 2-core machine are ~10x slower than one (spin-waiting). Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
