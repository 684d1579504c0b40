"""Navier-Stokes solver against the Taylor-Green vortex and an analytic tendency, plus invariants."""

import math

import pytest
import torch

from neuralops.data.generators.navier_stokes import (
    FNO_TIME_STEP,
    fno_forcing,
    sample_fno_initial_vorticity,
    solve_navier_stokes,
)
from neuralops.errors import ConfigError



def unit_grid(n: int, length: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    x = length * torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(x, x, indexing="ij")


def test_taylor_green_decay():
    # psi = cos(kx) cos(ky) / k gives w = -Laplacian(psi) = 2k cos(kx) cos(ky) = 2k^2 psi, so
    # u . grad(w) = J(psi, 2k^2 psi) = 0 and w = w0 exp(-2 nu k^2 t) exactly. Here k = 2 pi * 2
    # on [0, 1)^2; measured error 1e-15 (ETDRK4 integrates the diffusion exactly).
    x, y = unit_grid(32)
    k, nu = 4.0 * math.pi, 1e-3
    w0 = 2.0 * k * torch.cos(k * x) * torch.cos(k * y)
    w, times = solve_navier_stokes(w0[None], nu, [0.0, 1.0, 2.0], dt=0.05)
    exact = torch.stack([w0 * math.exp(-2.0 * nu * k * k * t) for t in (0.0, 1.0, 2.0)])
    assert w.shape == (1, 3, 1, 32, 32)
    assert float((w[0, :, 0] - exact).norm() / exact.norm()) < 1e-12


def test_initial_tendency_matches_analytic_advection():
    # psi = sin(ax) + cos(by): w = a^2 sin(ax) + b^2 cos(by), u = (psi_y, -psi_x) and
    # w_t = -u . grad(w) + nu Laplacian(w) = -ab(b^2 - a^2) cos(ax) sin(by) - nu(a^4 sin(ax) + b^4 cos(by)).
    # A one-step difference quotient over h = 1e-5 matches it to O(h): measured 2.8e-4.
    x, y = unit_grid(32)
    a, b, nu, h = 2.0 * math.pi, 4.0 * math.pi, 1e-3, 1e-5
    w0 = a * a * torch.sin(a * x) + b * b * torch.cos(b * y)
    tendency = -a * b * (b * b - a * a) * torch.cos(a * x) * torch.sin(b * y) - nu * (
        a**4 * torch.sin(a * x) + b**4 * torch.cos(b * y)
    )
    w, _ = solve_navier_stokes(w0[None], nu, [h], dt=h)
    estimate = (w[0, 0, 0] - w0) / h
    assert float((estimate - tendency).norm() / tendency.norm()) < 1e-3


def test_forced_flow_keeps_zero_mean_vorticity_and_matches_single_sample():
    generator = torch.Generator().manual_seed(3)
    w0 = sample_fno_initial_vorticity(3, 32, generator)
    times = [0.0, 0.5, 1.0]
    w, _ = solve_navier_stokes(w0, 1e-3, times, dt=FNO_TIME_STEP * 4, forcing=fno_forcing(32))
    scale = float(w.abs().max())
    assert float(w.mean(dim=(-2, -1)).abs().max()) < 1e-13 * scale  # measured 5e-18 (scale 0.64)
    single, _ = solve_navier_stokes(w0[2:], 1e-3, times, dt=FNO_TIME_STEP * 4, forcing=fno_forcing(32))
    torch.testing.assert_close(w[2:], single, rtol=0, atol=1e-12)


def test_enstrophy_decays_without_forcing():
    generator = torch.Generator().manual_seed(4)
    w0 = sample_fno_initial_vorticity(2, 32, generator) * 20.0  # O(1) speeds: nonlinear regime
    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    w, _ = solve_navier_stokes(w0, 1e-3, times, dt=5e-3)
    enstrophy = (w[:, :, 0] ** 2).mean(dim=(-2, -1))
    assert bool((enstrophy[:, 1:] < enstrophy[:, :-1]).all())
    # inviscid: the 2/3-rule Galerkin truncation conserves enstrophy; ETDRK4 drift measured 5e-8
    w, _ = solve_navier_stokes(w0, 0.0, [0.0, 0.5], dt=5e-3)
    inviscid = (w[:, :, 0] ** 2).mean(dim=(-2, -1))
    assert float(((inviscid[:, 1] - inviscid[:, 0]) / inviscid[:, 0]).abs().max()) < 1e-6


def test_float32_runs_in_float32():
    generator = torch.Generator().manual_seed(5)
    w0 = sample_fno_initial_vorticity(2, 16, generator, dtype=torch.float32)
    w, times = solve_navier_stokes(w0, 1e-3, [0.1], forcing=fno_forcing(16))
    assert w.dtype == torch.float32 and w.shape == (2, 1, 1, 16, 16) and times.dtype == torch.float64


@pytest.mark.parametrize(
    "arguments, name",
    [
        (dict(w0=torch.zeros(2, 16)), "w0"),
        (dict(w0=torch.zeros(2, 16, 8)), "w0"),
        (dict(w0=torch.zeros(1, 4, 4)), "grid size"),
        (dict(nu=-1e-3), "nu"),
        (dict(dt=0.0), "dt"),
        (dict(t_out=[-1.0]), "t_out"),
        (dict(forcing=torch.zeros(8, 8)), "forcing"),
        (dict(domain_length=0.0), "domain_length"),
    ],
)
def test_bad_input_raises_config_error(arguments, name):
    call = dict(w0=torch.zeros(1, 16, 16, dtype=torch.float64), nu=1e-3, t_out=[0.1], dt=1e-2) | arguments
    with pytest.raises(ConfigError, match=name):
        solve_navier_stokes(**call)
