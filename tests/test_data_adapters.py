"""PDEBench and Well files, written here in their documented layouts, read back exactly in place."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuralops.data.adapters.pdebench import inspect_pdebench
from neuralops.data.adapters.the_well import inspect_well
from neuralops.data.factory import DataConfig, available_resolutions, detect_format, open_source, open_split
from neuralops.data.views import FILE_VIEW
from neuralops.errors import ConfigError, DataFormatError

RNG = np.random.default_rng(0)
N, T, X, Y = 20, 5, 16, 12


def _random(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def burgers_1d(tmp_path_factory):
    """PDEBench 1-D ``.hdf5``: tensor [N, T, X], t-coordinate with T+1 entries (the quirk)."""
    path = tmp_path_factory.mktemp("pdebench") / "1D_Burgers_Sols_Nu0.01.hdf5"
    tensor = _random(N, T, X)
    with h5py.File(path, "w") as h5:
        h5["tensor"] = tensor
        h5["x-coordinate"] = ((np.arange(X) + 0.5) / X).astype(np.float32)
        h5["t-coordinate"] = np.linspace(0, 2.0, T + 1).astype(np.float32)
        h5.attrs["Nu"] = 0.01
    return path, tensor


@pytest.fixture(scope="module")
def cfd_2d(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdebench") / "2D_CFD_Rand_M0.1_Eta0.1_Zeta0.1_periodic_16_Train.hdf5"
    fields = {name: _random(N, T, X, Y) for name in ("density", "pressure", "Vx", "Vy")}
    with h5py.File(path, "w") as h5:
        for name in ("Vy", "pressure", "density", "Vx"):  # file order differs from PDEBench's channel order
            h5[name] = fields[name]
        h5["x-coordinate"] = np.linspace(0, 1, X, dtype=np.float32)
        h5["y-coordinate"] = np.linspace(0, 1, Y, dtype=np.float32)
        h5["t-coordinate"] = np.linspace(0, 1, T + 1, dtype=np.float32)
        h5.attrs.update({"eta": 0.1, "zeta": 0.1, "M": 0.1})
    return path, fields


@pytest.fixture(scope="module")
def darcy_pdebench(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdebench") / "2D_DarcyFlow_beta1.0_Train.hdf5"
    nu, u = _random(N, X, X), _random(N, 1, X, X)
    with h5py.File(path, "w") as h5:
        h5["nu"], h5["tensor"] = nu, u
        h5["x-coordinate"] = h5["y-coordinate"] = np.linspace(0, 1, X, dtype=np.float32)
        h5["t-coordinate"] = np.arange(10, dtype=np.float32)  # PDEBench's stray time axis
        h5.attrs["beta"] = 1.0
    return path, nu, u


@pytest.fixture(scope="module")
def diff_react_h5(tmp_path_factory):
    """PDEBench ``.h5``: one group per sample, data [T, y, x, C], grid/x, grid/y, grid/t, config."""
    path = tmp_path_factory.mktemp("pdebench") / "2D_diff-react_NA_NA.h5"
    data = {f"{i:04d}": _random(T, Y, X, 2) for i in range(10)}
    with h5py.File(path, "w") as h5:
        for key in reversed(sorted(data)):
            group = h5.create_group(key)
            group["data"] = data[key]
            group["grid/x"] = np.linspace(-1, 1, X, dtype=np.float32)
            group["grid/y"] = np.linspace(-1, 1, Y, dtype=np.float32)
            group["grid/t"] = np.linspace(0, 5, T, dtype=np.float32)
            group.attrs["config"] = "sim:\n  k: 0.005\n  Du: 0.001\nplot: false\n"
    return path, data


def test_pdebench_1d_tensor_reads_exactly_with_t_plus_one_quirk(burgers_1d):
    path, tensor = burgers_1d
    info = inspect_pdebench(path)
    assert (info.layout, info.n_samples, info.channels, info.axes, info.stored_shape) == ("arrays", N, ("tensor",), ("x",), (X,))
    np.testing.assert_allclose(info.times, np.linspace(0, 2.0, T + 1)[:T].astype(np.float32))
    assert info.attrs["Nu"] == pytest.approx(0.01) and info.attrs["boundary"] == "periodic"
    source = info.open(np.arange(N), FILE_VIEW, None)
    for i in (0, 7, N - 1):
        np.testing.assert_array_equal(source.read_steps(i, slice(0, T))[:, 0], tensor[i])
    np.testing.assert_array_equal(source.coords["x"], (np.arange(X) + 0.5) / X)
    # a periodic family: one period of length 1 sampled at the stored points
    assert source.grid.kinds == ("periodic",) and source.grid.axes[0].length == pytest.approx(1.0)


def test_pdebench_cfd_stacks_fields_in_pdebench_order(cfd_2d):
    path, fields = cfd_2d
    source = inspect_pdebench(path).open(np.arange(N), FILE_VIEW, None)
    assert source.channels == ["density", "pressure", "Vx", "Vy"] and source.axes == ["x", "y"]
    expected = np.stack([fields[name][3] for name in source.channels], axis=1)
    np.testing.assert_array_equal(source.read_steps(3, slice(0, T)), expected)
    np.testing.assert_array_equal(source.read_steps(3, slice(1, 4, 2)), expected[1:4:2])


def test_pdebench_darcy_is_a_nu_to_tensor_pair(darcy_pdebench):
    path, nu, u = darcy_pdebench
    cfg = DataConfig.from_dict({"path": str(path), "split": "pdebench", "val_fraction": 0.0})
    train = open_split(cfg, "train")
    assert train.input_channels == ["nu"] and train.output_channels == ["tensor"]
    np.testing.assert_array_equal(train[0]["x"].numpy(), nu[2][None])  # test = first 10% = samples 0, 1
    np.testing.assert_array_equal(train[0]["y"].numpy(), u[2])
    assert cfg.splits["test"].tolist() == [0, 1] and len(cfg.splits["train"]) == N - 2 and len(cfg.splits["val"]) == 0


def test_pdebench_h5_groups_read_exactly_with_y_x_axes(diff_react_h5):
    path, data = diff_react_h5
    info = inspect_pdebench(path)
    assert info.layout == "groups" and info.axes == ("y", "x") and info.stored_shape == (Y, X)
    assert info.channels == ("u", "v") and info.attrs["config.sim.k"] == pytest.approx(0.005)
    source = info.open(np.arange(10), FILE_VIEW, None)
    np.testing.assert_array_equal(source.read_steps(4, slice(0, T)), np.moveaxis(data["0004"], -1, 1))
    np.testing.assert_array_equal(source.coords["y"], np.linspace(-1, 1, Y, dtype=np.float32))
    assert source.grid.kinds == ("vertex", "vertex") and source.grid.axes[0].length == pytest.approx(2.0)
    cfg = DataConfig.from_dict({"path": str(path), "split": "pdebench", "task": "window", "val_fraction": 0.0})
    assert cfg.splits["test"].tolist() == [9]  # .h5: the last 10% of the sorted groups


def test_pdebench_window_task_and_strided_views(burgers_1d):
    path, tensor = burgers_1d
    cfg = DataConfig.from_dict({"path": str(path), "task": "window", "steps_in": 2, "steps_out": 1, "test_strides": [1, 2, 4]})
    views = available_resolutions(cfg, "test")
    assert [(v.method, v.stride) for v in views] == [("file", 1), ("stride", 2), ("stride", 4)]
    test = open_split(cfg, "test", views[2])
    sample = int(cfg.splits["test"][0])
    assert test.grid_shape == (X // 4,) and test.input_channels == ["tensor[t-1]", "tensor[t+0]"]
    np.testing.assert_array_equal(test[0]["x"].numpy(), tensor[sample, 0:2, ::4])
    np.testing.assert_array_equal(test[0]["y"].numpy(), tensor[sample, 2:3, ::4])


def test_random_split_is_seeded_and_disjoint(burgers_1d):
    path, _ = burgers_1d
    first = DataConfig.from_dict({"path": str(path), "split_seed": 3}).splits
    again = DataConfig.from_dict({"path": str(path), "split_seed": 3}).splits
    other = DataConfig.from_dict({"path": str(path), "split_seed": 4}).splits
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["test"], other["test"])
    assert sorted(np.concatenate(list(first.values())).tolist()) == list(range(N))
    assert (len(first["train"]), len(first["val"]), len(first["test"])) == (16, 2, 2)


# ----------------------------------------------------------------------------- the Well

W, H, TW = 8, 6, 4


@pytest.fixture(scope="module")
def well_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("well") / "shear_flow_chunk0.hdf5"
    pressure, velocity, mask = _random(3, TW, W, H), _random(3, TW, W, H, 2), _random(W)
    with h5py.File(path, "w") as h5:
        h5.attrs.update({"dataset_name": "shear_flow", "grid_type": "cartesian", "n_spatial_dims": 2, "n_trajectories": 3,
                         "simulation_parameters": ["Reynolds"], "Reynolds": 1e4})
        dims = h5.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        for name, values, tv in (("time", np.linspace(0, 1.5, TW), True), ("x", np.linspace(0, 1, W), False), ("y", np.linspace(0, 2, H), False)):
            dims[name] = values
            dims[name].attrs.update({"sample_varying": False, "time_varying": tv})
        bc = h5.create_group("boundary_conditions/x_periodic")
        bc.attrs.update({"associated_dims": ["x"], "associated_fields": [], "bc_type": "PERIODIC", "sample_varying": False, "time_varying": False})
        bc["mask"] = np.ones(W, dtype=bool)
        bc["values"] = np.zeros(0, dtype=np.float32)
        scalars = h5.create_group("scalars")
        scalars.attrs["field_names"] = ["viscosity"]
        scalars["viscosity"] = np.float32(0.25)
        scalars["viscosity"].attrs.update({"sample_varying": False, "time_varying": False})
        t0 = h5.create_group("t0_fields")
        t0.attrs["field_names"] = ["pressure", "mask"]
        t0["pressure"] = pressure
        t0["pressure"].attrs.update({"sample_varying": True, "time_varying": True, "dim_varying": [True, True]})
        t0["mask"] = mask  # constant over samples, time and y: a static, broadcast channel
        t0["mask"].attrs.update({"sample_varying": False, "time_varying": False, "dim_varying": [True, False]})
        t1 = h5.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        t1["velocity"] = velocity
        t1["velocity"].attrs.update({"sample_varying": True, "time_varying": True, "dim_varying": [True, True]})
        h5.create_group("t2_fields").attrs["field_names"] = []
    return path, pressure, velocity, mask


def test_well_fields_read_exactly_with_names_coords_and_attrs(well_file):
    path, pressure, velocity, mask = well_file
    assert detect_format(path) == "the_well"
    info = inspect_well(path)
    source = info.open(np.arange(3), FILE_VIEW, None)
    assert source.channels == ["pressure", "velocity_x", "velocity_y"] and source.static_channels == ["mask"]
    expected = np.concatenate([pressure[1][:, None], np.moveaxis(velocity[1], -1, 1)], axis=1)
    np.testing.assert_array_equal(source.read_steps(1, slice(0, TW)), expected)
    np.testing.assert_array_equal(source.read_static(1), np.broadcast_to(mask[None, :, None], (1, W, H)))
    np.testing.assert_array_equal(source.coords["y"], np.linspace(0, 2, H))
    # x is named by a periodic boundary condition, y by none (its coordinates include both ends)
    assert source.grid.kinds == ("periodic", "vertex") and source.grid.axes[1].length == pytest.approx(2.0)
    np.testing.assert_array_equal(source.times, np.linspace(0, 1.5, TW))
    attrs = source.attrs
    assert attrs["name"] == "shear_flow" and attrs["param.Reynolds"] == 1e4 and attrs["scalar.viscosity"] == 0.25
    assert attrs["boundary"] == "periodic" and attrs["boundary_conditions"]["x_periodic"]["associated_dims"] == ["x"]


def test_well_window_appends_static_channels(well_file):
    path, pressure, velocity, mask = well_file
    cfg = DataConfig.from_dict({"path": str(path), "task": "window", "steps_in": 2, "steps_out": 1, "val_fraction": 0.0,
                                "test_fraction": 0.34, "test_strides": [1, 2]})
    train = open_split(cfg, "train")
    assert train.input_channels == ["pressure[t-1]", "velocity_x[t-1]", "velocity_y[t-1]",
                                    "pressure[t+0]", "velocity_x[t+0]", "velocity_y[t+0]", "mask"]
    sample = int(cfg.splits["train"][0])
    item = train[1]  # first training trajectory, window start 1
    np.testing.assert_array_equal(item["x"][3].numpy(), pressure[sample, 2])
    np.testing.assert_array_equal(item["x"][6].numpy(), np.broadcast_to(mask[:, None], (W, H)))
    np.testing.assert_array_equal(item["y"][2].numpy(), velocity[sample, 3, :, :, 1])
    strided = open_split(cfg, "test", available_resolutions(cfg, "test")[1])
    assert strided[0]["x"].shape == (7, W // 2, H // 2)
    with pytest.raises(ConfigError, match="PDEBench files only"):
        DataConfig.from_dict({"path": str(path), "split": "pdebench"}).splits


# ----------------------------------------------------------------------------- bad files


def _write(path, **arrays):
    with h5py.File(path, "w") as h5:
        for key, value in arrays.items():
            h5[key] = value
    return path


def test_truncated_file_gives_one_clear_error(burgers_1d, tmp_path):
    path = tmp_path / "1D_Burgers_cut.hdf5"
    raw = burgers_1d[0].read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match=str(path)):
        DataConfig.from_dict({"path": str(path), "task": "window"}).file_format


def test_corrupt_sample_data_gives_one_clear_error(burgers_1d, tmp_path):
    """Header intact, the data block overwritten with garbage: a read error names the file and sample."""
    path = tmp_path / "1D_Burgers_corrupt.hdf5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("tensor", data=_random(N, T, X), chunks=(1, T, X), compression="gzip")
        h5["x-coordinate"] = np.arange(X, dtype=np.float32)
        h5["t-coordinate"] = np.arange(T + 1, dtype=np.float32)
        offset = h5["tensor"].id.get_chunk_info(3).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    source = inspect_pdebench(path).open(np.arange(N), FILE_VIEW, None)
    with pytest.raises(DataFormatError, match=r"sample 3 failed; the file is truncated or corrupt"):
        source.read_steps(3, slice(0, T))


@pytest.mark.parametrize(
    ("arrays", "key", "message"),
    [
        ({"tensor": np.zeros((4, 3, 8), np.float32), "t-coordinate": np.arange(4.0)}, "x-coordinate", "expected a 1-D coordinate array of length 8"),
        ({"tensor": np.zeros((4, 8), np.float32)}, "tensor", "expected a trajectory array [N, T, *space]"),
        ({"tensor": np.zeros((4, 3, 8), np.float32), "x-coordinate": np.arange(8.0), "t-coordinate": np.arange(2.0)}, "t-coordinate", "at least 3 entries"),
        ({"nu": np.zeros((4, 8, 8), np.float32), "tensor": np.zeros((4, 2, 8, 8), np.float32)}, "tensor", "expected the solution array [N, 1, *space]"),
        ({"density": np.zeros((4, 3, 8), np.float32), "Vx": np.zeros((4, 3, 9), np.float32)}, "Vx", "expected the same shape as 'density'"),
    ],
)
def test_bad_pdebench_layouts(tmp_path, arrays, key, message):
    path = _write(tmp_path / "bad.hdf5", **arrays)
    with pytest.raises(DataFormatError) as err:
        inspect_pdebench(path)
    assert str(path) in str(err.value) and f"key '{key}'" in str(err.value) and message in str(err.value)


def test_nan_in_a_foreign_sample_names_file_key_and_sample(tmp_path):
    tensor = _random(4, 3, 8)
    tensor[2, 1, 5] = np.nan
    path = _write(tmp_path / "nan.hdf5", **{"tensor": tensor, "x-coordinate": np.arange(8.0), "t-coordinate": np.arange(4.0)})
    source = inspect_pdebench(path).open(np.arange(4), FILE_VIEW, None)
    source.read_steps(1, slice(0, 3))
    with pytest.raises(DataFormatError, match=r"key 'tensor': sample 2 holds NaN or Inf"):
        source.read_steps(2, slice(0, 3))


def test_well_shape_contradicting_flags(well_file, tmp_path):
    path = tmp_path / "bad_well.hdf5"
    path.write_bytes(well_file[0].read_bytes())
    with h5py.File(path, "a") as h5:
        h5["t0_fields/pressure"].attrs["sample_varying"] = False
    with pytest.raises(DataFormatError, match=r"key '/t0_fields/pressure': expected shape \(4, 8, 6\)"):
        inspect_well(path)


def test_unknown_layout_and_bad_options(tmp_path, burgers_1d):
    path = _write(tmp_path / "other.h5", foo=np.zeros(3))
    with pytest.raises(DataFormatError, match="not a known layout"):
        detect_format(path)
    with pytest.raises(ConfigError, match="data.split=file"):
        DataConfig.from_dict({"path": str(burgers_1d[0]), "split": "file"}).splits
    with pytest.raises(ConfigError, match="data.train_resolution applies to neuralops files"):
        open_source(DataConfig.from_dict({"path": str(burgers_1d[0]), "train_resolution": 8, "task": "window"}), "train")
