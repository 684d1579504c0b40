"""Multigrid tensorized FNO (MG-TFNO; Kossaifi et al., TMLR 2024).

The input is cut into ``2^L`` patches per axis, each with ``L`` coarser context levels stacked
as channels (:class:`~neuralops.layers.patching.MultigridPatching`); one TFNO whose spectral
weights are a **joint** factorization (one Tucker tensor with a layer mode, the paper's
"global tensor factorization") maps every patch; the patch outputs are cropped and stitched.

Coordinates of the whole domain (vertex grid, ``[0, 1]`` per axis) are appended *before*
patching, so every patch knows where it and its context lie; the inner TFNO embeds none.
Context outside the domain follows ``padding_mode``: ``"circular"`` for periodic data only,
``"reflect"`` (default), ``"replicate"`` or ``"zeros"`` for non-periodic data such as Darcy.

Grids not divisible by ``2^L`` (Darcy's vertex grids 17, 33, 65) are extended at the end of
each axis, by ``padding_mode``, to the next multiple of ``2^L``, and the output is cropped back:
the patches then cover ``ceil(N/2^L)/N`` of the domain instead of ``1/2^L`` (9/17 instead of 1/2
for one level at 17 points), a difference that shrinks as ``1/N``. The model evaluates on the
input grid; for another grid, give it the input on that grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from neuralops.errors import ConfigError, InputShapeError
from neuralops.grid import Grid
from neuralops.layers.grid import GridEmbedding
from neuralops.layers.patching import MultigridPatching
from neuralops.models.base import NeuralOperator, n_modes_from_grid
from neuralops.models.tfno import TFNO
from neuralops.spectral.modes import normalize_n_modes

MGTFNO_SPECTRAL_WEIGHT = {"factorization": "tucker", "rank": 0.05, "joint": True}


class MGTFNO(NeuralOperator, name="mgtfno"):
    """Multigrid-patched TFNO with jointly factorized spectral weights.

    Args:
        in_channels, out_channels: physical input/output channels.
        n_modes: kept frequencies per axis of each patch (Li-style count); one number for every
            axis is expanded by :meth:`options_from_grid` from the data (the constructor needs a list).
        levels: ``L``: ``2^L`` patches per axis and ``L`` context levels.
        padding_fraction: patch padding per side, as a fraction of the patch size.
        padding_mode: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"`` (periodic data).
        grid_embedding: append whole-domain vertex coordinates before patching.
        spectral_weight: weight spec of the inner TFNO (default: joint Tucker, rank 0.05 of all
            layers' dense parameters).
        hidden_channels, n_layers, lifting_ratio, projection_ratio, channel_mlp_expansion, skip,
        channel_mlp_skip, activation: as for :class:`~neuralops.models.fno.FNO`.

    ``forward(x: (B, in_channels, *grid)) -> (B, out_channels, *grid)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        levels: int = 1,
        padding_fraction: float = 0.25,
        padding_mode: str = "reflect",
        grid_embedding: bool = True,
        spectral_weight: dict | None = MGTFNO_SPECTRAL_WEIGHT,
        hidden_channels: int = 32,
        n_layers: int = 4,
        lifting_ratio: float = 2.0,
        projection_ratio: float = 2.0,
        channel_mlp_expansion: float = 0.5,
        skip: str | None = "linear",
        channel_mlp_skip: str | None = "soft-gating",
        activation: str = "gelu",
    ):
        super().__init__()
        self.n_modes = normalize_n_modes(n_modes)
        self.n_dims = len(self.n_modes)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.patching = MultigridPatching(levels, padding_fraction, padding_mode)
        self.min_grid_size = self.patching.n_patches
        self.embedding = GridEmbedding("vertex") if grid_embedding else None
        if spectral_weight is not None and not isinstance(spectral_weight, dict):
            raise ConfigError(f"spectral_weight must be a dict, got {spectral_weight!r}")
        field_channels = in_channels + (self.n_dims if grid_embedding else 0)
        self.operator = TFNO(
            field_channels * (levels + 1),
            out_channels,
            self.n_modes,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            lifting_ratio=lifting_ratio,
            projection_ratio=projection_ratio,
            channel_mlp_expansion=channel_mlp_expansion,
            skip=skip,
            channel_mlp_skip=channel_mlp_skip,
            grid_embedding=False,
            spectral_weight=dict(spectral_weight or {"factorization": "dense"}),
            activation=activation,
        )

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """``n_modes`` one entry per axis when given as one number."""
        return n_modes_from_grid(options, grid)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        self.check_input(x, output_shape)
        grid = tuple(x.shape[2:])
        if output_shape is not None and tuple(int(s) for s in output_shape) != grid:
            raise InputShapeError(
                f"MGTFNO predicts on its input grid {grid}; to predict on {tuple(output_shape)}, "
                "pass the input sampled on that grid"
            )
        if self.embedding is not None:
            x = self.embedding(x)
        divisible = self.patching.divisible_grid(grid)
        x = self.patching.pad(x, [0] * len(grid), [d - n for d, n in zip(divisible, grid)])
        y = self.patching.stitch(self.operator(self.patching.patch(x)), divisible)
        return y[(slice(None), slice(None)) + tuple(slice(0, n) for n in grid)]
