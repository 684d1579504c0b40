"""Fully connected networks acting on the last tensor axis: ``(..., in_features) -> (..., out_features)``.

For maps acting on the channel axis of ``(B, C, *grid)`` fields use
:mod:`neuralops.layers.pointwise` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neuralops.layers.pointwise import activation


class MLP(nn.Module):
    """Linear layers with an activation between them.

    ``hidden`` lists the widths of the hidden layers (empty: one linear map). The last layer
    is linear unless ``last_activation`` is set. ``activation_name`` is looked up in
    :data:`neuralops.layers.pointwise.ACTIVATIONS`.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation_name: str = "gelu",
        last_activation: bool = False,
    ) -> None:
        super().__init__()
        widths = [int(in_features), *(int(h) for h in hidden), int(out_features)]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = activation(activation_name)
        self.last_activation = bool(last_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1 or self.last_activation:
                x = self.act(x)
        return x
