"""Memory bounded by the batch: reading every sample of a file much larger than the bound.

Resident-set growth (psutil RSS, which excludes the OS page cache that buffers file reads) is
measured while a ``DataLoader`` streams every window of a PDEBench-layout file (contiguous,
uncompressed: what PDEBench ships), of a folder of 16 such files read as one dataset, and of a
neuralops trajectory file (chunked, gzip). The
bound, **16 MiB** (a batch here is under 1 MiB; h5py's chunk cache is 1 MiB per dataset), is
a quarter of the 64 MiB default-suite file and 1/25 of the 400 MiB ``slow`` one; a reader that
loaded a whole array, as PDEBench's loader does, would exceed it.
"""

from __future__ import annotations

import gc

import h5py
import numpy as np
import psutil
import pytest
from torch.utils.data import DataLoader

from neuralops.data.factory import DataConfig, open_split
from neuralops.data.schema import DatasetMetadata, DatasetWriter

BOUND = 16 * 2**20


def _write_pdebench(path, n_samples, n_times=32, n=128):
    with h5py.File(path, "w") as h5:
        tensor = h5.create_dataset("tensor", shape=(n_samples, n_times, n, n), dtype=np.float32)
        rng = np.random.default_rng(0)
        for i in range(n_samples):
            tensor[i] = rng.standard_normal((n_times, n, n), dtype=np.float32)
        h5["x-coordinate"] = h5["y-coordinate"] = np.arange(n, dtype=np.float32)
        h5["t-coordinate"] = np.arange(n_times + 1, dtype=np.float32)
    return path


def _peak_growth(cfg: DataConfig) -> tuple[int, int]:
    """(largest RSS growth seen while reading every item of the train split, items read)."""
    dataset = open_split(cfg, "train")
    loader = DataLoader(dataset, batch_size=8, shuffle=True)
    next(iter(loader))  # warm up: imports, the handle, allocator pools
    gc.collect()
    process = psutil.Process()
    base = process.memory_info().rss
    peak, items = base, 0
    for batch in loader:
        items += len(batch["x"])
        peak = max(peak, process.memory_info().rss)
    dataset.close()
    return peak - base, items


@pytest.mark.parametrize("n_samples", [32, pytest.param(200, marks=pytest.mark.slow)])
def test_pdebench_file_streams_with_bounded_memory(tmp_path, n_samples):
    path = _write_pdebench(tmp_path / "2D_big.hdf5", n_samples)
    size = path.stat().st_size
    assert size >= n_samples * 2**21  # 64 MiB default, 400 MiB slow
    cfg = DataConfig.from_dict({"path": str(path), "task": "window", "steps_in": 2, "steps_out": 1, "val_fraction": 0.0})
    growth, items = _peak_growth(cfg)
    assert items == len(cfg.splits["train"]) * 30
    assert growth < BOUND, f"RSS grew by {growth / 2**20:.1f} MiB reading a {size / 2**20:.0f} MiB file"


def test_neuralops_trajectory_file_streams_with_bounded_memory(tmp_path):
    meta = DatasetMetadata(name="big", description="random", axes=("x", "y"), boundary="periodic", grid="periodic",
                           coarsening="subsampled", layout="trajectories", channels=("w",), time_units="1")
    path = tmp_path / "big.h5"
    rng = np.random.default_rng(0)
    n_samples = 32
    ids = np.arange(n_samples)
    with DatasetWriter(path, meta, n_samples, {"train": ids[:28], "val": ids[28:30], "test": ids[30:]}, times=np.arange(16.0),
                       compression="lzf") as writer:
        grid = np.arange(128) / 128
        target = writer.add_resolution({"x": grid, "y": grid}, ids)
        for i in ids:
            target.write_trajectory(int(i), rng.standard_normal((16, 1, 128, 128), dtype=np.float32))
    cfg = DataConfig.from_dict({"path": str(path), "task": "window", "steps_in": 2, "rdcc_nbytes": 2**20})
    growth, items = _peak_growth(cfg)
    assert items == 28 * 14
    assert growth < BOUND, f"RSS grew by {growth / 2**20:.1f} MiB reading a {path.stat().st_size / 2**20:.0f} MiB file"


def test_a_folder_of_many_files_streams_with_bounded_memory(tmp_path):
    """16 PDEBench files of 4 MiB (64 MiB in all) read as one dataset: handles of at most 8 files
    are open at once, so memory stays bounded like a single file's."""
    folder = tmp_path / "shards"
    folder.mkdir()
    for k in range(16):
        _write_pdebench(folder / f"2D_part-{k}.hdf5", 2)
    cfg = DataConfig.from_dict({"path": str(folder), "task": "window", "steps_in": 2, "steps_out": 1, "val_fraction": 0.0})
    assert cfg.foreign.n_samples == 32
    growth, items = _peak_growth(cfg)
    assert items == len(cfg.splits["train"]) * 30
    assert growth < BOUND, f"RSS grew by {growth / 2**20:.1f} MiB reading a 64 MiB folder"
