"""Transforms of the spectral core: grid values <-> the kept block of coefficients.

A transform maps ``x: (B, C, *grid)`` (real) to the block of coefficients a layer keeps,
``(B, C, *K)``, and back onto any output grid. Models never call a transform themselves;
:class:`~neuralops.spectral.conv.SpectralConv` does.

``FourierTransform`` is the default. Its coefficients are those of the unit-period Fourier
series (FFT normalization ``"forward"``: ``x̂_k = (1/N) Σ_n x_n e^{-2πikn/N}``), so they do not
depend on the grid and the inverse onto another grid evaluates the same band-limited function.
The transform is *staged*: the last axis first (real transform, kept columns only), then the
other axes on the kept columns only; the inverse mirrors it. Each axis uses an FFT or a product
with the truncated DFT matrix, whichever is cheaper (see :class:`FourierTransform`). When every
axis uses the matrix, ``SpectralConv`` runs transform, contraction and inverse together as one
chain of GEMMs (:mod:`neuralops.spectral.fourier_gemm`) with the same values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from neuralops.errors import ConfigError
from neuralops.spectral.dct import CosineTransform
from neuralops.spectral.modes import AxisModes, kept_modes
from neuralops.spectral.sphere import SphericalHarmonicTransform
from neuralops.tensor_cache import cached_tensors


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


def signed_frequencies(n_pos: int, n_neg: int) -> torch.Tensor:
    """``[0, ..., n_pos-1, -n_neg, ..., -1]`` as float64."""
    return torch.cat([torch.arange(n_pos), torch.arange(-n_neg, 0)]).double()


@cached_tensors(maxsize=512)
def dft_matrix(
    kind: str, n: int, n_pos: int, n_neg: int, dtype: torch.dtype, device: torch.device, offset: float = 0.0
) -> torch.Tensor:
    """Truncated DFT matrices of the unit-period Fourier series on ``n`` points (cached).

    * ``"forward_last"``: real ``(n, 2·n_pos)``, ``x @ M = [Re x̂ | Im x̂]`` for frequencies
      ``0..n_pos-1`` (normalization 1/n).
    * ``"inverse_last"``: real ``(2·n_pos, n)``, ``[Re ŷ | Im ŷ] @ M = Σ_k c_k Re(ŷ_k e^{2πikx})``
      with ``c_0 = 1``, ``c_k = 2``: the real inverse, which ignores ``Im ŷ_0`` by construction.
    * ``"forward"``: complex ``(K, n)``, rows ``e^{-2πikx}/n`` for the signed frequencies.
    * ``"inverse"``: complex ``(n, K)``, columns ``e^{2πikx}``.
    * ``"forward_split"``: real ``(2K, n)``, the real parts of ``"forward"`` stacked over its
      imaginary parts.
    * ``"inverse_split"``: real ``(2K, n)``, the same of the transposed ``"inverse"``.

    ``dtype`` is the real dtype; complex matrices use the matching complex dtype. ``offset``
    (inverse kinds only) evaluates at the points ``j + offset`` instead of ``j``, in units of the
    grid spacing: the band-limited function on a grid shifted by a fraction of a cell.
    """
    if offset and kind.startswith("forward"):
        raise ValueError(f"dft_matrix: an offset applies to the inverse kinds, not {kind!r}")
    points = torch.arange(n, dtype=torch.float64) + offset
    if kind in ("forward_last", "inverse_last"):
        angle = 2 * math.pi * torch.outer(points, torch.arange(n_pos, dtype=torch.float64)) / n  # (n, n_pos)
        if kind == "forward_last":
            matrix = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1) / n
        else:
            weight = torch.full((n_pos,), 2.0, dtype=torch.float64)
            weight[0] = 1.0
            matrix = torch.cat([torch.cos(angle).T * weight[:, None], -torch.sin(angle).T * weight[:, None]], dim=0)
        return matrix.to(dtype=dtype, device=device)
    angle = 2 * math.pi * torch.outer(signed_frequencies(n_pos, n_neg), points) / n  # (K, n)
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    if kind in ("forward", "forward_split"):
        matrix = torch.polar(torch.full_like(angle, 1.0 / n), -angle)
    else:
        matrix = torch.polar(torch.ones_like(angle), angle)
    if kind.endswith("_split"):
        return torch.cat([matrix.real, matrix.imag]).to(dtype=dtype, device=device)
    return (matrix if kind == "forward" else matrix.T).to(dtype=complex_dtype, device=device)


def _shifted(y: torch.Tensor, dim: int, frequencies: torch.Tensor, shift: float) -> torch.Tensor:
    """Coefficients of the same function translated by ``-shift`` periods along ``dim``, so the
    inverse evaluates it at the points ``j/n + shift``: ``ŷ_k e^{2πik·shift}`` (unchanged for 0)."""
    if not shift:
        return y
    phase = torch.polar(torch.ones_like(frequencies), 2 * math.pi * shift * frequencies).to(device=y.device, dtype=y.dtype)
    return y * phase.view((-1,) + (1,) * (-dim - 1))


def along(y: torch.Tensor, dim: int, matrix: torch.Tensor) -> torch.Tensor:
    """Apply ``matrix (M, N)`` along axis ``dim`` (of size N) of ``y``, as one GEMM over all
    other axes (a broadcast ``matmul`` would run one small GEMM per batch entry)."""
    return torch.tensordot(y, matrix, dims=([dim], [1])).movedim(-1, dim)


class FourierTransform:
    """Real Fourier transform (the default). Block layout: ``(B, C, *K)`` with each non-last
    axis ordered ``[0..n_pos-1, -n_neg..-1]`` and the last axis ``[0..n_pos-1]``.

    Each axis is transformed either by an FFT followed by truncation, or by a product with the
    truncated DFT matrix (cached per size and device). The matrix form computes only the kept
    frequencies, never materializes a full spectrum, and runs as BLAS GEMMs; it wins when an
    axis keeps at most half of its frequencies or is short (``method="auto"``, the default).
    ``method="fft"`` or ``"matmul"`` forces one form; both give the same values.
    """

    name = "fft"
    METHODS = ("auto", "fft", "matmul")

    def __init__(self, method: str = "auto"):
        if method not in self.METHODS:
            raise ConfigError(f"unknown Fourier transform method {method!r}; expected one of {self.METHODS}")
        self.method = method

    def _matmul(self, kept: int, n: int) -> bool:
        if self.method != "auto":
            return self.method == "matmul"
        return 2 * kept <= n or n <= 64

    def all_axes_by_matrix(self, modes: Sequence[AxisModes], grid_in: Sequence[int], grid_out: Sequence[int]) -> bool:
        """Whether every axis, forward and inverse, uses the DFT matrix: then ``SpectralConv``
        runs the layer as one chain of GEMMs (:mod:`neuralops.spectral.fourier_gemm`)."""
        counts = [sel.count for sel in modes]
        return all(self._matmul(k, n) for grid in (grid_in, grid_out) for k, n in zip(counts, grid))

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        """``x: (B, C, *grid)`` real -> kept coefficients ``(B, C, *K)`` complex."""
        d = len(modes)
        n, n_last = x.shape[-1], modes[-1].n_pos
        if self._matmul(n_last, n):
            z = torch.matmul(x, dft_matrix("forward_last", n, n_last, 0, x.dtype, x.device))
            y = torch.complex(z[..., :n_last], z[..., n_last:])
        else:
            y = torch.fft.rfft(x, dim=-1, norm="forward").narrow(-1, 0, n_last)
        for axis in range(d - 2, -1, -1):
            dim, sel = axis - d, modes[axis]
            size = y.shape[dim]
            if self._matmul(sel.count, size):
                y = along(y, dim, dft_matrix("forward", size, sel.n_pos, sel.n_neg, x.dtype, x.device))
            else:
                y = gather_axis(torch.fft.fft(y, dim=dim, norm="forward"), dim, sel.n_pos, sel.n_neg)
        return y

    def inverse(
        self, block: torch.Tensor, modes: Sequence[AxisModes], grid_out: Sequence[int], offset: Sequence[float] | None = None
    ) -> torch.Tensor:
        """Kept coefficients ``(B, C, *K)`` -> real values ``(B, C, *grid_out)``.

        ``offset``: per axis, evaluate at the points ``j + offset[d]`` of the output grid (in
        units of its spacing) instead of ``j`` (matrix path: shifted DFT matrices; FFT path: the
        equivalent phase ``e^{2πik·offset/n}`` on the coefficients).
        """
        d = len(modes)
        offset = tuple(float(o) for o in offset) if offset is not None else (0.0,) * d
        real_dtype = block.real.dtype
        y = block
        for axis in range(d - 1):
            dim, sel, size = axis - d, modes[axis], int(grid_out[axis])
            if self._matmul(sel.count, size):
                y = along(y, dim, dft_matrix("inverse", size, sel.n_pos, sel.n_neg, real_dtype, y.device, offset[axis]))
            else:
                y = _shifted(y, dim, signed_frequencies(sel.n_pos, sel.n_neg), offset[axis] / size)
                y = torch.fft.ifft(scatter_axis(y, dim, sel.n_pos, sel.n_neg, size), dim=dim, norm="forward")
        n, n_last = int(grid_out[-1]), modes[-1].n_pos
        if self._matmul(n_last, n):
            stacked = torch.cat([y.real, y.imag], dim=-1)
            return torch.matmul(stacked, dft_matrix("inverse_last", n, n_last, 0, real_dtype, y.device, offset[-1]))
        y = _shifted(y, -1, signed_frequencies(n_last, 0), offset[-1] / n)
        return torch.fft.irfft(real_dc_column(y), n=n, dim=-1, norm="forward")


def fourier_power(x: torch.Tensor, n_dims: int) -> torch.Tensor:
    """``|x̂_k|²`` of the unnormalized real DFT over the last ``n_dims`` axes:
    ``x: (..., *grid)`` real -> ``(..., *grid[:-1], grid[-1]//2 + 1)`` (non-negative frequencies
    on the last axis, numpy/torch ``rfftn`` order on the others). For spectral error metrics."""
    return torch.fft.rfftn(x, dim=tuple(range(x.ndim - n_dims, x.ndim))).abs() ** 2


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
