"""Data checks before the first epoch: an empty split, or NaN/Inf in the test split, is one line
naming the file, the split and (for values) the resolution and the sample's index in the split."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuralops.data.checks import check_finite, require_samples
from neuralops.data.factory import DataConfig
from neuralops.data.generate import main
from neuralops.errors import DataFormatError

ARGS = ["darcy", "--samples", "10", "--val-fraction", "0.2", "--test-fraction", "0.2", "--resolutions", "9",
        "--test-resolutions", "9", "17", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    out = tmp_path_factory.mktemp("checks") / "d.h5"
    assert main([*ARGS, "--out", str(out)]) == 0
    return out


def _one_line_error(call) -> str:
    with pytest.raises(DataFormatError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    return message


def test_clean_data_passes_and_every_test_sample_is_read_at_every_stored_grid(darcy):
    cfg = DataConfig.from_dict({"path": str(darcy)})
    require_samples(cfg)
    assert check_finite(cfg, "test") == 2 * 2  # 2 test samples at 9 and at 17 points
    assert check_finite(DataConfig.from_dict({"path": str(darcy), "test_resolutions": [17]}), "test") == 2


def test_inf_in_a_test_sample_is_found_naming_file_split_resolution_and_index(darcy, tmp_path):
    bad = tmp_path / "inf.h5"
    bad.write_bytes(darcy.read_bytes())
    with h5py.File(bad, "a") as h5:
        h5["resolutions/17/outputs"][1, 0, 4, 4] = np.inf  # row 1 of the 17-point grid: test sample 9
    message = _one_line_error(lambda: check_finite(DataConfig.from_dict({"path": str(bad)}), "test"))
    assert message.startswith(f"{bad}: key '/resolutions/17/outputs': row 1 (sample 9) holds NaN or Inf")
    assert "split 'test', resolution 17x17, index 1 of the split" in message


def test_nan_in_a_foreign_test_trajectory_is_found(tmp_path):
    tensor = np.random.default_rng(0).standard_normal((10, 4, 8)).astype(np.float32)
    tensor[0, 3, 2] = np.nan  # PDEBench's rule puts sample 0 in the test split of an .hdf5 file
    path = tmp_path / "1D_Burgers_Sols_Nu0.1.hdf5"
    with h5py.File(path, "w") as h5:
        h5["tensor"], h5["x-coordinate"], h5["t-coordinate"] = tensor, (np.arange(8) + 0.5) / 8, np.arange(5.0)
    cfg = DataConfig.from_dict({"path": str(path), "task": "window", "split": "pdebench", "val_fraction": 0.0, "test_strides": [1, 2]})
    message = _one_line_error(lambda: check_finite(cfg, "test"))
    assert str(path) in message and "key 'tensor': sample 0 holds NaN or Inf" in message
    assert "split 'test', resolution 8, index 0 of the split" in message


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (["--test-fraction", "0"], {}, "split 'test' is empty (key '/splits/test' holds no sample id); the run needs test samples"),
        (None, {"val_fraction": 0.0, "test_fraction": 0.0}, "split 'test' is empty (data.split=random with data.test_fraction=0.0 gives it none); the run needs test samples"),
    ],
    ids=["neuralops", "random"],
)
def test_an_empty_split_names_file_and_split(tmp_path, args, options, message):
    if args is not None:
        path = tmp_path / "no_test.h5"
        assert main(["darcy", "--samples", "5", "--val-fraction", "0", "--resolutions", "9", *args, "--no-progress", "--out", str(path)]) == 0
    else:
        path = tmp_path / "1D_Advection.hdf5"
        with h5py.File(path, "w") as h5:
            h5["tensor"], h5["x-coordinate"], h5["t-coordinate"] = np.zeros((4, 3, 8), np.float32), np.arange(8.0), np.arange(4.0)
    cfg = DataConfig.from_dict({"path": str(path), "task": None if args is not None else "window", **options})
    assert _one_line_error(lambda: require_samples(cfg)) == f"{path}: {message}"
