"""Trajectory files, tasks (one-shot / windows / rollouts), resolution views and the rollout evaluator.

The synthetic trajectory has value ``1000 * sample + 100 * t + 10 * c + x_index / 100`` at step
``t``, channel ``c``, so every expectation below is computed by hand from indices.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neuralops.data import describe, validate
from neuralops.data.dataset import OperatorDataset, TrajectoryFileSource
from neuralops.data.factory import DataConfig, available_resolutions, open_rollout, open_split, train_view
from neuralops.data.schema import DatasetMetadata, DatasetWriter
from neuralops.data.tasks import OneShotTask, RolloutTask, WindowTask
from neuralops.data.views import ResolutionView, band_limit
from neuralops.errors import ConfigError, DataFormatError
from neuralops.evaluation.rollout import evaluate_rollout, rollout

N_SAMPLES, T, C, X = 5, 6, 2, 8
SPLITS = {"train": [0, 1, 2], "val": [3], "test": [4]}
TIMES = np.linspace(0.0, 0.5, T)


def value(sample, t, c, x_index):
    return 1000.0 * sample + 100.0 * t + 10.0 * c + x_index / 100.0


def trajectory(sample: int, n: int = X, stride: int = 1) -> np.ndarray:
    t, c, x = np.meshgrid(np.arange(T), np.arange(C), np.arange(0, n * stride, stride), indexing="ij")
    return value(sample, t, c, x).astype(np.float32)


META = DatasetMetadata(
    name="synthetic", description="hand-checkable trajectories", axes=("x",), boundary="periodic", grid="periodic",
    coarsening="subsampled", layout="trajectories", channels=("a", "b"), time_units="s", pde_params={"nu": 0.5},
)


@pytest.fixture(scope="module")
def traj_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("traj") / "traj.h5"
    with DatasetWriter(path, META, N_SAMPLES, SPLITS, times=TIMES) as writer:
        fine = writer.add_resolution({"x": np.arange(X) / X}, range(N_SAMPLES))
        coarse = writer.add_resolution({"x": np.arange(0, X, 2) / X}, [4])
        for i in range(N_SAMPLES):
            fine.write_trajectory(i, trajectory(i))
        coarse.write_trajectory(4, trajectory(4)[:, :, ::2])
    return path


def config(path, **options):
    return DataConfig.from_dict({"path": str(path), **options})


def test_trajectory_file_round_trip_and_header(traj_file):
    header = validate(traj_file)
    assert header.metadata.layout == "trajectories" and header.metadata.channels == ("a", "b")
    np.testing.assert_array_equal(header.times, TIMES)
    summary = describe(traj_file)
    assert summary["layout"] == "trajectories" and summary["times"] == TIMES.tolist()
    source = TrajectoryFileSource(traj_file, "train", 8)
    for i, sample in enumerate(SPLITS["train"]):
        np.testing.assert_array_equal(source.read_steps(i, slice(0, T)), trajectory(sample))
    np.testing.assert_array_equal(source.read_steps(1, slice(1, 6, 2)), trajectory(1)[1:6:2])
    assert source.read_static(0).shape == (0, 8)
    with pytest.raises(DataFormatError, match="holds 'trajectories'"):
        OperatorDataset(traj_file, "train", 8)


def test_trajectory_chunks_hold_a_few_steps(traj_file):
    import h5py

    with h5py.File(traj_file) as h5:
        dataset = h5["/resolutions/8/trajectories"]
        assert dataset.shape == (N_SAMPLES, T, C, X) and dataset.chunks == (1, T, C, X)


def test_window_indexing_matches_hand_computation(traj_file):
    task = WindowTask(TrajectoryFileSource(traj_file, "train", 8), steps_in=2, steps_out=2)
    assert task.windows_per_sample == T - 4 + 1 and len(task) == 3 * 3
    assert task.input_channels == ["a[t-1]", "b[t-1]", "a[t+0]", "b[t+0]"]
    assert task.output_channels == ["a[t+1]", "b[t+1]", "a[t+2]", "b[t+2]"]
    item = task[4]  # sample index 1 (global 1), window start 1
    x_index = np.arange(X)
    for k, (t, c) in enumerate([(1, 0), (1, 1), (2, 0), (2, 1)]):
        np.testing.assert_array_equal(item["x"][k].numpy(), value(1, t, c, x_index).astype(np.float32))
    for k, (t, c) in enumerate([(3, 0), (3, 1), (4, 0), (4, 1)]):
        np.testing.assert_array_equal(item["y"][k].numpy(), value(1, t, c, x_index).astype(np.float32))
    with pytest.raises(IndexError):
        task[9]


def test_window_with_time_stride(traj_file):
    task = WindowTask(TrajectoryFileSource(traj_file, "train", 8), steps_in=1, steps_out=1, time_stride=2)
    assert task.n_steps == 3 and task.windows_per_sample == 2
    item = task[1]  # sample 0, strided start 1 -> stored steps 2 -> 4
    np.testing.assert_array_equal(item["x"][0].numpy(), value(0, 2, 0, np.arange(X)).astype(np.float32))
    np.testing.assert_array_equal(item["y"][1].numpy(), value(0, 4, 1, np.arange(X)).astype(np.float32))


def test_one_shot_default_is_initial_to_final(traj_file):
    task = OneShotTask(TrajectoryFileSource(traj_file, "test", 8))
    assert len(task) == 1 and task.input_channels == ["a[step 0]", "b[step 0]"] and task.output_channels == ["a[step 5]", "b[step 5]"]
    np.testing.assert_array_equal(task[0]["x"].numpy(), trajectory(4)[0])
    np.testing.assert_array_equal(task[0]["y"].numpy(), trajectory(4)[-1])
    chosen = OneShotTask(TrajectoryFileSource(traj_file, "test", 8), input_step=1, target_step=3)
    np.testing.assert_array_equal(chosen[0]["y"].numpy(), trajectory(4)[3])


def test_rollout_items_exclude_input_frames(traj_file):
    task = RolloutTask(TrajectoryFileSource(traj_file, "test", 8), steps_in=2, steps_out=1)
    item = task[0]
    assert item["x"].shape == (4, X) and item["y"].shape == (T - 2, C, X) and item["static"].shape == (0, X)
    np.testing.assert_array_equal(item["y"].numpy(), trajectory(4)[2:])
    np.testing.assert_allclose(task.step_times, TIMES[2:])
    capped = RolloutTask(TrajectoryFileSource(traj_file, "test", 8), steps_in=2, steps_out=1, max_steps=3)
    assert capped[0]["y"].shape[0] == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps_in": 4, "steps_out": 3}, "exceeds the 6 time steps"),
        ({"steps_in": 0}, "data.steps_in=0 must be >= 1"),
    ],
)
def test_window_options_are_checked(traj_file, options, message):
    with pytest.raises(ConfigError, match=message):
        open_split(config(traj_file, task="window", **options), "train")


def test_one_shot_steps_are_checked(traj_file):
    with pytest.raises(ConfigError, match="must come before"):
        open_split(config(traj_file, task="one_shot", input_step=3, target_step=2), "train")
    with pytest.raises(ConfigError, match="is not a time index"):
        open_split(config(traj_file, task="one_shot", target_step=6), "train")


def test_factory_requires_a_task_for_trajectories(traj_file, darcy_file):
    with pytest.raises(ConfigError, match="holds trajectories; set data.task"):
        open_split(config(traj_file), "train")
    with pytest.raises(ConfigError, match="needs trajectories"):
        open_split(config(darcy_file, task="window"), "train")
    with pytest.raises(ConfigError, match="unknown data option"):
        config(traj_file, steps_inn=2)


def test_pickled_task_reopens_in_workers(traj_file):
    task = open_split(config(traj_file, task="window", steps_in=2, steps_out=1), "train")
    task[0]
    clone = pickle.loads(pickle.dumps(task))
    assert clone.source._open == {}
    batches = list(DataLoader(task, batch_size=4, num_workers=2))
    assert sum(len(b["x"]) for b in batches) == len(task)
    np.testing.assert_array_equal(torch.cat([b["y"] for b in batches]).numpy(), np.stack([task[j]["y"].numpy() for j in range(len(task))]))
    task.close()


def test_stride_and_file_views(traj_file):
    cfg = config(traj_file, task="window", test_strides=[1, 2])
    views = available_resolutions(cfg, "test")
    assert [(v.method, v.stride, v.file_shape) for v in views] == [("file", 1, (8,)), ("stride", 2, (8,))]
    strided = open_split(cfg, "test", views[1])
    assert strided.grid_shape == (4,)
    np.testing.assert_array_equal(strided.coords["x"], np.arange(0, 8, 2) / 8)
    stored_coarse = open_split(config(traj_file, task="window"), "test", ResolutionView("file", 1, (4,)))
    for j in range(len(strided)):
        np.testing.assert_array_equal(strided[j]["x"].numpy(), stored_coarse[j]["x"].numpy())
    assert train_view(config(traj_file, task="window")).file_shape == (8,)


def test_fourier_filter_is_exact_for_band_limited_fields():
    x = np.arange(16) / 16
    field = 1.0 + np.sin(2 * np.pi * x) + 0.5 * np.cos(2 * np.pi * 3 * x)
    np.testing.assert_allclose(band_limit(field[None], (8,))[0], field[::2], atol=1e-12)
    aliased = np.cos(2 * np.pi * 6 * x)  # above the coarse Nyquist (4): removed, not aliased
    np.testing.assert_allclose(band_limit(aliased[None], (8,))[0], 0.0, atol=1e-12)
    field_2d = np.sin(2 * np.pi * x)[:, None] * np.cos(2 * np.pi * 2 * x)[None, :]
    np.testing.assert_allclose(band_limit(field_2d, (8, 8)), field_2d[::2, ::2], atol=1e-12)
    np.testing.assert_allclose(band_limit(field_2d, (8, 4)), 0.0, atol=1e-12)  # y mode 2 = coarse Nyquist: dropped
    with pytest.raises(ConfigError, match="divisible"):
        ResolutionView("fourier_filter", 3).shape_from((16,), "f.h5")


class _ShiftOperator(torch.nn.Module):
    """Predicts the next state as the last input state + ``increment`` (the true increment is 100)."""

    def __init__(self, channels: int, increment: float):
        super().__init__()
        self.channels, self.increment = channels, increment

    def forward(self, x):
        return x[:, -self.channels :] + self.increment


def test_rollout_feeds_predictions_back(traj_file):
    task = open_rollout(config(traj_file, task="rollout", steps_in=2), "test")
    item = task[0]
    initial = item["x"][None].reshape(1, 2, C, X)
    exact = rollout(_ShiftOperator(C, 100.0), initial, item["static"][None], 4, 2, 1)
    np.testing.assert_allclose(exact[0].numpy(), trajectory(4)[2:], rtol=0, atol=1e-3)
    biased = rollout(_ShiftOperator(C, 101.0), initial, item["static"][None], 4, 2, 1)
    np.testing.assert_allclose((biased - exact)[0, :, 0, 0].numpy(), [1, 2, 3, 4], atol=1e-3)


def test_rollout_metrics_per_step_match_hand_computation(traj_file):
    task = open_rollout(config(traj_file, task="rollout", steps_in=2), "test")
    result = evaluate_rollout(_ShiftOperator(C, 101.0), DataLoader(task, batch_size=1), ["rel_l2"], 2, 1)
    truth = trajectory(4)[2:].astype(np.float64)
    expected = [s * np.sqrt(C * X) / np.linalg.norm(truth[s - 1]) for s in range(1, 5)]
    assert result["steps"] == 4
    np.testing.assert_allclose(result["rel_l2_per_step"], expected, rtol=1e-5)
    assert result["rel_l2"] == pytest.approx(np.mean(expected), rel=1e-5)
