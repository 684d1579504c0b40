"""Sharded neuralops datasets and the parallel generator.

A folder of shards (``--shard-size``) must serve exactly the samples of the single file written by
the same command, and the samples must not depend on the number of worker processes
(``--workers``) or, under torchrun, on the ranks: the reference is always the serial single file,
compared bitwise (array_equal), since the batches, hence the floating-point operations, are the
same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from torch.utils.data import DataLoader

from neuralops.data import OperatorDataset, TrajectoryFileSource, describe, resolutions, validate
from neuralops.data.factory import DataConfig, open_split
from neuralops.data.generate import GENERATORS, main
from neuralops.data.generators.darcy import DarcyOptions
from neuralops.data.generators.parallel import WorkerPool, batches, map_batches, reporting_to
from neuralops.data.generators.trajectory_writers import NavierStokesOptions, navier_stokes_plan, navier_stokes_samples
from neuralops.data.handles import MAX_OPEN_FILES
from neuralops.errors import DataFormatError

DARCY = ["darcy", "--samples", "12", "--val-fraction", "0.17", "--test-fraction", "0.17", "--resolutions", "9",
         "--test-resolutions", "9", "17", "--seed", "2", "--batch-size", "4", "--no-progress"]
NS = ["navier_stokes", "--samples", "8", "--val-fraction", "0.25", "--test-fraction", "0.25", "--resolutions", "16", "8",
      "--final-time", "0.4", "--n-times", "3", "--dt", "0.05", "--batch-size", "2", "--seed", "1", "--no-progress"]


def _written(directory: Path, args: list[str], name: str) -> Path:
    out = directory / name
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def darcy_pair(tmp_path_factory):
    """The same Darcy command as one file, and as shards of 5 (not a multiple of the batch)."""
    root = tmp_path_factory.mktemp("darcy")
    return _written(root, DARCY, "one.h5"), _written(root, [*DARCY, "--shard-size", "5"], "sharded")


def _all_items(path, split: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ds = OperatorDataset(path, split, n)
    items = [ds[i] for i in range(len(ds))]
    ids = np.asarray(ds.sample_ids)
    ds.close()
    return ids, np.stack([i["x"].numpy() for i in items]), np.stack([i["y"].numpy() for i in items])


def test_a_folder_of_shards_reads_as_the_single_file(darcy_pair):
    one, folder = darcy_pair
    assert sorted(p.name for p in folder.iterdir()) == [f"darcy-0000{k}-of-00003.h5" for k in range(3)]
    validate(folder)
    summary, reference = describe(folder), describe(one)
    for key in ("splits", "resolutions", "input_channels", "output_channels", "pde_params", "n_samples", "grid", "coarsening"):
        assert summary[key] == reference[key], key
    assert resolutions(folder, "test") == resolutions(one, "test") == [(9, 9), (17, 17)]
    for split, n in (("train", 9), ("val", 9), ("test", 9), ("test", 17)):
        for got, expected in zip(_all_items(folder, split, n), _all_items(one, split, n)):
            assert np.array_equal(got, expected), (split, n)


def test_shard_files_hold_ascending_ranges_and_name_themselves_in_errors(darcy_pair):
    _, folder = darcy_pair
    with h5py.File(folder / "darcy-00001-of-00003.h5") as h5:
        assert (h5.attrs["format_version"], h5.attrs["shard_index"], h5.attrs["n_shards"]) == (3, 1, 3)
        assert h5["resolutions/9/index"][()].tolist() == [5, 6, 7, 8, 9]
        assert h5["resolutions/17/index"][()].tolist() == []  # the test samples (10, 11) are all in shard 2
    ds = OperatorDataset(folder, "val", 9)
    assert ds._where(0) == "row 3 of darcy-00001-of-00003.h5 (sample 8)"


def test_folder_reader_keeps_a_bounded_number_of_files_open_and_works_in_workers(tmp_path):
    folder = _written(tmp_path, [*DARCY, "--shard-size", "1"], "twelve")
    ds = OperatorDataset(folder, "train", 9)
    reference = OperatorDataset(_written(tmp_path, DARCY, "one.h5"), "train", 9)
    assert len(list(folder.iterdir())) == 12 > MAX_OPEN_FILES
    for i in range(len(ds)):
        ds[i]
        assert len(ds._open) <= MAX_OPEN_FILES
    batches_read = list(DataLoader(ds, batch_size=4, num_workers=2))
    expected = list(DataLoader(reference, batch_size=4))
    assert all(np.array_equal(a["y"], b["y"]) and np.array_equal(a["x"], b["x"]) for a, b in zip(batches_read, expected))
    ds.close()
    reference.close()


def _copy(folder: Path, target: Path) -> Path:
    shutil.copytree(folder, target)
    return target


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "darcy-00001-of-00003.h5").unlink(), "holds 2 shard file(s) of a 3-shard dataset; missing shard(s) [1]"),
        (lambda f: shutil.copy(f / "darcy-00000-of-00003.h5", f / "extra.h5"), "missing shard(s) [], shard(s) [0] twice"),
        (lambda f: h5py.File(f / "darcy-00002-of-00003.h5", "a").attrs.modify("param_seed", 7), "key '/@param_seed': differs from shard 0"),
        (lambda f: [p.unlink() for p in f.iterdir()], "the folder holds no data file"),
    ],
    ids=["missing", "twice", "header", "empty"],
)
def test_a_broken_folder_is_one_line_naming_it(darcy_pair, tmp_path, damage, message):
    folder = _copy(darcy_pair[1], tmp_path / "broken")
    damage(folder)
    with pytest.raises(DataFormatError) as err:
        OperatorDataset(folder, "train", 9)
    assert message in str(err.value) and str(folder) in str(err.value) and "\n" not in str(err.value)


def test_a_complete_file_among_shards_is_refused(darcy_pair, tmp_path):
    one, folder = darcy_pair
    mixed = _copy(folder, tmp_path / "mixed")
    shutil.copy(one, mixed / "zzz.h5")
    with pytest.raises(DataFormatError, match=r"zzz.h5: key '/@n_shards': a complete dataset file, not a shard"):
        DataConfig.from_dict({"path": str(mixed)}).splits


def test_one_shard_alone_is_a_valid_partial_file(darcy_pair):
    """A shard validates on its own (its split samples need not all be held there)."""
    header = validate(darcy_pair[1] / "darcy-00000-of-00003.h5")
    assert header.shard == (0, 3) and len(header.splits["test"]) == 2


# ----------------------------------------------------------------------------- workers


def _trajectories(path) -> dict[tuple[str, int], np.ndarray]:
    out = {}
    for split in ("train", "val", "test"):
        for n in (16, 8):
            source = TrajectoryFileSource(path, split, n)
            out[split, n] = np.stack([source.read_steps(i, slice(None)) for i in range(len(source))])
            source.close()
    return out


def test_four_workers_and_shards_write_the_serial_samples_bitwise(tmp_path):
    """NS (torch solver) with 4 workers into shards of 4 (a multiple of --batch-size 2), and Darcy
    with 4 workers into one file: the arrays of the serial single file, bit for bit."""
    serial = _written(tmp_path, NS, "serial.h5")
    parallel = _written(tmp_path, [*NS, "--workers", "4", "--shard-size", "4"], "parallel")
    expected, got = _trajectories(serial), _trajectories(parallel)
    assert all(np.array_equal(got[key], expected[key]) for key in expected)
    darcy_serial, darcy_parallel = _written(tmp_path, DARCY, "d1.h5"), _written(tmp_path, [*DARCY, "--workers", "4"], "d4.h5")
    for split, n in (("train", 9), ("test", 17)):
        for got, expected in zip(_all_items(darcy_parallel, split, n), _all_items(darcy_serial, split, n)):
            assert np.array_equal(got, expected)


def test_samples_do_not_depend_on_the_batch(tmp_path):
    """The per-sample function gives the stored sample: bitwise for Darcy (each PCG sample stops at
    its own tolerance), to float32 rounding for the spectral solver (float64 differences ~1e-16)."""
    path = _written(tmp_path, DARCY, "d.h5")
    ds = OperatorDataset(path, "test", 17)
    sample = GENERATORS["darcy"].sample(2, int(ds.sample_ids[1]), DarcyOptions(), 17)
    assert np.array_equal(sample["y"], ds[1]["y"].numpy()) and np.array_equal(sample["x"], ds[1]["x"].numpy())
    options = NavierStokesOptions(final_time=0.4, n_times=3, dt=0.05)
    alone = GENERATORS["navier_stokes"].sample(1, 5, options, 16)["trajectory"]
    batch = navier_stokes_samples(1, [4, 5, 6], options, 16)["trajectory"]
    assert alone.shape == (3, 1, 16, 16) and alone.dtype == np.float32
    np.testing.assert_allclose(batch[1], alone, rtol=0, atol=1e-6 * np.abs(alone).max())


class _Counter:
    def __init__(self):
        self.n = 0

    def update(self, amount):
        self.n += amount


def test_progress_advances_per_stored_frame_also_from_workers():
    """The NS bar counts frames (samples x stored times) as the solver stores them; with workers the
    counts come back through the pool's queue."""
    plan = navier_stokes_plan(0, NavierStokesOptions(final_time=0.2, n_times=3, dt=0.05, batch_size=2), 8)
    tasks = batches(np.arange(5), 2)
    counter = _Counter()
    with reporting_to(counter):
        plan.solve(tasks[0])
    assert counter.n == 2 * 3
    counter = _Counter()
    with WorkerPool(2) as pool, reporting_to(counter):
        results = list(map_batches(plan.solve, tasks, pool))
    assert counter.n == 5 * 3 and [len(r) for r in results] == [2, 2, 1]


def test_batches_group_ids_by_batch_index():
    assert [b.tolist() for b in batches(np.array([1, 2, 3, 4, 9, 10]), 4)] == [[1, 2, 3], [4], [9, 10]]


@pytest.mark.slow
def test_torchrun_ranks_write_one_shard_each(tmp_path, repo_root):
    """Two gloo ranks under torchrun: one shard per rank, the serial file's samples."""
    out = tmp_path / "ranks"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "neuralops.data.generate",
         *DARCY, "--out", str(out)], cwd=repo_root, capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["darcy-00000-of-00002.h5", "darcy-00001-of-00002.h5"]
    serial = _written(tmp_path, DARCY, "serial.h5")
    for split, n in (("train", 9), ("test", 17)):
        for got, expected in zip(_all_items(out, split, n), _all_items(serial, split, n)):
            assert np.array_equal(got, expected)


def test_sharded_trajectories_train_through_the_factory(tmp_path):
    """A folder path goes through DataConfig / open_split unchanged (window task over shards)."""
    folder = _written(tmp_path, [*NS, "--shard-size", "3"], "ns")
    single = _written(tmp_path, NS, "ns.h5")
    for path in (folder, single):
        cfg = DataConfig.from_dict({"path": str(path), "task": "window", "steps_in": 1})
        assert cfg.file_format == "neuralops" and cfg.split_policy == "file"
    a = open_split(DataConfig.from_dict({"path": str(folder), "task": "window"}), "train")
    b = open_split(DataConfig.from_dict({"path": str(single), "task": "window"}), "train")
    assert len(a) == len(b) == 4 * 2  # 4 training trajectories x 2 windows of 1 -> 1 at the finest grid
    assert all(np.array_equal(a[i]["x"], b[i]["x"]) and np.array_equal(a[i]["y"], b[i]["y"]) for i in range(len(a)))
