"""Burgers solver against the exact Cole-Hopf solution, plus shapes, batching and input checks."""

import math

import pytest
import torch

from neuralops.data.generators.burgers import sample_burgers_initial_conditions, solve_burgers
from neuralops.errors import ConfigError

NU = 0.1
OFFSET, AMPLITUDE = 1.1, 1.0  # phi0 = 1.1 + cos(x): steep (max|u0| ~ 0.44 at nu = 0.1)
TIMES = [0.5, 1.0, 2.0]



def cole_hopf(x: torch.Tensor, t: float, nu: float) -> torch.Tensor:
    """u = -2 nu phi_x / phi with phi = OFFSET + AMPLITUDE exp(-nu t) cos(x) solving phi_t = nu phi_xx."""
    decayed = AMPLITUDE * math.exp(-nu * t)
    return 2.0 * nu * decayed * torch.sin(x) / (OFFSET + decayed * torch.cos(x))


def relative_error(n: int, dt: float, nu: float = NU) -> float:
    x = 2.0 * math.pi * torch.arange(n, dtype=torch.float64) / n
    u, _ = solve_burgers(cole_hopf(x, 0.0, nu)[None], nu, TIMES, dt=dt, domain_length=2.0 * math.pi)
    exact = torch.stack([cole_hopf(x, t, nu) for t in TIMES])
    return float((u[0, :, 0] - exact).norm() / exact.norm())


def test_cole_hopf_accuracy_and_fourth_order_in_time():
    # errors over t = 0.5, 1, 2 at N = 128: 1.75e-6, 1.22e-7, 8.0e-9 for dt = 0.1, 0.05, 0.025
    # (ratios 14.4, 15.2: fourth order)
    errors = [relative_error(128, dt) for dt in (0.1, 0.05, 0.025)]
    assert errors[-1] < 2e-8
    for coarse, fine in zip(errors, errors[1:]):
        assert 12.0 < coarse / fine < 20.0  # observed order log2(ratio) ~ 3.9-4.0


def test_cole_hopf_smaller_viscosity():
    # nu = 0.05, N = 256, dt = 0.025: measured 2e-10 (the 2/3 rule keeps |m| <= 85)
    assert relative_error(256, 0.025, nu=0.05) < 1e-8


def test_shapes_time_grid_and_batch_independence():
    generator = torch.Generator().manual_seed(0)
    u0 = sample_burgers_initial_conditions(3, 64, generator)
    u, times = solve_burgers(u0, 0.1, [0.0, 0.05, 0.1], dt=1e-3)
    assert u.shape == (3, 3, 1, 64) and u.dtype == torch.float64
    assert torch.equal(times, torch.tensor([0.0, 0.05, 0.1], dtype=torch.float64))
    single, _ = solve_burgers(u0[1:2], 0.1, [0.0, 0.05, 0.1], dt=1e-3)
    torch.testing.assert_close(u[1:2], single, rtol=0, atol=1e-12)
    # viscous Burgers: maximum principle and conservation of the mean
    assert float(u[:, -1].abs().max()) <= float(u[:, 0].abs().max()) + 1e-9
    torch.testing.assert_close(u.mean(dim=-1), u[:, :1].mean(dim=-1).expand(-1, 3, -1), rtol=0, atol=1e-12)


def test_float32_and_default_step():
    x = 2.0 * math.pi * torch.arange(128, dtype=torch.float64) / 128
    u0 = cole_hopf(x, 0.0, NU)[None].float()
    u, _ = solve_burgers(u0, NU, [1.0], domain_length=2.0 * math.pi)
    exact = cole_hopf(x, 1.0, NU).float()
    assert u.dtype == torch.float32
    assert float((u[0, 0, 0] - exact).norm() / exact.norm()) < 1e-5  # measured ~1e-7


@pytest.mark.parametrize(
    "arguments, name",
    [
        (dict(u0=torch.zeros(2, 3, 16)), "u0"),
        (dict(u0=torch.zeros(2, 6)), "grid size"),
        (dict(u0=torch.zeros(2, 15)), "grid size"),
        (dict(nu=-0.1), "nu"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-1e-3), "dt"),
        (dict(t_out=[0.2, 0.1]), "t_out"),
        (dict(t_out=[]), "t_out"),
        (dict(u0=torch.zeros(2, 16, dtype=torch.int64)), "u0"),
    ],
)
def test_bad_input_raises_config_error(arguments, name):
    call = dict(u0=torch.zeros(2, 16, dtype=torch.float64), nu=0.1, t_out=[0.1], dt=1e-2) | arguments
    with pytest.raises(ConfigError, match=name):
        solve_burgers(**call)
