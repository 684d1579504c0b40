"""Transforms of the spectral core: grid values <-> the kept block of coefficients.

A transform maps ``x: (B, C, *grid)`` (real) to the block of coefficients a layer keeps,
``(B, C, *K)``, and back onto any output grid. Models never call a transform themselves;
:class:`~neuralops.spectral.conv.SpectralConv` does.

``FourierTransform`` is the default. Its coefficients are those of the unit-period Fourier
series (FFT normalization ``"forward"``: ``x̂_k = (1/N) Σ_n x_n e^{-2πikn/N}``), so they do not
depend on the grid and the inverse onto another grid evaluates the same band-limited function.
The transform is *staged*: a real FFT along the last axis, truncation to the kept columns, then
complex FFTs along the other axes on the kept columns only; the inverse mirrors it and never
allocates a full-size zero spectrum.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neuralops.errors import ConfigError
from neuralops.spectral.dct import CosineTransform
from neuralops.spectral.modes import AxisModes, kept_modes
from neuralops.spectral.sphere import SphericalHarmonicTransform


def gather_axis(x: torch.Tensor, dim: int, n_pos: int, n_neg: int) -> torch.Tensor:
    """Take indices ``[0, n_pos)`` and the last ``n_neg`` along ``dim`` (positive then negative frequencies)."""
    size = x.shape[dim]
    if n_pos + n_neg == size:
        return x
    if n_neg == 0:
        return x.narrow(dim, 0, n_pos)
    return torch.cat([x.narrow(dim, 0, n_pos), x.narrow(dim, size - n_neg, n_neg)], dim=dim)


def scatter_axis(block: torch.Tensor, dim: int, n_pos: int, n_neg: int, size: int) -> torch.Tensor:
    """Inverse of :func:`gather_axis`: place the block into ``size`` entries, zeros between."""
    if n_pos + n_neg == size:
        return block
    gap_shape = list(block.shape)
    gap_shape[dim] = size - n_pos - n_neg
    gap = block.new_zeros(gap_shape)
    if n_neg == 0:
        return torch.cat([block, gap], dim=dim)
    return torch.cat([block.narrow(dim, 0, n_pos), gap, block.narrow(dim, n_pos, n_neg)], dim=dim)


def real_dc_column(y: torch.Tensor) -> torch.Tensor:
    """Zero the imaginary part of the last-axis frequency-0 column.

    A real inverse FFT assumes the column is Hermitian; after the other axes are inverted
    that means real. Doing it explicitly makes the inverse mean ``Re(Σ_k ...)`` on every
    backend (cuFFT can otherwise produce artifacts, cf. pytorch#154496).
    """
    dc = y[..., :1]
    dc = torch.complex(dc.real, torch.zeros_like(dc.real))
    return torch.cat([dc, y[..., 1:]], dim=-1)


class FourierTransform:
    """Real FFT transform (the default). Block layout: ``(B, C, *K)`` with each non-last
    axis ordered ``[0..n_pos-1, -n_neg..-1]`` and the last axis ``[0..n_pos-1]``."""

    name = "fft"

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        """``x: (B, C, *grid)`` real -> kept coefficients ``(B, C, *K)`` complex."""
        d = len(modes)
        y = torch.fft.rfft(x, dim=-1, norm="forward")
        y = y.narrow(-1, 0, modes[-1].n_pos)
        for axis in range(d - 2, -1, -1):
            dim = axis - d
            y = torch.fft.fft(y, dim=dim, norm="forward")
            y = gather_axis(y, dim, modes[axis].n_pos, modes[axis].n_neg)
        return y

    def inverse(self, block: torch.Tensor, modes: Sequence[AxisModes], grid_out: Sequence[int]) -> torch.Tensor:
        """Kept coefficients ``(B, C, *K)`` -> real values ``(B, C, *grid_out)``."""
        d = len(modes)
        y = block
        for axis in range(d - 1):
            dim = axis - d
            y = scatter_axis(y, dim, modes[axis].n_pos, modes[axis].n_neg, int(grid_out[axis]))
            y = torch.fft.ifft(y, dim=dim, norm="forward")
        y = real_dc_column(y)
        return torch.fft.irfft(y, n=int(grid_out[-1]), dim=-1, norm="forward")


def fourier_resample(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Band-limited resampling of periodic data ``x: (B, C, *grid)`` to ``(B, C, *shape)``.

    Keeps every frequency representable on both grids (Nyquist excluded), i.e. trigonometric
    interpolation when refining and ideal low-pass filtering when coarsening.
    """
    grid_in = tuple(x.shape[2:])
    shape = tuple(int(s) for s in shape)
    if grid_in == shape:
        return x
    modes = kept_modes([max(a, b) for a, b in zip(grid_in, shape)], grid_in, shape)
    transform = FourierTransform()
    return transform.inverse(transform.forward(x, modes), modes, shape)


TRANSFORMS = {
    "fft": FourierTransform,
    "dct": CosineTransform,
    "sht": SphericalHarmonicTransform,
}


def build_transform(name: str):
    """Return a transform instance by name (``"fft"``; more are plugged in by the core)."""
    if name not in TRANSFORMS:
        raise ConfigError(f"unknown spectral transform {name!r}; available: {', '.join(sorted(TRANSFORMS))}")
    return TRANSFORMS[name]()
