"""Foreign folders read as one dataset: the Well's train/valid/test folders and PDEBench's
incompressible Navier-Stokes shards, written here in their documented layouts
(``../shared/reference/benchmarks-and-data.md``) and read back exactly."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from neuralops.config_store import register
from neuralops.data.adapters.pdebench import inspect_pdebench
from neuralops.data.factory import DataConfig, detect_format, open_source, open_split
from neuralops.data.views import FILE_VIEW
from neuralops.errors import ConfigError, DataFormatError
from neuralops.training.run import run_experiment

RNG = np.random.default_rng(3)
T, W, H = 6, 8, 8


def _well_file(path, n, fields=("c",), times=np.arange(T, dtype=float)):
    """A Well file (docs/data_format.md of the Well): t0 fields [n, T, W, H], periodic x, y."""
    values = {name: RNG.standard_normal((n, len(times), W, H)).astype(np.float32) for name in fields}
    with h5py.File(path, "w") as h5:
        h5.attrs.update({"dataset_name": "toy", "grid_type": "cartesian", "n_spatial_dims": 2, "n_trajectories": n,
                         "simulation_parameters": ["alpha"], "alpha": float(path.stem[-1])})
        dims = h5.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        for name, coords, varying in (("time", times, True), ("x", np.arange(W) / W, False), ("y", np.arange(H) / H, False)):
            dims[name] = coords
            dims[name].attrs.update({"sample_varying": False, "time_varying": varying})
        bc = h5.create_group("boundary_conditions/xy_periodic")
        bc.attrs.update({"associated_dims": ["x", "y"], "associated_fields": [], "bc_type": "PERIODIC",
                         "sample_varying": False, "time_varying": False})
        t0 = h5.create_group("t0_fields")
        t0.attrs["field_names"] = list(fields)
        for name, array in values.items():
            t0[name] = array
            t0[name].attrs.update({"sample_varying": True, "time_varying": True, "dim_varying": [True, True]})
        for order in (1, 2):
            h5.create_group(f"t{order}_fields").attrs["field_names"] = []
    return values["c"] if "c" in values else None


@pytest.fixture(scope="module")
def well_dataset(tmp_path_factory):
    """``<root>/data/{train,valid,test}/*.hdf5``: 2 train files (3 + 2 trajectories), 1 valid, 1 test."""
    root = tmp_path_factory.mktemp("well") / "toy"
    arrays = {}
    for split, files in (("train", [("toy_0", 3), ("toy_1", 2)]), ("valid", [("toy_2", 2)]), ("test", [("toy_3", 2)])):
        (root / "data" / split).mkdir(parents=True)
        for name, n in files:
            arrays[split, name] = _well_file(root / "data" / split / f"{name}.hdf5", n)
    return root, arrays


def test_well_splits_come_from_the_folders(well_dataset):
    root, arrays = well_dataset
    for path in (root, root / "data"):
        cfg = DataConfig.from_dict({"path": str(path), "format": "the_well", "task": "window", "steps_in": 2})
        assert detect_format(path) == "the_well" and cfg.split_policy == "file"
        assert {k: v.tolist() for k, v in cfg.splits.items()} == {"train": [0, 1, 2, 3, 4], "val": [5, 6], "test": [7, 8]}
    train = open_source(cfg, "train")
    assert len(train) == 5 and train.channels == ["c"] and train.path == str(root / "data")
    # position 3 is the first trajectory of the second train file
    np.testing.assert_array_equal(train.read_steps(3, slice(0, T))[:, 0], arrays["train", "toy_1"][0])
    test = open_split(cfg, "test")
    np.testing.assert_array_equal(test[T - 2]["x"][1].numpy(), arrays["test", "toy_3"][1, 1])  # trajectory 1, window 0
    # the parameter alpha differs per file, so the dataset does not claim one value; the name is common
    assert "param.alpha" not in train.attrs and train.attrs["name"] == "toy"


def test_well_folder_trains_as_is(well_dataset, repo_root, tmp_path):
    """``python train.py data=the_well data.path=<folder>`` (composed in-process): trained on the
    train folder, selected on valid, evaluated on the test folder."""
    root, _ = well_dataset
    overrides = ["data=the_well", f"data.path={root}", "model.n_modes=[2,2]", "trainer.epochs=1", "trainer.batch_size=4",
                 "trainer.limit_train_batches=2", "trainer.progress=false", "model.hidden_channels=4", "trainer.metrics=[rel_l2]"]
    register()
    with initialize_config_dir(config_dir=str(repo_root / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    run_experiment(cfg, tmp_path / "run", base_dir=repo_root)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["split"] == "file" and metrics["data_format"] == "the_well"
    assert [(r["resolution"], r["samples"]) for r in metrics["test"]][0] == ("8x8", 2 * (T - 4))  # 2 trajectories x 2 windows
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["test"]["ids"] == [7, 8] and splits["train"]["count"] == 5


def test_an_incompatible_file_in_a_folder_is_named(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _well_file(folder / "a_0.hdf5", 2)
    _well_file(folder / "b_1.hdf5", 2, fields=("c", "d"))
    with pytest.raises(DataFormatError, match=r"b_1.hdf5: channels \['c', 'd'\] differ from \['c'\] in a_0.hdf5"):
        DataConfig.from_dict({"path": str(folder), "task": "window"}).foreign
    other = tmp_path / "times"
    other.mkdir()
    _well_file(other / "a_0.hdf5", 2)
    _well_file(other / "b_1.hdf5", 2, times=np.arange(T) * 2.0)
    with pytest.raises(DataFormatError, match=r"b_1.hdf5: times .* differ from"):
        DataConfig.from_dict({"path": str(other), "task": "window"}).foreign


def test_split_policies_that_contradict_split_folders_are_refused(well_dataset, tmp_path):
    root, _ = well_dataset
    with pytest.raises(ConfigError, match="stores its splits as train/valid/test folders; use split: auto"):
        DataConfig.from_dict({"path": str(root), "split": "random"}).splits
    plain = tmp_path / "plain"
    plain.mkdir()
    _well_file(plain / "x_0.hdf5", 4)
    cfg = DataConfig.from_dict({"path": str(plain), "val_fraction": 0.25, "test_fraction": 0.25})
    assert cfg.split_policy == "random" and sorted(np.concatenate(list(cfg.splits.values())).tolist()) == [0, 1, 2, 3]
    with pytest.raises(DataFormatError, match="the folder holds no data file"):
        DataConfig.from_dict({"path": str(tmp_path / "plain" / "..")}).file_format


# ----------------------------------------------------------------------------- PDEBench NS shards

B, TN, N = 2, 5, 8


def _ns_shard(path, offset):
    """``ns_incom_inhom_2d_512-<k>.h5``: velocity [B, T, X, Y, 2], particles [B, T, X, Y, 1],
    force [B, X, Y, 2], t [B, T]; chunks (1, 1, ...) and lzf, as PDEBench's generator writes them."""
    arrays = {
        "velocity": RNG.standard_normal((B, TN, N, N, 2)).astype(np.float32) + offset,
        "particles": RNG.standard_normal((B, TN, N, N, 1)).astype(np.float32),
        "force": RNG.standard_normal((B, N, N, 2)).astype(np.float32),
        "t": np.tile(np.linspace(0, 0.4, TN), (B, 1)).astype(np.float32),
    }
    with h5py.File(path, "w") as h5:
        for key, value in arrays.items():
            chunks = (1, 1, *value.shape[2:]) if value.ndim == 5 else None
            h5.create_dataset(key, data=value, chunks=chunks, compression="lzf" if chunks else None)
        h5.attrs["config"] = "domain_size: [2, 2]\nNU: 0.01\n"
        h5.attrs["latestIndex"] = TN
    return arrays


@pytest.fixture(scope="module")
def ns_shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ns_incom")
    # natural order: shard 2 before shard 10
    return folder, [_ns_shard(folder / f"ns_incom_inhom_2d_512-{k}.h5", k) for k in (0, 2, 10)]


def test_one_ns_incompressible_shard_reads_exactly(ns_shards):
    folder, arrays = ns_shards
    info = inspect_pdebench(folder / "ns_incom_inhom_2d_512-2.h5")
    assert (info.layout, info.n_samples, info.test_last) == ("ns_incom", B, True)
    assert info.channels == ("velocity_x", "velocity_y", "particles") and info.static_channels == ("force_x", "force_y")
    source = info.open(np.arange(B), FILE_VIEW, None)
    expected = np.concatenate([np.moveaxis(arrays[1]["velocity"][1], -1, 1), np.moveaxis(arrays[1]["particles"][1], -1, 1)], axis=1)
    np.testing.assert_array_equal(source.read_steps(1, slice(0, TN)), expected)
    np.testing.assert_array_equal(source.read_static(1), np.moveaxis(arrays[1]["force"][1], -1, 0))
    np.testing.assert_allclose(source.times, np.linspace(0, 0.4, TN), rtol=1e-6)
    np.testing.assert_allclose(source.coords["x"], (np.arange(N) + 0.5) * 2 / N)  # cell centres of domain_size 2
    assert source.attrs["config.NU"] == 0.01


def test_the_ns_incompressible_shard_folder_is_one_dataset(ns_shards):
    folder, arrays = ns_shards
    cfg = DataConfig.from_dict({"path": str(folder), "task": "window", "steps_in": 2, "split": "pdebench", "val_fraction": 0.0})
    assert cfg.file_format == "pdebench" and cfg.foreign.n_samples == 3 * B
    assert cfg.splits["test"].tolist() == [5]  # .h5: PDEBench's last 10% of the concatenation
    train = open_split(cfg, "train")
    assert train.input_channels[-2:] == ["force_x", "force_y"] and len(train) == 5 * (TN - 2)
    # training position 4 is trajectory 0 of the third file in natural order (..._512-10.h5)
    item = train[4 * (TN - 2) + 1]  # its window 1
    np.testing.assert_array_equal(item["x"][3].numpy(), arrays[2]["velocity"][0, 2, :, :, 0])
    np.testing.assert_array_equal(item["x"][-1].numpy(), arrays[2]["force"][0, :, :, 1])
    np.testing.assert_array_equal(item["y"][2].numpy(), arrays[2]["particles"][0, 3, :, :, 0])


def test_a_bad_ns_incompressible_layout_names_file_and_key(tmp_path):
    path = tmp_path / "ns_incom_bad.h5"
    with h5py.File(path, "w") as h5:
        h5["velocity"] = np.zeros((2, 3, 4, 4, 2), np.float32)
        h5["particles"] = np.zeros((2, 3, 4, 5, 1), np.float32)
        h5["t"] = np.zeros((2, 3), np.float32)
    with pytest.raises(DataFormatError, match=r"ns_incom_bad.h5: key 'particles': expected \[B, T, \*space, components\] = \(2, 3, 4, 4, C\)"):
        inspect_pdebench(path)
