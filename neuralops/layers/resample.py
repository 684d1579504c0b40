"""Moving fields between grids: whole-grid resampling and evaluation at arbitrary points.

Fields are ``(B, C, *grid)`` tensors on the *vertex* grid of the unit cube (``linspace(0, 1,
N)`` per axis, boundary included; see :mod:`neuralops.layers.grid`). Two methods:

``"bilinear"``
    Multilinear interpolation (linear in 1-D, bilinear in 2-D, trilinear in 3-D) with the
    end points of both grids aligned, so boundary values are kept exactly. Downsampling is
    point sampling (no anti-aliasing filter).
``"fourier"``
    Band-limited resampling through :func:`neuralops.spectral.fourier_resample`. A vertex grid
    of ``N`` points holds both ends of the period, so the last point of each axis is dropped,
    the remaining ``N - 1`` periodic samples are resampled to ``M - 1``, and the first point
    is appended again at the end. Exact for periodic band-limited data, an ideal low-pass
    filter when coarsening; fields that are not periodic see Gibbs ringing at the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neuralops.errors import ConfigError, InputShapeError
from neuralops.layers.grid import coordinates, interpolate
from neuralops.spectral import fourier_resample

RESAMPLE_METHODS = ("bilinear", "fourier")


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
    if check_resample_method(method) == "bilinear":
        return interpolate(x, shape, kind="vertex")
    n_dims = len(shape)
    periodic = x[(slice(None), slice(None)) + (slice(0, -1),) * n_dims]
    resampled = fourier_resample(periodic, [n - 1 for n in shape])
    return F.pad(resampled, [0, 1] * n_dims, mode="circular")


def grid_points(shape: Sequence[int], device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The points of the vertex grid ``shape`` as a list: ``(prod(shape), d)`` in ``[0, 1]^d``, row-major."""
    axes = [coordinates(int(n), "vertex", dtype=dtype, device=device) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(axes))


def sample_at_points(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Multilinear interpolation of ``field: (B, C, *grid)`` at ``points: (P, d)`` in ``[0, 1]^d``.

    ``points[:, a]`` is the coordinate along grid axis ``a``; ``0`` and ``1`` are the first and
    last samples (vertex grid); points outside are clamped to the boundary. Returns ``(B, C, P)``.
    """
    n_dims = field.ndim - 2
    if points.ndim != 2 or points.shape[1] != n_dims:
        raise InputShapeError(f"points must have shape (P, {n_dims}) for a {n_dims}-D grid, got {tuple(points.shape)}")
    if n_dims not in (1, 2, 3):
        raise InputShapeError(f"point sampling supports 1-3 grid dimensions, got a {n_dims}-D grid")
    if n_dims == 1:  # grid_sample has no 1-D mode: add a leading axis of one point
        field = field.unsqueeze(-2)
        points = torch.cat([torch.zeros_like(points), points], dim=1)
    sample_dims = max(n_dims, 2)
    # grid_sample wants coordinates in [-1, 1], ordered (last axis, ..., first axis).
    normalized = (2.0 * points.to(field.dtype) - 1.0).flip(-1)
    sampling_grid = normalized.reshape(1, *([1] * (sample_dims - 1)), -1, sample_dims)
    sampling_grid = sampling_grid.expand(field.shape[0], *sampling_grid.shape[1:])
    values = F.grid_sample(field, sampling_grid, mode="bilinear", padding_mode="border", align_corners=True)
    return values.reshape(field.shape[0], field.shape[1], -1)
