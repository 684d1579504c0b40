"""Learning tasks on trajectories: one-shot, k-in/m-out windows, and full rollouts.

Every task wraps a :class:`~neuralops.data.sources.TrajectorySource` (our trajectory files,
PDEBench, the Well: the same code for all) and reads only the time steps one item needs.

Channel order (documented in ``docs/data_format.md``): a window of ``k`` states with ``C``
channels each is stacked **time-major**, ``x[t * C + c] = state(first + t)[c]`` for
``t = 0 … k-1`` (oldest first), followed by the ``S`` time-constant (static) channels of the
source; the output stacks ``m`` future states the same way, without static channels. Names say
it: ``"u[t-1]", "u[t+0]"`` (inputs, offsets relative to the last input step, in units of the
time stride), ``"u[t+1]" … "u[t+m]"`` (outputs). One-shot channel names carry the absolute step
index: ``"u[step 0]"`` → ``"u[step 20]"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from neuralops.data.sources import TrajectorySource
from neuralops.errors import ConfigError

TASKS = ("one_shot", "window", "rollout")
"""``one_shot``: state at one step → state at a later step. ``window``: ``steps_in`` states →
the next ``steps_out`` states, every start position. ``rollout``: trained on windows, evaluated
by feeding predictions back over the whole trajectory (:class:`RolloutTask` serves it)."""


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def window_channel_names(channels: list[str], offsets: range) -> list[str]:
    """Time-major names ``"c[t+o]"`` for every offset ``o`` and channel ``c``."""
    return [f"{c}[t{o:+d}]" for o in offsets for c in channels]


class TaskDataset(Dataset):
    """Base of the tasks: holds the source and exposes its metadata.

    Attributes:
        source: the :class:`TrajectorySource`.
        input_channels, output_channels: names of the model's input and output channels.
        path, axes, n_dims, grid_shape, grid, coords, attrs, sample_ids, view: the source's.
    """

    input_channels: list[str]
    output_channels: list[str]

    def __init__(self, source: TrajectorySource):
        self.source = source

    path = property(lambda self: self.source.path)
    axes = property(lambda self: self.source.axes)
    n_dims = property(lambda self: self.source.n_dims)
    grid_shape = property(lambda self: self.source.grid_shape)
    grid = property(lambda self: self.source.grid)
    coords = property(lambda self: self.source.coords)
    attrs = property(lambda self: self.source.attrs)
    sample_ids = property(lambda self: self.source.sample_ids)
    view = property(lambda self: self.source.view)

    def _with_static(self, stacked: np.ndarray, i: int) -> torch.Tensor:
        if not self.source.static_channels:
            return torch.from_numpy(stacked)
        return torch.from_numpy(np.concatenate([stacked, self.source.read_static(i)], axis=0))

    def close(self) -> None:
        self.source.close()


class OneShotTask(TaskDataset):
    """State at ``input_step`` (plus static channels) → state at ``target_step``.

    Args:
        source: the trajectories.
        input_step, target_step: stored time indices (negative counts from the end, so the
            default ``-1`` is the final state); ``input_step`` must come before ``target_step``.

    ``ds[i] = {"x": (C + S, *grid), "y": (C, *grid)}`` for trajectory ``i``.
    """

    def __init__(self, source: TrajectorySource, input_step: int = 0, target_step: int = -1):
        super().__init__(source)
        n = source.n_times
        steps = []
        for name, step in (("data.input_step", input_step), ("data.target_step", target_step)):
            if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not -n <= step < n:
                raise ConfigError(f"{name}={step!r} is not a time index of {source.path}, which stores {n} steps")
            steps.append(int(step) % n)
        self.input_step, self.target_step = steps
        if self.input_step >= self.target_step:
            raise ConfigError(
                f"data.input_step ({input_step} -> {self.input_step}) must come before data.target_step "
                f"({target_step} -> {self.target_step}); {source.path} stores {n} steps"
            )
        self.input_channels = [f"{c}[step {self.input_step}]" for c in source.channels] + list(source.static_channels)
        self.output_channels = [f"{c}[step {self.target_step}]" for c in source.channels]

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x = self.source.read_steps(i, slice(self.input_step, self.input_step + 1))[0]
        y = self.source.read_steps(i, slice(self.target_step, self.target_step + 1))[0]
        return {"x": self._with_static(x, i), "y": torch.from_numpy(y)}


class _Windowed(TaskDataset):
    """Shared window arithmetic: ``steps_in``, ``steps_out`` and the time stride."""

    def __init__(self, source: TrajectorySource, steps_in: int, steps_out: int, time_stride: int):
        super().__init__(source)
        self.steps_in = _positive_int("data.steps_in", steps_in)
        self.steps_out = _positive_int("data.steps_out", steps_out)
        self.time_stride = _positive_int("data.time_stride", time_stride)
        self.n_steps = -(-source.n_times // self.time_stride)
        """Steps per trajectory after the time stride."""
        if self.steps_in + self.steps_out > self.n_steps:
            raise ConfigError(
                f"data.steps_in + data.steps_out = {self.steps_in + self.steps_out} exceeds the {self.n_steps} time steps of "
                f"{source.path} (stored {source.n_times}, data.time_stride={self.time_stride})"
            )
        channels = source.channels
        self.input_channels = window_channel_names(channels, range(1 - self.steps_in, 1)) + list(source.static_channels)
        self.output_channels = window_channel_names(channels, range(1, self.steps_out + 1))

    @property
    def n_channels(self) -> int:
        """Channels ``C`` of one state."""
        return len(self.source.channels)

    def _states(self, i: int, first: int, count: int) -> np.ndarray:
        """``count`` consecutive (strided) states of trajectory ``i`` from strided step ``first``:
        ``(count, C, *grid)``."""
        start = first * self.time_stride
        return self.source.read_steps(i, slice(start, start + (count - 1) * self.time_stride + 1, self.time_stride))

    @staticmethod
    def _stack(states: np.ndarray) -> np.ndarray:
        """``(n, C, *grid)`` → time-major ``(n * C, *grid)``."""
        return states.reshape(states.shape[0] * states.shape[1], *states.shape[2:])


class WindowTask(_Windowed):
    """Every window of ``steps_in`` consecutive states → the following ``steps_out`` states.

    Args:
        source: the trajectories.
        steps_in, steps_out: ``k`` and ``m``.
        time_stride: use every ``time_stride``-th stored step (PDEBench's
            ``reduced_resolution_t``).

    Item ``j`` is window ``w = j % W`` of trajectory ``j // W``, with ``W = n_steps - k - m + 1``
    windows per trajectory: ``{"x": (k*C + S, *grid), "y": (m*C, *grid)}`` with the states at
    strided steps ``w … w+k-1`` (input, time-major, then static channels) and ``w+k … w+k+m-1``.
    """

    def __init__(self, source: TrajectorySource, steps_in: int = 1, steps_out: int = 1, time_stride: int = 1):
        super().__init__(source, steps_in, steps_out, time_stride)
        self.windows_per_sample = self.n_steps - self.steps_in - self.steps_out + 1

    def __len__(self) -> int:
        return len(self.source) * self.windows_per_sample

    def __getitem__(self, j: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if not -n <= j < n:
            raise IndexError(f"index {j} out of range for {n} windows")
        sample, first = divmod(j % n, self.windows_per_sample)
        states = self._states(sample, first, self.steps_in + self.steps_out)
        x = self._stack(states[: self.steps_in])
        return {"x": self._with_static(x, sample), "y": torch.from_numpy(self._stack(states[self.steps_in :]))}


class RolloutTask(_Windowed):
    """Whole trajectories for autoregressive evaluation of a ``steps_in → steps_out`` model.

    Args:
        source, steps_in, steps_out, time_stride: as for :class:`WindowTask` (the model's).
        max_steps: predict at most this many states (``None``: up to the end).

    ``ds[i] = {"x": (k*C + S, *grid), "y": (R, C, *grid), "static": (S, *grid)}``: the first
    ``k`` strided states stacked as the model's input, and the ``R = n_steps - k`` (or
    ``max_steps``) states that follow, which the rollout must predict. The input frames are
    never scored. ``step_times`` holds the times of the ``R`` predicted states.
    """

    def __init__(
        self,
        source: TrajectorySource,
        steps_in: int = 1,
        steps_out: int = 1,
        time_stride: int = 1,
        max_steps: int | None = None,
    ):
        super().__init__(source, steps_in, steps_out, time_stride)
        available = self.n_steps - self.steps_in
        self.rollout_steps = available if max_steps is None else min(available, _positive_int("data.rollout_steps", max_steps))
        strided_times = source.times[:: self.time_stride]
        self.step_times = strided_times[self.steps_in : self.steps_in + self.rollout_steps].copy()

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        states = self._states(i, 0, self.steps_in + self.rollout_steps)
        static = self.source.read_static(i)
        x = np.concatenate([self._stack(states[: self.steps_in]), static], axis=0)
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(states[self.steps_in :]), "static": torch.from_numpy(static)}
