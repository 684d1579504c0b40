"""Training losses: the spectral Sobolev norms against direct float64 sums (analytic coefficients
of band-limited fields, and explicit discrete transforms of arbitrary fields), the Darcy and
Burgers residuals against manufactured and exact solutions (measured orders) and the generators'
own solutions, the weighted combination and its one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuralops.data.generators import sample_rng
from neuralops.data.generators.burgers import sample_burgers_initial_conditions, solve_burgers
from neuralops.data.generators.darcy import DarcyOptions, darcy_samples, evaluate_grf, grf_coefficients, solve_darcy, threshold
from neuralops.errors import ConfigError, InputShapeError
from neuralops.evaluation.metrics import relative_l2
from neuralops.grid import Grid, GridAxis
from neuralops.training.losses import LOSSES, Loss, LossOptions, burgers_residual, check_loss, darcy_residual, sobolev_norm

RTOL = 1e-10
"""Float64 agreement of the FFT path with the direct sums (measured below 1e-15 relative)."""

AXES = {
    "periodic": GridAxis("x", "periodic", 10, start=0.3, length=1.7),
    "vertex": GridAxis("y", "vertex", 9, start=-0.5, length=0.8),
    "cell": GridAxis("z", "cell", 7, start=0.1, length=2.5),
}
GRIDS = [("periodic",), ("vertex",), ("cell",), ("periodic", "vertex"), ("vertex", "cell"), ("cell", "periodic", "vertex")]


def _grid(kinds) -> Grid:
    return Grid([AXES[k] for k in kinds])


# -- Sobolev: references ----------------------------------------------------------------------
def _continuous_basis(axis: GridAxis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real eigenfunctions of −Δ below the grid's Nyquist: values ``(K, n)`` at the axis points,
    their continuous mean squares over the domain ``(K,)`` and wavenumbers ``(K,)``."""
    x = (axis.coords - axis.start) / axis.length  # unit coordinate in [0, 1]
    if axis.kind == "periodic":
        ks = np.arange(1, (axis.size + 1) // 2)  # 1 <= k < n/2
        values = [np.ones_like(x)] + [f(2 * np.pi * k * x) for k in ks for f in (np.cos, np.sin)]
        kappa = [0.0] + [2 * np.pi * k / axis.length for k in ks for _ in (0, 1)]
    else:
        ks = np.arange(axis.size - 1 if axis.kind == "vertex" else axis.size)  # below the vertex Nyquist
        values = [np.cos(np.pi * k * x) for k in ks]
        kappa = np.pi * ks / axis.length
    mean_square = np.array([1.0] + [0.5] * (len(values) - 1))
    return np.array(values), mean_square, np.asarray(kappa, dtype=np.float64)


def _band_limited(grid: Grid, order: int, alpha: float, rng: np.random.Generator, batch: int = 2, channels: int = 2):
    """Random band-limited fields ``(B, C, *grid)`` and their exact norm ``‖(α−Δ)^{s/2}u‖`` (per
    unit measure) from the coefficients: ``Σ A² Π_d γ_d (α + Σ_d κ_d²)^s``, summed over channels."""
    bases = [_continuous_basis(axis) for axis in grid.axes]
    coeffs = rng.standard_normal((batch, channels, *(len(b[0]) for b in bases)))
    u = coeffs
    for d, (values, _, _) in enumerate(bases):
        u = np.moveaxis(np.tensordot(u, values, axes=([2 + d], [0])), -1, 2 + d)
    gamma = np.ones(coeffs.shape[2:])
    kappa_sq = np.zeros(coeffs.shape[2:])
    for d, (_, ms, kappa) in enumerate(bases):
        shape = [1] * grid.n_dims
        shape[d] = -1
        gamma = gamma * ms.reshape(shape)
        kappa_sq = kappa_sq + kappa.reshape(shape) ** 2
    norm = np.sqrt((coeffs**2 * gamma * (alpha + kappa_sq) ** order).reshape(batch, -1).sum(axis=1))
    return torch.from_numpy(u), norm


def _discrete_basis(axis: GridAxis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The complete discrete basis of the convention: values ``(n, n)`` (complex Fourier modes on
    periodic axes, cosines of the even extension otherwise), quadrature weights ``(n,)`` and
    wavenumbers ``(n,)``."""
    n, j = axis.size, np.arange(axis.size)
    if axis.kind == "periodic":
        k = np.fft.fftfreq(n, 1.0 / n)  # the signed integers only
        return np.exp(2j * np.pi * np.outer(k, j) / n), np.full(n, 1.0 / n), 2 * np.pi * k / axis.length
    k = np.arange(n)
    if axis.kind == "vertex":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return np.cos(np.pi * np.outer(k, j) / (n - 1)), weights, np.pi * k / axis.length
    return np.cos(np.pi * np.outer(k, j + 0.5) / n), np.full(n, 1.0 / n), np.pi * k / axis.length


def _direct_norm(u: np.ndarray, grid: Grid, order: int, alpha: float) -> np.ndarray:
    """``sqrt(Σ_c Σ_k (α + |κ_k|²)^s Π γ_k |c_k|²)`` with the coefficients ``c_k`` of the
    discrete basis by explicit weighted sums (discrete orthogonality, ``γ_k = ⟨φ_k²⟩_w``), in
    float64; checks that the coefficients reproduce ``u``."""
    coeffs, gamma, kappa_sq = u.astype(np.complex128), 1.0, 0.0
    for d, axis in enumerate(grid.axes):
        phi, w, kappa = _discrete_basis(axis)
        g = (np.abs(phi) ** 2 * w).sum(axis=1)
        analysis = np.conj(phi) * w / g[:, None]
        coeffs = np.moveaxis(np.tensordot(coeffs, analysis, axes=([2 + d], [1])), -1, 2 + d)
        shape = [1] * grid.n_dims
        shape[d] = -1
        gamma, kappa_sq = gamma * g.reshape(shape), kappa_sq + kappa.reshape(shape) ** 2
    recon = coeffs
    for d, axis in enumerate(grid.axes):
        recon = np.moveaxis(np.tensordot(recon, _discrete_basis(axis)[0], axes=([2 + d], [0])), -1, 2 + d)
    np.testing.assert_allclose(recon.real, u, atol=1e-12)
    energy = np.abs(coeffs) ** 2 * gamma * (alpha + kappa_sq) ** order
    return np.sqrt(energy.reshape(u.shape[0], -1).sum(axis=1))


# -- Sobolev: tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("kinds", GRIDS)
@pytest.mark.parametrize("order", [-1, 0, 1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_sobolev_norm_of_band_limited_fields_is_the_continuous_norm(kinds, order, seed):
    rng = np.random.default_rng(100 * seed + order + 7)
    alpha = float(rng.uniform(0.1, 3.0))
    grid = _grid(kinds)
    u, exact = _band_limited(grid, order, alpha, rng)
    np.testing.assert_allclose(sobolev_norm(u, grid, order, alpha).numpy(), exact, rtol=RTOL)


@pytest.mark.parametrize("kinds", GRIDS)
@pytest.mark.parametrize("order", [-1, 0, 1, 2])
def test_sobolev_norm_matches_direct_discrete_sums_on_arbitrary_fields(kinds, order):
    grid = _grid(kinds)
    u = np.random.default_rng(order + 11).standard_normal((3, 2, *grid.shape))
    expected = _direct_norm(u, grid, order, 0.7)
    np.testing.assert_allclose(sobolev_norm(torch.from_numpy(u), grid, order, 0.7).numpy(), expected, rtol=RTOL)
    single = sobolev_norm(torch.from_numpy(u).float(), grid, order, 0.7).double().numpy()
    np.testing.assert_allclose(single, expected, rtol=1e-5)


@pytest.mark.parametrize("kinds", GRIDS)
def test_relative_order_zero_is_rel_l2(kinds):
    """s = 0 is the grid's quadrature L2 norm: trapezoid on vertex, midpoint on cell axes."""
    grid = _grid(kinds)
    g = torch.Generator().manual_seed(3)
    pred, target = torch.randn(4, 2, *grid.shape, generator=g, dtype=torch.float64), torch.randn(4, 2, *grid.shape, generator=g, dtype=torch.float64)
    value = Loss("rel_sobolev", options=LossOptions(sobolev_order=0))(pred, target, grid)
    torch.testing.assert_close(value, relative_l2(pred, target, grid).mean(), rtol=1e-10, atol=0)


def test_sobolev_h1_of_a_smooth_field_converges_to_the_h1_norm():
    """u = x² on a vertex axis of [0, 1]: ‖u‖²_H1 = 1/5 + 4/3; ∂_x u ≠ 0 at x = 1, so first order
    (measured errors 0.0147, 0.0074, 0.0037 at 33, 65, 129 points)."""
    exact = math.sqrt(1 / 5 + 4 / 3)
    errors = []
    for n in (33, 65, 129):
        grid = Grid.uniform((n,), "vertex")
        x = torch.as_tensor(grid.axes[0].coords)
        errors.append(abs(sobolev_norm((x**2)[None, None], grid, 1, 1.0).item() - exact))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 1.0) < 0.05) and errors[-1] < 4e-3, (errors, orders)


def test_sobolev_losses_absolute_relative_and_presets():
    grid = _grid(("periodic", "vertex"))
    g = torch.Generator().manual_seed(5)
    pred, target = torch.randn(3, 1, *grid.shape, generator=g, dtype=torch.float64), torch.randn(3, 1, *grid.shape, generator=g, dtype=torch.float64)
    options = LossOptions(sobolev_order=2, sobolev_alpha=0.1)
    error = sobolev_norm(pred - target, grid, 2, 0.1)
    torch.testing.assert_close(Loss("sobolev", options=options)(pred, target, grid), error.mean())
    torch.testing.assert_close(Loss("rel_sobolev", options=options)(pred, target, grid), (error / sobolev_norm(target, grid, 2, 0.1)).mean())
    error = sobolev_norm(pred - target, grid, -1, 0.1)
    torch.testing.assert_close(Loss("h_minus1", options=options)(pred, target, grid), error.mean())
    torch.testing.assert_close(Loss("rel_h_minus1", options=options)(pred, target, grid), (error / sobolev_norm(target, grid, -1, 0.1)).mean())


# -- Darcy residual ---------------------------------------------------------------------------
def _profile(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g = sin(πx) eˣ (zero at 0 and 1, g'' ≠ 0 there) and its first two derivatives."""
    s, c, e = np.sin(np.pi * x), np.cos(np.pi * x), np.exp(x)
    return s * e, (np.pi * c + s) * e, ((1.0 - np.pi**2) * s + 2.0 * np.pi * c) * e


def _periodic_profile(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p = cos(2πx) + sin(2πx)/2 + 1/3 (period 1) and its first two derivatives."""
    c, s, w = np.cos(2 * np.pi * x), np.sin(2 * np.pi * x), 2 * np.pi
    return c + s / 2 + 1 / 3, w * (-s + c / 2), -(w**2) * (c + s / 2)


def _manufactured(case: str, n: int):
    """``(grid, u, a, f)`` as float64 tensors ``(1, 1, n, n)``, with f = −∇·(a∇u) by hand."""
    if case == "vertex":
        grid = Grid.uniform((n, n), "vertex", boundary="dirichlet")
        x, y = np.meshgrid(grid.axes[0].coords, grid.axes[1].coords, indexing="ij")
        (gx, gx1, gx2), (gy, gy1, gy2) = _profile(x), _profile(y)
        u, ux, uy, lap = gx * gy, gx1 * gy, gx * gy1, gx2 * gy + gx * gy2
        a, ax, ay = 1 + x**2 + y + np.sin(3 * x + y) / 2, 2 * x + 1.5 * np.cos(3 * x + y), 1 + np.cos(3 * x + y) / 2
    elif case == "periodic_vertex":
        grid = Grid([GridAxis("x", "periodic", n, boundary="dirichlet"), GridAxis("y", "vertex", n, boundary="dirichlet")])
        x, y = np.meshgrid(grid.axes[0].coords, grid.axes[1].coords, indexing="ij")
        (px, px1, px2), (gy, gy1, gy2) = _periodic_profile(x), _profile(y)
        u, ux, uy, lap = px * gy, px1 * gy, px * gy1, px2 * gy + px * gy2
        a, ax, ay = 1.5 + np.sin(2 * np.pi * x) / 2 + y**2, np.pi * np.cos(2 * np.pi * x), 2 * y
    else:  # cell grid: u odd and a even about every wall ("cell_symmetric") or neither ("cell")
        grid = Grid.uniform((n, n), "cell", boundary="dirichlet")
        x, y = np.meshgrid(grid.axes[0].coords, grid.axes[1].coords, indexing="ij")
        if case == "cell_symmetric":
            sx, sy, cx, cy = np.sin(np.pi * x), np.sin(2 * np.pi * y), np.cos(np.pi * x), np.cos(2 * np.pi * y)
            u, ux, uy, lap = sx * sy, np.pi * cx * sy, 2 * np.pi * sx * cy, -5 * np.pi**2 * sx * sy
            a, ax, ay = 2 + cx * cy, -np.pi * sx * cy, -2 * np.pi * cx * sy
        else:
            (gx, gx1, gx2), (gy, gy1, gy2) = _profile(x), _profile(y)
            u, ux, uy, lap = gx * gy, gx1 * gy, gx * gy1, gx2 * gy + gx * gy2
            a, ax, ay = 1 + x**2 + y, 2 * x, np.ones_like(y)
    f = -(ax * ux + ay * uy + a * lap)
    return grid, *(torch.from_numpy(v)[None, None] for v in (u, a, f))


@pytest.mark.parametrize(("case", "sizes", "order"), [
    ("vertex", (17, 33, 65, 129), 2.0),           # measured 1.95, 1.98, 1.99
    ("periodic_vertex", (16, 32, 64, 128), 2.0),  # the periodic faces wrap around
    ("cell_symmetric", (16, 32, 64, 128), 2.0),   # measured 1.99, 2.00, 2.00
    ("cell", (16, 32, 64, 128), 0.5),             # O(1) truncation on the boundary cells: measured 0.51, 0.50, 0.50
])
def test_darcy_residual_of_manufactured_solutions_converges_at_the_stated_order(case, sizes, order):
    """The residual of the exact solution is the truncation error; its quadrature L2 norm
    falls at second order (the cell grid's half-cell wall flux only for u odd and a even about
    the walls, as documented)."""
    norms = []
    for n in sizes:
        grid, u, a, f = _manufactured(case, n)
        r = darcy_residual(u, a, grid, f)
        norms.append(float(torch.sqrt((r[0, 0] ** 2 * grid.weights()).sum())))
    orders = np.log2(np.array(norms[:-1]) / np.array(norms[1:]))
    assert np.all(np.abs(orders - order) < 0.1), (norms, orders)


@pytest.mark.parametrize(("kind", "n"), [("vertex", 17), ("cell", 16), ("vertex", 33)])
def test_darcy_residual_loss_vanishes_on_the_generator_solutions(kind, n):
    """The generator's discrete solutions (float64 sparse LU) give the loss at rounding level;
    zero pressure gives exactly ‖f‖ over the points that are unknowns (the square root of
    their share of the domain); the stored float32 samples give float32 rounding times the stiffness."""
    grid = Grid.uniform((n, n), kind, boundary="dirichlet")
    x = grid.axes[0].coords
    a = np.stack([threshold(evaluate_grf(grf_coefficients(sample_rng(3, i)), x, x)) for i in range(3)])
    u = torch.from_numpy(np.stack([solve_darcy(sample, grid=kind) for sample in a]))[:, None]
    a = torch.from_numpy(a)[:, None]
    loss = Loss("darcy_residual")
    assert loss(u, u, grid, a).item() < 1e-12
    interior = (n - 2) / (n - 1) if kind == "vertex" else 1.0  # sqrt of the interior measure ((n-2)h)²
    assert loss(torch.zeros_like(u), u, grid, a).item() == pytest.approx(interior, rel=1e-12)
    stored = darcy_samples(3, range(3), DarcyOptions(grid=kind), n)
    assert loss(torch.from_numpy(stored["y"]), None, grid, torch.from_numpy(stored["x"])).item() < 2e-5


def test_darcy_residual_vertex_boundary_rows_penalize_boundary_values():
    """A harmonic perturbation that is nonzero on the boundary leaves the interior equation
    satisfied; the Dirichlet rows catch it: r_b = −a_b Σ_d 2/h_d² · u_b."""
    grid = Grid.uniform((17, 17), "vertex", boundary="dirichlet")
    x, y = (torch.from_numpy(c) for c in np.meshgrid(grid.axes[0].coords, grid.axes[1].coords, indexing="ij"))
    bump = 1e-3 * (x * y)[None, None]  # bilinear: discretely harmonic for a = 1
    r = darcy_residual(bump, torch.ones_like(bump), grid, 0.0)
    h = grid.axes[0].spacing
    torch.testing.assert_close(r[0, 0, 1:-1, 1:-1], torch.zeros(15, 15, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(r[0, 0, -1, :], -4 / h**2 * bump[0, 0, -1, :])
    torch.testing.assert_close(r[0, 0, :, 0], torch.zeros(17, dtype=torch.float64))


# -- Burgers residual -------------------------------------------------------------------------
def _cole_hopf(x: torch.Tensor, t: torch.Tensor, nu: float) -> torch.Tensor:
    """Exact periodic solution of u_t + u u_x = ν u_xx on [0, 1): u = −2ν φ_x/φ with φ a
    solution of the heat equation φ_t = ν φ_xx that stays positive (Cole–Hopf)."""
    k1, k2 = 2 * math.pi, 4 * math.pi
    e1, e2 = torch.exp(-nu * k1**2 * t), torch.exp(-nu * k2**2 * t)
    phi = 2 + torch.cos(k1 * x) * e1 + 0.3 * torch.sin(k2 * x + 0.4) * e2
    phi_x = -k1 * torch.sin(k1 * x) * e1 + 0.3 * k2 * torch.cos(k2 * x + 0.4) * e2
    return -2 * nu * phi_x / phi


def _rms(r: torch.Tensor) -> float:
    return float(torch.sqrt((r**2).mean()))


def test_burgers_residual_is_spectrally_accurate_in_space():
    """Two levels 1e-5 apart (time error ~1e-9): the residual of the analytic solution falls
    geometrically with N (measured 1.1e-2, 1.2e-5, 2e-9 at N = 16, 32, 64)."""
    nu, dt = 0.1, 1e-5
    errors = []
    for n in (16, 32, 64):
        x = torch.arange(n, dtype=torch.float64) / n
        u = _cole_hopf(x[None, :], torch.tensor([[0.1], [0.1 + dt]], dtype=torch.float64), nu)[None]
        errors.append(_rms(burgers_residual(u, Grid.uniform((n,), "periodic"), nu, dt)))
    assert errors[1] < 3e-3 * errors[0] and errors[2] < 1e-7, errors


def test_burgers_residual_is_second_order_in_time():
    """Cole–Hopf solution on [0.1, 0.3] in 5, 10, 20, 40 steps at N = 128 (space exact to 1e-12):
    measured orders 1.97, 1.99, 2.00."""
    nu, n = 0.1, 128
    x = torch.arange(n, dtype=torch.float64) / n
    errors = []
    for steps in (5, 10, 20, 40):
        dt = 0.2 / steps
        u = _cole_hopf(x[None, :], (0.1 + dt * torch.arange(steps + 1, dtype=torch.float64))[:, None], nu)[None]
        errors.append(_rms(burgers_residual(u, Grid.uniform((n,), "periodic"), nu, dt)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.1), (errors, orders)


def test_burgers_residual_on_the_generator_solution_is_second_order_in_the_output_interval():
    """The generator's pseudo-spectral ETDRK4 solution (ν = 0.05, N = 128, solver step 2.5e-4),
    stored every 0.005 on [0.1, 0.3] and subsampled to intervals 0.02, 0.01, 0.005: the space
    operator is the generator's, so only the time difference remains (measured orders 1.99,
    2.00; 2.8e-4 at 0.005 against |u_t| ~ 1.5)."""
    nu, n = 0.05, 128
    u0 = sample_burgers_initial_conditions(2, n, torch.Generator().manual_seed(0))
    u = solve_burgers(u0, nu, (0.1 + 0.005 * np.arange(41)).tolist(), dt=2.5e-4)[0][:, :, 0]
    grid = Grid.uniform((n,), "periodic")
    errors = [_rms(burgers_residual(u[:, ::stride], grid, nu, 0.005 * stride)) for stride in (4, 2, 1)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.1) and errors[-1] < 5e-4, (errors, orders)


def test_burgers_loss_uses_the_input_state_as_the_first_level():
    nu, n, dt = 0.1, 64, 0.01
    x = torch.arange(n, dtype=torch.float64) / n
    levels = _cole_hopf(x[None, :], (0.1 + dt * torch.arange(4, dtype=torch.float64))[:, None], nu)[None]
    grid = Grid.uniform((n,), "periodic")
    inputs = torch.cat([levels[:, :1] * 0.5, levels[:, :1]], dim=1)  # (B, steps_in = 2, N), last = the state at t
    loss = Loss("burgers_residual", options=LossOptions(viscosity=nu, dt=dt, input_state=1))
    expected = _rms(burgers_residual(levels, grid, nu, dt))
    assert loss(levels[:, 1:], levels[:, 1:], grid, inputs).item() == pytest.approx(expected, rel=1e-12)
    assert expected < 2e-3
    wrong = Loss("burgers_residual", options=LossOptions(viscosity=nu, dt=dt, input_state=0))
    assert wrong(levels[:, 1:], levels[:, 1:], grid, inputs).item() > 100 * expected


# -- combination, gradients, errors -----------------------------------------------------------
def test_weighted_loss_is_the_weighted_sum_of_its_terms():
    grid, u, a, _ = _manufactured("vertex", 17)
    target = u + 0.01 * torch.sin(torch.arange(17.0, dtype=torch.float64))[None, None, :, None]
    loss = Loss(["rel_l2", "darcy_residual", "rel_h_minus1"], [1.0, 0.1, 2.0])
    terms = loss.terms(u, target, grid, a)
    assert list(terms) == ["rel_l2", "darcy_residual", "rel_h_minus1"]
    torch.testing.assert_close(terms["rel_l2"], relative_l2(u, target, grid).mean())
    torch.testing.assert_close(loss(u, target, grid, a), terms["rel_l2"] + 0.1 * terms["darcy_residual"] + 2.0 * terms["rel_h_minus1"])
    assert loss.needs_inputs and not Loss("rel_l2").needs_inputs


def test_losses_have_correct_gradients():
    g = torch.Generator().manual_seed(1)
    grid = Grid.uniform((6, 5), ["periodic", "vertex"])
    target = torch.randn(2, 1, 6, 5, generator=g, dtype=torch.float64)
    a = 1 + torch.rand(2, 1, 6, 5, generator=g, dtype=torch.float64)
    pred = torch.randn(2, 1, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    loss = Loss(["rel_sobolev", "h_minus1", "darcy_residual"], options=LossOptions(sobolev_order=1))
    assert torch.autograd.gradcheck(lambda p: loss(p, target, grid, a), (pred,))
    line = Grid.uniform((8,), "periodic")
    levels = torch.randn(2, 3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    burgers = Loss("burgers_residual", options=LossOptions(viscosity=0.1, dt=0.1))
    assert torch.autograd.gradcheck(lambda p: burgers(p, p, line, None), (levels,))


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Loss("l2"), "trainer.loss: unknown loss 'l2'"),
    (lambda: Loss([]), "trainer.loss: give at least one loss"),
    (lambda: Loss(["rel_l2", "rel_l2"]), "listed twice"),
    (lambda: Loss(["rel_l2", "darcy_residual"], [1.0]), "trainer.loss_weights must give one finite number > 0"),
    (lambda: Loss(["rel_l2"], [-1.0]), "trainer.loss_weights"),
    (lambda: Loss("burgers_residual"), "needs trainer.loss_options.viscosity"),
    (lambda: Loss("burgers_residual", options=LossOptions(viscosity=0.01)), "needs trainer.loss_options.dt"),
    (lambda: LossOptions(sobolev_order=3), "trainer.loss_options.sobolev_order must be one of [-1, 0, 1, 2]"),
    (lambda: LossOptions(sobolev_alpha=0.0), "trainer.loss_options.sobolev_alpha must be a finite number > 0"),
    (lambda: LossOptions(forcing=0.0), "trainer.loss_options.forcing"),
    (lambda: LossOptions(viscosity=-1.0), "trainer.loss_options.viscosity"),
    (lambda: LossOptions(input_state=-1), "trainer.loss_options.input_state"),
    (lambda: LossOptions.from_mapping({"nu": 0.1}), "trainer.loss_options: unknown option(s) ['nu']"),
    (lambda: check_loss("h1", "finetune.loss"), "finetune.loss: unknown loss 'h1'"),
])
def test_bad_configuration_is_one_config_error_line(build, message):
    with pytest.raises(ConfigError) as err:
        build()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_inputs_and_grids_are_refused():
    grid = Grid.uniform((8, 8), "vertex")
    u = torch.zeros(2, 1, 8, 8)
    with pytest.raises(InputShapeError, match="needs the model input"):
        Loss("darcy_residual")(u, u, grid)
    with pytest.raises(InputShapeError, match="physical"):
        Loss("darcy_residual")(u, u, grid, torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError, match="Dirichlet|dirichlet|boundary"):
        darcy_residual(u, torch.ones_like(u), Grid.uniform((8, 8), "vertex", boundary="neumann"))
    sphere = Grid.uniform((8, 14), "equiangular")
    with pytest.raises(ConfigError, match="axis 'x' is equiangular"):
        Loss("rel_h_minus1")(torch.zeros(1, 1, 8, 14), torch.ones(1, 1, 8, 14), sphere)
    with pytest.raises(ConfigError, match="1-D periodic grid"):
        Loss("burgers_residual", options=LossOptions(viscosity=0.1, dt=0.1))(u, u, grid)
    with pytest.raises(InputShapeError, match="must both be"):
        Loss("sobolev")(u, torch.zeros(2, 1, 8, 7), grid)
    assert set(LOSSES) >= {"rel_l2", "rel_h1", "mse", "sobolev", "rel_sobolev", "h_minus1", "rel_h_minus1", "darcy_residual", "burgers_residual"}
