"""The spherical harmonic transform plug-in (``"sht"``), on torch-harmonics' real SHT.

Grid: equiangular latitude-longitude, ``(nlat, nlon)`` with latitude (colatitude
``θ_j = π j/(nlat-1)``, poles included) first and longitude ``φ_k = 2π k/nlon`` second.

Coefficients: orthonormal spherical harmonics with the Condon–Shortley phase (torch-harmonics
``norm="ortho"``, ``csphase=True``), ``f̂_l^m = ∫ f Ȳ_l^m dΩ`` for degrees ``0 ≤ l`` and orders
``0 ≤ m ≤ l`` (negative orders follow from the real input). They are grid-independent, so
the inverse onto another grid evaluates the same band-limited function.

Kept modes: ``n_modes = (lmax, mmax)`` are the **counts** of kept degrees and orders
(``l < lmax``, ``m < mmax``), further limited by what both grids resolve:

* degrees ``l < (nlat + 1) // 2``: the equiangular (Clenshaw–Curtis) quadrature integrates the
  products ``P_l^m P_l'^m`` of two such degrees exactly (torch-harmonics' default truncation);
* orders ``m < (nlon + 1) // 2`` (the longitude Nyquist order is never used) and ``m < L``.

Block layout: ``(B, C, L, M)`` complex, axes ``(l, m)`` both ordered from 0; entries with
``m > l`` are zero. The SHT objects precompute Legendre tables, so they are cached per
``(grid, degree count, device, dtype)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neuralops.errors import ConfigError
from neuralops.spectral.modes import NONNEG, AxisModes
from neuralops.spectral.precision import HALF_DTYPES, half_to_float32, transform_precision
from neuralops.tensor_cache import cached_tensors

GRID = "equiangular"


def max_degree_count(nlat: int) -> int:
    """Number of degrees an equiangular grid of ``nlat`` latitudes resolves: ``(nlat + 1) // 2``."""
    return (int(nlat) + 1) // 2


def max_order_count(nlon: int) -> int:
    """Number of orders ``nlon`` longitudes resolve without the Nyquist order: ``(nlon + 1) // 2``."""
    return (int(nlon) + 1) // 2


# torch-harmonics is imported when a transform is first built, so the rest of neuralops imports
# where it is missing or does not load (its compiled helpers are built for one torch version).
@cached_tensors(maxsize=64)
def _sht(nlat: int, nlon: int, degrees: int, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    from torch_harmonics import RealSHT

    return RealSHT(nlat, nlon, lmax=degrees, mmax=degrees, grid=GRID).to(device=device, dtype=dtype)


@cached_tensors(maxsize=64)
def _isht(nlat: int, nlon: int, degrees: int, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    from torch_harmonics import InverseRealSHT

    return InverseRealSHT(nlat, nlon, lmax=degrees, mmax=degrees, grid=GRID).to(device=device, dtype=dtype)


class SphericalHarmonicTransform:
    """The ``"sht"`` transform: real SHT in, inverse real SHT out (2-D lat-lon grids only)."""

    name = "sht"
    real_coefficients = False

    @staticmethod
    def mode_axes(n_dims: int) -> tuple[str, ...]:
        if n_dims != 2:
            raise ConfigError(f"the spherical harmonic transform needs 2-D (lat, lon) grids, got n_modes of {n_dims} axes")
        return (NONNEG, NONNEG)

    @staticmethod
    def kept_modes(
        n_modes: Sequence[int], grid_in: Sequence[int], grid_out: Sequence[int] | None = None
    ) -> tuple[AxisModes, AxisModes]:
        """Kept degrees ``L`` and orders ``M`` (see the module docstring)."""
        grid_out = grid_in if grid_out is None else grid_out
        if not (len(n_modes) == len(grid_in) == len(grid_out) == 2):
            raise ConfigError(
                f"the spherical harmonic transform needs 2-D grids and n_modes, got n_modes {list(n_modes)}, "
                f"grids {list(grid_in)} -> {list(grid_out)}"
            )
        degrees = min(int(n_modes[0]), max_degree_count(grid_in[0]), max_degree_count(grid_out[0]))
        orders = min(int(n_modes[1]), degrees, max_order_count(grid_in[1]), max_order_count(grid_out[1]))
        return (AxisModes(degrees, 0), AxisModes(orders, 0))

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        """``x: (B, C, nlat, nlon)`` real -> ``(B, C, L, M)`` complex coefficients."""
        degrees, orders = modes[0].n_pos, modes[1].n_pos
        sht = _sht(x.shape[-2], x.shape[-1], degrees, x.device, x.dtype)
        return sht(x)[..., :orders]

    def inverse(self, block: torch.Tensor, modes: Sequence[AxisModes], grid_out: Sequence[int]) -> torch.Tensor:
        """``(B, C, L, M)`` complex -> real values ``(B, C, *grid_out)``."""
        degrees, orders = modes[0].n_pos, modes[1].n_pos
        real_dtype = block.real.dtype
        isht = _isht(int(grid_out[0]), int(grid_out[1]), degrees, block.device, real_dtype)
        return isht(torch.nn.functional.pad(block, (0, degrees - orders)))


def sphere_resample(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Band-limited resampling of ``x: (B, C, nlat, nlon)`` onto the equiangular grid ``shape``.

    Keeps every degree and order both grids resolve (spherical-harmonic interpolation). Runs in
    float32 like every transform (:mod:`neuralops.spectral.precision`); a half-precision ``x``
    (e.g. a skip path's output under autocast) gives its own dtype back.
    """
    shape = tuple(int(s) for s in shape)
    if tuple(x.shape[-2:]) == shape:
        return x
    transform = SphericalHarmonicTransform()
    modes = transform.kept_modes((max(x.shape[-2], shape[0]), max(x.shape[-1], shape[1])), x.shape[-2:], shape)
    with transform_precision(x.device):
        y = transform.inverse(transform.forward(half_to_float32(x), modes), modes, shape)
    return y.to(x.dtype) if x.dtype in HALF_DTYPES else y
