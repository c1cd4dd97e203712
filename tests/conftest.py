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
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def cave_root() -> Path:
    """Folder of real CAVE scenes; the test is skipped (with the reason) when absent."""
    if not SHARED_CAVE.is_dir():
        pytest.skip(f"real CAVE scenes not found at {SHARED_CAVE} (development data; "
                    f"not shipped with the repository)")
    return SHARED_CAVE
