"""Physical coordinates of grid points.

Convention shared by every family that needs coordinates (DeepONet trunks, LSM grid
embedding, query points): the domain is the unit cube ``[0, 1]^d`` and a grid of ``N``
points per axis is the *vertex* grid ``linspace(0, 1, N)``, boundary points included.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def vertex_grid(shape: Sequence[int], device: torch.device | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Coordinates of the vertex grid ``shape = (N_1, ..., N_d)``.

    Returns a tensor of shape ``(*shape, d)``; entry ``[i_1, ..., i_d, a]`` is
    ``i_a / (N_a - 1)`` (``0`` when ``N_a == 1``), a dimensionless position in ``[0, 1]``.
    """
    axes = [
        torch.linspace(0.0, 1.0, int(n), device=device, dtype=dtype) if int(n) > 1
        else torch.zeros(1, device=device, dtype=dtype)
        for n in shape
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def grid_embedding(x: torch.Tensor) -> torch.Tensor:
    """Append the vertex-grid coordinates as channels: ``(B, C, *grid) -> (B, C + d, *grid)``."""
    grid = tuple(x.shape[2:])
    coords = vertex_grid(grid, device=x.device, dtype=x.dtype)
    coords = torch.movedim(coords, -1, 0).unsqueeze(0).expand(x.shape[0], len(grid), *grid)
    return torch.cat([x, coords], dim=1)
