"""Weight parameterizations of a spectral convolution: the seam for factorized weights.

A :class:`SpectralWeight` owns the parameters of one spectral convolution and applies them
to the kept block of coefficients. ``SpectralConv`` only calls ``weight(x_modes, modes)``,
so dense, CP, Tucker or tensor-train weights slot in without touching it.

Full weight shape (complex): ``(Cin, Cout, 2·m_1, ..., 2·m_{d-1}, m_d)``, each non-last mode
axis ordered ``[0..m-1, -m..-1]`` (see :mod:`neuralops.spectral.modes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neuralops.errors import ConfigError
from neuralops.spectral.contract import contract_dense
from neuralops.spectral.modes import AxisModes, is_full, weight_mode_shape


def select_modes(tensor: torch.Tensor, modes: Sequence[AxisModes], n_modes: Sequence[int], first_mode_dim: int) -> torch.Tensor:
    """Slice a tensor whose dims ``first_mode_dim...`` are full mode axes down to ``modes``."""
    if is_full(modes, n_modes):
        return tensor
    last = len(n_modes) - 1
    for axis, (sel, m) in enumerate(zip(modes, n_modes)):
        dim = first_mode_dim + axis
        if axis == last:
            tensor = tensor.narrow(dim, 0, sel.n_pos)
        elif sel.n_pos != m or sel.n_neg != m:
            parts = [tensor.narrow(dim, 0, sel.n_pos)]
            if sel.n_neg:
                parts.append(tensor.narrow(dim, 2 * m - sel.n_neg, sel.n_neg))
            tensor = torch.cat(parts, dim=dim)
    return tensor


class SpectralWeight(nn.Module):
    """Base class: owns the parameters, applies them to kept modes.

    Subclasses implement :meth:`dense` (the full complex weight, for the reconstructed path
    and for tests) and may override :meth:`forward` with a cheaper contraction.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int]):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ConfigError(f"spectral weight channels must be positive, got in={in_channels}, out={out_channels}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.n_modes = tuple(int(m) for m in n_modes)

    @property
    def full_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.out_channels) + weight_mode_shape(self.n_modes)

    def dense(self, modes: Sequence[AxisModes] | None = None) -> torch.Tensor:
        """The complex weight ``(Cin, Cout, *K)`` restricted to ``modes`` (all when None)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        """``x: (B, Cin, *K)`` complex kept coefficients -> ``(B, Cout, *K)``."""
        return contract_dense(x, self.dense(modes))


class DenseSpectralWeight(SpectralWeight):
    """A dense complex weight, stored as a real parameter with a trailing (real, imag) axis.

    Storing real values keeps optimizers, weight decay, gradient clipping, DDP and
    safetensors on their well-trodden real-tensor paths.

    Args:
        init_std: standard deviation of the complex entries; ``None`` uses ``sqrt(2/(Cin+Cout))``.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int], init_std: float | None = None):
        super().__init__(in_channels, out_channels, n_modes)
        std = (2.0 / (in_channels + out_channels)) ** 0.5 if init_std is None else float(init_std)
        # Each of the real and imaginary parts gets std/sqrt(2), so |w| has the given std.
        self.weight = nn.Parameter(torch.randn(*self.full_shape, 2) * (std / 2**0.5))

    def dense(self, modes: Sequence[AxisModes] | None = None) -> torch.Tensor:
        weight = torch.view_as_complex(self.weight)
        if modes is None:
            return weight
        return select_modes(weight, modes, self.n_modes, first_mode_dim=2)


WEIGHTS: dict[str, type[SpectralWeight]] = {"dense": DenseSpectralWeight}


def build_spectral_weight(
    in_channels: int, out_channels: int, n_modes: Sequence[int], factorization: str = "dense", **options
) -> SpectralWeight:
    """Build the weight registered as ``factorization`` with its own ``options``.

    Unknown options raise :class:`ConfigError` naming them (they are never silently dropped).
    """
    key = str(factorization).lower()
    if key not in WEIGHTS:
        raise ConfigError(f"unknown spectral weight factorization {factorization!r}; available: {', '.join(sorted(WEIGHTS))}")
    cls = WEIGHTS[key]
    try:
        return cls(in_channels, out_channels, n_modes, **options)
    except TypeError as err:
        raise ConfigError(f"spectral weight {key!r}: invalid option(s) {sorted(options)}: {err}") from None


def build_layer_weights(
    n_layers: int, in_channels: int, out_channels: int, n_modes: Sequence[int], spec: dict | None = None
) -> list[SpectralWeight]:
    """The spectral weights of ``n_layers`` layers of a model, from a plain spec such as
    ``{"factorization": "dense"}``. This is the one place models get their weights from, so
    parameterizations that couple layers can be added here."""
    spec = dict(spec or {})
    factorization = spec.pop("factorization", "dense")
    return [build_spectral_weight(in_channels, out_channels, n_modes, factorization, **spec) for _ in range(n_layers)]
