"""Moving fields between grids: whole-grid resampling and evaluation at arbitrary points.

Fields are ``(B, C, *grid)`` tensors sampled on the vertex grid of the unit cube (see
:mod:`neuralops.layers.coordinates`). Two methods:

``"bilinear"``
    Multilinear interpolation (linear in 1-D, bilinear in 2-D, trilinear in 3-D) with the
    corner points of both grids aligned, so boundary values are kept exactly. Downsampling
    is point sampling (no anti-aliasing filter).
``"fourier"``
    Band-limited resampling through :func:`neuralops.spectral.fourier_resample`: exact for
    periodic band-limited data, ideal low-pass filtering when coarsening. It treats the data
    as periodic samples, so non-periodic fields see Gibbs ringing near the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neuralops.errors import ConfigError, InputShapeError
from neuralops.spectral import fourier_resample

RESAMPLE_METHODS = ("bilinear", "fourier")
_INTERPOLATE_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def check_resample_method(method: str, option: str = "method") -> str:
    """Return ``method`` if it is one of :data:`RESAMPLE_METHODS`, else raise :class:`ConfigError` naming ``option``."""
    if method not in RESAMPLE_METHODS:
        raise ConfigError(f"{option}={method!r} is not a resampling method; expected one of {list(RESAMPLE_METHODS)}")
    return method


def resample(x: torch.Tensor, shape: Sequence[int], method: str) -> torch.Tensor:
    """Resample ``x: (B, C, *grid)`` onto the vertex grid ``shape``; returns ``(B, C, *shape)``.

    Returns ``x`` itself when the grid already matches.
    """
    shape = tuple(int(s) for s in shape)
    if tuple(x.shape[2:]) == shape:
        return x
    check_resample_method(method)
    if method == "fourier":
        return fourier_resample(x, shape)
    n_dims = x.ndim - 2
    if n_dims not in _INTERPOLATE_MODES:
        raise InputShapeError(f"bilinear resampling supports 1-3 grid dimensions, got a {n_dims}-D grid")
    return F.interpolate(x, size=shape, mode=_INTERPOLATE_MODES[n_dims], align_corners=True)


def sample_at_points(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Multilinear interpolation of ``field: (B, C, *grid)`` at ``points: (P, d)`` in ``[0, 1]^d``.

    Point coordinates follow the grid axes in order (``points[:, a]`` runs along grid axis
    ``a``); the grid is the vertex grid, so ``0`` and ``1`` are the first and last samples.
    Returns ``(B, C, P)``.
    """
    n_dims = field.ndim - 2
    if points.ndim != 2 or points.shape[1] != n_dims:
        raise InputShapeError(f"points must have shape (P, {n_dims}) for a {n_dims}-D grid, got {tuple(points.shape)}")
    if n_dims not in (1, 2, 3):
        raise InputShapeError(f"point sampling supports 1-3 grid dimensions, got a {n_dims}-D grid")
    if n_dims == 1:
        field = field.unsqueeze(-2)
        points = torch.cat([torch.zeros_like(points), points], dim=1)
    # grid_sample wants (x, y[, z]) = (last axis, ..., first axis) in [-1, 1].
    normalized = (2.0 * points.to(field.dtype) - 1.0).flip(-1)
    sampling_grid = normalized.reshape(1, *([1] * (max(n_dims, 2) - 1)), -1, max(n_dims, 2))
    sampling_grid = sampling_grid.expand(field.shape[0], *sampling_grid.shape[1:])
    values = F.grid_sample(field, sampling_grid, mode="bilinear", padding_mode="border", align_corners=True)
    return values.reshape(field.shape[0], field.shape[1], -1)
