"""Fully connected networks acting on the last tensor axis, and the activation registry."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neuralops.errors import ConfigError

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


def build_activation(name: str, option: str = "activation") -> nn.Module:
    """Return a fresh activation module by name; unknown names raise :class:`ConfigError` naming ``option``."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"{option}={name!r} is not a known activation; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Linear layers with an activation between them: ``(..., in_features) -> (..., out_features)``.

    ``hidden`` lists the widths of the hidden layers (empty: a single linear map). The last
    layer is linear unless ``last_activation`` is set.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "gelu",
        last_activation: bool = False,
    ) -> None:
        super().__init__()
        widths = [int(in_features), *(int(h) for h in hidden), int(out_features)]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(widths) - 2 or last_activation:
                layers.append(build_activation(activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
