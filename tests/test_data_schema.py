"""Schema writer, validator, lazy dataset and normalizer fitting, on a small synthetic file.

The toy file: 10 samples (train 0-5, val 6-7, test 8-9), inputs ("a", "b"), output ("u",),
every sample at 8x8 and only the test samples at 16x16. Sample arrays are random with a large
offset so that the normalizer check is sensitive to cancellation.
"""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neuralops.data import DatasetMetadata, DatasetWriter, OperatorDataset, describe, fit_normalizers, resolutions, validate
from neuralops.errors import ConfigError, DataFormatError

N_SAMPLES = 10
SPLITS = {"train": np.arange(6), "val": np.arange(6, 8), "test": np.arange(8, 10)}
HELD = {8: np.arange(N_SAMPLES), 16: SPLITS["test"]}
META = DatasetMetadata(
    name="toy",
    description="random arrays for tests",
    input_channels=("a", "b"),
    output_channels=("u",),
    axes=("x", "y"),
    boundary="periodic",
    grid="periodic",
    coarsening="subsampled",
    pde_params={"nu": 0.01, "scheme": "none"},
)


def _toy_arrays() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    return {
        n: (
            (100.0 + 3.0 * rng.standard_normal((len(ids), 2, n, n))).astype(np.float32),
            (-5.0 + rng.standard_normal((len(ids), 1, n, n))).astype(np.float32),
        )
        for n, ids in HELD.items()
    }


def _write_toy(path, arrays) -> None:
    with DatasetWriter(path, META, N_SAMPLES, SPLITS) as writer:
        for n, ids in HELD.items():
            grid = np.arange(n) / n
            target = writer.add_resolution({"x": grid, "y": 2.0 * grid}, ids)
            for row, sample_id in enumerate(ids):
                target.write(int(sample_id), arrays[n][0][row], arrays[n][1][row])
        writer.set_sample_param("viscosity", np.linspace(0.1, 1.0, N_SAMPLES))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.h5"
    arrays = _toy_arrays()
    _write_toy(path, arrays)
    return path, arrays


@pytest.fixture
def toy_copy(toy, tmp_path):
    """A private copy of the toy file that a test may corrupt."""
    path = tmp_path / "copy.h5"
    path.write_bytes(toy[0].read_bytes())
    return path


def _open_files() -> set[str]:
    ids = h5py.h5f.get_obj_ids(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)
    return {os.path.realpath(i.name.decode()) for i in ids}


# ----------------------------------------------------------------------------- round trip


def test_round_trip_raw_h5py_matches_written_arrays(toy):
    path, arrays = toy
    with h5py.File(path, "r") as h5:
        assert h5.attrs["format"] == "neuralops" and h5.attrs["format_version"] == 1
        assert list(h5.attrs["input_channels"]) == ["a", "b"]
        assert h5.attrs["param_nu"] == 0.01 and h5.attrs["param_scheme"] == "none"
        for name, ids in SPLITS.items():
            np.testing.assert_array_equal(h5[f"splits/{name}"][()], ids)
        for n, ids in HELD.items():
            group = h5[f"resolutions/{n}"]
            np.testing.assert_array_equal(group["index"][()], ids)
            np.testing.assert_array_equal(group["inputs"][()], arrays[n][0])
            np.testing.assert_array_equal(group["outputs"][()], arrays[n][1])
            assert group["inputs"].chunks == (1, 2, n, n)
            assert group["outputs"].chunks == (1, 1, n, n)
            np.testing.assert_array_equal(group["coords/y"][()], 2.0 * np.arange(n) / n)
        np.testing.assert_allclose(h5["params/viscosity"][()], np.linspace(0.1, 1.0, N_SAMPLES))


def test_dataset_returns_written_samples_in_global_id_order(toy):
    path, arrays = toy
    train = OperatorDataset(path, split="train", resolution=8)
    assert len(train) == 6
    for i in range(len(train)):
        sample = train[i]
        assert sample["x"].dtype == torch.float32 and sample["x"].shape == (2, 8, 8)
        assert torch.equal(sample["x"], torch.from_numpy(arrays[8][0][i]))
        assert torch.equal(sample["y"], torch.from_numpy(arrays[8][1][i]))
    assert torch.equal(train[-1]["y"], torch.from_numpy(arrays[8][1][5]))
    with pytest.raises(IndexError):
        train[6]
    test_fine = OperatorDataset(path, split="test", resolution=(16, 16))
    np.testing.assert_array_equal(test_fine.sample_ids, [8, 9])
    assert torch.equal(test_fine[1]["x"], torch.from_numpy(arrays[16][0][1]))
    test_coarse = OperatorDataset(path, split="test", resolution=8)
    assert torch.equal(test_coarse[1]["x"], torch.from_numpy(arrays[8][0][9]))


def test_dataset_metadata(toy):
    path, _ = toy
    ds = OperatorDataset(path, split="test")
    assert ds.grid_shape == (16, 16), "resolution=None must pick the finest grid holding the split"
    assert ds.input_channels == ["a", "b"] and ds.output_channels == ["u"] and ds.n_dims == 2
    np.testing.assert_array_equal(ds.coords["x"], np.arange(16) / 16)
    np.testing.assert_array_equal(ds.coords["y"], 2.0 * np.arange(16) / 16)
    assert ds.attrs["param_nu"] == 0.01 and ds.attrs["boundary"] == "periodic" and ds.attrs["name"] == "toy"
    assert OperatorDataset(path, split="train").grid_shape == (8, 8)


def test_resolutions_and_describe(toy):
    path, _ = toy
    assert resolutions(path, "test") == [(8, 8), (16, 16)]
    assert resolutions(path, "train") == [(8, 8)]
    summary = describe(path)
    assert summary["name"] == "toy" and summary["input_channels"] == ["a", "b"]
    assert summary["splits"] == {"train": 6, "val": 2, "test": 2}
    assert summary["resolutions"]["8"]["splits"] == {"train": 6, "val": 2, "test": 2}
    assert summary["resolutions"]["16"] == {"shape": (16, 16), "n_samples": 2, "splits": {"train": 0, "val": 0, "test": 2}}
    assert summary["pde_params"] == {"nu": 0.01, "scheme": "none"}
    assert summary["sample_params"] == ["viscosity"]


# ----------------------------------------------------------------------------- laziness


def _arrays_held(obj, seen=None):
    """Every ndarray / tensor reachable from an object's attributes, dicts, lists and tuples."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return [obj]
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple, set)):
        children = list(obj)
    elif isinstance(obj, OperatorDataset):
        children = list(vars(obj).values())
    else:
        return []
    return [a for child in children for a in _arrays_held(child, seen)]


def test_dataset_holds_no_sample_data_and_no_open_file(toy):
    path, _ = toy
    before = _open_files()
    ds = OperatorDataset(path, split="test", resolution=16)
    assert os.path.realpath(path) not in _open_files() - before, "construction must not leave the file open"
    sample_numel = ds[0]["x"].numel() + ds[0]["y"].numel()
    assert os.path.realpath(path) in _open_files(), "the first access opens the file"
    held = _arrays_held(ds)
    assert held, "the walker should at least find the sample-id and coordinate arrays"
    for array in held:
        assert isinstance(array, np.ndarray), f"dataset holds a tensor of shape {tuple(array.shape)}"
        assert array.ndim == 1 and array.size < sample_numel, f"dataset holds an array of shape {array.shape}"
    ds.close()


def test_getitem_reads_single_rows(toy, monkeypatch):
    path, _ = toy
    selections = []
    original = h5py.Dataset.__getitem__

    def spy(self, selection, *args, **kwargs):
        selections.append((self.name, selection))
        return original(self, selection, *args, **kwargs)

    ds = OperatorDataset(path, split="train", resolution=8)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    ds[3]
    monkeypatch.undo()
    ds.close()
    assert sorted(selections) == [("/resolutions/8/inputs", 3), ("/resolutions/8/outputs", 3)]


def test_pickled_dataset_drops_handle_and_reopens(toy):
    path, arrays = toy
    ds = OperatorDataset(path, split="train", resolution=8)
    ds[0]
    assert list(ds._open) == [str(path)]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._open == {}
    assert torch.equal(clone[2]["y"], torch.from_numpy(arrays[8][1][2]))
    loader = DataLoader(ds, batch_size=3, num_workers=2)
    batches = list(loader)
    assert [tuple(b["x"].shape) for b in batches] == [(3, 2, 8, 8), (3, 2, 8, 8)]
    assert torch.equal(torch.cat([b["x"] for b in batches]), torch.from_numpy(arrays[8][0][:6]))
    ds.close()
    clone.close()


# ----------------------------------------------------------------------------- normalizers


def test_fit_normalizers_matches_float64_reference(toy):
    path, arrays = toy
    ds = OperatorDataset(path, split="train", resolution=8)
    x_norm, y_norm = fit_normalizers(ds, batch_size=4)
    for norm, data in ((x_norm, arrays[8][0][:6]), (y_norm, arrays[8][1][:6])):
        ref = torch.from_numpy(data).double().transpose(0, 1).reshape(data.shape[1], -1)
        torch.testing.assert_close(norm.mean.double(), ref.mean(dim=1), rtol=1e-6, atol=0)
        torch.testing.assert_close(norm.std.double(), ref.std(dim=1, correction=0), rtol=1e-6, atol=0)
    encoded = x_norm.encode(torch.from_numpy(arrays[8][0][:6]))
    torch.testing.assert_close(encoded.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-4, rtol=0)
    ds.close()


# ----------------------------------------------------------------------------- bad input


def _assert_error(path, key_fragment, *message_fragments, check=validate):
    with pytest.raises(DataFormatError) as info:
        check(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in (key_fragment, *message_fragments):
        assert fragment in message, message


def test_missing_file(tmp_path):
    _assert_error(tmp_path / "nope.h5", "no such data file")
    _assert_error(tmp_path / "nope.h5", "no such data file", check=OperatorDataset)


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("definitely not HDF5\n" * 10)
    _assert_error(path, "not a readable HDF5 file")


def test_plain_hdf5_without_our_keys(tmp_path):
    path = tmp_path / "pdebench_like.hdf5"
    with h5py.File(path, "w") as h5:
        h5["tensor"] = np.zeros((2, 1, 4, 4), np.float32)
    _assert_error(path, "format", "neuralops")
    _assert_error(path, "format", check=OperatorDataset)


def test_missing_split(toy_copy):
    with h5py.File(toy_copy, "r+") as h5:
        del h5["splits/val"]
    _assert_error(toy_copy, "/splits/val", "missing")


def test_wrong_rank(toy_copy):
    with h5py.File(toy_copy, "r+") as h5:
        del h5["resolutions/8/outputs"]
        h5["resolutions/8/outputs"] = np.zeros((N_SAMPLES, 8, 8), np.float32)
    _assert_error(toy_copy, "/resolutions/8/outputs", "rank 4")


def test_channel_count_mismatch(toy_copy):
    with h5py.File(toy_copy, "r+") as h5:
        h5.attrs["input_channels"] = ["a", "b", "c"]
    _assert_error(toy_copy, "/inputs'", "expected 3 channel(s)", "found 2")


def test_nan_in_a_sample(toy_copy):
    with h5py.File(toy_copy, "r+") as h5:
        h5["resolutions/16/outputs"][1, 0, 3, 3] = np.nan
    validate(toy_copy, check_values=False)
    _assert_error(toy_copy, "/resolutions/16/outputs", "row 1", "NaN")
    ds = OperatorDataset(toy_copy, split="test", resolution=16)
    ds[0]
    _assert_error(toy_copy, "/resolutions/16/outputs", "row 1", check=lambda p: ds[1])
    ds.close()


def test_unknown_split_and_resolution(toy):
    path, _ = toy
    _assert_error(path, "unknown split 'training'", "['test', 'train', 'val']", check=lambda p: OperatorDataset(p, split="training"))
    _assert_error(path, "resolution (32, 32) is not in the file", "[(8, 8), (16, 16)]", check=lambda p: OperatorDataset(p, "test", 32))
    _assert_error(path, "/resolutions/16", "holds 0 of the 6 samples of split 'train'", check=lambda p: OperatorDataset(p, "train", 16))
    _assert_error(path, "3 axes", check=lambda p: OperatorDataset(p, "test", (8, 8, 8)))


# ----------------------------------------------------------------------------- writer atomicity


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("interrupt", [RuntimeError("solver diverged"), KeyboardInterrupt()])
def test_exception_mid_write_leaves_no_file(tmp_path, interrupt):
    target = tmp_path / "out.h5"
    arrays = _toy_arrays()
    with pytest.raises(type(interrupt)):
        with DatasetWriter(target, META, N_SAMPLES, SPLITS) as writer:
            res = writer.add_resolution({"x": np.arange(8.0), "y": np.arange(8.0)}, HELD[8])
            res.write(0, arrays[8][0][0], arrays[8][1][0])
            raise interrupt
    assert _leftovers(tmp_path) == []


def test_incomplete_or_invalid_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.h5"
    arrays = _toy_arrays()
    with pytest.raises(ConfigError, match="never written"):
        with DatasetWriter(target, META, N_SAMPLES, SPLITS) as writer:
            res = writer.add_resolution({"x": np.arange(8.0), "y": np.arange(8.0)}, HELD[8])
            res.write(0, arrays[8][0][0], arrays[8][1][0])
    bad = arrays[8][1][1].copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(DataFormatError, match="NaN/Inf"):
        with DatasetWriter(target, META, N_SAMPLES, SPLITS) as writer:
            writer.add_resolution({"x": np.arange(8.0), "y": np.arange(8.0)}, HELD[8]).write(1, arrays[8][0][1], bad)
    assert _leftovers(tmp_path) == []


def test_writer_refuses_to_overwrite(toy_copy):
    before = toy_copy.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        with DatasetWriter(toy_copy, META, N_SAMPLES, SPLITS):
            pass
    assert toy_copy.read_bytes() == before
    assert _leftovers(toy_copy.parent) == ["copy.h5"]


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        ({"train": [0, 1, 2], "val": [2, 3], "test": [4]}, "disjoint"),
        ({"train": [0, 1, 12], "val": [], "test": [4]}, r"in \[0, 10\)"),
        ({"train": [0, 1], "test": [4]}, "missing"),
    ],
)
def test_writer_rejects_bad_splits_before_creating_anything(tmp_path, splits, message):
    with pytest.raises(ConfigError, match=message):
        with DatasetWriter(tmp_path / "out.h5", META, N_SAMPLES, splits):
            pass
    assert _leftovers(tmp_path) == []
