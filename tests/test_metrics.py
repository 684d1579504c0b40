"""Metrics of :mod:`neuralops.evaluation.metrics` against independent numpy implementations.

The references below build their own quadrature weights (trapezoid, midpoint, Gauss–Legendre
from ``numpy.polynomial.legendre``, Clenshaw–Curtis by solving the Chebyshev moment equations),
derivatives (``np.gradient`` with coordinates; wrap-padding on periodic axes), spectra
(``np.fft.fftn`` and explicit loops over the wavenumber shells) and boundary sets (loops over
every index). Inputs are fresh float64 random fields; agreement is required to a relative
tolerance of 1e-10 (``RTOL``), far below any modelling difference and above float64 round-off.
"""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neuralops.errors import ConfigError, InputShapeError
from neuralops.evaluation.metrics import (
    CHANNEL_METRICS,
    METRICS,
    MetricAccumulator,
    batch_grid,
    check_metrics,
    metric,
    relative_h1,
    relative_l2,
)
from neuralops.evaluation.resolution import evaluate_loader
from neuralops.grid import Grid, GridAxis
from neuralops.training.losses import Loss
from neuralops.training.trainer import TrainerConfig

RTOL = 1e-10
VRMSE_EPS = 1e-7  # The Well's eps

GRIDS = {
    "vertex_2d": Grid([GridAxis("x", "vertex", 7, -1.0, 2.0), GridAxis("y", "vertex", 9, 0.0, 0.5)]),
    "cell_3d": Grid([GridAxis("x", "cell", 4, 0.0, 1.0), GridAxis("y", "cell", 5, 0.0, 2.0), GridAxis("z", "cell", 6, 1.0, 3.0)]),
    "periodic_1d": Grid([GridAxis("x", "periodic", 64, 0.0, 2 * math.pi)]),
    "vertex_periodic_2d": Grid([GridAxis("x", "vertex", 30, 0.0, 3.0), GridAxis("y", "periodic", 32, 0.0, 2.0)]),
    "equiangular": Grid.uniform((9, 16), "equiangular"),
    "legendre_gauss": Grid.uniform((8, 16), "legendre_gauss"),
}


# -- independent references ----------------------------------------------------------------
def clenshaw_curtis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Colatitudes ``π j/(n-1)`` and the interpolatory weights of ``∫ f sin θ dθ = ∫ f dx``."""
    theta = np.pi * np.arange(n) / (n - 1)
    k = np.arange(n)
    moments = np.zeros(n)
    moments[::2] = 2.0 / (1.0 - k[::2].astype(float) ** 2)
    weights = np.linalg.solve(np.polynomial.chebyshev.chebvander(np.cos(theta), n - 1).T, moments)
    return theta, weights


def axis_nodes(axis: GridAxis) -> tuple[np.ndarray, np.ndarray]:
    """Physical nodes and quadrature weights of one axis."""
    n, a, length = axis.size, axis.start, axis.length
    if axis.kind == "vertex":
        w = np.full(n, length / (n - 1))
        w[[0, -1]] /= 2
        return np.linspace(a, a + length, n), w
    if axis.kind in ("cell", "periodic"):
        offset = 0.5 if axis.kind == "cell" else 0.0
        return a + (np.arange(n) + offset) * length / n, np.full(n, length / n)
    if axis.kind == "equiangular":
        return clenshaw_curtis(n)
    x, w = np.polynomial.legendre.leggauss(n)
    return np.arccos(x[::-1]), w[::-1]


def np_weights(grid: Grid) -> np.ndarray:
    w = np.ones(())
    for axis in grid.axes:
        w = np.multiply.outer(w, axis_nodes(axis)[1])
    return w / w.sum()


def np_mean(x: np.ndarray, grid: Grid) -> np.ndarray:
    """Weighted spatial mean ``(B, C, *S) → (B, C)``."""
    return (x * np_weights(grid)).reshape(*x.shape[:2], -1).sum(-1)


def np_gradients(u: np.ndarray, grid: Grid) -> list[np.ndarray]:
    out = []
    for d, axis in enumerate(grid.axes):
        nodes = axis_nodes(axis)[0]
        if axis.kind == "periodic":
            pad = [(0, 0)] * u.ndim
            pad[d + 2] = (1, 1)
            g = np.gradient(np.pad(u, pad, mode="wrap"), axis.length / axis.size, axis=d + 2)
            out.append(np.take(g, np.arange(1, axis.size + 1), axis=d + 2))
        else:
            out.append(np.gradient(u, nodes, axis=d + 2, edge_order=2))
    return out


def np_h1_sq(u: np.ndarray, grid: Grid) -> np.ndarray:
    return np_mean(u**2, grid) + sum(np_mean(g**2, grid) for g in np_gradients(u, grid))


def np_frmse(e: np.ndarray, grid: Grid, low: float, high: float) -> np.ndarray:
    """Per-channel fRMSE ``(B, C)`` by explicit loops over the shells."""
    spatial = tuple(range(2, e.ndim))
    power = np.abs(np.fft.fftn(e, axes=spatial)) ** 2
    half = [(n + 1) // 2 for n in grid.shape]  # indices i < n/2
    n_shells = min(half)
    shells = np.zeros((*e.shape[:2], n_shells))
    for index in itertools.product(*(range(h) for h in half)):
        k = int(np.floor(np.sqrt(sum(i * i for i in index))))
        if k < n_shells:
            shells[..., k] += power[(..., *index)]
    band = [k for k in range(n_shells) if low <= k < high]
    if not band:
        return np.full(e.shape[:2], np.nan)
    return np.sqrt(shells[..., band].mean(-1)) / np.prod(grid.shape) * np.prod(grid.lengths)


def np_brmse(e: np.ndarray, grid: Grid) -> np.ndarray:
    walls = [d for d, a in enumerate(grid.axes) if a.kind in ("vertex", "cell")]
    points = [i for i in np.ndindex(*grid.shape) if any(i[d] in (0, grid.shape[d] - 1) for d in walls)]
    return np.sqrt(np.mean([e[(..., *i)] ** 2 for i in points], axis=0))


def reference(name: str, p: np.ndarray, y: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``(per sample (B,), per channel (B, C))`` of metric ``name``."""
    e = p - y
    ms_e, ms_y = np_mean(e**2, grid), np_mean(y**2, grid)
    if name in ("rel_l2", "nrmse"):
        channel = np.sqrt(ms_e / ms_y)
        sample = np.sqrt(ms_e.sum(1) / ms_y.sum(1)) if name == "rel_l2" else channel.mean(1)
        return sample, channel
    if name == "rel_h1":
        h1_e, h1_y = np_h1_sq(e, grid), np_h1_sq(y, grid)
        return np.sqrt(h1_e.sum(1) / h1_y.sum(1)), np.sqrt(h1_e / h1_y)
    if name == "mse":
        return ms_e.mean(1), ms_e
    if name == "rmse":
        return np.sqrt(ms_e.mean(1)), np.sqrt(ms_e)
    if name == "max_error":
        channel = np.abs(e).reshape(*e.shape[:2], -1).max(-1)
        return channel.max(1), channel
    if name == "vrmse":
        variance = np_mean((y - np_mean(y, grid)[(..., *[None] * grid.n_dims)]) ** 2, grid)
        channel = np.sqrt(ms_e / (variance + VRMSE_EPS))
        return channel.mean(1), channel
    if name.startswith("frmse_"):
        low, high = {"frmse_low": (0, 4), "frmse_mid": (4, 12), "frmse_high": (12, np.inf)}[name]
        channel = np_frmse(e, grid, low, high)
        return channel.mean(1), channel
    assert name == "brmse"
    channel = np_brmse(e, grid)
    return np.sqrt((channel**2).mean(1)), channel


def random_fields(grid: Grid, seed: int, batch: int = 3, channels: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(batch, channels, *grid.shape)) + rng.normal(size=(batch, channels, *[1] * grid.n_dims))
    p = y + 0.3 * rng.normal(size=y.shape)
    return torch.from_numpy(p), torch.from_numpy(y)


# -- every metric against its reference ------------------------------------------------------
def test_grid_quadrature_matches_independent_weights():
    for grid in GRIDS.values():
        np.testing.assert_allclose(grid.weights().numpy(), np_weights(grid), rtol=RTOL, atol=1e-15)
        for axis in grid.axes:
            np.testing.assert_allclose(axis.coords, axis_nodes(axis)[0], rtol=RTOL, atol=1e-14)


@pytest.mark.parametrize("grid_name", list(GRIDS))
def test_every_metric_matches_numpy_reference(grid_name):
    grid = GRIDS[grid_name]
    p, y = random_fields(grid, seed=sorted(GRIDS).index(grid_name))
    for name in METRICS:
        if name == "brmse" and (grid.is_sphere or grid.periodic):
            with pytest.raises(ConfigError, match="no boundary"):
                METRICS[name](p, y, grid)
            continue
        sample, channel = reference(name, p.numpy(), y.numpy(), grid)
        np.testing.assert_allclose(METRICS[name](p, y, grid).numpy(), sample, rtol=RTOL, err_msg=f"{name} on {grid_name}")
        np.testing.assert_allclose(CHANNEL_METRICS[name](p, y, grid).numpy(), channel, rtol=RTOL, err_msg=f"{name} per channel on {grid_name}")


def test_frmse_bands_exist_only_below_half_the_smallest_size():
    grid = GRIDS["vertex_2d"]  # 7 x 9: shells k < 4, so only the low band
    p, y = random_fields(grid, seed=7)
    assert torch.isfinite(METRICS["frmse_low"](p, y, grid)).all()
    assert torch.isnan(METRICS["frmse_mid"](p, y, grid)).all() and torch.isnan(METRICS["frmse_high"](p, y, grid)).all()
    assert torch.isfinite(METRICS["frmse_high"](*random_fields(GRIDS["periodic_1d"], seed=8), GRIDS["periodic_1d"])).all()


def test_sphere_metrics_are_area_weighted():
    """An error near the north pole is a small part of the sphere's area but many grid points."""
    grid = Grid.uniform((17, 32), "equiangular")
    theta = torch.from_numpy(axis_nodes(grid.axes[0])[0])[:, None].expand(grid.shape)
    rng = np.random.default_rng(11)
    y = 1.0 + 0.1 * torch.from_numpy(rng.normal(size=(2, 1, *grid.shape)))
    p = y + torch.exp(-((theta / 0.4) ** 2))
    e, yy = (p - y).numpy(), y.numpy()
    area = np.sqrt(np_mean(e**2, grid)[:, 0] / np_mean(yy**2, grid)[:, 0])
    unweighted = np.sqrt((e**2).mean(axis=(1, 2, 3)) / (yy**2).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(relative_l2(p, y, grid).numpy(), area, rtol=RTOL)
    assert (unweighted > 2 * area).all()


def _analytic_h1_ratio(start: tuple[float, float], length: tuple[float, float]) -> float:
    """‖e‖_H1 / ‖y‖_H1 of the fields of :func:`_fields` by 64² Gauss–Legendre points."""
    x, wx = np.polynomial.legendre.leggauss(64)
    xs = [a + (x + 1) * l / 2 for a, l in zip(start, length)]
    w = np.multiply.outer(wx * length[0] / 2, wx * length[1] / 2)
    X, Y = np.meshgrid(*xs, indexing="ij")
    ky = 2 * np.pi / length[1]
    y, yx, yy = np.sin(1.3 * X) * np.cos(ky * Y), 1.3 * np.cos(1.3 * X) * np.cos(ky * Y), -ky * np.sin(1.3 * X) * np.sin(ky * Y)
    e, ex, ey = 0.2 * np.exp(-X) * np.sin(2 * ky * Y), -0.2 * np.exp(-X) * np.sin(2 * ky * Y), 0.4 * ky * np.exp(-X) * np.cos(2 * ky * Y)
    return math.sqrt((w * (e**2 + ex**2 + ey**2)).sum() / (w * (y**2 + yx**2 + yy**2)).sum())


def _fields(grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    X, Y = np.meshgrid(*(axis_nodes(a)[0] for a in grid.axes), indexing="ij")
    ky = 2 * np.pi / grid.axes[1].length
    y = np.sin(1.3 * X) * np.cos(ky * Y)
    e = 0.2 * np.exp(-X) * np.sin(2 * ky * Y)
    return torch.from_numpy(y + e)[None, None], torch.from_numpy(y)[None, None]


def test_rel_h1_converges_to_the_analytic_ratio_at_second_order():
    """A Dirichlet-like axis (vertex, x ∈ [0.5, 3.5]) times a periodic one (length 2)."""
    start, length = (0.5, 0.0), (3.0, 2.0)
    exact = _analytic_h1_ratio(start, length)
    errors = []
    for n in (16, 32, 64):
        grid = Grid([GridAxis("x", "vertex", n + 1, start[0], length[0]), GridAxis("y", "periodic", n, start[1], length[1])])
        errors.append(abs(float(relative_h1(*_fields(grid), grid)[0]) - exact))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 5e-3 * exact
    assert np.all((orders > 1.8) & (orders < 2.3)), orders


def test_zero_and_perfect_predictions():
    grid = GRIDS["vertex_periodic_2d"]  # every frmse band exists
    _, y = random_fields(grid, seed=3)
    np.testing.assert_allclose(relative_l2(torch.zeros_like(y), y, grid).numpy(), 1.0, rtol=1e-10)
    for name, fn in METRICS.items():
        assert (fn(y, y, grid) == 0).all(), name


def test_shape_errors_name_the_metric():
    grid = GRIDS["vertex_2d"]
    p, y = random_fields(grid, seed=4)
    with pytest.raises(InputShapeError, match=r"pred \(3, 2, 7, 9\) and target \(3, 2, 7, 8\)"):
        METRICS["rmse"](p, y[..., :-1], grid)
    with pytest.raises(InputShapeError, match=r"for the grid \(4, 5, 6\)"):
        relative_l2(p, y, GRIDS["cell_3d"])
    small = Grid.uniform((2, 9))
    with pytest.raises(InputShapeError, match="at least 3 points along axis 'x'"):
        relative_h1(*random_fields(small, seed=5), small)


# -- registry, accumulator, configuration ----------------------------------------------------
def test_unknown_metric_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available: .*brmse.*rel_h1"):
        metric("rel_l3")
    with pytest.raises(ConfigError, match=r"^trainer.metrics: unknown metric\(s\) \['l2'\]"):
        TrainerConfig(metrics=["rel_l2", "l2"])
    with pytest.raises(ConfigError, match="'brmse' is undefined"):
        check_metrics(["brmse"], GRIDS["periodic_1d"], "trainer.metrics")
    assert check_metrics(("brmse",), GRIDS["vertex_2d"]) == ["brmse"]
    with pytest.raises(ConfigError, match="trainer.loss: unknown loss 'rmse'; available: mse, rel_h1, rel_l2"):
        TrainerConfig(loss="rmse")


def test_loss_is_the_batch_mean_of_the_metric_on_the_grid():
    grid = GRIDS["legendre_gauss"]
    p, y = random_fields(grid, seed=12)
    for name in ("mse", "rel_h1", "rel_l2"):
        assert float(Loss(name)(p, y, grid)) == pytest.approx(reference(name, p.numpy(), y.numpy(), grid)[0].mean(), rel=RTOL)


def test_accumulator_weights_samples_equally_and_keeps_channels():
    grid = GRIDS["vertex_periodic_2d"]
    names = ["rel_l2", "max_error", "frmse_high"]
    batches = [random_fields(grid, seed=20, batch=3), random_fields(grid, seed=21, batch=1)]
    accumulator = MetricAccumulator(names)
    for p, y in batches:
        accumulator.update(p.float(), y.float(), grid)
    for name in names:
        values = np.concatenate([reference(name, p.numpy(), y.numpy(), grid)[0] for p, y in batches])
        channels = np.concatenate([reference(name, p.numpy(), y.numpy(), grid)[1] for p, y in batches])
        assert accumulator.means()[name] == pytest.approx(values.mean(), rel=1e-6)  # float32 inputs
        per_channel = accumulator.channel_means(["u", "v"])[name]
        np.testing.assert_allclose([per_channel["u"], per_channel["v"]], channels.mean(0), rtol=1e-6)
    with pytest.raises(InputShapeError, match="3 channel names"):
        accumulator.channel_means(["a", "b", "c"])
    with pytest.raises(ConfigError, match="evaluation split is empty"):
        MetricAccumulator(names).means()


def test_evaluate_loader_scores_on_the_given_grid_at_every_batch_resolution():
    """Batches at two resolutions of one sphere are each scored on the resized grid."""
    grid = Grid.uniform((17, 32), "equiangular")
    items = []
    for shape, seed in (((17, 32), 30), ((9, 16), 31)):
        p, y = random_fields(grid.resized(shape), seed=seed, batch=2, channels=1)
        items.append({"x": p.float(), "y": y.float()})
    result = evaluate_loader(torch.nn.Identity(), DataLoader(items, batch_size=None), ["rel_l2"], grid)
    expected = np.concatenate([reference("rel_l2", b["x"].double().numpy(), b["y"].double().numpy(), batch_grid(grid, b["y"].shape[2:]))[0] for b in items])
    assert result["rel_l2"] == pytest.approx(expected.mean(), rel=1e-6)
    assert evaluate_loader(torch.nn.Identity(), DataLoader(items, batch_size=None), ["rel_l2"])["rel_l2"] != pytest.approx(expected.mean(), rel=1e-3)
    assert batch_grid(None, (5, 6)) == Grid.uniform((5, 6), "vertex")


def test_evaluation_does_not_import_training():
    package = Path(__file__).resolve().parents[1] / "neuralops" / "evaluation"
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(m == "neuralops.training" or m.startswith("neuralops.training.") for m in modules), f"{path.name} imports {modules}"
