"""Grid conventions, coordinate embedding, domain padding and grid-to-grid interpolation.

Two grid kinds are used throughout neuralops:

* ``"vertex"``: ``N`` points on ``[0, 1]`` including both ends, ``x_j = j/(N-1)`` (Darcy with
  Dirichlet boundaries; spacing ``1/(N-1)``).
* ``"periodic"``: ``N`` cells of a unit period, ``x_j = j/N`` (spacing ``1/N``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neuralops.errors import ConfigError

GRID_KINDS = ("vertex", "periodic")


def check_grid_kind(kind: str) -> str:
    if kind not in GRID_KINDS:
        raise ConfigError(f"unknown grid kind {kind!r}; expected one of {GRID_KINDS}")
    return kind


def grid_intervals(n: int, kind: str) -> int:
    """Number of grid spacings spanning the unit domain."""
    return n - 1 if kind == "vertex" else n


def coordinates(n: int, kind: str, dtype=torch.float32, device=None) -> torch.Tensor:
    """1-D coordinates of ``n`` points of a grid of ``kind`` on the unit domain."""
    steps = torch.arange(n, dtype=dtype, device=device)
    return steps / max(grid_intervals(n, kind), 1)


class GridEmbedding(nn.Module):
    """Append the coordinates as channels: ``(B, C, *grid) -> (B, C + d, *grid)``."""

    def __init__(self, kind: str = "vertex"):
        super().__init__()
        self.kind = check_grid_kind(kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = x.shape[2:]
        axes = [coordinates(n, self.kind, x.dtype, x.device) for n in grid]
        mesh = torch.meshgrid(*axes, indexing="ij")
        coords = torch.stack(mesh).unsqueeze(0).expand(x.shape[0], -1, *grid)
        return torch.cat([x, coords], dim=1)


class DomainPadding(nn.Module):
    """Zero-pad the end of every spatial axis by a fraction of the domain, then crop it off.

    The padded length is chosen so the extended domain is ``(1 + fraction)`` times the unit
    domain at every resolution (in grid intervals of the given kind), which keeps the
    period seen by the spectral layers — and so the learned kernel — the same physical size
    when the model is evaluated on another grid.
    """

    def __init__(self, fraction: float, kind: str = "vertex"):
        super().__init__()
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"domain_padding must be a fraction in [0, 1], got {fraction}")
        self.fraction = float(fraction)
        self.kind = check_grid_kind(kind)

    def amount(self, n: int) -> int:
        """Points added after an axis of ``n`` points."""
        intervals = grid_intervals(n, self.kind)
        return max(int(round((1.0 + self.fraction) * intervals)) - intervals, 0) if self.fraction else 0

    def padded_shape(self, grid: Sequence[int]) -> tuple[int, ...]:
        return tuple(n + self.amount(n) for n in grid)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for n in reversed(x.shape[2:]):
            pads += [0, self.amount(n)]
        return F.pad(x, pads) if any(pads) else x

    def crop(self, x: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Keep the first ``grid`` points of each axis (the unpadded domain)."""
        index = (slice(None), slice(None)) + tuple(slice(0, n) for n in grid)
        return x[index]


_INTERP_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def interpolate(x: torch.Tensor, shape: Sequence[int], kind: str = "vertex") -> torch.Tensor:
    """Multilinear interpolation of ``(B, C, *grid)`` onto ``(B, C, *shape)``.

    Vertex grids align their end points (``align_corners=True``); periodic grids align cell
    starts and are treated as cell-centred by torch, which is exact for constant fields and
    second-order accurate otherwise.
    """
    shape = tuple(int(s) for s in shape)
    if tuple(x.shape[2:]) == shape:
        return x
    mode = _INTERP_MODES.get(x.ndim - 2)
    if mode is None:
        raise ConfigError(f"interpolation supports 1-D to 3-D grids, got a {x.ndim - 2}-D grid")
    return F.interpolate(x, size=shape, mode=mode, align_corners=(check_grid_kind(kind) == "vertex"))
