"""Evaluation metrics: raw per-sample (and per-channel) errors first, reductions explicit.

Every function takes ``pred, target: (B, C, *grid)`` on a uniform grid and returns one value
per sample, shape ``(B,)``, or per sample and channel, shape ``(B, C)``. Means over a test set
are taken by the caller, weighting every sample equally. Relative errors are ratios of norms on
the same grid, so they are comparable across resolutions (uniform quadrature weights cancel).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from neuralops.errors import ConfigError

EPS = 1e-12


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖p − y‖₂ / ‖y‖₂`` over all channels and grid points, per sample: ``(B,)``."""
    return torch.linalg.vector_norm(_flat(pred - target), dim=1) / (torch.linalg.vector_norm(_flat(target), dim=1) + EPS)


def relative_l2_per_channel(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative L2 error of each channel separately: ``(B, C)`` (PDEBench's nRMSE per channel)."""
    diff = (pred - target).flatten(2)
    return torch.linalg.vector_norm(diff, dim=2) / (torch.linalg.vector_norm(target.flatten(2), dim=2) + EPS)


def rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error over channels and grid points, per sample: ``(B,)`` (data units)."""
    return torch.sqrt(torch.mean(_flat(pred - target) ** 2, dim=1))


def max_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Largest absolute error over channels and grid points, per sample: ``(B,)`` (a true L∞)."""
    return torch.amax(_flat((pred - target).abs()), dim=1)


def _gradients(x: torch.Tensor) -> list[torch.Tensor]:
    """Finite-difference derivatives along every spatial axis in units of the unit domain.

    Central differences inside, one-sided at the ends (no periodicity assumed), with spacing
    ``1/(N-1)`` — the vertex-grid convention.
    """
    spacing = [1.0 / max(n - 1, 1) for n in x.shape[2:]]
    dims = tuple(range(2, x.ndim))
    grads = torch.gradient(x, spacing=spacing, dim=dims)
    return list(grads)


def relative_h1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative H1 error ``‖e‖_H1 / ‖y‖_H1`` per sample, ``‖u‖²_H1 = ‖u‖² + Σ_d ‖∂_d u‖²``.

    Derivatives by finite differences without assuming periodicity (unlike neuraloperator's
    H1Loss), so it is meaningful for Dirichlet problems such as Darcy flow. The grid is
    taken as a vertex grid on the unit domain.
    """
    def h1_sq(u: torch.Tensor) -> torch.Tensor:
        n = u[0].numel()
        total = torch.sum(_flat(u) ** 2, dim=1) / n
        for g in _gradients(u):
            total = total + torch.sum(_flat(g) ** 2, dim=1) / n
        return total

    return torch.sqrt(h1_sq(pred - target)) / (torch.sqrt(h1_sq(target)) + EPS)


METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "rel_l2": relative_l2,
    "rel_h1": relative_h1,
    "rmse": rmse,
    "max_error": max_error,
}


def metric(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The per-sample metric registered as ``name``."""
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; available: {', '.join(sorted(METRICS))}")
    return METRICS[name]


class MetricAccumulator:
    """Accumulates per-sample metric values over batches; ``means()`` weights samples equally."""

    def __init__(self, names: list[str]):
        self.functions = {name: metric(name) for name in names}
        self.sums = {name: 0.0 for name in names}
        self.count = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred, target = pred.double(), target.double()
        for name, fn in self.functions.items():
            self.sums[name] += float(fn(pred, target).sum())
        self.count += pred.shape[0]

    def means(self) -> dict[str, float]:
        if self.count == 0:
            raise ConfigError("no samples were evaluated (the evaluation split is empty)")
        return {name: total / self.count for name, total in self.sums.items()}
