"""Random smooth initial conditions for the generators, reproducible from a ``torch.Generator``.

Two families:

* :func:`sample_periodic_grf`: Gaussian random fields on a periodic box ``[0, L)^d`` with
  covariance operator ``sigma^2 (-Laplacian + tau^2 I)^(-alpha)`` (zero mean mode), sampled on
  the cell grid ``x_j = j L / N``;
* :func:`sample_sphere_harmonic_coefficients`: isotropic random coefficients of a real field on
  the unit sphere in torch-harmonics' orthonormal layout ``(lmax, mmax)``, with angular power
  ``E|c_lm|^2 = sigma^2 (l (l + 1) + tau^2)^(-alpha)``.

Samples are drawn on ``generator.device``; the same generator state gives the same fields.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from neuralops.spectral.pseudospectral import (
    check_periodic_size,
    require_non_negative,
    require_positive,
    spectral_wavevectors,
    to_physical,
    to_spectral,
)
from neuralops.errors import ConfigError


def _check_batch(batch: int) -> None:
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")


def periodic_grf_spectrum(
    grid_shape: Sequence[int], alpha: float, tau: float, sigma: float, domain_length: float, *, device: torch.device
) -> torch.Tensor:
    """Standard deviation ``s_k`` of each Fourier mode of :func:`sample_periodic_grf`.

    ``s_k = sigma (|k|^2 + tau^2)^(-alpha/2) / sqrt(L^d)`` with angular wavenumbers
    ``k = 2 pi m / L`` and ``s_0 = 0``, in ``rfftn`` layout, float64. The covariance of the field
    is ``sum_k s_k^2 exp(i k (x - y))``, i.e. ``sigma^2 (-Laplacian + tau^2)^(-alpha)`` expanded in
    the orthonormal Fourier basis ``exp(i k x) / sqrt(L^d)``.
    """
    wavevectors = spectral_wavevectors(grid_shape, domain_length, dtype=torch.float64, device=device)
    squared = sum(k**2 for k in wavevectors)
    spectrum = sigma * (squared + tau**2) ** (-alpha / 2.0) / math.sqrt(domain_length ** len(grid_shape))
    spectrum.reshape(-1)[0] = 0.0
    return spectrum


def sample_periodic_grf(
    batch: int,
    grid_shape: Sequence[int],
    generator: torch.Generator,
    *,
    alpha: float,
    tau: float,
    sigma: float,
    domain_length: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Zero-mean Gaussian random fields on the periodic box ``[0, L)^d``, shape ``(batch, *grid_shape)``.

    Covariance ``sigma^2 (-Laplacian + tau^2 I)^(-alpha)`` with periodic boundary conditions, the
    convention of Li et al. (FNO, ICLR 2021) whose data generator sets the per-mode amplitude to
    ``sigma (4 pi^2 |m|^2 + tau^2)^(-alpha/2)`` on the unit box. Spectral decay: the expected
    power ``E|u_hat_k|^2`` falls like ``|k|^(-2 alpha)`` for ``|k| >> tau``.

    Built by colouring real white noise in Fourier space (exactly Hermitian, no real-part trick):
    ``u = N^(d/2) irfftn(s_k * rfftn(xi))`` with ``xi ~ N(0, 1)`` i.i.d. on the grid of ``N^d``
    points, so ``E|rfftn(u)_k|^2 = N^(2d) s_k^2`` (see :func:`periodic_grf_spectrum`).
    """
    _check_batch(batch)
    for axis, n in enumerate(grid_shape):
        check_periodic_size(f"grid_shape[{axis}]", n, minimum=4)
    alpha = require_positive("alpha", alpha)
    tau = require_non_negative("tau", tau)
    sigma = require_positive("sigma", sigma)
    domain_length = require_positive("domain_length", domain_length)
    device = generator.device
    noise = torch.randn((batch, *grid_shape), generator=generator, device=device, dtype=torch.float64)
    spectrum = periodic_grf_spectrum(grid_shape, alpha, tau, sigma, domain_length, device=device)
    points = math.prod(grid_shape)
    field = math.sqrt(points) * to_physical(spectrum * to_spectral(noise, len(grid_shape)), grid_shape)
    return field.to(dtype)


def sample_sphere_harmonic_coefficients(
    batch: int,
    lmax: int,
    mmax: int,
    generator: torch.Generator,
    *,
    alpha: float,
    tau: float,
    sigma: float = 1.0,
    dtype: torch.dtype = torch.complex128,
) -> torch.Tensor:
    """Random coefficients of an isotropic real field on the sphere, shape ``(batch, lmax, mmax)``.

    Layout of torch-harmonics' ``RealSHT``/``InverseRealSHT`` with ``norm="ortho"``: entry
    ``[l, m]`` for ``0 <= m <= l < lmax``, ``m < mmax``, zero elsewhere. Orders ``m > 0`` are
    complex with ``E|c_lm|^2 = S_l``; ``m = 0`` is real with variance ``S_l``, where
    ``S_l = sigma^2 (l (l + 1) + tau^2)^(-alpha)`` and ``S_0 = 0`` (zero mean). Hence each
    degree ``l`` carries power ``(2l + 1) S_l``, the same for every orientation.
    """
    _check_batch(batch)
    if lmax < 2 or mmax < 1 or mmax > lmax:
        raise ConfigError(f"need lmax >= 2 and 1 <= mmax <= lmax, got lmax={lmax}, mmax={mmax}")
    alpha = require_positive("alpha", alpha)
    tau = require_non_negative("tau", tau)
    sigma = require_positive("sigma", sigma)
    device = generator.device
    degree = torch.arange(lmax, dtype=torch.float64, device=device).unsqueeze(-1)
    order = torch.arange(mmax, dtype=torch.float64, device=device)
    spectrum = sigma * (degree * (degree + 1) + tau**2) ** (-alpha / 2.0)
    spectrum = torch.where(order <= degree, spectrum, torch.zeros_like(spectrum))
    spectrum[0] = 0.0
    noise = torch.randn((batch, lmax, mmax, 2), generator=generator, device=device, dtype=torch.float64)
    # complex orders: real and imaginary parts each of variance 1/2; m = 0: real, variance 1
    scale = torch.full((mmax,), math.sqrt(0.5), dtype=torch.float64, device=device)
    scale[0] = 1.0
    noise[..., 0, 1] = 0.0
    coefficients = torch.view_as_complex(noise) * (spectrum * scale)
    return coefficients.to(dtype)
