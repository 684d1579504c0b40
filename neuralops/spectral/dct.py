"""Discrete cosine transforms (DCT-II and its inverse, DCT-III) built on the FFT, and the
``"dct"`` transform plug-in of the spectral core.

Grid and normalization
----------------------
The DCT-II treats ``N`` samples as values of a function on ``[0, 1]`` at the cell centres
``t_n = (n + 1/2)/N`` and expands it in the cosine series of its even extension,

    ``x_n = Σ_{k<N} a_k cos(π k t_n)``,

which needs no periodicity of the data (even, Neumann-like extension at both ends).

* ``norm="forward"`` returns the **cosine-series coefficients** ``a_k`` themselves:
  ``a_0 = (1/N) Σ_n x_n``, ``a_k = (2/N) Σ_n x_n cos(π k t_n)``. They do not depend on the
  grid: a function with ``a_k = 0`` for ``k ≥ K`` sampled on any ``N ≥ K`` cell-centred points
  gives the same ``a_k``, and the inverse onto ``N'`` points evaluates the same series. This is
  the resolution semantics of the whole spectral core (cf. the Fourier ``"forward"`` norm).
* ``norm="ortho"`` returns the orthonormal DCT (``scipy.fft.dct(norm="ortho")``):
  ``X_0 = sqrt(N)·a_0``, ``X_k = sqrt(N/2)·a_k`` — coefficients that grow like ``sqrt(N)``.

Algorithm: Makhoul's reordering, one real FFT of length ``N`` per axis (no ``2N`` extension).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from neuralops.errors import ConfigError
from neuralops.spectral.modes import NONNEG, AxisModes, corner_kept_modes

DCT_NORMS = ("forward", "ortho")


def _check_norm(norm: str) -> None:
    if norm not in DCT_NORMS:
        raise ConfigError(f"DCT norm must be one of {DCT_NORMS}, got {norm!r}")


def _even_odd_order(n: int, device: torch.device) -> torch.Tensor:
    """Indices ``p`` with ``v = x[p]``: even samples ascending, then odd samples descending."""
    index = torch.arange(n, device=device)
    return torch.cat([index[0::2], index[1::2].flip(0)])


def _coefficient_scale(n: int, count: int, norm: str, dtype, device) -> torch.Tensor:
    """Factor turning ``Σ_n x_n cos(π k t_n)`` (k < count) into coefficients of the given norm."""
    if norm == "forward":
        scale = torch.full((count,), 2.0 / n, dtype=dtype, device=device)
        scale[0] = 1.0 / n
    else:
        scale = torch.full((count,), math.sqrt(2.0 / n), dtype=dtype, device=device)
        scale[0] = math.sqrt(1.0 / n)
    return scale


def dct_ii(x: torch.Tensor, dim: int = -1, n_keep: int | None = None, norm: str = "forward") -> torch.Tensor:
    """DCT-II of real ``x`` along ``dim``, keeping the first ``n_keep`` coefficients (all when None).

    Shape: ``x`` with ``N`` along ``dim`` -> same shape with ``n_keep`` along ``dim``.
    """
    _check_norm(norm)
    n = x.shape[dim]
    keep = n if n_keep is None else int(n_keep)
    if not 1 <= keep <= n:
        raise ConfigError(f"dct_ii: n_keep must be in [1, {n}], got {keep}")
    x = x.movedim(dim, -1)
    v = x.index_select(-1, _even_odd_order(n, x.device))
    spectrum = torch.fft.rfft(v, dim=-1) if keep <= n // 2 + 1 else torch.fft.fft(v, dim=-1)
    k = torch.arange(keep, device=x.device, dtype=x.dtype)
    twiddle = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    sums = (spectrum[..., :keep] * twiddle).real  # Σ_n x_n cos(π k (2n+1) / (2N))
    return (sums * _coefficient_scale(n, keep, norm, x.dtype, x.device)).movedim(-1, dim)


def dct_iii(coefficients: torch.Tensor, n: int, dim: int = -1, norm: str = "forward") -> torch.Tensor:
    """Inverse of :func:`dct_ii`: ``K ≤ n`` coefficients along ``dim`` -> ``n`` cell-centred values.

    Coefficients beyond ``K`` are taken as zero, so with ``norm="forward"`` this evaluates the
    cosine series ``Σ_{k<K} a_k cos(π k t_j)`` at ``t_j = (j + 1/2)/n`` for any ``n ≥ K``.
    """
    _check_norm(norm)
    a = coefficients.movedim(dim, -1)
    count = a.shape[-1]
    if count > n:
        raise ConfigError(f"dct_iii: {count} coefficients do not fit on {n} points")
    # Back to the sums X_k = Σ_n x_n cos(...), zero-padded to n entries plus X_n = 0.
    sums = a / _coefficient_scale(n, count, norm, a.dtype, a.device)
    sums = torch.nn.functional.pad(sums, (0, n + 1 - count))
    half = n // 2 + 1
    k = torch.arange(half, device=a.device, dtype=a.dtype)
    reflected = sums[..., n - torch.arange(half, device=a.device)]  # X_{n-k}, with X_n = 0
    twiddle = torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
    spectrum = twiddle * torch.complex(sums[..., :half], -reflected)
    v = torch.fft.irfft(spectrum, n=n, dim=-1)
    order = _even_odd_order(n, a.device)
    values = torch.empty_like(v).index_copy_(-1, order, v)  # undo the even/odd reordering
    return values.movedim(-1, dim)


class CosineTransform:
    """The ``"dct"`` transform: separable DCT-II in (``norm="forward"``), DCT-III out.

    Coefficients are real; a layer keeps the low corner ``k_j < min(m_j, N_in_j, N_out_j)`` on
    every axis (``n_modes`` = count per axis; weights ``(Cin, Cout, m_1, ..., m_d)``, real).
    Block layout: ``(B, C, *K)`` with each axis ordered ``0..K-1``.
    """

    name = "dct"
    real_coefficients = True

    @staticmethod
    def mode_axes(n_dims: int) -> tuple[str, ...]:
        return (NONNEG,) * n_dims

    kept_modes = staticmethod(corner_kept_modes)

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        """``x: (B, C, *grid)`` real -> kept coefficients ``(B, C, *K)`` real."""
        d = len(modes)
        for axis in range(d - 1, -1, -1):
            x = dct_ii(x, dim=axis - d, n_keep=modes[axis].n_pos)
        return x

    def inverse(self, block: torch.Tensor, modes: Sequence[AxisModes], grid_out: Sequence[int]) -> torch.Tensor:
        """Kept coefficients ``(B, C, *K)`` -> real values ``(B, C, *grid_out)`` (cell-centred)."""
        d = len(modes)
        for axis in range(d):
            block = dct_iii(block, int(grid_out[axis]), dim=axis - d)
        return block
