"""Worker-safe, lazily opened, read-only HDF5 handles shared by every reader.

A reader (our :class:`~neuralops.data.OperatorDataset`, the trajectory sources, the PDEBench and
Well adapters) keeps only a path and small metadata. :class:`LazyH5` opens the file read-only
on first access, once per process: a ``DataLoader`` worker gets a pickled copy without the
handle (``__getstate__`` drops it) and opens its own; a fork that inherits an open handle
notices the changed process id and reopens. No reader ever holds sample arrays.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from neuralops.data.schema import open_h5
from neuralops.errors import ConfigError, DataFormatError


def check_rdcc_nbytes(value: int | None) -> int | None:
    """Validate the chunk-cache size option (bytes per open dataset, ``None`` for h5py's 1 MiB)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"rdcc_nbytes must be a non-negative number of bytes or null, got {value!r}")
    return int(value)


class LazyH5:
    """Mixin: ``self._handle()`` is this process's read-only handle of ``self.path``.

    Subclasses call :meth:`_init_handle` in their constructor. The handle is opened with
    ``rdcc_nbytes`` (HDF5 chunk cache per dataset, bytes; ``None``: h5py's default).
    """

    path: str
    _file: h5py.File | None
    _pid: int | None
    _rdcc_nbytes: int | None

    def _init_handle(self, path: str | os.PathLike, rdcc_nbytes: int | None = None) -> None:
        self.path = os.fspath(path)
        self._rdcc_nbytes = check_rdcc_nbytes(rdcc_nbytes)
        self._file = None
        self._pid = None

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = open_h5(self.path, self._rdcc_nbytes)
            self._pid = os.getpid()
        return self._file

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


def finite_or_raise(values: np.ndarray, path: str, key: str, where: str) -> np.ndarray:
    """``values`` as float32, or one :class:`DataFormatError` naming file, key and sample if any
    entry is NaN or Inf."""
    if not np.all(np.isfinite(values)):
        raise DataFormatError(f"{path}: key '{key}': {where} holds NaN or Inf")
    return np.asarray(values, dtype=np.float32)
