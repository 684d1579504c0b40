"""Shared fixtures: one torch thread, paths to the repository and the shipped data file."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def darcy_file() -> Path:
    return REPO / "data" / "darcy_small.h5"


@pytest.fixture(autouse=True, scope="session")
def single_thread():
    """Tests run on one torch thread: their tensors are tiny, and on a loaded 2-core machine
    OpenMP's 2-thread regions stall (~20 ms per small op) whenever the other core is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
