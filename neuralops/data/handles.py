"""Worker-safe, lazily opened, read-only HDF5 handles shared by every reader.

A reader (our :class:`~neuralops.data.OperatorDataset`, the trajectory sources, the PDEBench and
Well adapters) keeps only paths and small metadata. :class:`LazyH5` opens a file read-only on
first access, once per process: a ``DataLoader`` worker (or a DDP rank) gets a pickled copy
without handles (``__getstate__`` drops them) and opens its own; a fork that inherits open
handles notices the changed process id and reopens. A reader of a folder (shards) keeps at most
:data:`MAX_OPEN_FILES` files open, closing the least recently read one beyond that, so the
memory of handles and chunk caches stays bounded however many files a dataset has. No reader
ever holds sample arrays.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import h5py
import numpy as np

from neuralops.data.schema import open_h5
from neuralops.errors import ConfigError, DataFormatError

MAX_OPEN_FILES = 8
"""Files (or shard readers) one reader keeps open at once; each holds HDF5's chunk cache
(``rdcc_nbytes`` per dataset read, 1 MiB by default)."""


def check_rdcc_nbytes(value: int | None) -> int | None:
    """Validate the chunk-cache size option (bytes per open dataset, ``None`` for h5py's 1 MiB)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"rdcc_nbytes must be a non-negative number of bytes or null, got {value!r}")
    return int(value)


class RecentlyUsed:
    """The keys used most recently, at most ``capacity`` of them: :meth:`touch` marks a key used
    and returns the keys it pushes out (least recently used first)."""

    def __init__(self, capacity: int = MAX_OPEN_FILES):
        self.capacity = capacity
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def touch(self, key: Hashable) -> list[Hashable]:
        self._keys[key] = None
        self._keys.move_to_end(key)
        evicted = []
        while len(self._keys) > self.capacity:
            evicted.append(self._keys.popitem(last=False)[0])
        return evicted

    def clear(self) -> None:
        self._keys.clear()


class LazyH5:
    """Mixin: ``self._handle()`` is this process's read-only handle of ``self.path``;
    ``self._handle(file)`` that of another file of the reader (a shard of a folder).

    Subclasses call :meth:`_init_handle` in their constructor. Files are opened with
    ``rdcc_nbytes`` (HDF5 chunk cache per dataset, bytes; ``None``: h5py's default); at most
    :data:`MAX_OPEN_FILES` stay open per reader.
    """

    path: str
    _rdcc_nbytes: int | None
    _open: dict[str, h5py.File]
    _recent: RecentlyUsed
    _pid: int | None

    def _init_handle(self, path: str | os.PathLike, rdcc_nbytes: int | None = None) -> None:
        self.path = os.fspath(path)
        self._rdcc_nbytes = check_rdcc_nbytes(rdcc_nbytes)
        self._open = {}
        self._recent = RecentlyUsed()
        self._pid = None

    def _handle(self, file: str | None = None) -> h5py.File:
        if self._pid != os.getpid():
            self._open, self._pid = {}, os.getpid()
            self._recent.clear()
        file = self.path if file is None else file
        if file not in self._open:
            self._open[file] = open_h5(file, self._rdcc_nbytes)
        for old in self._recent.touch(file):
            self._open.pop(old).close()
        return self._open[file]

    def close(self) -> None:
        """Close this process's handles (they reopen on the next access)."""
        if self._pid == os.getpid():
            for handle in self._open.values():
                handle.close()
        self._open, self._pid = {}, None
        self._recent.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"], state["_pid"], state["_recent"] = {}, None, RecentlyUsed()
        return state


def finite_or_raise(values: np.ndarray, path: str, key: str, where: str) -> np.ndarray:
    """``values`` as float32, or one :class:`DataFormatError` naming file, key and sample if any
    entry is NaN or Inf."""
    if not np.all(np.isfinite(values)):
        raise DataFormatError(f"{path}: key '{key}': {where} holds NaN or Inf")
    return np.asarray(values, dtype=np.float32)
