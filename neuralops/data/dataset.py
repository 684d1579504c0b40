"""Lazy, per-sample reading of a neuralops HDF5 file (one split at one resolution).

An :class:`OperatorDataset` keeps only the file path and small metadata (channel names,
coordinates, the rows of its samples). The file is opened read-only on first access, once per
process: after pickling into a ``DataLoader`` worker the handle is dropped and reopened there.
Each ``ds[i]`` reads one chunk per array with h5py slicing, so memory stays bounded by a sample.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from neuralops.data.schema import FileHeader, ResolutionHeader, iter_split_ids, open_h5, read_header, resolution_key
from neuralops.errors import DataFormatError


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


def resolutions(path: str | os.PathLike, split: str = "test") -> list[tuple[int, ...]]:
    """Grid shapes (points per axis) that hold every sample of ``split``, coarsest first."""
    header = read_header(path)
    return [res.shape for res in _resolutions_holding(header, _split_ids(header, split))]


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A plain summary of a file, reading no sample arrays.

    Returns a dict with ``path``, ``name``, ``description``, ``input_channels``,
    ``output_channels``, ``axes``, ``n_dims``, ``n_samples``, ``boundary``, ``grid``,
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
        "input_channels": list(meta.input_channels),
        "output_channels": list(meta.output_channels),
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


class OperatorDataset(Dataset):
    """One split of a neuralops file at one resolution, read lazily one sample at a time.

    Args:
        path: the HDF5 file.
        split: ``"train"``, ``"val"``, ``"test"`` or another split stored in the file.
        resolution: points per axis (``17`` means ``17 x 17`` in 2-D) or a tuple of points per
            axis; ``None`` picks the finest resolution that holds every sample of the split.

    ``ds[i]`` is ``{"x": FloatTensor (C_in, *grid), "y": FloatTensor (C_out, *grid)}`` for the
    global sample ``ds.sample_ids[i]``. Samples are in ascending global id, so ``ds[i]`` is the
    same physical sample in every resolution of the same split.

    Attributes:
        path: the file, as a string.
        split: the split name.
        input_channels, output_channels: channel names, in channel-axis order.
        grid_shape: points per axis, in ``axes`` order.
        n_dims: number of spatial axes.
        axes: axis names, e.g. ``["x", "y"]``.
        coords: 1-D coordinate array per axis name (physical units).
        attrs: the file's root attributes (PDE parameters ``param_*``, boundary, grid, name, ...).
        sample_ids: int64 ``(len(ds),)`` global ids of the samples.

    Raises:
        DataFormatError: missing file, not our schema, unknown split, a resolution not in the
            file (the message lists those that are), or a split not held at that resolution.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train", resolution: int | Sequence[int] | None = None):
        header = read_header(path)
        ids = _split_ids(header, split)
        holding = _resolutions_holding(header, ids)
        if resolution is None:
            if not holding:
                raise DataFormatError(f"{header.path}: no resolution holds every sample of split {split!r}")
            res = holding[-1]
        else:
            shape = _shape_of(header, resolution)
            if shape not in header.resolutions:
                available = [r.shape for r in header.resolutions.values()]
                raise DataFormatError(f"{header.path}: resolution {shape} is not in the file; available resolutions: {available}")
            res = header.resolutions[shape]
            if res.rows_of(ids) is None:
                held = int(np.isin(ids, res.index).sum())
                raise DataFormatError(
                    f"{header.path}: key '/resolutions/{res.key}': holds {held} of the {len(ids)} samples of split "
                    f"{split!r}; resolutions holding all of them: {[r.shape for r in holding]}"
                )
        meta = header.metadata
        self.path = header.path
        self.split = split
        self.input_channels = list(meta.input_channels)
        self.output_channels = list(meta.output_channels)
        self.grid_shape = res.shape
        self.n_dims = meta.n_dims
        self.axes = list(meta.axes)
        self.coords = dict(res.coords)
        self.attrs = dict(header.attrs)
        self.sample_ids = ids
        self._rows = res.rows_of(ids)
        self._inputs_key = f"/resolutions/{res.key}/inputs"
        self._outputs_key = f"/resolutions/{res.key}/outputs"
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = open_h5(self.path)
            self._pid = os.getpid()
        return self._file

    def _read(self, key: str, row: int) -> torch.Tensor:
        values = self._handle()[key][row]
        if not np.all(np.isfinite(values)):
            raise DataFormatError(f"{self.path}: key '{key}': row {row} holds NaN or Inf")
        return torch.from_numpy(np.asarray(values, dtype=np.float32))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        i = operator.index(i)
        n = len(self._rows)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        row = int(self._rows[i])
        return {"x": self._read(self._inputs_key, row), "y": self._read(self._outputs_key, row)}

    def close(self) -> None:
        """Close the file handle of this process (it reopens on the next access)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"OperatorDataset({self.path!r}, split={self.split!r}, resolution={resolution_key(self.grid_shape)}, "
            f"samples={len(self)}, x={self.input_channels}, y={self.output_channels})"
        )
