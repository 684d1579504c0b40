"""Spherical FNO (Bonev et al., ICML 2023): FNO blocks whose spectral convolutions use the
spherical harmonic transform, on equiangular latitude-longitude grids.

Layout as FNO: coordinates (optional) -> lifting channel MLP -> ``n_layers`` blocks
(spectral conv + skip, activation, channel MLP with soft-gating skip, activation; the last block
without either activation, as :class:`~neuralops.models.fno.FourierBlock`) -> projection.

Grid: ``x: (B, C, nlat, nlon)``, colatitude ``θ_j = π j/(nlat-1)`` (poles included) and
longitude ``φ_k = 2π k/nlon`` (see :mod:`neuralops.spectral.sphere`).

Spectral weights (``weight_sharing``):

* ``"degree"`` (default): one ``Cin × Cout`` complex matrix per degree ``l``, shared by every
  order ``m`` — the Driscoll–Healy convolution theorem's form, as in the SFNO paper. The layer
  commutes with rotations about the polar axis, and with every rotation of the sphere when
  the per-degree matrices are real (the imaginary parts act as an order-dependent longitude
  shift; on order 0 only the real part acts, since the output is real).
* ``"none"``: a separate matrix per ``(l, m)`` (more parameters, not rotation-equivariant).

``output_shape`` evaluates the last spectral convolution on another equiangular grid and
resamples its skip paths by spherical-harmonic interpolation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from neuralops.errors import ConfigError
from neuralops.grid import Grid
from neuralops.models.base import NeuralOperator, n_modes_from_grid
from neuralops.models.fno import FourierBlock, lifting_layer, projection_layer, run_blocks
from neuralops.models.slicing import (
    DEFAULT_BATCH_SLICE_MIB,
    check_batch_slice_mib,
    in_batch_slices,
    samples_per_slice,
    widest_width,
)
from neuralops.spectral import SpectralConv, build_layer_weights
from neuralops.spectral.modes import NONNEG, SHARED, normalize_n_modes
from neuralops.spectral.sphere import sphere_resample

WEIGHT_SHARING = {"degree": (NONNEG, SHARED), "none": (NONNEG, NONNEG)}
POSITIONAL_EMBEDDINGS = ("latlon", None)


class SphericalBlock(FourierBlock):
    """A :class:`FourierBlock` whose skip paths are resampled by spherical-harmonic interpolation."""

    @staticmethod
    def _resampled(module: nn.Module | None, x: torch.Tensor, shape: Sequence[int], offset: Sequence[float] | None) -> torch.Tensor | None:
        if module is None:
            return None
        return sphere_resample(module(x), shape)


def latlon_channels(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2, nlat, nlon)``: colatitude ``θ/π ∈ [0, 1]`` and longitude ``φ/2π ∈ [0, 1)``."""
    nlat, nlon = x.shape[-2:]
    theta = torch.linspace(0.0, 1.0, nlat, dtype=x.dtype, device=x.device)
    phi = torch.arange(nlon, dtype=x.dtype, device=x.device) / nlon
    mesh = torch.stack(torch.meshgrid(theta, phi, indexing="ij"))
    return mesh.unsqueeze(0).expand(x.shape[0], -1, nlat, nlon)


class SFNO(NeuralOperator, name="sfno"):
    """Spherical Fourier Neural Operator on equiangular ``(nlat, nlon)`` grids.

    Args:
        in_channels, out_channels: physical input/output channels.
        n_modes: ``[lmax, mmax]``, counts of kept degrees and orders (``l < lmax``, ``m < mmax``).
        hidden_channels, n_layers, lifting_ratio, projection_ratio, channel_mlp_expansion,
        skip, channel_mlp_skip, activation: as for :class:`~neuralops.models.fno.FNO`.
        positional_embedding: ``"latlon"`` appends ``(θ/π, φ/2π)`` channels; null appends none.
        weight_sharing: ``"degree"`` (per-degree weights, default) or ``"none"`` (per (l, m)).
        spectral_weight: weight parameterization, e.g. ``{"factorization": "dense"}``.
        batch_slice_mib: run the batch in slices whose widest hidden field holds at most this
            many MiB (None: the whole batch at once); as for :class:`~neuralops.models.fno.FNO`
            (:mod:`neuralops.models.slicing`).

    ``forward(x: (B, in_channels, nlat, nlon), output_shape=None) -> (B, out_channels, nlat, nlon)``.
    """

    n_dims = 2
    min_grid_size = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        hidden_channels: int = 32,
        n_layers: int = 4,
        lifting_ratio: float = 2.0,
        projection_ratio: float = 2.0,
        channel_mlp_expansion: float = 0.5,
        skip: str | None = "linear",
        channel_mlp_skip: str | None = "soft-gating",
        positional_embedding: str | None = "latlon",
        weight_sharing: str = "degree",
        spectral_weight: dict | None = None,
        activation: str = "gelu",
        batch_slice_mib: float | None = DEFAULT_BATCH_SLICE_MIB,
    ):
        super().__init__()
        check_batch_slice_mib(batch_slice_mib, "SFNO")
        self.batch_slice_mib = batch_slice_mib
        self.n_modes = normalize_n_modes(n_modes, 2)
        if positional_embedding not in POSITIONAL_EMBEDDINGS:
            raise ConfigError(f"positional_embedding must be one of {POSITIONAL_EMBEDDINGS}, got {positional_embedding!r}")
        if weight_sharing not in WEIGHT_SHARING:
            raise ConfigError(f"weight_sharing must be one of {sorted(WEIGHT_SHARING)}, got {weight_sharing!r}")
        if n_layers < 1 or hidden_channels < 1:
            raise ConfigError(f"SFNO needs n_layers >= 1 and hidden_channels >= 1, got {n_layers} and {hidden_channels}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.positional_embedding = positional_embedding
        lifted_in = in_channels + (2 if positional_embedding else 0)
        self.lifting = lifting_layer(lifted_in, hidden_channels, lifting_ratio, activation)
        weights = build_layer_weights(
            n_layers, hidden_channels, hidden_channels, self.n_modes, spectral_weight, mode_axes=WEIGHT_SHARING[weight_sharing]
        )
        self.blocks = nn.ModuleList(
            SphericalBlock(
                SpectralConv(hidden_channels, hidden_channels, self.n_modes, weight=w, transform="sht"),
                skip,
                channel_mlp_expansion,
                channel_mlp_skip,
                activation,
            )
            for w in weights
        )
        self.projection = projection_layer(hidden_channels, out_channels, projection_ratio, activation)
        self.widest_channels = widest_width(self)

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """``n_modes`` (degrees, orders) as two entries when given as one number."""
        return n_modes_from_grid(options, grid)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        self.check_input(x, output_shape)
        grid_out = tuple(x.shape[2:]) if output_shape is None else tuple(int(s) for s in output_shape)
        points = max(math.prod(x.shape[2:]), math.prod(grid_out))
        size = samples_per_slice(self.batch_slice_mib, x, self.widest_channels, points)
        return in_batch_slices(lambda part: self._forward(part, grid_out), x, size, self)

    def _forward(self, x: torch.Tensor, grid_out: tuple[int, ...]) -> torch.Tensor:
        grid_in = tuple(x.shape[2:])
        if self.positional_embedding == "latlon":
            x = torch.cat([x, latlon_channels(x)], dim=1)
        x = self.lifting(x)
        x = run_blocks(self.blocks, x, grid_out if grid_out != grid_in else None)
        return self.projection(x)
