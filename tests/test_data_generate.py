"""The generator command line and the shipped ``data/darcy_small.h5``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import neuralops.data.generators.darcy as darcy
from neuralops.data import OperatorDataset, describe, resolutions, validate
from neuralops.data.generate import main
from neuralops.data.generators import GenerationRequest, assign_splits, sample_rng
from neuralops.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "darcy_small.h5"
SMALL_ARGS = ["darcy", "--samples", "10", "--val-fraction", "0.2", "--test-fraction", "0.2", "--resolutions", "9", "--test-resolutions", "9", "17", "--seed", "3", "--no-progress"]


def _generated(tmp_path_factory, args: list[str], name: str) -> Path:
    out = tmp_path_factory.mktemp("gen") / name
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    return _generated(tmp_path_factory, SMALL_ARGS, "darcy.h5")


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


@pytest.mark.parametrize("extra", [[], ["--grid", "vertex"]])
def test_cli_is_reproducible(small_file, tmp_path, extra):
    """Regenerating gives the same samples; ``--grid vertex`` is the default."""
    again = tmp_path / "again.h5"
    assert main([*SMALL_ARGS, *extra, "--out", str(again)]) == 0
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
        (["darcy", "--samples", "4", "--resolutions", "9", "--val-fraction", "0.5", "--test-fraction", "0.5"], "gives 0 train, 2 val and 2 test samples"),
        (["heat", "--samples", "4", "--resolutions", "9"], "invalid choice: 'heat'"),
        (["darcy", "--samples", "4"], "--resolutions"),
        (["darcy", "--samples", "4", "--resolutions", "9", "--grid", "staggered"], "invalid choice: 'staggered'"),
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


CELL_ARGS = ["darcy", "--samples", "6", "--val-fraction", "0", "--test-fraction", "0.34", "--resolutions", "16",
             "--test-resolutions", "16", "32", "--grid", "cell", "--seed", "5", "--no-progress"]


@pytest.fixture(scope="module")
def cell_file(tmp_path_factory):
    return _generated(tmp_path_factory, CELL_ARGS, "darcy_cell.h5")


def test_cli_cell_grid_file_layout(cell_file):
    validate(cell_file)
    summary = describe(cell_file)
    assert summary["grid"] == "cell" and summary["coarsening"] == "solved_per_grid" and summary["boundary"] == "dirichlet"
    assert summary["splits"] == {"train": 4, "val": 0, "test": 2}
    assert resolutions(cell_file, "train") == [(16, 16)] and resolutions(cell_file, "test") == [(16, 16), (32, 32)]
    assert "cell-centred" in summary["pde_params"]["solver"]


@pytest.mark.parametrize("n", [16, 32])
def test_cli_cell_grid_samples_are_the_grf_at_the_centres_and_solve_the_pde(cell_file, n):
    """Nested cell grids share no centres, so each grid's coefficient is checked against ψ at its centres."""
    ds = OperatorDataset(cell_file, "test", n)
    centres = (np.arange(n) + 0.5) / n
    np.testing.assert_array_equal(ds.coords["x"], centres)
    np.testing.assert_array_equal(ds.coords["y"], centres)
    assert ds.grid.kinds == ("cell", "cell") and ds.grid.axes[0].start == 0.0 and ds.grid.axes[0].length == 1.0
    for i in range(len(ds)):
        psi = darcy.evaluate_grf(darcy.grf_coefficients(sample_rng(5, ds.sample_ids[i])), centres, centres)
        a = ds[i]["x"][0].double().numpy()
        assert np.array_equal(a, darcy.threshold(psi).astype(np.float32))
        np.testing.assert_allclose(ds[i]["y"][0].double().numpy(), darcy.solve_darcy(a, grid="cell"), rtol=1e-6, atol=1e-9)
    ds.close()


# ----------------------------------------------------------------------------- reference grid

REFERENCE_ARGS = ["darcy", "--samples", "6", "--val-fraction", "0", "--test-fraction", "0.34", "--resolutions", "17",
                  "--test-resolutions", "17", "33", "65", "--reference-resolution", "65", "--seed", "4", "--batch-size", "2", "--no-progress"]
"""Batches of 2: the first two hold train samples only, so they write nothing at 33 and 65."""


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    return _generated(tmp_path_factory, REFERENCE_ARGS, "darcy_reference.h5")


def _arrays(path: Path, split: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored float32 ``a`` and ``u`` ``(B, n, n)`` and the global ids ``(B,)`` of a split at a grid."""
    ds = OperatorDataset(path, split, n)
    a = np.stack([ds[i]["x"][0].numpy() for i in range(len(ds))])
    u = np.stack([ds[i]["y"][0].numpy() for i in range(len(ds))])
    ids = np.asarray(ds.sample_ids)
    ds.close()
    return a, u, ids


def _point_coefficient(seed: int, sample_id: int, points: np.ndarray) -> np.ndarray:
    return darcy.threshold(darcy.evaluate_grf(darcy.grf_coefficients(sample_rng(seed, sample_id)), points, points))


def test_reference_vertex_grids_hold_the_reference_solution_at_the_shared_nodes(reference_file):
    """u at 17 and 33 points is the 65-point u at every 4th / 2nd node, to the bit; that u is the
    sparse-LU solve of the point coefficients at 65 points (float32 storage and PCG rtol 1e-10:
    1e-6 of max|u|); the stored a are the point values at each grid's own points."""
    validate(reference_file)
    summary = describe(reference_file)
    assert summary["coarsening"] == "subsampled" and summary["grid"] == "vertex"
    assert summary["pde_params"]["reference_resolution"] == 65 and summary["pde_params"]["coefficient"] == "point"
    assert "65-point reference grid" in summary["description"]
    _, u_fine, ids_fine = _arrays(reference_file, "test", 65)
    for n, stride in ((17, 4), (33, 2)):
        _, u, ids = _arrays(reference_file, "test", n)
        assert np.array_equal(ids, ids_fine)
        assert np.array_equal(u, u_fine[:, ::stride, ::stride])
    fine = darcy.vertex_grid(65)
    for split, n in (("train", 17), ("test", 17), ("test", 65)):
        a, u, ids = _arrays(reference_file, split, n)
        stride = 64 // (n - 1)
        for a_i, u_i, sample_id in zip(a, u, ids):
            reference = darcy.solve_darcy(_point_coefficient(4, sample_id, fine))[::stride, ::stride]
            np.testing.assert_allclose(u_i, reference, rtol=0, atol=1e-6 * reference.max())
            assert np.array_equal(a_i, _point_coefficient(4, sample_id, darcy.vertex_grid(n)).astype(np.float32))


def test_reference_samples_do_not_depend_on_the_other_grids_or_the_batch(reference_file, tmp_path):
    """Sample i is a function of (seed, i): requesting only the 17-point grid, one sample per
    batch, stores the same arrays."""
    alone = tmp_path / "alone.h5"
    args = ["darcy", "--samples", "6", "--val-fraction", "0", "--test-fraction", "0.34", "--resolutions", "17",
            "--reference-resolution", "65", "--seed", "4", "--batch-size", "1", "--no-progress", "--out", str(alone)]
    assert main(args) == 0
    for split in ("train", "test"):
        for first, second in zip(_arrays(reference_file, split, 17), _arrays(alone, split, 17)):
            assert np.array_equal(first, second)


def test_reference_cell_grids_hold_block_averages_of_the_reference_solution(tmp_path):
    """u on 16 and 32 cells is the mean of the 64-cell sparse-LU solution over each coarse cell
    (4 x 4 and 2 x 2 blocks), to 1e-6 relative per cell (float32 storage, PCG rtol 1e-10)."""
    path = tmp_path / "cell_reference.h5"
    args = ["darcy", "--samples", "3", "--val-fraction", "0", "--test-fraction", "0.34", "--resolutions", "16", "--test-resolutions",
            "16", "32", "--grid", "cell", "--reference-resolution", "64", "--seed", "6", "--no-progress", "--out", str(path)]
    assert main(args) == 0
    validate(path)
    summary = describe(path)
    assert summary["coarsening"] == "filtered" and summary["grid"] == "cell" and summary["pde_params"]["reference_resolution"] == 64
    centres = darcy.grid_points(64, "cell")
    for split, n in (("train", 16), ("test", 16), ("test", 32)):
        _, u, ids = _arrays(path, split, n)
        factor = 64 // n
        for u_i, sample_id in zip(u, ids):
            fine = darcy.solve_darcy(_point_coefficient(6, sample_id, centres), grid="cell")
            np.testing.assert_allclose(u_i, fine.reshape(n, factor, n, factor).mean(axis=(1, 3)), rtol=1e-6, atol=0)


def test_average_coefficient_file_stores_control_volume_means_and_the_same_solution(reference_file, tmp_path):
    """--coefficient average changes only the stored input: u is the point-coefficient file's
    to the bit, a is average_coefficient at each grid (its accuracy is tested in
    tests/test_data_darcy.py), within [3, 12] and not the point values."""
    path = tmp_path / "average.h5"
    assert main([*REFERENCE_ARGS, "--coefficient", "average", "--out", str(path)]) == 0
    summary = describe(path)
    assert summary["pde_params"]["coefficient"] == "average" and "control volume" in summary["description"]
    for split, n in (("train", 17), ("test", 17), ("test", 33), ("test", 65)):
        a, u, ids = _arrays(path, split, n)
        a_point, u_point, _ = _arrays(reference_file, split, n)
        assert np.array_equal(u, u_point), "the reference solve keeps the point coefficients"
        coeffs = np.stack([darcy.grf_coefficients(sample_rng(4, i)) for i in ids])
        assert np.array_equal(a, darcy.average_coefficient(coeffs, n).astype(np.float32))
        assert a.min() >= darcy.A_LOW and a.max() <= darcy.A_HIGH and not np.array_equal(a, a_point)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resolutions", "17", "--reference-resolution", "100"],
         "--reference-resolution 100 does not refine the vertex grid(s) [17]: it needs N >= n and N - 1 a multiple of n - 1"),
        (["--resolutions", "17", "--test-resolutions", "17", "33", "--reference-resolution", "49"], "does not refine the vertex grid(s) [33]"),
        (["--resolutions", "33", "--reference-resolution", "17"], "--reference-resolution 17 does not refine the vertex grid(s) [33]"),
        (["--resolutions", "16", "32", "--grid", "cell", "--reference-resolution", "48"],
         "--reference-resolution 48 does not refine the cell grid(s) [32]: it needs N >= n and N a multiple of n"),
        (["--resolutions", "17", "--coefficient", "average"], "--coefficient average needs --reference-resolution"),
    ],
)
def test_cli_bad_reference_options_are_one_line_errors_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "x.h5"
    assert main(["darcy", "--samples", "10", "--no-progress", *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_write_darcy_rejects_an_unknown_grid(tmp_path):
    out = tmp_path / "x.h5"
    request = GenerationRequest(out=out, n_samples=2, splits=assign_splits(2, 0, 0), samples_at={9: np.arange(2)}, progress=False)
    with pytest.raises(ConfigError, match="--grid='staggered'"):
        darcy.write_darcy(request, darcy.DarcyOptions(grid="staggered"))
    assert list(tmp_path.iterdir()) == []


def test_module_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "neuralops.data.generate", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--test-resolutions" in result.stdout and "--overwrite" in result.stdout and "--grid {vertex,cell}" in result.stdout
    assert "--reference-resolution REFERENCE_RESOLUTION" in result.stdout and "--coefficient {point,average}" in result.stdout


# ----------------------------------------------------------------------------- shipped file


def test_shipped_file_layout():
    validate(SHIPPED)
    summary = describe(SHIPPED)
    assert summary["splits"] == {"train": 1050, "val": 100, "test": 100}
    assert resolutions(SHIPPED, "test") == [(17, 17), (33, 33), (65, 65)]
    assert resolutions(SHIPPED, "train") == [(17, 17)] and resolutions(SHIPPED, "val") == [(17, 17)]
    # the first 350 training samples are also stored at 33x33, for multi-resolution training
    assert resolutions(SHIPPED, "train", partial=True) == [(17, 17), (33, 33)]
    assert summary["resolutions"]["33"]["splits"] == {"train": 350, "val": 0, "test": 100}
    assert summary["coarsening"] == "subsampled" and summary["pde_params"]["reference_resolution"] == 129
    assert summary["input_channels"] == ["a"] and summary["output_channels"] == ["u"]
    assert SHIPPED.stat().st_size < 5 * 2**20


def test_shipped_test_samples_agree_across_resolutions():
    """Every grid holds the same reference solution (exact at shared nodes); the coefficient is
    each grid's control-volume average, so coarse grids hold smoother coefficients."""
    by_grid = {n: OperatorDataset(SHIPPED, "test", n) for n in (17, 33, 65)}
    for i in range(len(by_grid[65])):
        x = {n: ds[i]["x"][0].numpy() for n, ds in by_grid.items()}
        y = {n: ds[i]["y"][0].numpy() for n, ds in by_grid.items()}
        assert np.array_equal(y[17], y[65][::4, ::4]) and np.array_equal(y[33], y[65][::2, ::2])
        assert all(darcy.A_LOW - 1e-5 <= v.min() and v.max() <= darcy.A_HIGH + 1e-5 for v in x.values())
    for ds in by_grid.values():
        ds.close()


def test_shipped_samples_regenerate_from_seed():
    """Test sample 0 from its seed: the averaged coefficient on every grid, and u from an
    independent sparse LU solve on the 129-point reference grid, subsampled."""
    by_grid = {n: OperatorDataset(SHIPPED, "test", n) for n in (17, 33, 65)}
    seed = by_grid[65].attrs["param_seed"]
    coeffs = darcy.grf_coefficients(sample_rng(seed, by_grid[65].sample_ids[0]))[None]
    reference = darcy.vertex_grid(129)
    u = darcy.solve_darcy(darcy.threshold(darcy.evaluate_grf(coeffs[0], reference, reference)))
    for n, ds in by_grid.items():
        sample = ds[0]
        np.testing.assert_allclose(sample["x"][0].numpy(), darcy.average_coefficient(coeffs, n)[0], rtol=1e-6)
        step = 128 // (n - 1)
        np.testing.assert_allclose(sample["y"][0].numpy(), u[::step, ::step], rtol=1e-5, atol=1e-9)
        ds.close()


# ----------------------------------------------------------------------------- bad options, signals


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["darcy", "--samples", "1", "--resolutions", "9"], 2,
         "--samples 1 with --val-fraction 0.1 and --test-fraction 0.1 gives 1 train, 0 val and 0 test samples; the splits need --samples >= 6"),
        (["darcy", "--samples", "10", "--resolutions", "9", "--seed", "-1"], 2, "argument --seed: expected a non-negative integer, got -1"),
        (["darcy", "--samples", "10", "--resolutions", "9", "--workers", "0"], 2, "argument --workers: expected a positive integer"),
        (["darcy", "--samples", "10", "--resolutions", "9", "--shard-size", "0"], 2, "argument --shard-size: expected a positive integer"),
        (["darcy", "--samples", "10", "--resolutions", "9", "--batch-size", "0"], 1, "--batch-size must be >= 1, got 0"),
        (["burgers", "--samples", "10", "--resolutions", "16", "--viscosity", "-1"], 1, "--viscosity must be a finite number >= 0, got -1.0"),
        (["burgers", "--samples", "10", "--resolutions", "16", "--viscosity", "nan"], 1, "--viscosity must be a finite number >= 0, got nan"),
        (["burgers", "--samples", "10", "--resolutions", "16", "--final-time", "inf"], 1, "--final-time must be a finite number > 0"),
        (["burgers", "--samples", "10", "--resolutions", "16", "--n-times", "1"], 1, "--n-times must be >= 2"),
        (["navier_stokes", "--samples", "10", "--resolutions", "16", "--dt", "0"], 1, "--dt must be a finite number > 0, got 0.0"),
        (["navier_stokes", "--samples", "10", "--resolutions", "16", "--dt", "abc"], 2, "argument --dt: invalid float value: 'abc'"),
        (["shallow_water", "--samples", "10", "--resolutions", "9", "--rms-velocity", "-1"], 1, "--rms-velocity must be a finite number > 0"),
        (["shallow_water", "--samples", "10", "--resolutions", "8"], 1, "shallow water needs nlat >= 9, got 8"),
    ],
)
def test_every_bad_generator_option_is_one_line_and_writes_nothing(tmp_path, capsys, args, code, message):
    for out in (tmp_path / "x.h5", tmp_path / "folder"):
        extra = ["--shard-size", "4"] if out.suffix == "" else []
        try:
            status = main([*args, *extra, "--no-progress", "--out", str(out)])
        except SystemExit as exit_:
            status = exit_.code
        err = capsys.readouterr().err
        assert status == code and message in err and err.count("\n") == 1, err
        assert list(tmp_path.iterdir()) == []


def test_out_must_fit_the_shard_option(tmp_path, capsys):
    (tmp_path / "file.h5").write_text("x")
    (tmp_path / "folder").mkdir()
    for args, message in ((["--shard-size", "4", "--out", str(tmp_path / "file.h5"), "--overwrite"], "is a file; with --shard-size give a folder"),
                          (["--out", str(tmp_path / "folder"), "--overwrite"], "is a directory; give a file name (or --shard-size N"),
                          (["--shard-size", "4", "--out", str(tmp_path / "folder")], "exists; pass --overwrite to replace it")):
        with pytest.raises(SystemExit) as info:
            main(["darcy", "--samples", "10", "--resolutions", "9", "--no-progress", *args])
        err = capsys.readouterr().err
        assert info.value.code == 2 and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.h5", "folder"] and not any((tmp_path / "folder").iterdir())


@pytest.mark.parametrize("shards", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["file", "folder"])
def test_sigterm_while_writing_leaves_nothing(tmp_path, repo_root, shards):
    """SIGTERM during generation (the staging file or folder exists) ends with status 143 and
    removes every partial file."""
    out = tmp_path / ("ns" if shards else "ns.h5")
    args = ["navier_stokes", "--samples", "40", "--resolutions", "32", "--final-time", "20", "--batch-size", "1",
            "--no-progress", "--out", str(out), *(["--shard-size", "10"] if shards else [])]
    proc = subprocess.Popen([sys.executable, "-m", "neuralops.data.generate", *args], cwd=repo_root,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not any(p.name.startswith(".") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    assert list(tmp_path.iterdir()) == []


def test_bench_generators_accepts_a_fraction_of_a_time_unit(repo_root):
    """``--ns-time 0.5`` crashed (no output time); the outputs are every whole unit and the end."""
    sys.path.insert(0, str(repo_root / "benchmarks"))
    try:
        import bench_generators
    finally:
        sys.path.remove(str(repo_root / "benchmarks"))
    assert bench_generators.output_times(0.5) == [0.5] and bench_generators.output_times(2.5) == [1.0, 2.0, 2.5]
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive float"):
        bench_generators.positive(float)("-1")
