"""2-D incompressible Navier-Stokes in vorticity form on the periodic torus, pseudo-spectral ETDRK4.

Equation, on ``(x, y) in [0, L)^2`` with periodic boundary conditions (default ``L = 1``)::

    w_t + u . grad(w) = nu Laplacian(w) + f,    u = (psi_y, -psi_x),    -Laplacian(psi) = w

with vorticity ``w``, velocity ``u = (u_x, u_y)``, stream function ``psi``, viscosity ``nu``
and a time-independent forcing ``f``. Fields are stored as ``(..., N, N)`` with index
``[i, j]`` at ``(x_i, y_j) = (i L / N, j L / N)`` ("ij" indexing).

Discretisation: Fourier pseudo-spectral (``rfft2``), advection in the form
``u w_x + v w_y`` with the 2/3 rule, and ETDRK4 with the diffusion ``-nu |k|^2`` integrated
exactly (the same integrator as :mod:`neuralops.data.generators.burgers`). The mean vorticity
is a conserved zero on the torus; the solver keeps the ``k = 0`` mode of the advection term at
exactly zero, so a zero-mean forcing conserves the mean of ``w`` to round-off.

FNO preset (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021, Section 5.3,
and their released ``navier_stokes_2d``/``GaussianRF`` data scripts): ``L = 1``,
``f = 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y)))``, ``nu in {1e-3, 1e-4, 1e-5}`` run to
``T = 50, 30, 20``, initial vorticity from the Gaussian random field with ``alpha = 2.5``,
``tau = 7`` and amplitude ``sigma = 7^(3/2)``. The reference data used Crank-Nicolson/forward
Euler with ``dt = 1e-4`` on a 256^2 grid (first order in time). Our ETDRK4 is fourth order:
at 64^2 and ``nu = 1e-5`` (speeds up to ~0.45 by ``T = 20``) halving ``dt = 2e-2`` changes the
``T = 20`` field by 1e-4 (relative L2), so ``FNO_TIME_STEP = 5e-3`` has a time error of order
1e-6, far below the spatial truncation error, and stays inside the advective stability limit
(``|u| k_max dt < 2.8``) up to 256^2 for speeds below ~1.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from neuralops.spectral.pseudospectral import (
    check_output_times,
    check_periodic_size,
    dealias_mask,
    integrate_etdrk4,
    periodic_cell_grid,
    require_non_negative,
    require_positive,
    require_real_floating,
    spectral_wavevectors,
    to_physical,
    to_spectral,
)
from neuralops.data.generators.parallel import reported_frame
from neuralops.data.generators.random_fields import sample_periodic_grf
from neuralops.errors import ConfigError

# --- FNO Navier-Stokes setting (Li et al. 2021, Section 5.3, and the released data scripts).
FNO_DOMAIN_LENGTH = 1.0
FNO_FORCING_AMPLITUDE = 0.1
FNO_VISCOSITIES = (1e-3, 1e-4, 1e-5)
# Final times of the published data sets for each viscosity (paper, Section 5.3 / Table 1).
FNO_FINAL_TIMES = {1e-3: 50.0, 1e-4: 30.0, 1e-5: 20.0}
# The paper writes w0 ~ N(0, 7^(3/2) (-Laplacian + 49 I)^(-2.5)). Its GaussianRF(alpha=2.5, tau=7)
# sets sigma = tau^(alpha - d/2) = 7^(3/2) and multiplies each mode by
# sigma (4 pi^2 |m|^2 + tau^2)^(-alpha/2), i.e. 7^(3/2) scales the *square root* of the
# covariance (covariance 7^3 (-Laplacian + 49 I)^(-2.5)). We reproduce the released data, so
# sigma below is the amplitude of sample_periodic_grf.
FNO_GRF_ALPHA = 2.5
FNO_GRF_TAU = 7.0
FNO_GRF_SIGMA = 7.0**1.5
# Reference data: dt = 1e-4 (CN + forward Euler, first order). ETDRK4 at 5e-3: see module doc.
FNO_TIME_STEP = 5e-3
# Default step as a fraction of the advective limit dx / max|u0| when dt is None.
DEFAULT_CFL = 0.25


def fno_forcing(n: int, domain_length: float = FNO_DOMAIN_LENGTH, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """FNO forcing ``0.1 (sin(2 pi (x + y)/L) + cos(2 pi (x + y)/L))`` on the ``n x n`` cell grid, shape ``(n, n)``."""
    grid = periodic_cell_grid(n, domain_length, dtype=dtype, device=torch.device("cpu"))
    phase = 2.0 * math.pi * (grid[:, None] + grid[None, :]) / domain_length
    return FNO_FORCING_AMPLITUDE * (torch.sin(phase) + torch.cos(phase))


def sample_fno_initial_vorticity(
    batch: int, n: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Initial vorticity of the FNO data sets on ``[0, 1)^2``, shape ``(batch, n, n)``.

    Gaussian random field with covariance ``sigma^2 (-Laplacian + 49 I)^(-2.5)``,
    ``sigma = 7^(3/2)`` (see ``FNO_GRF_SIGMA``), zero mean, periodic.
    """
    return sample_periodic_grf(
        batch, (n, n), generator, alpha=FNO_GRF_ALPHA, tau=FNO_GRF_TAU, sigma=FNO_GRF_SIGMA,
        domain_length=FNO_DOMAIN_LENGTH, dtype=dtype,
    )


class _VorticityOperators:
    """Wavenumbers and spectral operators of the vorticity equation on an ``n x n`` torus."""

    def __init__(self, n: int, domain_length: float, dtype: torch.dtype, device: torch.device):
        self.n = n
        self.kx, self.ky = spectral_wavevectors((n, n), domain_length, dtype=dtype, device=device)
        self.laplacian = -(self.kx**2 + self.ky**2)
        inverse = torch.zeros_like(self.laplacian)
        nonzero = self.laplacian != 0
        inverse[nonzero] = 1.0 / self.laplacian[nonzero]
        self.inverse_laplacian = inverse
        keep = dealias_mask((n, n), device=device)
        keep[0, 0] = False  # the mean of u . grad(w) is exactly zero on the torus
        self.keep = keep

    def velocity(self, vorticity_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity ``(psi_y, -psi_x)`` on the grid, each ``(B, n, n)``, from ``rfft2(w)``."""
        psi_hat = -self.inverse_laplacian * vorticity_hat
        grid = (self.n, self.n)
        return to_physical(1j * self.ky * psi_hat, grid), to_physical(-1j * self.kx * psi_hat, grid)

    def advection(self, vorticity_hat: torch.Tensor) -> torch.Tensor:
        """Dealiased ``rfft2(u . grad(w))`` with a zero mean mode, shape of the input."""
        grid = (self.n, self.n)
        u_x, u_y = self.velocity(vorticity_hat)
        w_x = to_physical(1j * self.kx * vorticity_hat, grid)
        w_y = to_physical(1j * self.ky * vorticity_hat, grid)
        return to_spectral(u_x * w_x + u_y * w_y, 2) * self.keep


def solve_navier_stokes(
    w0: torch.Tensor,
    nu: float,
    t_out: Sequence[float],
    dt: float | None = None,
    forcing: torch.Tensor | None = None,
    domain_length: float = FNO_DOMAIN_LENGTH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``w_t + u . grad(w) = nu Laplacian(w) + f`` on the torus ``[0, L)^2`` for a batch.

    Args:
        w0: initial vorticity, shape ``(B, N, N)`` on the cell grid (index ``[i, j]`` at
            ``(x_i, y_j)``); float64 (recommended) or float32; ``N`` even, ``N >= 8``. Modes with
            ``3|m_x| >= N`` or ``3|m_y| >= N`` are removed (2/3 rule), so frame 0 is the
            dealiased ``w0``. Should have zero mean (any mean is carried along unchanged and
            does not induce a velocity).
        nu: kinematic viscosity ``>= 0`` (units ``L^2 / time``).
        t_out: strictly increasing output times ``>= 0``; include 0 to store ``w0``.
        dt: largest time step. ``None`` picks ``DEFAULT_CFL * dx / max|u(w0)|`` (max over the
            batch); for forced flows whose speed grows, pass it (``FNO_TIME_STEP`` for the FNO
            preset). The solver raises ConfigError if the solution blows up.
        forcing: time-independent forcing ``f``, shape ``(N, N)`` (shared) or ``(B, N, N)``,
            same grid convention; ``None`` for no forcing. See :func:`fno_forcing`.
        domain_length: period ``L`` in both directions.

    Returns:
        ``(w, times)``: ``w`` of shape ``(B, T, 1, N, N)`` (channel 0: vorticity) at
        ``times[i] = t_out[i]``; ``times`` float64, shape ``(T,)``. Runs on ``w0.device`` in
        ``w0.dtype``, vectorised over the batch.
    """
    require_real_floating("w0", w0)
    if w0.dim() != 3 or w0.shape[-1] != w0.shape[-2]:
        raise ConfigError(f"w0 must have shape (B, N, N), got {tuple(w0.shape)}")
    n = w0.shape[-1]
    check_periodic_size("w0.shape[-1] (grid size N)", n)
    nu = require_non_negative("nu", nu)
    domain_length = require_positive("domain_length", domain_length)
    times = check_output_times(t_out)
    operators = _VorticityOperators(n, domain_length, w0.dtype, w0.device)
    keep = dealias_mask((n, n), device=w0.device)
    state = to_spectral(w0, 2) * keep

    if forcing is None:
        forcing_hat = torch.zeros_like(state[:1])
    else:
        require_real_floating("forcing", forcing)
        if forcing.shape not in ((n, n), (w0.shape[0], n, n)):
            raise ConfigError(f"forcing must have shape ({n}, {n}) or ({w0.shape[0]}, {n}, {n}), got {tuple(forcing.shape)}")
        forcing_hat = to_spectral(forcing.to(device=w0.device, dtype=w0.dtype), 2) * keep

    if dt is None:
        u_x, u_y = operators.velocity(state)
        peak = float(torch.sqrt(u_x**2 + u_y**2).max())
        dt = DEFAULT_CFL * (domain_length / n) / peak if peak > 0.0 else max(times[-1], 1.0) / 100.0
    dt = require_positive("dt", dt)

    def nonlinear(vorticity_hat: torch.Tensor) -> torch.Tensor:
        return forcing_hat - operators.advection(vorticity_hat)

    def to_output(vorticity_hat: torch.Tensor) -> torch.Tensor:
        return reported_frame(to_physical(vorticity_hat, (n, n)).unsqueeze(1))

    fields = integrate_etdrk4(state, nu * operators.laplacian, nonlinear, times, dt, to_output)
    return fields, torch.tensor(times, dtype=torch.float64)
