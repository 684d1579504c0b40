"""Darcy solver and coefficient sampler: convergence, symmetry, monotonicity, nested grids."""

from __future__ import annotations

import numpy as np
import pytest

from neuralops.data.generators import sample_rng
from neuralops.data.generators.darcy import (
    A_HIGH,
    A_LOW,
    evaluate_grf,
    grf_coefficients,
    solve_darcy,
    threshold,
    vertex_grid,
)
from neuralops.errors import ConfigError


def _manufactured(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u = sin(πx) sin(πy), a = 1 + x² + y, f = -∇·(a∇u) computed by hand, on the n-point grid."""
    x, y = np.meshgrid(vertex_grid(n), vertex_grid(n), indexing="ij")
    a = 1.0 + x**2 + y
    u = np.sin(np.pi * x) * np.sin(np.pi * y)
    u_x = np.pi * np.cos(np.pi * x) * np.sin(np.pi * y)
    u_y = np.pi * np.sin(np.pi * x) * np.cos(np.pi * y)
    laplacian_u = -2.0 * np.pi**2 * u
    f = -(2.0 * x * u_x + 1.0 * u_y + a * laplacian_u)
    return a, f, u


def test_manufactured_solution_converges_at_second_order():
    sizes = [17, 33, 65, 129]
    errors = []
    for n in sizes:
        a, f, u_exact = _manufactured(n)
        errors.append(np.abs(solve_darcy(a, f) - u_exact).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.8), f"observed orders {orders}, errors {errors}"
    assert errors[-1] < 1e-4


def _random_coefficient(n: int, seed: int = 0, sample: int = 0) -> np.ndarray:
    grid = vertex_grid(n)
    return threshold(evaluate_grf(grf_coefficients(sample_rng(seed, sample)), grid, grid))


def test_solution_is_zero_on_boundary_and_transposes_with_the_coefficient():
    a = _random_coefficient(33)
    u = solve_darcy(a)
    boundary = np.concatenate([u[0], u[-1], u[:, 0], u[:, -1]])
    assert np.all(boundary == 0.0)
    assert u[1:-1, 1:-1].min() > 0, "f = 1 > 0 must give a positive solution inside (maximum principle)"
    np.testing.assert_allclose(solve_darcy(a.T), u.T, rtol=1e-12, atol=1e-15)


def test_constant_coefficient_scales_the_solution_and_bounds_the_compliance():
    """u(c·a) = u(a)/c exactly; compliance ∫ f u decreases as a grows, so a in {3, 12} lies between."""
    n = 33
    a = _random_coefficient(n, sample=3)
    u_one = solve_darcy(np.ones((n, n)))
    np.testing.assert_allclose(solve_darcy(np.full((n, n), A_HIGH)), u_one / A_HIGH, rtol=1e-12)
    compliance = {name: solve_darcy(coef).sum() for name, coef in (("high", np.full((n, n), A_HIGH)), ("low", np.full((n, n), A_LOW)), ("mixed", a))}
    assert compliance["high"] < compliance["mixed"] < compliance["low"]


def test_piecewise_constant_solutions_converge_under_refinement():
    """Same field solved on nested grids: the gap to the 129-point solution shrinks with h."""
    fine = solve_darcy(_random_coefficient(129, sample=7))
    gaps = []
    for n in (17, 33, 65):
        stride = 128 // (n - 1)
        coarse = solve_darcy(_random_coefficient(n, sample=7))
        gaps.append(np.abs(coarse - fine[::stride, ::stride]).max() / fine.max())
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert gaps[2] < 0.03, gaps


def test_same_coefficient_field_on_nested_grids():
    """17, 33 and 65 points nest ((n-1) divides 64): shared points carry identical coefficients.

    Grids 16/32/64 (boundary included) share only the corners, so the shipped file uses 17/33/65.
    """
    coeffs = grf_coefficients(sample_rng(0, 11))
    fields = {n: evaluate_grf(coeffs, vertex_grid(n), vertex_grid(n)) for n in (17, 33, 65)}
    np.testing.assert_allclose(fields[17], fields[65][::4, ::4], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fields[33], fields[65][::2, ::2], rtol=0, atol=1e-12)
    assert np.array_equal(threshold(fields[17]), threshold(fields[65])[::4, ::4])
    assert np.array_equal(threshold(fields[33]), threshold(fields[65])[::2, ::2])
    assert set(np.unique(threshold(fields[65]))) == {A_LOW, A_HIGH}


def test_random_field_is_reproducible_and_balanced():
    first = grf_coefficients(sample_rng(5, 42))
    assert np.array_equal(first, grf_coefficients(sample_rng(5, 42)))
    assert not np.array_equal(first, grf_coefficients(sample_rng(6, 42)))
    assert not np.array_equal(first, grf_coefficients(sample_rng(5, 43)))
    high_fraction = np.mean([(_random_coefficient(17, seed=1, sample=i) == A_HIGH).mean() for i in range(200)])
    assert 0.44 < high_fraction < 0.56, "zero-mean ψ should set about half the domain to a_high"


@pytest.mark.parametrize("bad", [np.ones((5, 6)), np.ones((2, 2)), np.full((5, 5), -1.0), np.full((5, 5), np.nan)])
def test_solver_rejects_bad_coefficients(bad):
    with pytest.raises(ConfigError):
        solve_darcy(bad)
