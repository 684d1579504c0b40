"""Resolution views: the grid a reader serves, derived from a grid stored in the file.

Evaluating the *same* test samples at several grids needs those grids. A file may store them
(ours: ``/resolutions/<key>``, method ``"file"``), or a reader derives them from the one stored
grid by

* ``"stride"``: every ``s``-th point along each spatial axis, starting at the first (PDEBench's
  ``reduced_resolution``); done inside the h5py selection, so only those points are returned
  (HDF5 still decompresses whole chunks);
* ``"fourier_filter"``: an ideal low-pass filter to the coarse grid's band (Fourier modes with
  ``|m| < n/(2s)`` kept, the coarse Nyquist mode dropped), then sampling at every ``s``-th
  point: the anti-aliased coarsening (how the Well made ``MHD_64`` from ``MHD_256``). The
  filter is a Fourier series, so it is defined for periodic grids only: a stored grid with a
  vertex, cell or sphere axis is refused (:class:`~neuralops.errors.ConfigError` naming
  ``data.resolution_method`` and the axis kind; use ``"stride"`` there). The grid size must be
  divisible by ``s``.

The two give different numbers on the same model, so the method is recorded next to every
metric (``metrics.json``: ``"method"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from neuralops.errors import ConfigError
from neuralops.grid import COLATITUDE_KINDS, Grid, GridAxis
from neuralops.spectral import fourier_resample

VIEW_METHODS = ("file", "stride", "fourier_filter")


@dataclass(frozen=True)
class ResolutionView:
    """How a reader derives the grid it serves from a stored grid.

    Attributes:
        method: ``"file"`` (the stored grid as is), ``"stride"`` or ``"fourier_filter"`` (see
            the module doc).
        stride: coarsening factor ``s >= 1`` per spatial axis (1 for ``"file"``).
        file_shape: the stored grid it is derived from (points per axis); ``None`` for a reader
            whose file stores one grid, or to let the reader pick its finest grid.
    """

    method: str = "file"
    stride: int = 1
    file_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.method not in VIEW_METHODS:
            raise ConfigError(f"resolution method must be one of {list(VIEW_METHODS)}, got {self.method!r}")
        if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise ConfigError(f"a resolution stride must be an integer >= 1, got {self.stride!r}")
        if self.method == "file" and self.stride != 1:
            raise ConfigError(f"method 'file' serves the stored grid; stride must be 1, got {self.stride}")
        if self.file_shape is not None:
            object.__setattr__(self, "file_shape", tuple(int(n) for n in self.file_shape))

    def shape_from(self, stored: Sequence[int], where: str) -> tuple[int, ...]:
        """Grid served when the stored grid is ``stored``; ``where`` names the file/key for errors."""
        stored = tuple(int(n) for n in stored)
        if self.method == "stride":
            return tuple(-(-n // self.stride) for n in stored)
        if self.method == "fourier_filter":
            if any(n % self.stride for n in stored):
                raise ConfigError(f"{where}: fourier_filter with stride {self.stride} needs grid sizes divisible by it, got {stored}")
            return tuple(n // self.stride for n in stored)
        return stored

    def grid_from(self, stored: Grid, where: str) -> Grid:
        """The :class:`~neuralops.grid.Grid` of the points served when the stored grid is ``stored``.

        Both methods serve every ``s``-th stored point. A periodic axis with ``n`` divisible by
        ``s`` and a vertex axis with ``n - 1`` divisible by ``s`` give the same kind on the same
        domain. Otherwise the served points are described as they are: strided cell centres are
        the cell centres of a domain shifted by ``(h - s·h)/2``, and a vertex or periodic axis that
        ``s`` does not divide ends before the domain does (a shorter vertex axis). A colatitude
        axis must keep both poles (:class:`~neuralops.errors.ConfigError` naming ``where``).
        ``"fourier_filter"`` needs every axis periodic (the module doc).
        """
        if self.method == "file" or self.stride == 1:
            return stored
        if self.method == "fourier_filter" and not stored.periodic:
            axis = next(a for a in stored.axes if not a.periodic)
            raise ConfigError(f"{where}: data.resolution_method='fourier_filter' filters periodic grids only, but axis "
                              f"{axis.name!r} is {axis.kind!r}; use data.resolution_method=stride")
        s, axes = self.stride, []
        for axis in stored.axes:
            n = axis.size
            if axis.kind == "periodic" and n % s == 0:
                axes.append(axis.resized(n // s))
            elif axis.kind in COLATITUDE_KINDS:
                if axis.kind != "equiangular" or (n - 1) % s:
                    raise ConfigError(f"{where}: stride {s} on the {n}-point {axis.kind} colatitude axis {axis.name!r} does not keep both poles")
                axes.append(axis.resized((n - 1) // s + 1))
            else:
                kind = "vertex" if axis.kind == "periodic" else axis.kind
                axes.append(GridAxis.from_coords(axis.name, kind, axis.coords[::s], axis.boundary, where))
        return Grid(axes)

    def selection(self, n_dims: int) -> tuple[slice, ...]:
        """Per spatial axis, the slice to read from the stored grid."""
        step = self.stride if self.method == "stride" else None
        return (slice(None, None, step),) * n_dims

    def coords_from(self, coords: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Coordinates of the served grid: every ``stride``-th stored coordinate (both methods
        sample the coarse grid at the stored grid's points ``0, s, 2s, …``)."""
        return {axis: np.asarray(values)[:: self.stride].copy() for axis, values in coords.items()}

    def apply(self, values: np.ndarray, n_dims: int) -> np.ndarray:
        """Post-process values read with :meth:`selection`: the Fourier filter
        (:func:`band_limit`), else unchanged.

        ``values``: ``(..., *grid)`` with the last ``n_dims`` axes spatial, on a periodic grid
        (a reader derives its grid with :meth:`grid_from` first, which refuses the filter on
        other kinds).
        """
        if self.method != "fourier_filter" or self.stride == 1:
            return values
        shape = tuple(n // self.stride for n in values.shape[-n_dims:])
        return band_limit(values, shape).astype(values.dtype)

    @property
    def label(self) -> str:
        return "file" if self.method == "file" else f"{self.method}:{self.stride}"


FILE_VIEW = ResolutionView()


def band_limit(values: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Band-limit ``values (..., *grid)`` on a periodic grid to ``shape`` and sample there (float64).

    The ideal low-pass filter of the spectral core (:func:`neuralops.spectral.fourier_resample`):
    Fourier modes ``|m_d| < shape[d] / 2`` are kept (the coarse Nyquist mode of an even size is
    dropped), so a field band-limited below the coarse Nyquist is returned exactly at the coarse
    points, which start at the stored grid's first point.
    """
    shape = tuple(int(m) for m in shape)
    grid = values.shape[values.ndim - len(shape):]
    lead = values.shape[: values.ndim - len(shape)]
    batch = torch.from_numpy(np.asarray(values, dtype=np.float64)).reshape(1, -1, *grid)
    return fourier_resample(batch, shape).reshape(*lead, *shape).numpy()
