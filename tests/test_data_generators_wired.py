"""The time-dependent generators on the command line: valid files, exact subsampling, failures."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuralops.data import OperatorDataset, describe, validate
from neuralops.data.dataset import TrajectoryFileSource
from neuralops.data.generate import main
from neuralops.data.generators import darcy


def _generate(tmp_path, name, *args):
    out = tmp_path / f"{name}.h5"
    assert main([name, "--samples", "4", "--val-fraction", "0.25", "--test-fraction", "0.25", "--no-progress", *args, "--out", str(out)]) == 0
    return out


def _trajectories(path, key):
    with h5py.File(path) as h5:
        return h5[f"/resolutions/{key}/trajectories"][()]


@pytest.fixture(scope="module")
def burgers_file(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("burgers"), "burgers", "--resolutions", "32", "16", "--final-time", "0.05", "--n-times", "3")


def test_burgers_file_is_valid_and_coarse_grid_is_the_stride_subsample(burgers_file):
    header = validate(burgers_file)
    assert header.metadata.layout == "trajectories" and header.metadata.channels == ("u",)
    assert header.metadata.coarsening == "subsampled" and header.attrs["param_viscosity"] == 0.01
    np.testing.assert_allclose(header.times, [0.0, 0.025, 0.05])
    fine, coarse = _trajectories(burgers_file, "32"), _trajectories(burgers_file, "16")
    assert fine.shape == (4, 3, 1, 32)
    np.testing.assert_array_equal(coarse, fine[..., ::2])
    source = TrajectoryFileSource(burgers_file, "test", 16)
    np.testing.assert_array_equal(source.coords["x"], np.arange(16) / 16)
    assert np.abs(fine[:, 0]).max() > 0.1, "initial fields should not be zero"


def test_burgers_samples_do_not_depend_on_the_batch(burgers_file, tmp_path):
    again = _generate(tmp_path, "burgers", "--resolutions", "32", "16", "--final-time", "0.05", "--n-times", "3", "--batch-size", "1")
    np.testing.assert_array_equal(_trajectories(again, "32"), _trajectories(burgers_file, "32"))


def test_navier_stokes_file(tmp_path):
    path = _generate(tmp_path, "navier_stokes", "--resolutions", "16", "8", "--final-time", "0.1", "--n-times", "3", "--dt", "0.05")
    summary = describe(path)
    assert summary["channels"] == ["w"] and summary["coarsening"] == "subsampled"
    fine, coarse = _trajectories(path, "16"), _trajectories(path, "8")
    assert fine.shape == (4, 3, 1, 16, 16)
    np.testing.assert_array_equal(coarse, fine[..., ::2, ::2])
    assert np.abs(fine[:, -1] - fine[:, 0]).max() > 0, "the vorticity should evolve"


def test_shallow_water_file_on_nested_equiangular_grids(tmp_path):
    path = _generate(tmp_path, "shallow_water", "--resolutions", "17", "9", "--final-time", "3600", "--n-times", "2", "--batch-size", "2")
    header = validate(path)
    assert header.metadata.axes == ("colatitude", "longitude") and header.metadata.channels == ("h", "u", "v")
    assert sorted(r.shape for r in header.resolutions.values()) == [(9, 16), (17, 32)]
    fine, coarse = _trajectories(path, "17x32"), _trajectories(path, "9x16")
    np.testing.assert_array_equal(coarse, fine[..., ::2, ::2])
    fine_lat = header.resolutions[(17, 32)].coords["colatitude"]
    np.testing.assert_allclose(header.resolutions[(9, 16)].coords["colatitude"], fine_lat[::2], atol=1e-12)
    assert 9e3 < fine[:, 0, 0].mean() < 11e3, "depth should be around the 10 km mean"


def test_darcy_pcg_matches_the_direct_solver(tmp_path):
    pcg = _generate(tmp_path / "pcg", "darcy", "--resolutions", "9", "17")
    direct = _generate(tmp_path / "direct", "darcy", "--resolutions", "9", "17", "--solver", "direct")
    for n in (9, 17):
        a, b = OperatorDataset(pcg, "train", n), OperatorDataset(direct, "train", n)
        for i in range(len(a)):
            assert np.array_equal(a[i]["x"].numpy(), b[i]["x"].numpy())
            np.testing.assert_allclose(a[i]["y"].numpy(), b[i]["y"].numpy(), rtol=1e-6, atol=1e-9)
    a64 = np.stack([darcy.threshold(np.random.default_rng(i).standard_normal((33, 33))) for i in range(3)])
    u = darcy.solve_darcy_batch(a64)
    for k in range(3):
        np.testing.assert_allclose(u[k], darcy.solve_darcy(a64[k]), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["navier_stokes", "--resolutions", "16", "12"], 1, "do not nest in the finest grid 16"),
        (["burgers", "--resolutions", "15"], 1, "even number of points >= 8"),
        (["shallow_water", "--resolutions", "17", "10"], 1, "N_c - 1 must divide N_f - 1"),
        (["darcy", "--resolutions", "9", "--viscosity", "0.1"], 2, "--viscosity does not apply to darcy"),
    ],
)
def test_bad_generator_requests_write_nothing(tmp_path, capsys, args, code, message):
    out = tmp_path / "x.h5"
    if code == 2:
        with pytest.raises(SystemExit) as info:
            main([*args, "--samples", "10", "--out", str(out)])
        assert info.value.code == 2
    else:
        assert main([*args, "--samples", "10", "--no-progress", "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
