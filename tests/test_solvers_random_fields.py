"""Random initial conditions: reproducibility, seeds, spectral decay, periodic cell grids."""

import math

import pytest
import torch

from neuralops.spectral.pseudospectral import periodic_cell_grid, spectral_wavevectors, to_spectral
from neuralops.data.generators.random_fields import (
    periodic_grf_spectrum,
    sample_periodic_grf,
    sample_sphere_harmonic_coefficients,
)
from neuralops.errors import ConfigError


def test_same_seed_same_fields_other_seed_other_fields():
    def draw(seed):
        return sample_periodic_grf(4, (32, 32), torch.Generator().manual_seed(seed), alpha=2.5, tau=7.0, sigma=7.0**1.5)

    assert torch.equal(draw(0), draw(0))
    assert not torch.allclose(draw(0), draw(1))
    sphere = [sample_sphere_harmonic_coefficients(2, 8, 8, torch.Generator().manual_seed(s), alpha=2.0, tau=1.0) for s in (0, 0, 1)]
    assert torch.equal(sphere[0], sphere[1]) and not torch.allclose(sphere[0], sphere[2])


@pytest.mark.parametrize("grid_shape, alpha, tau", [((256,), 2.0, 5.0), ((64, 64), 2.5, 7.0)])
def test_sample_spectrum_matches_covariance(grid_shape, alpha, tau):
    # E|rfftn(u)_k|^2 = N^(2d) s_k^2. Averaged over 400 samples and all retained modes, the
    # measured/expected power ratio per radial shell is 1 +- ~0.1; the log-log slope of the
    # shell power over |k| in [8, N/4] (in units of 2 pi) matches the exact one within 0.15.
    samples = 400
    fields = sample_periodic_grf(samples, grid_shape, torch.Generator().manual_seed(11), alpha=alpha, tau=tau, sigma=1.0)
    assert fields.shape == (samples, *grid_shape)
    assert float(fields.mean(dim=tuple(range(1, fields.dim()))).abs().max()) < 1e-12  # zero mean mode
    power = (to_spectral(fields, len(grid_shape)).abs() ** 2).mean(dim=0)
    points = math.prod(grid_shape)
    expected = points**2 * periodic_grf_spectrum(grid_shape, alpha, tau, 1.0, 1.0, device=torch.device("cpu")) ** 2
    wavevectors = spectral_wavevectors(grid_shape, 2.0 * math.pi, dtype=torch.float64, device=torch.device("cpu"))
    shell = torch.sqrt(sum(k**2 for k in wavevectors)).round().long()
    shells = torch.arange(8, grid_shape[0] // 4 + 1)
    measured = torch.stack([power[shell == s].mean() for s in shells])
    exact = torch.stack([expected[shell == s].mean() for s in shells])
    assert float((measured / exact - 1.0).abs().max()) < 0.25
    log_k = torch.log(shells.double())
    slope_measured = torch.linalg.lstsq(torch.stack([log_k, torch.ones_like(log_k)], 1), torch.log(measured)[:, None]).solution[0]
    slope_exact = torch.linalg.lstsq(torch.stack([log_k, torch.ones_like(log_k)], 1), torch.log(exact)[:, None]).solution[0]
    assert abs(float(slope_measured - slope_exact)) < 0.15
    assert abs(float(slope_exact) + 2.0 * alpha) < 0.1  # |k| >> tau: power ~ |k|^(-2 alpha)


def test_sphere_coefficient_power_and_layout():
    coefficients = sample_sphere_harmonic_coefficients(2000, 12, 12, torch.Generator().manual_seed(3), alpha=2.0, tau=1.0)
    degree = torch.arange(12, dtype=torch.float64)[:, None]
    order = torch.arange(12, dtype=torch.float64)[None, :]
    assert bool((coefficients[:, order.expand(12, 12).gt(degree.expand(12, 12))] == 0).all())  # triangular
    assert bool((coefficients[:, :, 0].imag == 0).all()) and bool((coefficients[:, 0] == 0).all())
    power = (coefficients.abs() ** 2).mean(dim=0)
    expected = (degree * (degree + 1) + 1.0) ** -2.0
    ratio = power[2:, 1:] / expected[2:]
    valid = order[:, 1:].expand(10, 11) <= degree[2:]
    assert float((ratio[valid] - 1.0).abs().max()) < 0.2  # 2000 samples: std ~0.03 per mode


def test_cell_grid_stride_subsampling_gives_coarse_grid():
    fine = periodic_cell_grid(64, 1.0, dtype=torch.float64, device=torch.device("cpu"))
    coarse = periodic_cell_grid(32, 1.0, dtype=torch.float64, device=torch.device("cpu"))
    torch.testing.assert_close(fine[::2], coarse, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "arguments, name",
    [(dict(alpha=-1.0), "alpha"), (dict(tau=-1.0), "tau"), (dict(sigma=0.0), "sigma"), (dict(grid_shape=(3,)), "grid_shape"), (dict(batch=0), "batch")],
)
def test_bad_input_raises_config_error(arguments, name):
    call = dict(batch=2, grid_shape=(16,), generator=torch.Generator().manual_seed(0), alpha=2.0, tau=5.0, sigma=1.0) | arguments
    with pytest.raises(ConfigError, match=name):
        sample_periodic_grf(**call)
