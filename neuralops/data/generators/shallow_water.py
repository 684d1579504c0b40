"""Rotating shallow-water equations on the sphere, spectral transform method (torch-harmonics).

Equations (vector-invariant form, SI units) for total geopotential ``Phi = g h`` (``h``: fluid
depth in m), horizontal velocity ``V`` (m/s), relative vorticity ``zeta``, divergence ``delta``,
Coriolis parameter ``f = 2 Omega sin(latitude)`` and kinetic energy ``K = |V|^2 / 2``::

    zeta_t  = -div((zeta + f) V)
    delta_t =  curl((zeta + f) V) - Laplacian(Phi + K)
    Phi_t   = -div(Phi V)

(``curl`` is the radial component). Prognostic variables are the spherical-harmonic coefficients
of ``(Phi, zeta, delta)``, triangularly truncated at degree ``lmax - 1``; products are formed on
the grid and transformed back with torch-harmonics' scalar and vector SHTs. Time stepping is
ETDRK4 (shared with the periodic solvers) with a linear hyperdiffusion
``-(l (l + 1) / (L (L + 1)))^order / hyperdiffusion_time`` on ``zeta`` and ``delta``
(``L = lmax - 1``, e-folding time ``hyperdiffusion_time`` seconds at the truncation degree);
the nonlinear terms are explicit, so the step obeys the gravity-wave CFL condition.

Mass: the ``l = 0`` coefficient of a divergence is identically zero in this representation, so
``Phi_00`` (hence the area integral of ``h``) is conserved to round-off.

Grid: torch-harmonics' ``"equiangular"`` grid, ``nlat`` colatitudes ``theta_j = pi j / (nlat-1)``
from the north pole (``j = 0``) to the south pole, and ``nlon`` longitudes
``lambda_i = 2 pi i / nlon``. Fields are ``(..., nlat, nlon)``; the quadrature (Clenshaw-Curtis)
area weights come from :func:`sphere_grid`. Channels of every state: ``h`` (m), ``u`` (eastward
velocity, m/s), ``v`` (northward velocity, m/s). Time is in seconds.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch_harmonics as th
from torch_harmonics.quadrature import precompute_latitudes

from neuralops.spectral.pseudospectral import (
    check_output_times,
    integrate_etdrk4,
    require_positive,
    require_real_floating,
)
from neuralops.data.generators.parallel import reported_frame
from neuralops.data.generators.random_fields import sample_sphere_harmonic_coefficients
from neuralops.errors import ConfigError

# Earth parameters as in Williamson et al. (1992, J. Comput. Phys. 102) and Galewsky et al. (2004).
EARTH_RADIUS = 6.37122e6  # m
EARTH_ROTATION_RATE = 7.292e-5  # 1/s
GRAVITY = 9.80616  # m/s^2
# Galewsky, Scott & Polvani (2004, Tellus 56A): mean depth, jet and height perturbation.
GALEWSKY_MEAN_DEPTH = 10.0e3  # m
GALEWSKY_MAX_WIND = 80.0  # m/s
GALEWSKY_JET_SOUTH = math.pi / 7.0  # latitude, rad
GALEWSKY_JET_NORTH = math.pi / 2.0 - math.pi / 7.0
GALEWSKY_BUMP_HEIGHT = 120.0  # m
GALEWSKY_BUMP_LATITUDE = math.pi / 4.0
GALEWSKY_BUMP_WIDTH_LONGITUDE = 1.0 / 3.0
GALEWSKY_BUMP_WIDTH_LATITUDE = 1.0 / 15.0
# Default hyperdiffusion: del^8, e-folding time of one hour at the truncation degree.
DEFAULT_HYPERDIFFUSION_ORDER = 4
DEFAULT_HYPERDIFFUSION_TIME = 3600.0  # s
# Default step as a fraction of the ETDRK4 gravity-wave limit 2.8 R / ((c + |u|) lmax).
DEFAULT_CFL = 0.5
GRID = "equiangular"


class SphereGrid(NamedTuple):
    """Coordinates of the equiangular grid (float64)."""

    colatitude: torch.Tensor  # (nlat,), rad, 0 at the north pole
    longitude: torch.Tensor  # (nlon,), rad, in [0, 2 pi)
    cell_area: torch.Tensor  # (nlat, 1), m^2; sum(field * cell_area) is the area integral


def sphere_grid(nlat: int, nlon: int, radius: float = EARTH_RADIUS) -> SphereGrid:
    """Colatitudes, longitudes and Clenshaw-Curtis area weights (``4 pi R^2`` in total) of the grid."""
    colatitude, weights = precompute_latitudes(nlat, grid=GRID)
    longitude = 2.0 * math.pi * torch.arange(nlon, dtype=torch.float64) / nlon
    cell_area = (weights.to(torch.float64) * (2.0 * math.pi / nlon) * radius**2).unsqueeze(-1)
    return SphereGrid(colatitude.to(torch.float64), longitude, cell_area)


def default_truncation(nlat: int) -> int:
    """Default ``lmax = mmax``: ``nlat // 2``, the exactness limit of the equiangular transform."""
    return nlat // 2


def _check_grid(nlat: int, nlon: int, lmax: int, mmax: int) -> None:
    if nlat < 8:
        raise ConfigError(f"nlat must be >= 8, got {nlat}")
    if not 2 <= lmax <= nlat:
        raise ConfigError(f"lmax must lie in [2, nlat={nlat}], got {lmax}")
    if not 1 <= mmax <= lmax:
        raise ConfigError(f"mmax must lie in [1, lmax={lmax}], got {mmax}")
    if nlon < 2 * (mmax - 1) + 1 or nlon % 2:
        raise ConfigError(f"nlon must be even and >= 2 (mmax - 1) + 1 = {2 * (mmax - 1) + 1}, got {nlon}")


class _SphereOperators:
    """Transforms and spectral operators of the shallow-water equations on one grid.

    Vector fields on the grid are ``(..., 2, nlat, nlon)`` with components
    ``(A_theta, A_lambda)`` = (southward, eastward), the layout of torch-harmonics' vector SHT,
    whose coefficients ``(c0, c1)`` give ``div = -l(l+1) c0 / R`` and ``curl = l(l+1) c1 / R``.
    """

    def __init__(self, nlat: int, nlon: int, lmax: int, mmax: int, radius: float, rotation_rate: float, device: torch.device, dtype: torch.dtype):
        self.radius = radius
        transforms = dict(lmax=lmax, mmax=mmax, grid=GRID)
        self.sht = th.RealSHT(nlat, nlon, **transforms).to(device)
        self.isht = th.InverseRealSHT(nlat, nlon, **transforms).to(device)
        self.vsht = th.RealVectorSHT(nlat, nlon, **transforms).to(device)
        self.ivsht = th.InverseRealVectorSHT(nlat, nlon, **transforms).to(device)
        degree = torch.arange(lmax, dtype=torch.float64, device=device).unsqueeze(-1)
        self.eigenvalue = (degree * (degree + 1)).to(dtype)  # -Laplacian * R^2, shape (lmax, 1)
        inverse = torch.zeros_like(self.eigenvalue)
        inverse[1:] = 1.0 / self.eigenvalue[1:]
        self.inverse_eigenvalue = inverse
        colatitude = sphere_grid(nlat, nlon, radius).colatitude.to(device)
        self.coriolis = (2.0 * rotation_rate * torch.cos(colatitude)).unsqueeze(-1).to(dtype)

    def divergence_curl(self, vector: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients of ``div`` and ``curl`` of grid vector fields ``(..., 2, nlat, nlon)``."""
        coefficients = self.vsht(vector)
        return (
            -self.eigenvalue * coefficients[..., 0, :, :] / self.radius,
            self.eigenvalue * coefficients[..., 1, :, :] / self.radius,
        )

    def vector_from(self, divergence_hat: torch.Tensor, curl_hat: torch.Tensor) -> torch.Tensor:
        """Grid vector field ``(..., 2, nlat, nlon)`` with given ``div``/``curl`` coefficients."""
        coefficients = torch.stack(
            (-self.radius * self.inverse_eigenvalue * divergence_hat, self.radius * self.inverse_eigenvalue * curl_hat), dim=-3
        )
        return self.ivsht(coefficients)

    def to_state(self, fields: torch.Tensor, gravity: float) -> torch.Tensor:
        """Grid ``(B, 3, nlat, nlon)`` of ``(h, u, v)`` to coefficients of ``(Phi, zeta, delta)``."""
        phi_hat = self.sht(gravity * fields[:, 0])
        vector = torch.stack((-fields[:, 2], fields[:, 1]), dim=1)
        divergence_hat, vorticity_hat = self.divergence_curl(vector)
        return torch.stack((phi_hat, vorticity_hat, divergence_hat), dim=1)

    def to_fields(self, state: torch.Tensor, gravity: float) -> torch.Tensor:
        """Coefficients ``(B, 3, lmax, mmax)`` of ``(Phi, zeta, delta)`` to grid ``(h, u, v)``."""
        vector = self.vector_from(state[:, 2], state[:, 1])
        return torch.stack((self.isht(state[:, 0]) / gravity, vector[:, 1], -vector[:, 0]), dim=1)

    def tendency(self, state: torch.Tensor) -> torch.Tensor:
        """Right-hand side (without hyperdiffusion) for coefficients ``(B, 3, lmax, mmax)``."""
        phi, vorticity = self.isht(state[:, :2]).unbind(dim=1)
        vector = self.vector_from(state[:, 2], state[:, 1])
        fluxes = torch.stack(((vorticity + self.coriolis).unsqueeze(1) * vector, phi.unsqueeze(1) * vector), dim=1)
        divergences, curls = self.divergence_curl(fluxes)
        energy_hat = self.sht(phi + 0.5 * (vector**2).sum(dim=1))
        return torch.stack(
            (-divergences[:, 1], -divergences[:, 0], curls[:, 0] + self.eigenvalue * energy_hat / self.radius**2), dim=1
        )


def solve_shallow_water(
    initial_state: torch.Tensor,
    t_out: Sequence[float],
    dt: float | None = None,
    lmax: int | None = None,
    mmax: int | None = None,
    radius: float = EARTH_RADIUS,
    rotation_rate: float = EARTH_ROTATION_RATE,
    gravity: float = GRAVITY,
    hyperdiffusion_time: float = DEFAULT_HYPERDIFFUSION_TIME,
    hyperdiffusion_order: int = DEFAULT_HYPERDIFFUSION_ORDER,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate the rotating shallow-water equations on the sphere for a batch.

    Args:
        initial_state: ``(B, 3, nlat, nlon)`` fields ``(h [m], u [m/s, eastward],
            v [m/s, northward])`` on the equiangular grid (see module doc); float64 or float32.
            It is projected onto the truncation, so frame 0 is the projected state.
        t_out: strictly increasing output times in seconds, ``>= 0``.
        dt: largest step in seconds; ``None`` picks ``DEFAULT_CFL * 2.8 R / ((c + |u|) lmax)``
            from the initial gravity-wave speed ``c = sqrt(max g h)`` (max over the batch).
        lmax, mmax: spectral truncation passed to torch-harmonics (``None``:
            :func:`default_truncation`, the same for both; triangular truncation).
        radius, rotation_rate, gravity: planet parameters (m, 1/s, m/s^2); Earth by default.
        hyperdiffusion_time: e-folding time (s) of the hyperdiffusion at degree ``lmax - 1``.
        hyperdiffusion_order: power ``p`` of ``(l (l + 1))^p`` (``p = 4``: del^8).

    Returns:
        ``(fields, times)``: ``fields`` of shape ``(B, T, 3, nlat, nlon)`` with channels
        ``(h, u, v)`` at ``times[i] = t_out[i]`` seconds; ``times`` float64 ``(T,)``.
    """
    require_real_floating("initial_state", initial_state)
    if initial_state.dim() != 4 or initial_state.shape[1] != 3:
        raise ConfigError(f"initial_state must have shape (B, 3, nlat, nlon), got {tuple(initial_state.shape)}")
    nlat, nlon = initial_state.shape[-2:]
    lmax = default_truncation(nlat) if lmax is None else int(lmax)
    mmax = lmax if mmax is None else int(mmax)
    _check_grid(nlat, nlon, lmax, mmax)
    radius = require_positive("radius", radius)
    rotation_rate = float(rotation_rate)
    gravity = require_positive("gravity", gravity)
    hyperdiffusion_time = require_positive("hyperdiffusion_time", hyperdiffusion_time)
    if hyperdiffusion_order < 1:
        raise ConfigError(f"hyperdiffusion_order must be >= 1, got {hyperdiffusion_order}")
    if bool((initial_state[:, 0] <= 0).any()):
        raise ConfigError("initial_state[:, 0] (depth h) must be positive everywhere")
    times = check_output_times(t_out)
    if dt is None:
        wave_speed = math.sqrt(gravity * float(initial_state[:, 0].max())) + float(initial_state[:, 1:].abs().max())
        dt = DEFAULT_CFL * 2.8 * radius / (wave_speed * lmax)
    dt = require_positive("dt", dt)

    operators = _SphereOperators(nlat, nlon, lmax, mmax, radius, rotation_rate, initial_state.device, initial_state.dtype)
    top = (lmax - 1) * lmax
    damping = -((operators.eigenvalue / top) ** hyperdiffusion_order) / hyperdiffusion_time
    linear = torch.stack((torch.zeros_like(damping), damping, damping))  # (3, lmax, 1): Phi, zeta, delta

    state = operators.to_state(initial_state, gravity)
    fields = integrate_etdrk4(state, linear, operators.tendency, times, dt, lambda s: reported_frame(operators.to_fields(s, gravity)))
    return fields, torch.tensor(times, dtype=torch.float64)


def balanced_height(operators: _SphereOperators, vorticity_hat: torch.Tensor, mean_depth: float, gravity: float) -> torch.Tensor:
    """Depth ``h`` (B, nlat, nlon) in nonlinear balance with a non-divergent flow.

    Solves ``delta_t = 0``, i.e. ``Laplacian(Phi + K) = curl((zeta + f) V)``, for ``Phi`` with
    global mean ``g * mean_depth``.
    """
    vector = operators.vector_from(torch.zeros_like(vorticity_hat), vorticity_hat)
    vorticity = operators.isht(vorticity_hat)
    _, curl_hat = operators.divergence_curl((vorticity + operators.coriolis).unsqueeze(1) * vector)
    energy_hat = operators.sht(0.5 * (vector**2).sum(dim=1))
    phi_hat = -operators.radius**2 * operators.inverse_eigenvalue * curl_hat - energy_hat
    phi_hat[:, 0, 0] = math.sqrt(4.0 * math.pi) * gravity * mean_depth
    return operators.isht(phi_hat) / gravity


def sample_shallow_water_initial_conditions(
    batch: int,
    nlat: int,
    nlon: int,
    generator: torch.Generator,
    *,
    lmax: int | None = None,
    rms_velocity: float = 20.0,
    mean_depth: float = GALEWSKY_MEAN_DEPTH,
    spectral_decay: float = 2.0,
    length_scale_degree: float = 10.0,
    radius: float = EARTH_RADIUS,
    rotation_rate: float = EARTH_ROTATION_RATE,
    gravity: float = GRAVITY,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Random balanced initial states ``(batch, 3, nlat, nlon)`` of ``(h [m], u, v [m/s])``.

    A non-divergent flow whose stream function has isotropic angular power
    ``(l (l + 1) + length_scale_degree^2)^(-spectral_decay)`` (see
    :func:`~neuralops.data.generators.random_fields.sample_sphere_harmonic_coefficients`),
    rescaled per sample to the area-weighted rms speed ``rms_velocity``, with the depth in
    nonlinear balance (:func:`balanced_height`) around ``mean_depth``. Drawn on
    ``generator.device``.
    """
    lmax = default_truncation(nlat) if lmax is None else int(lmax)
    _check_grid(nlat, nlon, lmax, lmax)
    rms_velocity = require_positive("rms_velocity", rms_velocity)
    mean_depth = require_positive("mean_depth", mean_depth)
    device = generator.device
    operators = _SphereOperators(nlat, nlon, lmax, lmax, radius, rotation_rate, device, torch.float64)
    streamfunction_hat = sample_sphere_harmonic_coefficients(
        batch, lmax, lmax, generator, alpha=spectral_decay, tau=length_scale_degree
    )
    vorticity_hat = -operators.eigenvalue * streamfunction_hat / radius**2
    vector = operators.vector_from(torch.zeros_like(vorticity_hat), vorticity_hat)
    area = sphere_grid(nlat, nlon, radius).cell_area.to(device)
    rms = torch.sqrt(((vector**2).sum(dim=1) * area).sum(dim=(-2, -1)) / (area.sum() * nlon))
    vorticity_hat = vorticity_hat * (rms_velocity / rms).reshape(-1, 1, 1)
    vector = operators.vector_from(torch.zeros_like(vorticity_hat), vorticity_hat)
    height = balanced_height(operators, vorticity_hat, mean_depth, gravity)
    return torch.stack((height, vector[:, 1], -vector[:, 0]), dim=1).to(dtype)


def galewsky_initial_condition(
    nlat: int,
    nlon: int,
    *,
    perturbation: bool = True,
    radius: float = EARTH_RADIUS,
    rotation_rate: float = EARTH_ROTATION_RATE,
    gravity: float = GRAVITY,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Galewsky et al. (2004) barotropically unstable jet, shape ``(3, nlat, nlon)`` of ``(h, u, v)``.

    Zonal jet ``u = (u_max / e_n) exp(1 / ((phi - phi_0)(phi - phi_1)))`` for
    ``phi_0 < phi < phi_1`` (latitude ``phi``), depth from gradient-wind balance
    ``g dh/dphi = -R u (f + u tan(phi) / R)`` integrated numerically (trapezoid on 20001
    latitudes) with global mean depth 10 km, plus (if ``perturbation``) the 120 m bump
    ``cos(phi) exp(-(lambda - pi)^2 / alpha^2) exp(-(phi_2 - phi)^2 / beta)`` centred at
    longitude ``pi``.
    """
    grid = sphere_grid(nlat, nlon, radius)
    latitude = math.pi / 2.0 - grid.colatitude

    def jet(phi: torch.Tensor) -> torch.Tensor:
        inside = (phi > GALEWSKY_JET_SOUTH) & (phi < GALEWSKY_JET_NORTH)
        product = torch.where(inside, (phi - GALEWSKY_JET_SOUTH) * (phi - GALEWSKY_JET_NORTH), -torch.ones_like(phi))
        normaliser = math.exp(-4.0 / (GALEWSKY_JET_NORTH - GALEWSKY_JET_SOUTH) ** 2)
        return torch.where(inside, GALEWSKY_MAX_WIND / normaliser * torch.exp(1.0 / product), torch.zeros_like(phi))

    fine = torch.linspace(-math.pi / 2.0, math.pi / 2.0, 20001, dtype=torch.float64)
    wind = jet(fine)
    slope = -radius * wind * (2.0 * rotation_rate * torch.sin(fine) + wind * torch.tan(fine) / radius) / gravity
    step = fine[1] - fine[0]
    anomaly = torch.cat((torch.zeros(1, dtype=torch.float64), torch.cumsum(0.5 * (slope[1:] + slope[:-1]) * step, dim=0)))
    mean_anomaly = (anomaly * torch.cos(fine)).sum() * step / 2.0
    depth_profile = GALEWSKY_MEAN_DEPTH + anomaly - mean_anomaly
    position = (latitude - fine[0]) / step
    lower = position.floor().clamp(0, fine.numel() - 2).long()
    fraction = position - lower
    depth = (1.0 - fraction) * depth_profile[lower] + fraction * depth_profile[lower + 1]

    height = depth.unsqueeze(-1).expand(nlat, nlon).clone()
    if perturbation:
        phi = latitude.unsqueeze(-1)
        lam = grid.longitude.unsqueeze(0)
        height = height + GALEWSKY_BUMP_HEIGHT * torch.cos(phi) * torch.exp(
            -(((lam - math.pi) / GALEWSKY_BUMP_WIDTH_LONGITUDE) ** 2)
        ) * torch.exp(-((GALEWSKY_BUMP_LATITUDE - phi) ** 2) / GALEWSKY_BUMP_WIDTH_LATITUDE)
    u = jet(latitude).unsqueeze(-1).expand(nlat, nlon)
    return torch.stack((height, u, torch.zeros_like(u))).to(dtype)
