"""Lazy, per-sample reading of a neuralops dataset (one split at one resolution).

:class:`OperatorDataset` reads pair datasets (``{"x", "y"}`` per sample);
:class:`TrajectoryFileSource` reads trajectory datasets for the tasks of
:mod:`neuralops.data.tasks`. A dataset is one HDF5 file or a folder of its shards
(:func:`~neuralops.data.schema.read_folder_header`), read the same way: the same samples in
the same order. Both readers keep only paths and small metadata (channel names, coordinates, the
file and row of each sample) and open files lazily once per process
(:class:`~neuralops.data.handles.LazyH5`). Each read selects one sample (a window of time steps
for trajectories) with h5py slicing, so memory stays bounded by a sample.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from neuralops.data.schema import FileHeader, ResolutionHeader, iter_split_ids, read_header, resolution_key
from neuralops.data.sources import PairSource, TrajectorySource
from neuralops.data.views import FILE_VIEW, ResolutionView
from neuralops.errors import DataFormatError
from neuralops.grid import Grid


def _split_ids(header: FileHeader, split: str) -> np.ndarray:
    if split not in header.splits:
        raise DataFormatError(f"{header.path}: unknown split {split!r}; the file has splits {sorted(header.splits)}")
    return header.splits[split]


def _shape_of(header: FileHeader, resolution: int | Sequence[int]) -> tuple[int, ...]:
    n_dims = header.metadata.n_dims
    if isinstance(resolution, (int, np.integer)):
        return (int(resolution),) * n_dims
    shape = tuple(int(n) for n in resolution)
    if len(shape) != n_dims:
        raise DataFormatError(f"{header.path}: resolution {shape} has {len(shape)} axes but the data has {n_dims} ({header.metadata.axes})")
    return shape


def _resolutions_holding(header: FileHeader, ids: np.ndarray) -> list[ResolutionHeader]:
    return [res for res in header.resolutions.values() if res.rows_of(ids) is not None]


def resolutions(path: str | os.PathLike, split: str = "test", partial: bool = False) -> list[tuple[int, ...]]:
    """Grid shapes (points per axis) that hold every sample of ``split`` (``partial``: at least
    one), coarsest first; ``path`` is a file or a folder of shards."""
    header = read_header(path)
    ids = _split_ids(header, split)
    if partial:
        return [res.shape for res in header.resolutions.values() if np.isin(ids, res.index).any()]
    return [res.shape for res in _resolutions_holding(header, ids)]


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A plain summary of a file, reading no sample arrays.

    Returns a dict with ``path``, ``name``, ``description``, ``layout``, ``input_channels``,
    ``output_channels`` (pairs; empty for trajectories), ``channels`` and ``times``
    (trajectories; empty and ``None`` for pairs), ``axes``, ``n_dims``, ``n_samples``, ``boundary``, ``grid``,
    ``coarsening``, ``pde_params``, ``sample_params``, ``splits`` (split → sample count) and
    ``resolutions`` (key such as ``"17"`` → ``{"shape": tuple, "n_samples": int,
    "splits": {split: number of that split's samples held}}``).
    """
    header = read_header(path)
    meta = header.metadata
    return {
        "path": header.path,
        "name": meta.name,
        "description": meta.description,
        "layout": meta.layout,
        "input_channels": list(meta.input_channels),
        "output_channels": list(meta.output_channels),
        "channels": list(meta.channels),
        "times": None if header.times is None else header.times.tolist(),
        "axes": list(meta.axes),
        "n_dims": meta.n_dims,
        "n_samples": header.n_samples,
        "boundary": meta.boundary,
        "grid": meta.grid,
        "coarsening": meta.coarsening,
        "pde_params": dict(meta.pde_params),
        "sample_params": list(header.sample_params),
        "splits": {name: len(ids) for name, ids in iter_split_ids(header)},
        "resolutions": {
            res.key: {
                "shape": res.shape,
                "n_samples": len(res.index),
                "splits": {name: int(np.isin(ids, res.index).sum()) for name, ids in iter_split_ids(header)},
            }
            for res in header.resolutions.values()
        },
    }


def select_resolution(
    header: FileHeader, split: str, resolution: int | Sequence[int] | None, partial: bool = False
) -> ResolutionHeader:
    """The resolution group serving ``split`` at ``resolution`` (``None``: the finest holding it).

    Raises :class:`DataFormatError` for a grid not in the file (listing those that are) or one
    that holds only part of the split (none of it with ``partial=True``).
    """
    ids = _split_ids(header, split)
    holding = _resolutions_holding(header, ids)
    if resolution is None:
        if not holding:
            raise DataFormatError(f"{header.path}: no resolution holds every sample of split {split!r}")
        return holding[-1]
    shape = _shape_of(header, resolution)
    if shape not in header.resolutions:
        available = [r.shape for r in header.resolutions.values()]
        raise DataFormatError(f"{header.path}: resolution {shape} is not in the file; available resolutions: {available}")
    res = header.resolutions[shape]
    if partial and np.isin(ids, res.index).any():
        return res
    if res.rows_of(ids) is None:
        held = int(np.isin(ids, res.index).sum())
        raise DataFormatError(
            f"{header.path}: key '/resolutions/{res.key}': holds {held} of the {len(ids)} samples of split "
            f"{split!r}; resolutions holding all of them: {[r.shape for r in holding]}"
        )
    return res


class _StoredSplit:
    """What our two readers share: header check, split and resolution lookup, metadata, rows."""

    def _open_split(
        self,
        path: str | os.PathLike,
        split: str,
        resolution: int | Sequence[int] | None,
        view: ResolutionView,
        rdcc_nbytes: int | None,
        layout: str,
        remedy: str,
        partial: bool = False,
    ) -> tuple[FileHeader, ResolutionHeader]:
        header = read_header(path)
        if header.metadata.layout != layout:
            raise DataFormatError(
                f"{header.path}: key '/@layout': this reader needs {layout!r} but the file holds "
                f"{header.metadata.layout!r}; {remedy}"
            )
        res = select_resolution(header, split, resolution, partial)
        meta = header.metadata
        self._init_handle(header.path, rdcc_nbytes)
        ids = header.splits[split]
        if partial:
            ids = ids[np.isin(ids, res.index)]
        grid = Grid.from_file_attrs(meta.axes, res.coords, meta.grid, meta.boundary, f"{header.path}: key '/resolutions/{res.key}/coords'")
        self._describe(meta.name, grid, res.coords, header.attrs, ids, view)
        self.split = split
        self._files = [file for file, _ in res.parts]
        self._part, self._rows = res.locate(res.rows_of(ids))
        return header, res

    def _file_and_row(self, i: int) -> tuple[h5py.File, int]:
        """This process's handle of the file (shard) holding sample ``i``, and its row there."""
        return self._handle(self._files[self._part[i]]), int(self._rows[i])

    def _where(self, i: int) -> str:
        shard = f" of {os.path.basename(self._files[self._part[i]])}" if len(self._files) > 1 else ""
        return f"row {int(self._rows[i])}{shard} (sample {int(self.sample_ids[i])})"


class OperatorDataset(_StoredSplit, PairSource):
    """One split of a neuralops pair file at one resolution, read lazily one sample at a time.

    Args:
        path: the HDF5 file (layout ``pairs``), or a folder of its shards.
        split: ``"train"``, ``"val"``, ``"test"`` or another split stored in the file.
        resolution: points per axis (``17`` means ``17 x 17`` in 2-D) or a tuple of points per
            axis; ``None`` picks the finest resolution that holds every sample of the split.
        view: how the served grid derives from that stored resolution (default: as stored;
            see :mod:`neuralops.data.views`).
        rdcc_nbytes: HDF5 chunk-cache bytes per dataset (``None``: h5py's default).
        partial: serve only the samples of the split that ``resolution`` holds (a grid that
            stores a subset of the training samples, for multi-resolution training); otherwise
            a grid must hold the whole split.

    ``ds[i]`` is ``{"x": FloatTensor (C_in, *grid), "y": FloatTensor (C_out, *grid)}`` for the
    global sample ``ds.sample_ids[i]``. Samples are in ascending global id, so ``ds[i]`` is the
    same physical sample in every resolution of the same split.

    Attributes:
        path: the file or folder, as a string.
        split: the split name.
        input_channels, output_channels: channel names, in channel-axis order.
        grid_shape: points per axis, in ``axes`` order.
        n_dims: number of spatial axes.
        axes: axis names, e.g. ``["x", "y"]``.
        coords: 1-D coordinate array per axis name (physical units).
        attrs: the file's root attributes (PDE parameters ``param_*``, boundary, grid, name, ...).
        sample_ids: int64 ``(len(ds),)`` global ids of the samples.

    Raises:
        DataFormatError: missing file, not our schema, a trajectory file, unknown split, a
            resolution not in the file (the message lists those that are), or a split not
            held at that resolution.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        split: str = "train",
        resolution: int | Sequence[int] | None = None,
        view: ResolutionView = FILE_VIEW,
        rdcc_nbytes: int | None = None,
        partial: bool = False,
    ):
        header, res = self._open_split(
            path, split, resolution, view, rdcc_nbytes, "pairs", "open it with a task (data.task: one_shot, window or rollout)", partial
        )
        self.input_channels = list(header.metadata.input_channels)
        self.output_channels = list(header.metadata.output_channels)
        self._inputs_key = f"/resolutions/{res.key}/inputs"
        self._outputs_key = f"/resolutions/{res.key}/outputs"

    def _read_pair(self, i: int) -> tuple[tuple[str, np.ndarray], tuple[str, np.ndarray]]:
        h5, row = self._file_and_row(i)
        space = self._space()
        selection = row if all(s == slice(None) for s in space) else (row, slice(None), *space)
        return (self._inputs_key, h5[self._inputs_key][selection]), (self._outputs_key, h5[self._outputs_key][selection])

    def __repr__(self) -> str:
        return (
            f"OperatorDataset({self.path!r}, split={self.split!r}, resolution={resolution_key(self.grid_shape)}, "
            f"samples={len(self)}, x={self.input_channels}, y={self.output_channels})"
        )


class TrajectoryFileSource(_StoredSplit, TrajectorySource):
    """One split of a neuralops trajectory file at one resolution (see :class:`TrajectorySource`).

    Args:
        path, split, resolution, view, rdcc_nbytes, partial: as for :class:`OperatorDataset`.

    ``read_steps(i, steps)`` reads rows ``steps`` of ``/resolutions/<key>/trajectories`` for the
    global sample ``sample_ids[i]``: ``(n_steps, C, *grid)``. ``times`` come from ``/times``,
    channel names from the ``channels`` attribute; there are no static channels.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        split: str = "train",
        resolution: int | Sequence[int] | None = None,
        view: ResolutionView = FILE_VIEW,
        rdcc_nbytes: int | None = None,
        partial: bool = False,
    ):
        header, res = self._open_split(
            path, split, resolution, view, rdcc_nbytes, "trajectories", "it holds input/output pairs: use OperatorDataset (data.task: null)", partial
        )
        self.channels = list(header.metadata.channels)
        self.static_channels = []
        self.times = header.times
        self._key = f"/resolutions/{res.key}/trajectories"

    def _read_steps(self, i: int, steps: slice) -> tuple[str, np.ndarray]:
        h5, row = self._file_and_row(i)
        return self._key, h5[self._key][(row, steps, slice(None), *self._space())]

    def __repr__(self) -> str:
        return (
            f"TrajectoryFileSource({self.path!r}, split={self.split!r}, resolution={resolution_key(self.grid_shape)}, "
            f"samples={len(self)}, steps={self.n_times}, channels={self.channels})"
        )
