"""1-D viscous Burgers equation on a periodic interval, pseudo-spectral ETDRK4 solver.

Equation, on ``x in [0, L)`` with periodic boundary conditions (default ``L = 1``, the domain of
the FNO and PDEBench Burgers data sets)::

    u_t + (u^2 / 2)_x = nu u_xx

Discretisation: Fourier pseudo-spectral on the cell grid ``x_j = j L / N``, the 2/3 rule on the
quadratic term, and ETDRK4 (Cox & Matthews 2002) with the Kassam-Trefethen contour evaluation of
its coefficients: the stiff diffusion ``-nu k^2`` is integrated exactly, so the step is limited
only by the advective CFL condition.
"""

from __future__ import annotations

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

# Default domain [0, 1), as in the FNO (Li et al. 2021, Section 5.1) and PDEBench Burgers data.
BURGERS_DOMAIN_LENGTH = 1.0
# FNO Burgers initial condition u0 ~ N(0, 625 (-Laplacian + 25 I)^(-2)) on [0, 1) (Li et al.
# 2021, Section 5.1; their GaussianRF(1, s, alpha=2, tau=5, sigma=25), so 625 = sigma^2).
FNO_BURGERS_GRF_ALPHA = 2.0
FNO_BURGERS_GRF_TAU = 5.0
FNO_BURGERS_GRF_SIGMA = 25.0
# Default step as a fraction of the advective limit dx / max|u0|. ETDRK4 is stable for
# |u| k_max dt <~ 2.8 with k_max = 2 pi N / (3 L), i.e. dt <~ 1.3 dx / |u|; 0.5 leaves margin.
# Viscous Burgers obeys a maximum principle, so max|u| never exceeds its initial value.
DEFAULT_CFL = 0.5


def burgers_grid(n: int, domain_length: float = BURGERS_DOMAIN_LENGTH, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Cell grid ``x_j = j L / n`` of the solver, shape ``(n,)``."""
    return periodic_cell_grid(n, domain_length, dtype=dtype, device=torch.device("cpu"))


def solve_burgers(
    u0: torch.Tensor,
    nu: float,
    t_out: Sequence[float],
    dt: float | None = None,
    domain_length: float = BURGERS_DOMAIN_LENGTH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``u_t + (u^2/2)_x = nu u_xx`` on ``[0, domain_length)``, periodic, for a batch.

    Args:
        u0: initial velocity, shape ``(B, N)`` on the cell grid ``x_j = j L / N``; float64
            (recommended) or float32. ``N`` even, ``N >= 8``. Its Fourier modes with
            ``3|m| >= N`` are removed (2/3 rule), so frame 0 is the dealiased ``u0``.
        nu: kinematic viscosity ``>= 0`` (units of ``L^2 / time``).
        t_out: strictly increasing output times ``>= 0``; include 0 to store ``u0``.
        dt: largest time step; ``None`` picks ``DEFAULT_CFL * dx / max|u0|`` (max over the
            batch, so it depends on the batch; pass dt for batch-independent results).
        domain_length: period ``L`` of the domain.

    Returns:
        ``(u, times)``: ``u`` of shape ``(B, T, 1, N)`` (channel 0: velocity ``u``) with
        ``u[:, i]`` the solution at ``times[i] = t_out[i]``; ``times`` float64 of shape ``(T,)``.
        Runs on ``u0.device`` in ``u0.dtype``; no Python loop over samples.
    """
    require_real_floating("u0", u0)
    if u0.dim() != 2:
        raise ConfigError(f"u0 must have shape (B, N), got {tuple(u0.shape)}")
    n = u0.shape[-1]
    check_periodic_size("u0.shape[-1] (grid size N)", n)
    nu = require_non_negative("nu", nu)
    domain_length = require_positive("domain_length", domain_length)
    times = check_output_times(t_out)
    if dt is None:
        peak = float(u0.abs().max())
        dt = DEFAULT_CFL * (domain_length / n) / peak if peak > 0.0 else max(times[-1], 1.0)
    dt = require_positive("dt", dt)

    (wavenumber,) = spectral_wavevectors((n,), domain_length, dtype=u0.dtype, device=u0.device)
    keep = dealias_mask((n,), device=u0.device)
    flux_derivative = -0.5j * wavenumber * keep
    linear = -nu * wavenumber**2

    def nonlinear(u_hat: torch.Tensor) -> torch.Tensor:
        velocity = to_physical(u_hat, (n,))
        return flux_derivative * to_spectral(velocity * velocity, 1)

    def to_output(u_hat: torch.Tensor) -> torch.Tensor:
        return reported_frame(to_physical(u_hat, (n,)).unsqueeze(1))

    state = to_spectral(u0, 1) * keep
    fields = integrate_etdrk4(state, linear, nonlinear, times, dt, to_output)
    return fields, torch.tensor(times, dtype=torch.float64)


def sample_burgers_initial_conditions(
    batch: int,
    n: int,
    generator: torch.Generator,
    *,
    alpha: float = FNO_BURGERS_GRF_ALPHA,
    tau: float = FNO_BURGERS_GRF_TAU,
    sigma: float = FNO_BURGERS_GRF_SIGMA,
    domain_length: float = BURGERS_DOMAIN_LENGTH,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Random initial velocities ``u0 ~ N(0, sigma^2 (-Laplacian + tau^2)^(-alpha))``, shape ``(batch, n)``.

    Defaults are the FNO Burgers setting ``N(0, 625 (-Laplacian + 25 I)^(-2))`` on ``[0, 1)``.
    Zero mean; periodic; drawn on ``generator.device``.
    """
    return sample_periodic_grf(
        batch, (n,), generator, alpha=alpha, tau=tau, sigma=sigma, domain_length=domain_length, dtype=dtype
    )

