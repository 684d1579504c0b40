"""Multigrid domain decomposition (MG-TFNO, Kossaifi et al. 2024): patches with coarse context.

A field ``(B, C, *grid)`` (``d`` axes, each of ``N`` points divisible by ``n = 2^L``) is cut
into ``n`` patches of ``h = N/n`` points per axis. Every patch is padded by ``p`` points per side,
``p = round(padding_fraction · h)``, giving windows of ``w = h + 2p`` points. For each level
``l = 0..L`` the window is sampled with stride ``2^l`` around the patch centre, so level ``l``
sees a region ``2^l`` times larger at ``2^l`` times coarser resolution:

    window index ``j = 0..w-1`` of patch ``i`` at level ``l`` reads the input at
    ``i·h + h//2 − 2^l·(h//2 + p) + 2^l·j``

(level 0 is exactly the padded patch ``i·h − p .. i·h + h + p − 1``). The levels are stacked along
channels: the result is ``(B·n^d, C·(L+1), w, …, w)``, patches ordered row-major over the patch
grid, levels ordered ``0..L``. Positions outside the domain are filled according to
``padding_mode``: ``"circular"`` (periodic data only), ``"reflect"``, ``"replicate"`` or
``"zeros"`` for non-periodic data. :meth:`MultigridPatching.stitch` crops the padding of each
patch and reassembles the grid (``stitch(level-0 part of patch(x)) == x``).

A grid not divisible by ``2^L`` is an error here; a model that accepts such grids extends them
first (:meth:`MultigridPatching.divisible_grid`, :meth:`MultigridPatching.pad`) and crops after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuralops.errors import ConfigError, InputShapeError

PADDING_MODES = {"circular": "circular", "reflect": "reflect", "replicate": "replicate", "zeros": "constant"}


@dataclass(frozen=True)
class AxisPatches:
    """Patch geometry along one axis: ``count`` patches of ``size`` points, ``padding`` per side."""

    count: int
    size: int
    padding: int

    @property
    def window(self) -> int:
        return self.size + 2 * self.padding


class MultigridPatching:
    """Cut fields into multigrid patches and stitch patch outputs back (see the module docstring).

    Args:
        levels: ``L``; ``2^L`` patches per axis and ``L`` coarser context levels.
        padding_fraction: padding per side as a fraction of the patch size (``p = round(f·h)``).
        padding_mode: how the domain is extended: ``"circular"``, ``"reflect"``, ``"replicate"``, ``"zeros"``.
    """

    def __init__(self, levels: int, padding_fraction: float, padding_mode: str):
        if levels < 0:
            raise ConfigError(f"levels must be >= 0, got {levels}")
        if not 0.0 <= padding_fraction <= 1.0:
            raise ConfigError(f"padding_fraction must lie in [0, 1], got {padding_fraction}")
        if padding_mode not in PADDING_MODES:
            raise ConfigError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got {padding_mode!r}")
        self.levels = int(levels)
        self.padding_fraction = float(padding_fraction)
        self.padding_mode = padding_mode

    @property
    def n_patches(self) -> int:
        """Patches per axis, ``2^L``."""
        return 2**self.levels

    def divisible_grid(self, grid: Sequence[int]) -> tuple[int, ...]:
        """The smallest grid ``>= grid`` divisible by ``2^L`` on every axis."""
        n = self.n_patches
        return tuple(-(-int(size) // n) * n for size in grid)

    def geometry(self, grid: Sequence[int]) -> tuple[AxisPatches, ...]:
        """Per-axis patch geometry for ``grid``; raises :class:`InputShapeError` if not divisible by ``2^L``."""
        n = self.n_patches
        if any(size % n for size in grid):
            raise InputShapeError(
                f"multigrid patching with levels={self.levels} needs every grid size divisible by {n}, got grid {tuple(grid)}"
            )
        return tuple(AxisPatches(n, size // n, int(round(self.padding_fraction * (size // n)))) for size in grid)

    @staticmethod
    def _index_range(axis: AxisPatches, level: int) -> tuple[int, int]:
        """The first and last input index read at ``level`` (indices grow with the patch and
        the position in its window), as Python ints: no tensor is read, so ``torch.compile``
        traces the patching without a graph break."""
        stride = 2**level
        first = axis.size // 2 - stride * (axis.size // 2 + axis.padding)
        return first, first + (axis.count - 1) * axis.size + stride * (axis.window - 1)

    def _sample_indices(self, axis: AxisPatches, level: int) -> torch.Tensor:
        """``(count, window)`` input indices (may lie outside ``[0, N)``) read at ``level``."""
        patch = torch.arange(axis.count).unsqueeze(1)
        step = torch.arange(axis.window).unsqueeze(0)
        return patch * axis.size + self._index_range(axis, level)[0] + 2**level * step

    def patch(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C, *grid)`` -> ``(B·n^d, C·(L+1), *window)``."""
        grid = tuple(x.shape[2:])
        geometry = self.geometry(grid)
        indices = [[self._sample_indices(axis, level) for axis in geometry] for level in range(self.levels + 1)]
        ranges = [[self._index_range(axis, level) for axis in geometry] for level in range(self.levels + 1)]
        before = [max(0, -min(r[a][0] for r in ranges)) for a in range(len(grid))]
        after = [max(0, max(r[a][1] for r in ranges) - (grid[a] - 1)) for a in range(len(grid))]
        padded = self.pad(x, before, after)
        levels = [self._gather(padded, [idx + b for idx, b in zip(level_idx, before)]) for level_idx in indices]
        return torch.cat(levels, dim=1)

    def pad(self, x: torch.Tensor, before: Sequence[int], after: Sequence[int]) -> torch.Tensor:
        """Extend ``x: (B, C, *grid)`` by ``before``/``after`` points per axis according to ``padding_mode``."""
        grid = x.shape[2:]
        limit = {"reflect": lambda n: n - 1, "circular": lambda n: n}.get(self.padding_mode)
        if limit is not None and any(max(b, a) > limit(n) for b, a, n in zip(before, after, grid)):
            raise InputShapeError(
                f"multigrid context needs padding {list(before)}/{list(after)} on grid {tuple(grid)}, more than "
                f"padding_mode={self.padding_mode!r} allows; lower padding_fraction or levels, or use 'replicate'/'zeros'"
            )
        pads = []
        for b, a in zip(reversed(before), reversed(after)):
            pads += [b, a]
        return F.pad(x, pads, mode=PADDING_MODES[self.padding_mode]) if any(pads) else x

    @staticmethod
    def _gather(x: torch.Tensor, indices: Sequence[torch.Tensor]) -> torch.Tensor:
        """Windows ``x[..., idx_0[i0], idx_1[i1], ...]`` -> ``(B·Π count, C, *window)``."""
        batch, channels = x.shape[:2]
        d = len(indices)
        for axis, idx in enumerate(indices):
            dim = 2 + 2 * axis  # earlier axes were split into (count, window)
            x = x.index_select(dim, idx.flatten().to(x.device)).unflatten(dim, tuple(idx.shape))
        # (B, C, n_0, w_0, n_1, w_1, ...) -> (B, n_0, n_1, ..., C, w_0, w_1, ...)
        order = [0] + [2 + 2 * a for a in range(d)] + [1] + [3 + 2 * a for a in range(d)]
        x = x.permute(order)
        return x.reshape(-1, channels, *x.shape[2 + d :])

    def stitch(self, patches: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """``(B·n^d, C, *window)`` patch outputs -> ``(B, C, *grid)``: crop each patch's padding, reassemble."""
        geometry = self.geometry(grid)
        d = len(geometry)
        if tuple(patches.shape[2:]) != tuple(a.window for a in geometry):
            raise InputShapeError(f"patches of shape {tuple(patches.shape)} do not match windows for grid {tuple(grid)}")
        crop = (slice(None), slice(None)) + tuple(slice(a.padding, a.padding + a.size) for a in geometry)
        y = patches[crop]
        channels = y.shape[1]
        y = y.reshape(-1, *(a.count for a in geometry), channels, *(a.size for a in geometry))
        # (B, n_0, .., n_{d-1}, C, h_0, .., h_{d-1}) -> (B, C, n_0, h_0, n_1, h_1, ...)
        order = [0, 1 + d] + [v for a in range(d) for v in (1 + a, 2 + d + a)]
        return y.permute(order).reshape(y.shape[0], channels, *grid)
