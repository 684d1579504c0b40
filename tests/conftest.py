"""Shared fixtures: paths to the repository and the shipped data file."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def darcy_file() -> Path:
    return REPO / "data" / "darcy_small.h5"
