"""``SpectralConv``: transform -> keep modes -> contract -> inverse, for any dimension and grid."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neuralops.errors import InputShapeError
from neuralops.spectral.modes import kept_modes, normalize_n_modes
from neuralops.spectral.transforms import build_transform
from neuralops.spectral.weights import SpectralWeight, build_spectral_weight


class SpectralConv(nn.Module):
    """Spectral convolution on 1-D, 2-D or 3-D grids (dimension = ``len(n_modes)``).

    ``y = T⁻¹( W · T(x) restricted to the kept modes ) + b``, where ``T`` is the transform
    (real FFT by default) and ``W`` a :class:`~neuralops.spectral.weights.SpectralWeight`.
    Which frequencies ``n_modes`` keeps is documented in :mod:`neuralops.spectral.modes`.

    Args:
        in_channels, out_channels: channel counts.
        n_modes: kept frequencies per axis (non-negative count), e.g. ``[12, 12]``.
        weight: a :class:`SpectralWeight` instance, or the name of a registered factorization.
        transform: name of the transform (``"fft"``).
        bias: add a learned per-channel constant after the inverse transform.

    Shapes: ``forward(x: (B, Cin, *grid), output_shape=None) -> (B, Cout, *grid)`` or
    ``(B, Cout, *output_shape)``. Any grid works: a grid finer than the modes keeps them all,
    a coarser one keeps those it represents.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        weight: SpectralWeight | str = "dense",
        transform: str = "fft",
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.n_modes = normalize_n_modes(n_modes)
        self.n_dims = len(self.n_modes)
        if isinstance(weight, str):
            weight = build_spectral_weight(in_channels, out_channels, self.n_modes, weight)
        self.weight = weight
        self.transform = build_transform(transform)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        if x.ndim != self.n_dims + 2 or x.shape[1] != self.in_channels:
            raise InputShapeError(
                f"SpectralConv expects (batch, {self.in_channels}, *grid) with a {self.n_dims}-D grid, "
                f"got shape {tuple(x.shape)}"
            )
        grid_in = tuple(x.shape[2:])
        grid_out = grid_in if output_shape is None else tuple(int(s) for s in output_shape)
        modes = kept_modes(self.n_modes, grid_in, grid_out)
        coefficients = self.transform.forward(x, modes)
        coefficients = self.weight(coefficients, modes)
        y = self.transform.inverse(coefficients, modes, grid_out)
        if self.bias is not None:
            y = y + self.bias.view((1, -1) + (1,) * self.n_dims)
        return y

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, n_modes={list(self.n_modes)}, transform={self.transform.name!r}"
