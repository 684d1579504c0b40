"""Online training (neuralops.data.online): samples equal to the offline generator's, buffer
semantics, disjoint id streams per rank, worker shutdown and error reports."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from neuralops.data.factory import DATA_OPTIONS, DataConfig, open_split
from neuralops.data.generate import main as generate
from neuralops.data.online import (
    ONLINE_OPTIONS,
    FifoBuffer,
    OnlineConfig,
    OnlineDataset,
    ReservoirBuffer,
    SolverSamples,
    distributed_rank,
    index_stream,
)
from neuralops.data.views import ResolutionView
from neuralops.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
# PCG stops at a relative residual of 1e-10, so u depends on which samples share a solve batch
# below 4e-10 relative: far under float32 rounding (6e-8), hence this bound.
PCG_RTOL = 1e-6


def _darcy_config(resolution: int = 17) -> DataConfig:
    return DataConfig.from_dict({"name": "darcy", "path": str(REPO / "data" / "darcy_small.h5"), "train_resolution": resolution})


@pytest.fixture(scope="module")
def burgers_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("online") / "burgers.h5"
    assert generate(["burgers", "--samples", "6", "--resolutions", "32", "16", "--val-fraction", "0.17", "--test-fraction", "0.17",
                     "--n-times", "5", "--final-time", "0.1", "--batch-size", "4", "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def navier_stokes_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("online") / "ns.h5"
    assert generate(["navier_stokes", "--samples", "4", "--resolutions", "16", "8", "--val-fraction", "0.25", "--test-fraction", "0.25",
                     "--n-times", "4", "--final-time", "0.06", "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("resolution", [17, 65])
def test_darcy_online_samples_are_the_shipped_files_samples(resolution):
    """Sample i of seed 0 solved online is test sample i of data/darcy_small.h5 (generated with
    --seed 0, solved at 129^2 and restricted, control-volume averaged inputs), at 17^2 and 65^2."""
    cfg = _darcy_config(resolution)
    view = ResolutionView("file", 1, (resolution, resolution))
    test = open_split(cfg, "test", view)
    rows = [0, 1, 57]
    ids, x, y = SolverSamples(cfg, view).make(0, test.sample_ids[rows])
    assert ids.tolist() == test.sample_ids[rows].tolist() and x.shape == (3, 1, resolution, resolution)
    for k, row in enumerate(rows):
        stored = test[row]
        torch.testing.assert_close(torch.from_numpy(x[k]), stored["x"], rtol=0, atol=0)
        torch.testing.assert_close(torch.from_numpy(y[k]), stored["y"], rtol=PCG_RTOL, atol=PCG_RTOL * float(stored["y"].abs().max()))


def test_online_darcy_continues_the_file_with_new_samples():
    samples = SolverSamples(_darcy_config())
    assert (samples.seed, samples.n_samples) == (0, 1250)
    _, x_new, _ = samples.make(0, np.array([1250]))
    _, x_test, _ = samples.make(0, np.array([1150]))
    assert not np.array_equal(x_new, x_test)


@pytest.mark.parametrize(
    "kind, options",
    [
        ("burgers", {"task": "window", "steps_in": 2, "steps_out": 1, "train_resolution": 16}),
        ("burgers", {"task": "one_shot", "input_step": 0, "target_step": -1, "train_resolution": 32}),
        ("navier_stokes", {"task": "window", "steps_in": 2, "steps_out": 2, "train_resolution": 8}),
    ],
)
def test_trajectory_items_equal_the_generated_files_items(kind, options, burgers_file, navier_stokes_file):
    """Online Burgers/Navier-Stokes items (solved on the file's finest grid, subsampled, cut by
    the task) equal the items the generator's file serves for the same ids, windows included."""
    path = burgers_file if kind == "burgers" else navier_stokes_file
    cfg = DataConfig.from_dict({"name": kind, "path": str(path), **options})
    samples = SolverSamples(cfg)
    expected = samples.dataset  # the file's items at the training grid (first split stored there)
    ids = expected.sample_ids
    got_ids, x, y = samples.make(0, ids)
    assert len(got_ids) == len(expected)
    for j in range(len(expected)):
        item = expected[j]
        scale = float(item["y"].abs().max())
        torch.testing.assert_close(torch.from_numpy(x[j]), item["x"], rtol=1e-5, atol=1e-6 * scale)
        torch.testing.assert_close(torch.from_numpy(y[j]), item["y"], rtol=1e-5, atol=1e-6 * scale)


def test_fifo_buffer_is_first_in_first_out_and_bounded():
    buffer = FifoBuffer(4)
    for i in range(4):
        assert buffer.put(i)
    assert buffer.full() and len(buffer) == 4
    with pytest.raises(OverflowError):
        buffer.put(4)
    assert [buffer.get(), buffer.get()] == [0, 1]
    buffer.put(4)
    buffer.put(5)
    assert [buffer.get() for _ in range(4)] == [2, 3, 4, 5]
    with pytest.raises(IndexError):
        buffer.get()


def test_reservoir_keeps_a_uniform_sample_of_the_stream():
    """After N offers to a reservoir of k, each offer is resident with probability k/N. Over T
    seeded trials an item's resident count is Binomial(T, k/N): we require every count within
    5 standard deviations (a false alarm has probability < 1e-4 over the 100 items; keeping the
    last k, or the first k, fails at once), and the size never exceeds k."""
    n_items, capacity, trials = 100, 10, 2000
    counts = np.zeros(n_items)
    for trial in range(trials):
        buffer = ReservoirBuffer(capacity, np.random.default_rng(trial))
        for i in range(n_items):
            buffer.put(i)
            assert len(buffer) == min(i + 1, capacity)
        counts[list(buffer._items)] += 1
    p = capacity / n_items
    mean, sd = trials * p, np.sqrt(trials * p * (1 - p))
    assert np.abs(counts - mean).max() < 5 * sd, (counts.min(), counts.max(), mean, sd)
    assert counts.sum() == trials * capacity


def test_reservoir_reads_residents_uniformly_without_removing_them():
    buffer = ReservoirBuffer(8, np.random.default_rng(0))
    for i in range(8):
        buffer.put(i)
    draws = np.bincount([buffer.get() for _ in range(16000)], minlength=8)
    # each count ~ Binomial(16000, 1/8): mean 2000, sd 41.8; 5 sd
    assert np.abs(draws - 2000).max() < 5 * 41.8 and len(buffer) == 8


def test_index_streams_are_disjoint_across_ranks_and_workers(monkeypatch):
    world, workers, first, length = 3, 2, 1250, 50
    streams = [list(index_stream(first, r, world, w, workers)[:length]) for r in range(world) for w in range(workers)]
    flat = [i for s in streams for i in s]
    assert len(set(flat)) == len(flat) and sorted(flat) == list(range(first, first + world * workers * length))
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert distributed_rank() == (2, 3) and distributed_rank(0, 1) == (0, 1)
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ConfigError, match="rank 3"):
        distributed_rank()


@pytest.mark.slow  # spawns solver processes: seconds each on a loaded machine
def test_fifo_stream_of_a_rank_in_order_and_workers_stop_on_an_exception():
    """One worker, FIFO, rank 1 of 2: the items are samples 1251, 1253, ... in order, equal to the
    in-process solve; an exception inside ``with`` stops the worker cleanly (exit code 0)."""
    cfg = _darcy_config()
    online = OnlineConfig(buffer="fifo", buffer_size=6, watermark=2, samples_per_epoch=24, workers=1, solve_batch=4)
    with pytest.raises(KeyError, match="raised by the training"):
        with OnlineDataset(cfg, online, rank=1, world_size=2) as data:
            assert len(data) == 12 and data.input_channels == ["a"] and data.grid_shape == (17, 17)
            batches = list(DataLoader(data, batch_size=5))
            stats = data.stats()
            processes = data._pool.processes
            raise KeyError("raised by the training")
    assert [p.is_alive() for p in processes] == [False] and [p.exitcode for p in processes] == [0]
    with pytest.raises(RuntimeError, match="closed"):
        next(iter(data))
    _, x, y = data.samples.make(0, np.arange(1251, 1251 + 2 * 12, 2))
    assert [len(b["x"]) for b in batches] == [5, 5, 2]
    torch.testing.assert_close(torch.cat([b["x"] for b in batches]), torch.from_numpy(x), rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([b["y"] for b in batches]), torch.from_numpy(y), rtol=PCG_RTOL, atol=1e-9)
    assert stats["samples_consumed"] == 12 and stats["buffer_size"] == 6
    assert stats["samples_generated"] == stats["simulations"] == stats["samples_admitted"] >= 12
    assert stats["samples_generated"] <= 12 + 6 + 4  # FIFO: consumed + buffer + one message pending


@pytest.mark.slow  # spawns solver processes: seconds each on a loaded machine
def test_a_worker_error_is_raised_in_the_training_process(burgers_file, tmp_path):
    """A solver failure in a worker (here a file whose time step is negative) is raised by the
    iteration as the worker's ConfigError, naming the worker, and the worker is gone."""
    bad = tmp_path / "bad.h5"
    bad.write_bytes(burgers_file.read_bytes())
    with h5py.File(bad, "r+") as h5:
        h5.attrs["param_dt"] = -1.0
    cfg = DataConfig.from_dict({"name": "burgers", "path": str(bad), "task": "window", "train_resolution": 16})
    with OnlineDataset(cfg, OnlineConfig(buffer_size=4, samples_per_epoch=4, workers=1, solve_batch=2)) as data:
        with pytest.raises(ConfigError, match="online solver worker 0: dt"):
            next(iter(data))
        processes = data._pool.processes
    assert not any(p.is_alive() for p in processes)


_KILLED_SCRIPT = """
import sys, time
from neuralops.data.factory import DataConfig
from neuralops.data.online import OnlineConfig, OnlineDataset
if __name__ == "__main__":
    cfg = DataConfig.from_dict({"name": "darcy", "path": sys.argv[1], "train_resolution": 17})
    data = OnlineDataset(cfg, OnlineConfig(buffer_size=2, samples_per_epoch=2, workers=1, solve_batch=1))
    next(iter(data))
    print(" ".join(str(p.pid) for p in data._pool.processes), flush=True)
    time.sleep(120)
"""


@pytest.mark.slow  # spawns solver processes: seconds each on a loaded machine
def test_no_worker_outlives_a_training_process_killed_by_sigterm():
    """SIGTERM kills the training process without any cleanup of its own; its solver workers
    notice that their parent is gone and exit within one solve batch (here ~20 ms; we allow 20 s)."""
    psutil = pytest.importorskip("psutil")
    script = subprocess.Popen([sys.executable, "-c", _KILLED_SCRIPT, str(REPO / "data" / "darcy_small.h5")],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        pids = [int(p) for p in script.stdout.readline().split()]
        assert len(pids) == 1 and all(psutil.pid_exists(p) for p in pids)
        script.send_signal(signal.SIGTERM)
        assert script.wait(timeout=20) == -signal.SIGTERM
        deadline = time.monotonic() + 20
        alive = pids
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"workers {alive} outlived the killed training process"
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()


def test_bad_online_options_are_one_line_config_errors():
    cases = [
        ({"buffer": "lifo"}, "data.online.buffer='lifo' is not one of"),
        ({"buffer_size": 0}, "data.online.buffer_size must be an integer >= 1"),
        ({"workers": 1.5}, "data.online.workers must be an integer >= 1"),
        ({"buffer_size": 10, "watermark": 11}, "data.online.watermark=11 exceeds data.online.buffer_size=10"),
        ({"buffers": "fifo"}, r"unknown data.online option\(s\) \['buffers'\]"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            OnlineConfig.from_dict(options)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not divisible by the world size 3"):
        OnlineDataset(_darcy_config(), OnlineConfig(samples_per_epoch=1000), rank=0, world_size=3)
    multi = DataConfig.from_dict({"name": "darcy", "path": str(REPO / "data" / "darcy_small.h5"), "train_resolutions": [17, 33]})
    with pytest.raises(ConfigError, match="data.train_resolutions: online training serves one grid"):
        OnlineDataset(multi, OnlineConfig())


@pytest.mark.parametrize("name", ["online_darcy", "online_burgers", "online_navier_stokes"])
def test_online_config_files_list_every_option(name, burgers_file, navier_stokes_file):
    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "data" / f"{name}.yaml"))
    cfg.pop("defaults", None)
    online = cfg.pop("online")
    assert set(online) == set(ONLINE_OPTIONS) and set(cfg) <= set(DATA_OPTIONS)
    OnlineConfig.from_dict(online)
    if cfg["path"] is None:
        cfg["path"] = str(burgers_file if name == "online_burgers" else navier_stokes_file)
        cfg.update(train_resolution=None, steps_in=2)  # the tiny test files store 4-5 states
    samples = SolverSamples(DataConfig.from_dict(cfg, REPO))
    assert samples.template.name == name.removeprefix("online_")
