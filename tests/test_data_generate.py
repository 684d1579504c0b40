"""The generator command line and the shipped ``data/darcy_small.h5``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neuralops.data.generators.darcy as darcy
from neuralops.data import OperatorDataset, describe, resolutions, validate
from neuralops.data.generate import main
from neuralops.data.generators import sample_rng

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "darcy_small.h5"
SMALL_ARGS = ["darcy", "--samples", "10", "--val-fraction", "0.2", "--test-fraction", "0.2", "--resolutions", "9", "--test-resolutions", "9", "17", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "darcy.h5"
    assert main([*SMALL_ARGS, "--out", str(out)]) == 0
    return out


def test_cli_writes_requested_splits_and_grids(small_file):
    summary = describe(small_file)
    assert summary["splits"] == {"train": 6, "val": 2, "test": 2}
    assert summary["resolutions"]["9"]["splits"] == {"train": 6, "val": 2, "test": 2}
    assert summary["resolutions"]["17"]["splits"] == {"train": 0, "val": 0, "test": 2}
    assert summary["pde_params"]["seed"] == 3 and summary["pde_params"]["tau"] == 3.0
    assert summary["boundary"] == "dirichlet" and summary["grid"] == "vertex" and summary["coarsening"] == "solved_per_grid"
    assert resolutions(small_file, "test") == [(9, 9), (17, 17)]
    assert resolutions(small_file, "val") == [(9, 9)]
    validate(small_file)


def test_cli_output_solves_the_pde_and_shares_coefficients_across_grids(small_file):
    coarse = OperatorDataset(small_file, "test", 9)
    fine = OperatorDataset(small_file, "test", 17)
    for i in range(len(coarse)):
        a_coarse = coarse[i]["x"][0].double().numpy()
        u_coarse = coarse[i]["y"][0].double().numpy()
        np.testing.assert_allclose(u_coarse, darcy.solve_darcy(a_coarse), rtol=1e-6, atol=1e-9)
        assert np.array_equal(a_coarse, fine[i]["x"][0].double().numpy()[::2, ::2])
    np.testing.assert_array_equal(coarse.coords["x"], np.linspace(0, 1, 9))
    coarse.close()
    fine.close()


def test_cli_is_reproducible(small_file, tmp_path):
    again = tmp_path / "again.h5"
    assert main([*SMALL_ARGS, "--out", str(again)]) == 0
    for split in ("train", "test"):
        first, second = OperatorDataset(small_file, split, 9), OperatorDataset(again, split, 9)
        for i in range(len(first)):
            assert np.array_equal(first[i]["y"].numpy(), second[i]["y"].numpy())
        first.close()
        second.close()


def test_cli_refuses_to_overwrite(small_file, capsys):
    before = small_file.read_bytes()
    with pytest.raises(SystemExit) as info:
        main([*SMALL_ARGS, "--out", str(small_file)])
    assert info.value.code == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert small_file.read_bytes() == before


def test_cli_overwrite_replaces_file(tmp_path):
    out = tmp_path / "d.h5"
    out.write_text("old")
    assert main(["darcy", "--samples", "3", "--resolutions", "5", "--val-fraction", "0", "--test-fraction", "0", "--no-progress", "--out", str(out), "--overwrite"]) == 0
    assert describe(out)["splits"] == {"train": 3, "val": 0, "test": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["darcy", "--samples", "4", "--resolutions", "2"], "at least 3 points"),
        (["darcy", "--samples", "4", "--resolutions", "nine"], "expected an integer number of points"),
        (["darcy", "--samples", "0", "--resolutions", "9"], "expected a positive integer"),
        (["darcy", "--samples", "4", "--resolutions", "9", "--val-fraction", "1.5"], "in [0, 1)"),
        (["darcy", "--samples", "4", "--resolutions", "9", "--val-fraction", "0.5", "--test-fraction", "0.5"], "leave no training sample"),
        (["heat", "--samples", "4", "--resolutions", "9"], "invalid choice: 'heat'"),
        (["darcy", "--samples", "4"], "--resolutions"),
    ],
)
def test_cli_usage_errors_are_clear_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "x.h5"
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(out)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_failure_mid_generation_leaves_no_file(tmp_path, monkeypatch):
    """The default batched solver is interrupted on its second batch (the 17-point test grid)."""
    calls = []
    real_solve = darcy.solve_darcy_batch

    def failing_solve(a, *args, **kwargs):
        calls.append(a.shape)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_solve(a, *args, **kwargs)

    monkeypatch.setattr(darcy, "solve_darcy_batch", failing_solve)
    with pytest.raises(KeyboardInterrupt):
        main([*SMALL_ARGS, "--out", str(tmp_path / "partial.h5")])
    assert calls == [(10, 9, 9), (2, 17, 17)]
    assert list(tmp_path.iterdir()) == []


def test_module_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "neuralops.data.generate", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--test-resolutions" in result.stdout and "--overwrite" in result.stdout


# ----------------------------------------------------------------------------- shipped file


def test_shipped_file_layout():
    validate(SHIPPED)
    summary = describe(SHIPPED)
    assert summary["splits"] == {"train": 1050, "val": 100, "test": 100}
    assert resolutions(SHIPPED, "test") == [(17, 17), (33, 33), (65, 65)]
    assert resolutions(SHIPPED, "train") == [(17, 17)] and resolutions(SHIPPED, "val") == [(17, 17)]
    assert summary["input_channels"] == ["a"] and summary["output_channels"] == ["u"]
    assert SHIPPED.stat().st_size < 5 * 2**20


def test_shipped_test_samples_agree_across_resolutions():
    by_grid = {n: OperatorDataset(SHIPPED, "test", n) for n in (17, 33, 65)}
    gap_17, gap_33 = [], []
    for i in range(len(by_grid[65])):
        x = {n: ds[i]["x"][0].numpy() for n, ds in by_grid.items()}
        y = {n: ds[i]["y"][0].numpy().astype(np.float64) for n, ds in by_grid.items()}
        assert np.array_equal(x[17], x[65][::4, ::4]) and np.array_equal(x[33], x[65][::2, ::2])
        gap_17.append(np.abs(y[17] - y[65][::4, ::4]).max() / y[65].max())
        gap_33.append(np.abs(y[33] - y[65][::2, ::2]).max() / y[65].max())
    assert np.mean(gap_33) < np.mean(gap_17) < 0.1, (np.mean(gap_17), np.mean(gap_33))
    for ds in by_grid.values():
        ds.close()


def test_shipped_samples_regenerate_from_seed():
    ds = OperatorDataset(SHIPPED, "test", 65)
    seed = ds.attrs["param_seed"]
    grid = darcy.vertex_grid(65)
    for i in (0, len(ds) - 1):
        a = darcy.threshold(darcy.evaluate_grf(darcy.grf_coefficients(sample_rng(seed, ds.sample_ids[i])), grid, grid))
        sample = ds[i]
        assert np.array_equal(sample["x"][0].numpy(), a.astype(np.float32))
        np.testing.assert_allclose(sample["y"][0].numpy(), darcy.solve_darcy(a), rtol=1e-6, atol=1e-9)
    ds.close()
