"""Pointwise (1×1) layers acting on the channel axis of ``(B, C, *grid)`` tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuralops.errors import ConfigError

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "silu": F.silu, "sin": torch.sin}


def activation(name: str):
    """The activation function registered as ``name``."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; available: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]


class PointwiseLinear(nn.Module):
    """A 1×1 convolution on any grid: ``(B, Cin, *grid) -> (B, Cout, *grid)``.

    Computed as one batched matrix product with the weight broadcast over the batch, which on
    CPU runs forward+backward 1.5–2× faster than oneDNN's 1×1 ``conv1d`` for FNO-sized inputs.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        bound = 1.0 / in_channels**0.5
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        flat = x.reshape(batch, channels, -1)
        weight = self.weight.expand(batch, -1, -1)
        if self.bias is None:
            y = torch.bmm(weight, flat)
        else:
            y = torch.baddbmm(self.bias.view(1, -1, 1).expand(batch, -1, flat.shape[-1]), weight, flat)
        return y.reshape(batch, -1, *x.shape[2:])


class ChannelMLP(nn.Module):
    """Two pointwise layers with an activation between: ``Cin -> hidden -> Cout``."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, activation_name: str = "gelu"):
        super().__init__()
        self.fc1 = PointwiseLinear(in_channels, hidden_channels)
        self.fc2 = PointwiseLinear(hidden_channels, out_channels)
        self.act = activation(activation_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SoftGating(nn.Module):
    """Per-channel scaling ``x · w_c`` (a skip connection with one weight per channel)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view((1, -1) + (1,) * (x.ndim - 2))


def make_skip(kind: str | None, channels: int) -> nn.Module | None:
    """Skip connection by name: ``"linear"`` (1×1, no bias), ``"soft-gating"``, ``"identity"`` or None."""
    if kind is None or kind == "none":
        return None
    if kind == "linear":
        return PointwiseLinear(channels, channels, bias=False)
    if kind == "soft-gating":
        return SoftGating(channels)
    if kind == "identity":
        return nn.Identity()
    raise ConfigError(f"unknown skip {kind!r}; expected 'linear', 'soft-gating', 'identity' or null")
