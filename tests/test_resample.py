"""Resampling and point sampling by grid kind (neuralops.layers.resample), against exact fields.

Every test samples a closed-form field exactly on the coarse grid of a kind (unit coordinates of
neuralops.grid: vertex j/(n-1), cell (j+1/2)/n, periodic j/n, colatitude θ_j/π), resamples it
and compares with the same field sampled exactly on the target grid (float64 throughout).
Errors are maxima over the target points that lie between the outermost coarse samples: a cell
grid's outer half cells hold the end value (constant extrapolation, error O(h) there by design
of neuralops.layers.grid.interpolate), which would hide the interpolation order.
"""

import math

import numpy as np
import pytest
import torch

from neuralops.data.views import ResolutionView
from neuralops.errors import ConfigError
from neuralops.grid import Grid
from neuralops.layers.resample import grid_points, resample, sample_at_points

SIZES = (16, 32, 64)


def smooth(p):
    """Smooth, non-polynomial, non-periodic on [0, 1]²."""
    return torch.exp(torch.sin(2 * p[:, 0] + 0.3)) * torch.cos(1.3 * p[:, 1] + 0.2)


def smooth_periodic(p):
    """Smooth periodic on [0, 1]², not band-limited (analytic: Fourier coefficients decay geometrically)."""
    x, y = 2 * math.pi * p[:, 0], 2 * math.pi * p[:, 1]
    return torch.exp(0.5 * torch.sin(x)) * torch.cos(y + 0.5 * torch.sin(y))


def band_limited(p):
    """Trigonometric polynomial: x modes ≤ 3, y modes ≤ 5 (resolved by 12 points or more)."""
    x, y = 2 * math.pi * p[:, 0], 2 * math.pi * p[:, 1]
    return 1 + torch.sin(x) + 0.5 * torch.cos(3 * x + 0.3) * torch.sin(5 * y + 1)


def cosine_series(p):
    """Σ a_kl cos(kπx) cos(lπy) with k ≤ 7, l ≤ 3: exact for a DCT on 8 × 4 cell centres or more."""
    x, y = math.pi * p[:, 0], math.pi * p[:, 1]
    return 1 + 0.7 * torch.cos(x) * torch.cos(3 * y) + 0.2 * torch.cos(7 * x) - 0.4 * torch.cos(2 * y)


def sphere_field(p):
    """Spherical harmonics of degree ≤ 2 in closed form (colatitude θ = π u, longitude φ = 2π v)."""
    theta, phi = math.pi * p[:, 0], 2 * math.pi * p[:, 1]
    c, s = torch.cos(theta), torch.sin(theta)
    return 1 + c + s * torch.cos(phi) + (3 * c**2 - 1) + s**2 * torch.cos(2 * phi) + s * c * torch.sin(phi)


def sampled(fn, shape, kind):
    """``fn`` at the points of the grid ``shape`` of ``kind``: ``(1, 1, *shape)`` float64."""
    return fn(grid_points(shape, kind, dtype=torch.float64)).reshape(1, 1, *shape)


def max_error(fn, n, kind, method, assumed=None, factor=4):
    """Max error of resampling the exact n² samples of ``kind`` to (factor·n)², the resampler told
    the grid is ``assumed`` (default: the true kind), over target points inside the coarse hull."""
    coarse, fine = (n, n), (factor * n, factor * n)
    result = resample(sampled(fn, coarse, kind), fine, method, assumed or kind)
    error = (result - sampled(fn, fine, kind)).flatten()
    points, hull = grid_points(fine, kind, dtype=torch.float64), grid_points(coarse, kind, dtype=torch.float64)
    inside = ((points >= hull.min(0).values) & (points <= hull.max(0).values)).all(1)
    if kind == "periodic":  # every point lies between two samples when the axis wraps
        inside[:] = True
    return error[inside].abs().max().item()


def orders(errors):
    return [math.log2(a / b) for a, b in zip(errors, errors[1:])]


@pytest.mark.parametrize("kind, fn, wrong", [
    ("vertex", smooth, "cell"),
    ("cell", smooth, "vertex"),
    ("periodic", smooth_periodic, "vertex"),
])
def test_bilinear_is_second_order_only_with_the_right_grid_kind(kind, fn, wrong):
    """Measured max errors (n = 16, 32, 64, resampled to 4n): vertex 8.3e-3, 2.0e-3, 4.8e-4
    (orders 2.09, 2.04); cell 6.8e-3, 1.7e-3, 4.3e-4 (1.98, 1.99); periodic 7.9e-2, 2.1e-2,
    5.4e-3 (1.89, 1.97). The wrong convention shifts every sample by O(h): orders 0.94-1.02,
    errors 25-47× larger at n=64 (vertex as cell 2.1e-2, cell as vertex 2.0e-2, periodic as
    vertex 0.13)."""
    right = [max_error(fn, n, kind, "bilinear") for n in SIZES]
    assert all(1.8 <= q <= 2.3 for q in orders(right)), (right, orders(right))
    wrong_errors = [max_error(fn, n, kind, "bilinear", assumed=wrong) for n in SIZES]
    assert all(0.8 <= q <= 1.3 for q in orders(wrong_errors)), (wrong_errors, orders(wrong_errors))
    assert wrong_errors[-1] > 10 * right[-1]


@pytest.mark.parametrize("kind", ["periodic", "vertex"])
def test_fourier_is_exact_for_band_limited_periodic_data(kind):
    for source, target in (((16, 12), (64, 48)), ((64, 48), (16, 12)), ((16, 12), (33, 20))):
        result = resample(sampled(band_limited, source, kind), target, "fourier", kind)
        assert (result - sampled(band_limited, target, kind)).abs().max() < 1e-10


def test_fourier_converges_spectrally_for_smooth_periodic_data():
    """Measured max errors 4.5e-3 (n=8), 2.1e-8 (16), 7e-15 (32): faster than any power of h."""
    errors = [max_error(smooth_periodic, n, "periodic", "fourier") for n in (8, 16, 32)]
    assert errors[0] / errors[1] > 1e4 and errors[2] < 1e-12, errors


def test_cosine_resampling_is_exact_on_cell_grids_and_has_no_gibbs_jump():
    for source, target in (((16, 12), (64, 48)), ((64, 48), (16, 12)), ((16, 12), (33, 20)), ((8, 4), (40, 9))):
        result = resample(sampled(cosine_series, source, "cell"), target, "fourier", "cell")
        assert (result - sampled(cosine_series, target, "cell")).abs().max() < 1e-10
    # smooth non-periodic data: the even extension has no jump, so the error shrinks (measured
    # 1.1e-2, 5.4e-3, 2.7e-3 for n = 16, 32, 64: first order, from the kink of its derivative at
    # the ends); the periodic extension jumps, and its Gibbs error stays at 0.53-0.54
    cosine = [max_error(smooth, n, "cell", "fourier") for n in SIZES]
    assert all(q >= 0.9 for q in orders(cosine)) and cosine[0] < 0.02, cosine
    gibbs = [max_error(smooth, n, "cell", "fourier", assumed="periodic") for n in SIZES]
    assert min(gibbs) > 0.5 and gibbs[-1] >= gibbs[0], gibbs


def test_fourier_on_mixed_kinds_treats_each_axis_by_its_kind():
    kinds = ["cell", "periodic"]

    def field(p):
        return torch.cos(3 * math.pi * p[:, 0]) * torch.sin(2 * math.pi * p[:, 1] + 0.4) + torch.cos(math.pi * p[:, 0])

    result = resample(sampled(field, (10, 9), kinds), (37, 32), "fourier", kinds)
    assert (result - sampled(field, (37, 32), kinds)).abs().max() < 1e-10


def test_sphere_resampling_is_exact_for_band_limited_fields():
    for source, target in (((17, 32), (33, 64)), ((33, 64), (17, 32)), ((17, 32), (25, 40))):
        result = resample(sampled(sphere_field, source, "equiangular"), target, "fourier", "equiangular")
        assert (result - sampled(sphere_field, target, "equiangular")).abs().max() < 1e-10
    with pytest.raises(ConfigError, match="equiangular"):
        resample(torch.zeros(1, 1, 8, 16), (16, 32), "fourier", "legendre_gauss")


GRIDS = [
    ("vertex", (5, 7)), ("cell", (6, 4)), ("periodic", (5, 8)), ("equiangular", (9, 16)),
    ("legendre_gauss", (8, 16)), (["cell", "periodic"], (6, 5)), ("cell", (7,)), ("periodic", (3, 4, 5)),
    (["vertex", "cell", "periodic"], (4, 3, 5)),
]


@pytest.mark.parametrize("kind, shape", GRIDS)
def test_sample_at_points_returns_the_samples_at_the_grid_points(kind, shape):
    field = torch.randn(2, 3, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    at_own_points = sample_at_points(field, grid_points(shape, kind, dtype=torch.float64), kind)
    assert (at_own_points - field.flatten(2)).abs().max() < 1e-12
    # and it interpolates as resample does: the two evaluate one function
    finer = tuple(2 * n + 1 for n in shape)
    at_fine_points = sample_at_points(field, grid_points(finer, kind, dtype=torch.float64), kind)
    assert (at_fine_points - resample(field, finer, "bilinear", kind).flatten(2)).abs().max() < 1e-12


def test_sample_at_points_wraps_periodic_axes_and_holds_cell_ends():
    values = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64).reshape(1, 1, 4)
    u = torch.tensor([[0.875], [1.0], [1.125], [0.0]], dtype=torch.float64)
    # periodic: samples at 0, 1/4, 1/2, 3/4; 7/8 lies halfway between the last and the first
    assert torch.allclose(sample_at_points(values, u, "periodic")[0, 0], torch.tensor([4.5, 1.0, 1.5, 1.0], dtype=torch.float64))
    # cell: samples at 1/8, 3/8, 5/8, 7/8; the outer half cells hold the end values
    assert torch.allclose(sample_at_points(values, u, "cell")[0, 0], torch.tensor([8.0, 8.0, 8.0, 1.0], dtype=torch.float64))
    # vertex: samples at 0, 1/3, 2/3, 1
    assert torch.allclose(sample_at_points(values, u, "vertex")[0, 0], torch.tensor([6.5, 8.0, 8.0, 1.0], dtype=torch.float64))


def test_bad_grid_kinds_give_one_clear_error():
    with pytest.raises(ConfigError, match="grid='hexagonal'"):
        resample(torch.zeros(1, 1, 8, 8), (16, 16), "bilinear", "hexagonal")
    with pytest.raises(ConfigError, match="gives 1 kinds for 2 axes"):
        grid_points((4, 4), ["cell"])


def test_fourier_filter_view_refuses_non_periodic_grids():
    """The data view's Fourier filter (neuralops.data.views) is defined for periodic grids only."""
    view = ResolutionView("fourier_filter", 2)
    assert view.grid_from(Grid.uniform((16, 8), "periodic"), "f.h5").shape == (8, 4)
    for kind in ("vertex", "cell"):
        with pytest.raises(ConfigError, match=rf"data.resolution_method='fourier_filter'.*'{kind}'"):
            view.grid_from(Grid.uniform((16, 8), ["periodic", kind]), "f.h5")
    x = np.arange(16) / 16
    field = np.cos(2 * np.pi * 3 * x) + np.sin(2 * np.pi * x)
    np.testing.assert_allclose(view.apply(field[None], 1)[0], field[::2], atol=1e-12)
