"""What every reader serves: pair datasets and trajectory sources, one split at one grid.

Two kinds of reader share one base (:class:`SampleSource`: lazy handle, metadata, resolution
view, NaN/Inf check):

* a :class:`PairSource` is itself a ``torch`` dataset of input→output pairs
  ``{"x": (C_in, *grid), "y": (C_out, *grid)}`` (our pair files, PDEBench Darcy);
* a :class:`TrajectorySource` serves states ``(n_steps, C, *grid)`` of trajectory ``i`` between
  two time indices, plus optional time-constant fields ``(S, *grid)``; the tasks in
  :mod:`neuralops.data.tasks` turn it into a dataset (one-shot, windows, rollouts).

Subclasses (our files in :mod:`neuralops.data.dataset`, :mod:`neuralops.data.adapters.pdebench`,
:mod:`neuralops.data.adapters.the_well`) implement only the raw reads, with h5py selections of
one sample (never a whole array), and set the metadata through :meth:`SampleSource._describe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from neuralops.data.handles import LazyH5, finite_or_raise
from neuralops.data.views import FILE_VIEW, ResolutionView
from neuralops.errors import DataFormatError
from neuralops.grid import Grid


class SampleSource(LazyH5):
    """Shared metadata and view logic of every reader.

    Attributes (set by :meth:`_describe`):
        path: the file.
        name: dataset name (from the file).
        axes: spatial axis names in array order.
        n_dims: number of spatial axes.
        stored_shape: the stored grid the reader derives its grid from.
        grid_shape: the grid served (after the view), points per axis.
        coords: 1-D coordinates per axis of the served grid (physical units where the file says).
        grid: the :class:`~neuralops.grid.Grid` served: kind, domain, spacing and quadrature
            weights of every axis, read once from the file and derived through the view.
        attrs: file-level metadata (name, boundary, PDE parameters, ...), plain Python values.
        sample_ids: int64 ``(len,)`` ids of this split's samples within the file (row, global
            id or group position, as documented by each reader), for split manifests.
        view: the :class:`~neuralops.data.views.ResolutionView` applied.
    """

    name: str
    axes: list[str]
    stored_shape: tuple[int, ...]
    grid_shape: tuple[int, ...]
    coords: dict[str, np.ndarray]
    grid: Grid
    attrs: dict[str, Any]
    sample_ids: np.ndarray
    view: ResolutionView

    def _describe(
        self,
        name: str,
        stored_grid: Grid,
        coords: Mapping[str, np.ndarray],
        attrs: Mapping[str, Any],
        sample_ids: np.ndarray,
        view: ResolutionView = FILE_VIEW,
    ) -> None:
        """Set the metadata; ``stored_grid`` is the grid of the stored arrays and ``coords``
        their coordinates as the file holds them."""
        self.name = name
        self.axes = list(stored_grid.names)
        self.stored_shape = stored_grid.shape
        self.view = view
        self.grid_shape = view.shape_from(self.stored_shape, self.path)
        self.grid = view.grid_from(stored_grid, self.path)
        self.coords = view.coords_from(coords)
        self.attrs = dict(attrs)
        self.sample_ids = np.asarray(sample_ids, dtype=np.int64)

    @property
    def n_dims(self) -> int:
        return len(self.axes)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def _space(self) -> tuple[slice, ...]:
        """The h5py selection of the served grid along each spatial axis (in ``axes`` order)."""
        return self.view.selection(self.n_dims)

    def _where(self, i: int) -> str:
        """Where sample ``i`` lives in the file, for error messages."""
        return f"sample {int(self.sample_ids[i])}"

    def _finish(self, values: np.ndarray, key: str, i: int) -> np.ndarray:
        """Check values read for sample ``i`` from ``key`` and apply the view (float32)."""
        values = finite_or_raise(values, self.path, key, self._where(i))
        return self.view.apply(values, self.n_dims)

    def _read_failed(self, i: int, err: Exception) -> DataFormatError:
        return DataFormatError(f"{self.path}: reading {self._where(i)} failed; the file is truncated or corrupt ({err})")

    def _check_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} samples")
        return i % n


class PairSource(SampleSource, Dataset):
    """A dataset of input→output pairs: ``ds[i] = {"x": (C_in, *grid), "y": (C_out, *grid)}``.

    Subclasses set ``input_channels`` and ``output_channels`` and implement :meth:`_read_pair`.
    """

    input_channels: list[str]
    output_channels: list[str]

    def _read_pair(self, i: int) -> tuple[tuple[str, np.ndarray], tuple[str, np.ndarray]]:
        """Raw ``((input key, x), (output key, y))`` of sample ``i`` on the selection
        :meth:`_space`, shapes ``(C_in, *grid)`` and ``(C_out, *grid)``."""
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        i = self._check_index(i)
        try:
            (x_key, x), (y_key, y) = self._read_pair(i)
        except OSError as err:
            raise self._read_failed(i, err) from None
        return {"x": torch.from_numpy(self._finish(x, x_key, i)), "y": torch.from_numpy(self._finish(y, y_key, i))}


class TrajectorySource(SampleSource):
    """Trajectories of a state with ``C`` channels at ``T`` stored times.

    Subclasses set ``channels``, ``static_channels`` (time-constant input fields, possibly
    empty), ``times`` (float64 ``(T,)``, units in ``attrs["time_units"]`` when known) and
    implement :meth:`_read_steps` (and :meth:`_read_static` when there are static channels).
    """

    channels: list[str]
    static_channels: list[str]
    times: np.ndarray

    @property
    def n_times(self) -> int:
        return len(self.times)

    def _read_steps(self, i: int, steps: slice) -> tuple[str, np.ndarray]:
        """Raw ``(key, states)`` of trajectory ``i`` at the time indices ``steps`` (a slice with a
        positive step) on the selection :meth:`_space`: ``(n_steps, C, *grid)``."""
        raise NotImplementedError

    def _read_static(self, i: int) -> tuple[str, np.ndarray]:
        """Raw ``(key, fields)`` of the time-constant fields of sample ``i``: ``(S, *grid)``."""
        return "", np.zeros((0, *self.stored_shape), dtype=np.float32)[(slice(None), *self._space())]

    def read_steps(self, i: int, steps: slice) -> np.ndarray:
        """States of trajectory ``i`` at time indices ``steps``: float32 ``(n_steps, C, *grid)``."""
        i = self._check_index(i)
        try:
            key, values = self._read_steps(i, steps)
        except OSError as err:
            raise self._read_failed(i, err) from None
        return self._finish(values, key, i)

    def read_static(self, i: int) -> np.ndarray:
        """Time-constant fields of sample ``i``: float32 ``(S, *grid)`` (``S`` may be 0)."""
        i = self._check_index(i)
        try:
            key, values = self._read_static(i)
        except OSError as err:
            raise self._read_failed(i, err) from None
        return self._finish(values, key, i)
