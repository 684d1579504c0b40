"""Moving fields between grids: whole-grid resampling and evaluation at arbitrary points.

Fields are ``(B, C, *grid)`` tensors whose axes have a *kind* (:mod:`neuralops.grid`): where
the ``n`` samples of an axis sit in the domain, in unit coordinates ``[0, 1]``

* ``vertex``: ``j/(n-1)``, both ends included;
* ``cell``: the cell centres ``(j + 1/2)/n``;
* ``periodic``: ``j/n``, the right end is the first point again;
* ``equiangular`` / ``legendre_gauss``: colatitudes ``θ_j/π`` of a sphere grid (first axis of
  two, the second a periodic longitude).

Every function takes ``kind``: one kind for every axis or a list of one per axis
(:func:`neuralops.grid.expand_kinds`); it describes both grids, which cover the same domain.
Two resampling methods:

``"bilinear"``
    Multilinear interpolation (linear in 1-D, bilinear in 2-D, trilinear in 3-D) by
    :func:`neuralops.layers.grid.interpolate`: each output point is placed at its position in
    the domain and interpolated linearly between its neighbours (vertex grids keep their end
    values, cell grids hold the end values over the outer half cells, periodic axes wrap).
    Error ``O(h²)`` for smooth fields between the outermost samples. Downsampling is point
    sampling (no anti-aliasing filter).
``"fourier"``
    Band-limited (spectral) resampling, one axis at a time; an axis whose size does not change
    is left as it is:

    * periodic: :func:`neuralops.spectral.fourier_resample` (trigonometric interpolation when
      refining, ideal low-pass filter when coarsening; the Nyquist mode of an even size is
      dropped);
    * vertex: the last point (the periodic image of the first) is dropped, the ``n - 1``
      periodic samples are resampled to ``m - 1`` and the first point is appended again.
      Exact for periodic band-limited data; non-periodic data see Gibbs ringing at the ends;
    * cell: cosine-series resampling through the even extension (DCT-II, keep the
      ``min(n, m)`` lowest coefficients, DCT-III; :mod:`neuralops.spectral.dct`). Exact for
      cell-centred samples of a cosine series ``Σ_{k<min(n, m)} a_k cos(π k x)``; a smooth
      non-periodic field has no jump at the ends of its even extension, so no Gibbs ringing;
    * sphere (equiangular colatitude + periodic longitude): spherical-harmonic interpolation,
      :func:`neuralops.spectral.sphere.sphere_resample` (``legendre_gauss`` is refused).

Points (:func:`grid_points`, :func:`sample_at_points`) are unit coordinates of the domain,
``(P, d)`` with column ``a`` the coordinate along grid axis ``a`` (colatitude ``θ/π``,
longitude ``φ/(2π)`` on the sphere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from neuralops.errors import ConfigError, InputShapeError
from neuralops.grid import COLATITUDE_KINDS, expand_kinds
from neuralops.layers.grid import GridKinds, coordinates, index_positions, interpolate
from neuralops.spectral import fourier_resample
from neuralops.spectral.dct import dct_ii, dct_iii
from neuralops.spectral.sphere import sphere_resample

RESAMPLE_METHODS = ("bilinear", "fourier")


def check_resample_method(method: str, option: str = "method") -> str:
    """Return ``method`` if it is one of :data:`RESAMPLE_METHODS`, else raise :class:`ConfigError` naming ``option``."""
    if method not in RESAMPLE_METHODS:
        raise ConfigError(f"{option}={method!r} is not a resampling method; expected one of {list(RESAMPLE_METHODS)}")
    return method


def required_option(option: str, value: Any) -> Any:
    """``value`` unless it is ``None``: the grid options of a resampling model (grid shapes and
    kinds) that ``train.py`` fills from the training data (``options_from_grid``). Raises
    :class:`ConfigError` naming ``option`` when the model is built directly without it."""
    if value is None:
        raise ConfigError(f"{option} is not set: give it when building the model directly "
                          "(train.py fills it from the training data's grid)")
    return value


def resample(x: torch.Tensor, shape: Sequence[int], method: str, kind: GridKinds = "vertex") -> torch.Tensor:
    """Resample ``x: (B, C, *grid)`` onto the grid ``shape`` of the same kind(s) on the same
    domain; returns ``(B, C, *shape)`` (``x`` itself when the grid already matches).

    ``method``: ``"bilinear"`` or ``"fourier"`` (module docstring); ``kind``: one grid kind or
    one per axis. Raises :class:`InputShapeError` when ``shape`` has another number of axes,
    :class:`ConfigError` for an unknown method or kind, or ``"fourier"`` on a ``legendre_gauss``
    sphere grid.
    """
    shape = tuple(int(s) for s in shape)
    grid = tuple(x.shape[2:])
    if len(shape) != len(grid):
        raise InputShapeError(f"cannot resample a {len(grid)}-D grid {grid} onto the {len(shape)}-D grid {shape}")
    kinds = expand_kinds(kind, len(grid))
    if check_resample_method(method) == "bilinear" or grid == shape:
        return interpolate(x, shape, kinds)
    if any(k in COLATITUDE_KINDS for k in kinds):
        if kinds != ("equiangular", "periodic"):
            raise ConfigError(f"grid={list(kinds)}: Fourier resampling on the sphere needs an equiangular grid "
                              "(colatitude, periodic longitude)")
        return sphere_resample(x, shape)
    for dim, (n_in, n_out, k) in enumerate(zip(grid, shape, kinds), start=2):
        if n_in != n_out:
            x = _spectral_along(x, dim, n_out, k)
    return x


def _spectral_along(x: torch.Tensor, dim: int, n_out: int, kind: str) -> torch.Tensor:
    """Band-limited resampling of ``x`` along ``dim`` to ``n_out`` points of a ``kind`` axis."""
    if kind == "cell":
        coefficients = dct_ii(x, dim=dim, n_keep=min(x.shape[dim], n_out))
        return dct_iii(coefficients, n_out, dim=dim)
    if kind == "vertex":
        if min(x.shape[dim], n_out) < 2:
            raise InputShapeError(f"Fourier resampling of a vertex axis needs 2 points or more, got {x.shape[dim]} -> {n_out}")
        inner = _spectral_along(x.narrow(dim, 0, x.shape[dim] - 1), dim, n_out - 1, "periodic")
        return torch.cat([inner, inner.narrow(dim, 0, 1)], dim=dim)
    rows = x.movedim(dim, -1)
    lead = rows.shape[:-1]
    resampled = fourier_resample(rows.reshape(-1, 1, rows.shape[-1]), [n_out])
    return resampled.reshape(*lead, n_out).movedim(-1, dim)


def grid_points(shape: Sequence[int], kind: GridKinds = "vertex", device: torch.device | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The points of the grid ``shape`` of ``kind`` as a list: ``(prod(shape), d)`` unit
    coordinates in ``[0, 1]^d``, row-major (vertex ``j/(n-1)``, cell ``(j+1/2)/n``, periodic
    ``j/n``, colatitude ``θ_j/π``)."""
    kinds = expand_kinds(kind, len(shape))
    axes = [coordinates(int(n), k, dtype=dtype, device=device) for n, k in zip(shape, kinds)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(axes))


def sample_at_points(field: torch.Tensor, points: torch.Tensor, kind: GridKinds = "vertex") -> torch.Tensor:
    """Multilinear interpolation of ``field: (B, C, *grid)`` at ``points: (P, d)``; returns ``(B, C, P)``.

    ``points[:, a]`` is the unit coordinate along grid axis ``a`` of kind ``kind`` (one for every
    axis or one per axis): the sample ``j`` of a vertex axis sits at ``j/(n-1)``, of a cell axis
    at ``(j+1/2)/n`` (points in the outer half cells get the end value), of a periodic axis at
    ``j/n`` (coordinates wrap, so ``1`` is the first sample), of a colatitude axis at ``θ_j/π``.
    Points outside ``[0, 1]`` on non-periodic axes are clamped to the boundary. At the grid's own
    points (:func:`grid_points` of the same kind) the samples are returned. Agrees with
    ``resample(field, shape, "bilinear", kind)`` at the points of the grid ``shape``.
    """
    grid = tuple(field.shape[2:])
    n_dims = len(grid)
    if points.ndim != 2 or points.shape[1] != n_dims:
        raise InputShapeError(f"points must have shape (P, {n_dims}) for a {n_dims}-D grid, got {tuple(points.shape)}")
    if n_dims not in (1, 2, 3):
        raise InputShapeError(f"point sampling supports 1-3 grid dimensions, got a {n_dims}-D grid")
    kinds = expand_kinds(kind, n_dims)
    # grid_sample with align_corners=True puts sample j at -1 + 2j/(n-1): normalize the
    # fractional indices per axis; a periodic axis gets its first sample appended at index n.
    wrap = [1 if k == "periodic" else 0 for k in kinds]
    field = F.pad(field, [p for w in reversed(wrap) for p in (0, w)], mode="circular") if any(wrap) else field
    normalized = []
    for a, (n, k) in enumerate(zip(grid, kinds)):
        span = max(n + wrap[a] - 1, 1)
        normalized.append(2.0 * index_positions(points[:, a], n, k) / span - 1.0)
    coords = torch.stack(normalized[::-1], dim=-1).to(field.dtype)  # grid_sample orders (last axis, ..., first)
    if n_dims == 1:  # grid_sample has no 1-D mode: add a leading axis of one point
        field = field.unsqueeze(-2)
        coords = torch.cat([coords, torch.zeros_like(coords)], dim=1)
    sample_dims = max(n_dims, 2)
    sampling_grid = coords.reshape(1, *([1] * (sample_dims - 1)), -1, sample_dims)
    sampling_grid = sampling_grid.expand(field.shape[0], *sampling_grid.shape[1:])
    values = F.grid_sample(field, sampling_grid, mode="bilinear", padding_mode="border", align_corners=True)
    return values.reshape(field.shape[0], field.shape[1], -1)
