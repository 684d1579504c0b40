"""A folder of foreign files (PDEBench shards, the Well's ``data/<split>/*.hdf5``) read as one dataset.

:func:`inspect_folder` inspects every file of a folder (:func:`~neuralops.data.schema.data_files`,
natural name order) with its format's adapter and checks that they hold the same fields on the
same grid. The resulting :class:`FileCollection` implements
:class:`~neuralops.data.adapters.ForeignFile`: sample positions run over the files in order
(file 0's samples first), and :meth:`FileCollection.open` builds a :class:`ConcatPairSource` or
:class:`ConcatTrajectorySource` that delegates each read to the reader of the file holding the
sample. Each file's reader opens its file lazily; the concatenation keeps at most
:data:`~neuralops.data.handles.MAX_OPEN_FILES` of them open per process, so memory stays
bounded however many files the folder holds.

:func:`split_folders` recognises the Well's layout, one folder per split: ``<dir>/train``,
``<dir>/valid`` (or ``val``) and ``<dir>/test``, where ``<dir>`` is the given folder or its
``data/`` subfolder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralops.data.adapters import ForeignFile
from neuralops.data.handles import RecentlyUsed
from neuralops.data.schema import data_files
from neuralops.data.sources import PairSource, SampleSource, TrajectorySource
from neuralops.data.views import FILE_VIEW, ResolutionView
from neuralops.errors import DataFormatError

SPLIT_FOLDERS = {"train": ("train",), "val": ("valid", "val"), "test": ("test",)}
"""Split name → the folder names that hold it (the Well calls validation ``valid``)."""

_SHARED_METADATA = ("input_channels", "output_channels", "channels", "static_channels", "axes", "stored_shape")


def split_folders(path: str | os.PathLike) -> dict[str, Path] | None:
    """The split folders of a dataset stored one folder per split, or ``None``.

    ``path`` or ``path/data`` must hold a ``train`` folder; ``valid`` (or ``val``) and ``test``
    are taken when present. Returns split name (``train``, ``val``, ``test``) → folder.
    """
    for base in (Path(path), Path(path) / "data"):
        if (base / "train").is_dir():
            found = {}
            for split, names in SPLIT_FOLDERS.items():
                folder = next((base / n for n in names if (base / n).is_dir()), None)
                if folder is not None:
                    found[split] = folder
            return found
    return None


def _metadata(source: SampleSource) -> dict[str, Any]:
    return {key: getattr(source, key) for key in _SHARED_METADATA if hasattr(source, key)}


class FileCollection:
    """Several foreign files of one format read as one dataset (see the module doc).

    Attributes:
        path: the folder.
        files: the inspected files, in sample order.
        n_samples: total samples; positions ``0 … n_samples-1`` run over the files in order.
        test_last: PDEBench's test position of the first file (``None`` for the Well).
        attrs: the attributes every file has with the same value (per-file parameters are
            dropped).
        stored_splits: split name → sorted positions, for a dataset stored one folder per split
            (:func:`inspect_split_folders`); ``None`` for a plain folder.
    """

    def __init__(self, path: str | os.PathLike, files: Sequence[ForeignFile], stored_splits: dict[str, np.ndarray] | None = None):
        self.path = os.fspath(path)
        self.files = tuple(files)
        self.stored_splits = stored_splits
        self.n_samples = sum(f.n_samples for f in self.files)
        self.test_last = self.files[0].test_last
        self._starts = np.cumsum([0] + [f.n_samples for f in self.files])
        self._check_compatible()
        first, others = self.files[0].attrs, [f.attrs for f in self.files[1:]]
        self.attrs = {k: v for k, v in first.items() if all(k in a and _same(v, a[k]) for a in others)}

    def _check_compatible(self) -> None:
        """Every file must serve the same channels, axes, grid, coordinates and times as the first."""
        readers = [f.open(np.zeros(0, dtype=np.int64), FILE_VIEW, None) for f in self.files]
        first, expected = readers[0], _metadata(readers[0])
        for reader in readers[1:]:
            found = _metadata(reader)
            checks = [(key, expected[key], found.get(key)) for key in expected]
            checks += [(f"coordinates {a}", first.coords[a], reader.coords.get(a)) for a in first.coords]
            if isinstance(first, TrajectorySource):
                checks.append(("times", first.times, reader.times))
            for what, want, got in checks:
                if not _same(want, got):
                    raise DataFormatError(
                        f"{reader.path}: {what} {_short(got)} differ from {_short(want)} in {os.path.basename(first.path)}; "
                        f"the files of the folder {self.path} must hold the same fields on the same grid"
                    )

    def open(self, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None) -> PairSource | TrajectorySource:
        """The lazy reader of the samples at positions ``sample_ids`` (sorted int64) of the folder."""
        sample_ids = np.asarray(sample_ids, dtype=np.int64)
        owner = np.searchsorted(self._starts, sample_ids, side="right") - 1
        parts = [
            self.files[k].open(sample_ids[owner == k] - self._starts[k], view, rdcc_nbytes)
            for k in np.unique(owner)
        ] or [self.files[0].open(sample_ids, view, rdcc_nbytes)]
        concat = ConcatPairSource if isinstance(parts[0], PairSource) else ConcatTrajectorySource
        return concat(self.path, parts, sample_ids, self.attrs)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return b is not None and np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-6, atol=0)
    return a == b


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.shape[0]} values [{value[0]:g} … {value[-1]:g}]" if value.size else "no values"
    return repr(value)


def inspect_folder(path: str | os.PathLike, inspect: Callable[[str | os.PathLike], ForeignFile]) -> FileCollection:
    """Inspect every data file of the folder ``path`` with ``inspect`` (``inspect_pdebench`` or
    ``inspect_well``) and check that they are one dataset.

    Raises:
        DataFormatError: an empty folder, a file of another layout, or files whose fields,
            grids, coordinates or times differ (one line naming the file).
    """
    return FileCollection(path, [inspect(file) for file in data_files(path)])


def inspect_split_folders(path: str | os.PathLike, folders: dict[str, Path], inspect: Callable[[str | os.PathLike], ForeignFile]) -> FileCollection:
    """One collection of the files of every split folder (:func:`split_folders`), train files
    first, then val, then test, with ``stored_splits`` giving each split its positions (empty
    for a split without a folder). All files must be compatible, since the normalizers fitted on
    train apply to the other splits.
    """
    files, splits, start = [], {}, 0
    for split in SPLIT_FOLDERS:
        inspected = [inspect(file) for file in data_files(folders[split])] if split in folders else []
        count = sum(f.n_samples for f in inspected)
        files += inspected
        splits[split] = np.arange(start, start + count, dtype=np.int64)
        start += count
    return FileCollection(path, files, splits)


class _Concatenated(SampleSource):
    """Shared by the two concatenations: metadata from the first part, index → (part, position)."""

    def _init_parts(self, folder: str, parts: list[SampleSource], sample_ids: np.ndarray, attrs: dict[str, Any]) -> None:
        first = parts[0]
        self.path, self.name, self.axes, self.view = folder, first.name, first.axes, first.view
        self.stored_shape, self.grid_shape, self.grid, self.coords = first.stored_shape, first.grid_shape, first.grid, first.coords
        self.attrs, self.sample_ids = attrs, np.asarray(sample_ids, dtype=np.int64)
        self._parts = parts
        self._part_starts = np.cumsum([0] + [len(p) for p in parts])
        self._recent = RecentlyUsed()

    def _part(self, i: int) -> tuple[SampleSource, int]:
        """The reader holding item ``i`` and the item's index there; closes the least recently
        read part beyond :data:`~neuralops.data.handles.MAX_OPEN_FILES`."""
        i = self._check_index(i)
        k = int(np.searchsorted(self._part_starts, i, side="right")) - 1
        for old in self._recent.touch(k):
            self._parts[old].close()
        return self._parts[k], i - int(self._part_starts[k])

    def close(self) -> None:
        for part in self._parts:
            part.close()
        self._recent.clear()


class ConcatPairSource(_Concatenated, PairSource):
    """Input→output pairs over several files: ``ds[i]`` is read by the file holding it."""

    def __init__(self, folder: str, parts: list[PairSource], sample_ids: np.ndarray, attrs: dict[str, Any]):
        self._init_parts(folder, parts, sample_ids, attrs)
        self.input_channels = list(parts[0].input_channels)
        self.output_channels = list(parts[0].output_channels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        part, j = self._part(i)
        return part[j]


class ConcatTrajectorySource(_Concatenated, TrajectorySource):
    """Trajectories over several files: every read goes to the file holding the trajectory."""

    def __init__(self, folder: str, parts: list[TrajectorySource], sample_ids: np.ndarray, attrs: dict[str, Any]):
        self._init_parts(folder, parts, sample_ids, attrs)
        self.channels = list(parts[0].channels)
        self.static_channels = list(parts[0].static_channels)
        self.times = parts[0].times

    def read_steps(self, i: int, steps: slice) -> np.ndarray:
        part, j = self._part(i)
        return part.read_steps(j, steps)

    def read_static(self, i: int) -> np.ndarray:
        part, j = self._part(i)
        return part.read_static(j)
