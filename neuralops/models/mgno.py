"""MgNO: a multigrid neural operator (He, Liu, Xu, ICLR 2024), on grids of any size.

Each layer is ``u <- σ(W_Mg(u) + W u + b)``: a learned V-cycle ``W_Mg`` plus a pointwise
(1×1) map with bias. There is no lifting: the first V-cycle acts on the raw input channels;
a final 1×1 head maps to ``out_channels``.

The V-cycle solves "``A u = f``" approximately with learned operators (correction scheme):

* smoothing ``u <- u + S (f - A u)`` with 3×3 stencils ``S: C_f -> C_u`` and
  ``A: C_u -> C_f`` (the first step from ``u = 0`` is ``u = S f``);
* restriction of the residual ``f_coarse = R (f - A u)`` by a stride-2 3×3 convolution
  ``R: C_f -> C_f``; coarse point ``i`` sits on fine point ``2i``, so ``N -> ceil(N/2)``;
* prolongation ``u <- u + P u_coarse`` by a stride-2 transposed 3×3 convolution
  ``P: C_u -> C_u`` cropped to the exact finer size (odd and even sizes both work);
* post-smoothing on the way up.

Resolution: the number of levels follows the grid — it halves (rounding up) while every
axis of the coarser grid keeps at least ``coarsest_size`` points — so a model trained at 32²
runs at 64² with one more level. Levels are counted from the coarsest, and so are the weight
sets: level ``j`` (``0`` = coarsest) uses smoothing weights ``min(j, level_weight_sets - 1)``
and the transfer between levels ``j`` and ``j + 1`` uses transfer weights
``min(j, max(level_weight_sets - 1, 1) - 1)``. Levels finer than any seen in training reuse
the finest trained set. ``level_weight_sets=1`` shares one set across all levels, which is
exactly geometric multigrid when the operator is written in ``h²``-scaled form. Stencils are
in grid units, so what they represent physically depends on ``h``: see
``docs/models_beyond_fourier.md`` for what is and is not invariant, with measurements.

Boundary conditions enter through ``padding_mode``: ``"zeros"`` (Dirichlet-like),
``"reflect"`` (Neumann-like), ``"circular"`` (periodic).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuralops.errors import ConfigError
from neuralops.grid import Grid
from neuralops.layers.config_checks import check_choice, check_positive
from neuralops.layers.pointwise import PointwiseLinear, activation as activation_function
from neuralops.layers.resample import check_resample_method, resample
from neuralops.models.base import NeuralOperator, n_dims_from_grid
from neuralops.models.slicing import DEFAULT_BATCH_SLICE_MIB, check_batch_slice_mib, in_batch_slices, samples_per_slice

PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "circular": "circular"}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def level_shapes(grid: Sequence[int], coarsest_size: int) -> list[tuple[int, ...]]:
    """Grid shapes of the V-cycle levels, finest first: halve (rounding up) while every axis keeps ``>= coarsest_size`` points."""
    shapes = [tuple(int(n) for n in grid)]
    while all((n + 1) // 2 >= coarsest_size for n in shapes[-1]):
        shapes.append(tuple((n + 1) // 2 for n in shapes[-1]))
    return shapes


def stencil(x: torch.Tensor, weight: torch.Tensor, padding_mode: str, stride: int = 1) -> torch.Tensor:
    """3×3 (×3) convolution with one ghost layer filled by ``padding_mode``.

    ``x: (B, C_in, *grid)``, ``weight: (C_out, C_in, 3, ...)``; returns ``(B, C_out, *grid)``
    for ``stride=1`` and ``(B, C_out, *ceil(grid / 2))`` for ``stride=2``.
    """
    n_dims = x.ndim - 2
    if padding_mode == "zeros":
        return _CONV[n_dims](x, weight, stride=stride, padding=1)
    return _CONV[n_dims](F.pad(x, [1] * (2 * n_dims), mode=PADDING_MODES[padding_mode]), weight, stride=stride)


def prolongate(coarse: torch.Tensor, weight: torch.Tensor, fine_shape: Sequence[int], padding_mode: str) -> torch.Tensor:
    """Stride-2 transposed 3×3 convolution from ``coarse: (B, C, *ceil(fine/2))`` to ``(B, C_out, *fine_shape)``.

    ``weight: (C_in, C_out, 3, ...)``. Coarse point ``i`` maps to fine point ``2i`` (weight
    centre); odd fine points take the two neighbouring coarse points (weight ends). The coarse
    field gets one ghost layer by ``padding_mode`` first, so boundary fine points see the same
    boundary condition as the smoother.
    """
    n_dims = coarse.ndim - 2
    padded = F.pad(coarse, [1] * (2 * n_dims), mode=PADDING_MODES[padding_mode])
    full = _CONV_TRANSPOSE[n_dims](padded, weight, stride=2)
    # Unpadded coarse point i lands at output index 2(i + 1) + 1 = 2i + 3.
    return full[(slice(None), slice(None)) + tuple(slice(3, 3 + int(n)) for n in fine_shape)]


def _at_level(per_level, level: int):
    """Entry ``level`` (coarsest first) of a per-level sequence; finer levels reuse the last entry."""
    return per_level[min(level, len(per_level) - 1)]


def _stencil_weights(count: int, out_channels: int, in_channels: int, n_dims: int) -> nn.Parameter:
    """``count`` stacked 3×3 kernels ``(count, out, in, 3, ...)``, initialised like ``nn.Conv`` (U(±1/√fan_in))."""
    bound = 1.0 / math.sqrt(in_channels * 3**n_dims)
    return nn.Parameter(torch.empty(count, out_channels, in_channels, *([3] * n_dims)).uniform_(-bound, bound))


class VCycle(nn.Module):
    """One learned V-cycle ``W_Mg``: ``f: (B, f_channels, *grid) -> u: (B, u_channels, *grid)``.

    Parameters (``n_smooth = level_weight_sets``, ``n_transfer = max(level_weight_sets - 1, 1)``):
    ``smoother: (n_smooth, C_u, C_f, 3, ...)`` (S), ``operator: (n_smooth, C_f, C_u, 3, ...)`` (A),
    ``restriction: (n_transfer, C_f, C_f, 3, ...)`` (R) and
    ``prolongation: (n_transfer, C_u, C_u, 3, ...)`` (P, transposed-convolution layout).
    ``smoothing_steps[j]`` / ``post_smoothing_steps[j]`` count the pre/post smoothing steps at
    level ``j`` (``0`` = coarsest); finer levels than listed reuse the last entry.
    """

    def __init__(
        self,
        f_channels: int,
        u_channels: int,
        n_dims: int,
        level_weight_sets: int,
        smoothing_steps: Sequence[int],
        post_smoothing_steps: Sequence[int],
        coarsest_size: int,
        padding_mode: str,
    ) -> None:
        super().__init__()
        self.u_channels = u_channels
        self.smoothing_steps = [int(s) for s in smoothing_steps]
        self.post_smoothing_steps = [int(s) for s in post_smoothing_steps]
        self.coarsest_size = coarsest_size
        self.padding_mode = padding_mode
        n_transfer = max(level_weight_sets - 1, 1)
        self.smoother = _stencil_weights(level_weight_sets, u_channels, f_channels, n_dims)
        self.operator = _stencil_weights(level_weight_sets, f_channels, u_channels, n_dims)
        self.restriction = _stencil_weights(n_transfer, f_channels, f_channels, n_dims)
        self.prolongation = _stencil_weights(n_transfer, u_channels, u_channels, n_dims)

    def _smooth(self, u: torch.Tensor | None, f: torch.Tensor, level: int, steps: int) -> torch.Tensor:
        """``steps`` times ``u <- u + S (f - A u)`` at coarse-index ``level``; ``u=None`` means ``u = 0``."""
        for _ in range(steps):
            update = stencil(self._residual(u, f, level), _at_level(self.smoother, level), self.padding_mode)
            u = update if u is None else u + update
        if u is None:
            return f.new_zeros(f.shape[0], self.u_channels, *f.shape[2:])
        return u

    def _residual(self, u: torch.Tensor | None, f: torch.Tensor, level: int) -> torch.Tensor:
        """``f - A u`` at coarse-index ``level`` (``u=None`` means ``u = 0``)."""
        if u is None:
            return f
        return f - stencil(u, _at_level(self.operator, level), self.padding_mode)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        shapes = level_shapes(f.shape[2:], self.coarsest_size)
        n_levels = len(shapes)
        levels = [n_levels - 1 - i for i in range(n_levels)]  # coarse index of each level, finest first
        rhs = [f]
        solutions = []
        for i, level in enumerate(levels):
            u = self._smooth(None, rhs[i], level, _at_level(self.smoothing_steps, level))
            solutions.append(u)
            if i < n_levels - 1:
                restriction = _at_level(self.restriction, level - 1)
                rhs.append(stencil(self._residual(u, rhs[i], level), restriction, self.padding_mode, stride=2))
        u = solutions[-1]
        for i in range(n_levels - 2, -1, -1):
            level = levels[i]
            u = solutions[i] + prolongate(u, _at_level(self.prolongation, level - 1), shapes[i], self.padding_mode)
            u = self._smooth(u, rhs[i], level, _at_level(self.post_smoothing_steps, level))
        return u


class MgNO(NeuralOperator, name="mgno"):
    """Multigrid neural operator: ``(B, in_channels, *grid) -> (B, out_channels, *grid)``.

    Options:
        hidden_channels: ``C_u``, channels of every layer's solution.
        n_layers: number of ``σ(V-cycle + pointwise + bias)`` layers.
        n_dims: grid dimensionality (1, 2 or 3).
        coarsest_size: the V-cycle coarsens while every axis keeps at least this many points;
            also the smallest grid accepted.
        level_weight_sets: distinct per-level weight sets, counted from the coarsest level;
            finer levels reuse the finest set (``1``: all levels share one set).
        smoothing_steps / post_smoothing_steps: smoothing steps before restriction / after
            prolongation per level, coarsest first, last entry repeated for finer levels.
        padding_mode: ``"zeros"`` | ``"reflect"`` | ``"circular"`` (the boundary condition).
        activation: nonlinearity σ (see :mod:`neuralops.layers.pointwise`).
        resample_method: how ``output_shape`` is served: the input is resampled onto
            ``output_shape`` (``"bilinear"`` or ``"fourier"``) and the model runs there.
        batch_slice_mib: run the batch in slices whose widest field (``samples ×
            max(in_channels, hidden_channels, out_channels) × grid points``) holds at most this many MiB
            (None: the whole batch at once); samples are independent, so the result is the
            whole batch's (:mod:`neuralops.models.slicing`). Only CPU tensors are sliced, and not under
            ``torch.compile``.
    """

    min_grid_size = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 24,
        n_layers: int = 4,
        n_dims: int = 2,
        coarsest_size: int = 4,
        level_weight_sets: int = 3,
        smoothing_steps: Sequence[int] = (2, 1),
        post_smoothing_steps: Sequence[int] = (0,),
        padding_mode: str = "zeros",
        activation: str = "gelu",
        resample_method: str = "bilinear",
        batch_slice_mib: float | None = DEFAULT_BATCH_SLICE_MIB,
    ) -> None:
        super().__init__()
        check_batch_slice_mib(batch_slice_mib, "MgNO")
        self.batch_slice_mib = batch_slice_mib
        self.widest_channels = max(in_channels, hidden_channels, out_channels)
        check_positive(in_channels=in_channels, out_channels=out_channels, hidden_channels=hidden_channels,
                       n_layers=n_layers, level_weight_sets=level_weight_sets, coarsest_size=coarsest_size)
        check_choice("n_dims", n_dims, list(_CONV))
        check_choice("padding_mode", padding_mode, list(PADDING_MODES))
        if coarsest_size < 2:
            raise ConfigError(f"coarsest_size={coarsest_size!r} must be at least 2")
        for option, steps in (("smoothing_steps", smoothing_steps), ("post_smoothing_steps", post_smoothing_steps)):
            if len(steps) == 0 or any(int(s) < 0 for s in steps):
                raise ConfigError(f"{option}={list(steps)!r} must be a non-empty list of non-negative step counts")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_dims = n_dims
        self.min_grid_size = coarsest_size
        self.resample_method = check_resample_method(resample_method, "resample_method")
        self.activation = activation_function(activation)
        widths = [in_channels] + [hidden_channels] * n_layers
        self.cycles = nn.ModuleList(
            VCycle(c_f, c_u, n_dims, level_weight_sets, smoothing_steps, post_smoothing_steps, coarsest_size,
                   padding_mode)
            for c_f, c_u in zip(widths[:-1], widths[1:])
        )
        self.pointwise = nn.ModuleList(PointwiseLinear(c_f, c_u) for c_f, c_u in zip(widths[:-1], widths[1:]))
        self.head = PointwiseLinear(hidden_channels, out_channels)

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """``n_dims`` from the data, and ``padding_mode`` from its boundary when unset:
        ``circular`` on periodic data, ``reflect`` for Neumann boundaries, else ``zeros``."""
        filled = n_dims_from_grid(options, grid)
        if options.get("padding_mode") is None:
            boundary = grid.axes[0].boundary
            filled["padding_mode"] = "circular" if grid.periodic else "reflect" if boundary == "neumann" else "zeros"
        return filled

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """``x: (B, in_channels, *grid)`` -> ``(B, out_channels, *grid)``, or on ``output_shape``
        (the input is resampled there first with ``resample_method``)."""
        self.check_input(x, output_shape)
        if output_shape is not None:
            x = resample(x, output_shape, self.resample_method)
        size = samples_per_slice(self.batch_slice_mib, x, self.widest_channels, math.prod(x.shape[2:]))
        return in_batch_slices(self._forward, x, size)

    def _forward(self, u: torch.Tensor) -> torch.Tensor:
        for cycle, pointwise in zip(self.cycles, self.pointwise):
            u = self.activation(cycle(u) + pointwise(u))
        return self.head(u)

