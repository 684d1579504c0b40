"""Training losses: a batch mean of per-sample errors from :mod:`neuralops.evaluation.metrics`.

Unlike neuraloperator's losses, the reduction is a mean over samples (not a sum over batch and
channels), so the loss value does not change with batch size or channel count. Every loss is
computed on the batch's :class:`~neuralops.grid.Grid` (quadrature weights, physical spacings).
"""

from __future__ import annotations

import torch

from neuralops.errors import ConfigError
from neuralops.evaluation.metrics import metric
from neuralops.grid import Grid

LOSSES = ("mse", "rel_h1", "rel_l2")
"""Metric names that can be trained on (each is also the validation metric of its run)."""


def check_loss(name: str, option: str = "trainer.loss") -> str:
    """Return ``name`` if it is one of :data:`LOSSES`; :class:`ConfigError` naming ``option`` otherwise."""
    if name not in LOSSES:
        raise ConfigError(f"{option}: unknown loss {name!r}; available: {', '.join(LOSSES)}")
    return name


class Loss(torch.nn.Module):
    """``loss(pred, target, grid)`` = mean over the batch of the per-sample metric ``name``.

    ``pred, target: (B, C, *grid.shape)``; returns a scalar.

    Raises:
        ConfigError: ``name`` is not one of :data:`LOSSES`.
    """

    def __init__(self, name: str = "rel_l2"):
        super().__init__()
        self.name = check_loss(name)
        self.per_sample = metric(name)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
        return self.per_sample(pred, target, grid).mean()
