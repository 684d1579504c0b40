"""Training losses: a batch mean of per-sample errors from :mod:`neuralops.training.metrics`.

Unlike neuraloperator's losses, the reduction is a mean over samples (not a sum over batch and
channels), so the loss value does not change with batch size or channel count.
"""

from __future__ import annotations

import torch

from neuralops.errors import ConfigError
from neuralops.training.metrics import relative_h1, relative_l2


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((pred - target).reshape(pred.shape[0], -1) ** 2, dim=1)


LOSSES = {"rel_l2": relative_l2, "rel_h1": relative_h1, "mse": mse}


class Loss(torch.nn.Module):
    """``loss(pred, target)`` = mean over the batch of the per-sample error named ``name``."""

    def __init__(self, name: str = "rel_l2"):
        super().__init__()
        if name not in LOSSES:
            raise ConfigError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
        self.name = name
        self.per_sample = LOSSES[name]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_sample(pred, target).mean()
