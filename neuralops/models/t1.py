"""Transform Once (T1; Poli et al., NeurIPS 2022): one transform in, every layer in coefficient space.

Forward pass (``x: (B, Cin, *grid)``, 1-D to 3-D):

1. optional coordinate channels, then a pointwise linear lift to ``hidden_channels``;
2. **one** forward transform (``"dct"``: DCT-II, or ``"fft"``) keeping the block of ``n_modes``
   (DCT: ``(m_1, .., m_d)`` real coefficients; FFT: ``(2m_1, .., 2m_{d-1}, m_d)`` complex);
3. ``n_layers`` × :class:`T1Layer`: per-mode channel mixing ``einsum('bi…,io…->bo…')``,
   activation, optional dense frequency mixing along each axis (per channel), residual add;
4. a per-coefficient head (``hidden -> projection_channels -> out``, ``head_activation``
   between, ``sin`` as in the paper);
5. **one** inverse transform onto the output grid.

Resolution independence
-----------------------
The core's transforms use the ``"forward"`` normalization: the coefficients are those of the
cosine (or Fourier) series of the field, ``a_k``, which do not depend on the grid for a
band-limited field (orthonormal DCT coefficients are ``sqrt(N/2)·a_k``, growing with the grid).
Everything between the two transforms acts on a **fixed block** of these coefficients: a grid
with fewer coefficients than ``n_modes`` contributes zeros for the missing ones (zero-padding,
i.e. they are taken as absent from the band-limited field), and an output grid that resolves
fewer keeps the first ones (cropping). Because the pointwise nonlinearities see coefficients
of the same size at every resolution, the same weights evaluate the same operator on any
grid, and ``output_shape`` evaluates the output series on another grid. Coordinates are
sampled where the transform's grid lives: cell centres ``(j + 1/2)/N`` for the DCT, ``j/N``
for the FFT.

Initialization (variance preserving, the paper's ``fdm_init_scale``): channel-mixing weights
have ``std = gain·sqrt(N/(fan_in·M))`` with ``M`` the number of coefficients in the block,
gain 1 for the DCT and 1/2 for the FFT, and ``N`` the number of points of ``init_grid`` (the
training grid; ``None`` uses ``N = M``, i.e. a field whose energy lies in the kept block).
``N`` enters only the initial scale, never the forward pass. Frequency-mixing matrices start
as the identity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from neuralops.errors import ConfigError
from neuralops.grid import Grid
from neuralops.layers.pointwise import PointwiseLinear
from neuralops.layers.pointwise import activation as activation_function
from neuralops.models.base import NeuralOperator, n_modes_from_grid
from neuralops.models.slicing import DEFAULT_BATCH_SLICE_MIB, check_batch_slice_mib, in_batch_slices, samples_per_slice
from neuralops.spectral.contract import contract_dense
from neuralops.spectral.conv import transform_kept_modes, transform_layout
from neuralops.spectral.modes import normalize_n_modes, weight_mode_shape
from neuralops.spectral.precision import half_to_float32, transform_precision
from neuralops.spectral.transforms import build_transform
from neuralops.spectral.weights import embed_modes, parameter_value, select_modes, weight_parameter

T1_TRANSFORMS = {"dct": 1.0, "fft": 0.5}  # transform name -> variance-preserving init gain


def pointwise_nonlinear(fn, z: torch.Tensor) -> torch.Tensor:
    """Apply a real function to real coefficients, or to the real and imaginary parts of complex ones."""
    return torch.complex(fn(z.real), fn(z.imag)) if z.is_complex() else fn(z)


class T1Layer(nn.Module):
    """One coefficient-space layer on ``z: (B, C, *block)``: ``z + FreqMix(σ(ChannelMix(z)))``.

    Channel mixing has a weight per coefficient, ``(C, C, *block)``; frequency mixing has, for
    each axis ``j``, a matrix ``(block_j, block_j, C)`` applied along that axis per channel.
    Weights are complex when the coefficients are.
    """

    def __init__(
        self, channels: int, block: Sequence[int], complex_valued: bool, act: str, frequency_mixing: bool, init_std: float
    ):
        super().__init__()
        self.real = not complex_valued
        self.channel_weight = weight_parameter((channels, channels, *block), init_std, self.real)
        self.act = activation_function(act)
        self.frequency_weights = nn.ParameterList()
        if frequency_mixing:
            for size in block:
                identity = torch.eye(size).unsqueeze(-1).expand(size, size, channels)
                stored = identity if self.real else torch.stack([identity, torch.zeros_like(identity)], dim=-1)
                self.frequency_weights.append(nn.Parameter(stored.clone()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = contract_dense(z, parameter_value(self.channel_weight, self.real))
        y = pointwise_nonlinear(self.act, y)
        for axis, weight in enumerate(self.frequency_weights):
            mix = parameter_value(weight, self.real)  # (out index, in index, channel)
            y = torch.movedim(torch.einsum("bc...k,jkc->bc...j", torch.movedim(y, 2 + axis, -1), mix), -1, 2 + axis)
        return z + y


class T1(NeuralOperator, name="t1"):
    """Transform Once on 1-D to 3-D grids (dimension = ``len(n_modes)``); see the module docstring.

    Args:
        in_channels, out_channels: physical input/output channels.
        n_modes: coefficients kept per axis (non-negative count; FFT: Fourier convention of
            :mod:`neuralops.spectral.modes`).
        hidden_channels: width in coefficient space.
        n_layers: number of :class:`T1Layer`.
        projection_channels: hidden width of the per-coefficient head.
        transform: ``"dct"`` (non-periodic data, cell-centred grid) or ``"fft"`` (periodic).
        activation: activation inside the layers (``"gelu"`` in the paper's configs).
        head_activation: activation of the head (``"sin"`` in the paper).
        frequency_mixing: dense mixing along each coefficient axis in every layer.
        grid_embedding: append the coordinates of the transform's grid as input channels.
        init_grid: the grid ``N`` of the variance-preserving init (e.g. the training grid), or null.
        batch_slice_mib: run the batch in slices whose lifted field (``samples ×
            hidden_channels × grid points``, the widest) holds at most this many MiB (None: the
            whole batch at once); samples are independent, so the result is the whole batch's
            (:mod:`neuralops.models.slicing`). Only CPU tensors are sliced, and not under
            ``torch.compile``.

    ``forward(x: (B, in_channels, *grid), output_shape=None) -> (B, out_channels, *grid)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        hidden_channels: int = 32,
        n_layers: int = 4,
        projection_channels: int = 128,
        transform: str = "dct",
        activation: str = "gelu",
        head_activation: str = "sin",
        frequency_mixing: bool = True,
        grid_embedding: bool = True,
        init_grid: Sequence[int] | None = None,
        batch_slice_mib: float | None = DEFAULT_BATCH_SLICE_MIB,
    ):
        super().__init__()
        check_batch_slice_mib(batch_slice_mib, "T1")
        self.batch_slice_mib = batch_slice_mib
        if transform not in T1_TRANSFORMS:
            raise ConfigError(f"T1 transform must be one of {sorted(T1_TRANSFORMS)}, got {transform!r}")
        if n_layers < 0 or hidden_channels < 1 or projection_channels < 1:
            raise ConfigError("T1 needs n_layers >= 0, hidden_channels >= 1 and projection_channels >= 1")
        self.n_modes = normalize_n_modes(n_modes)
        self.n_dims = len(self.n_modes)
        if self.n_dims not in (1, 2, 3):
            raise ConfigError(f"T1 supports 1-D to 3-D grids; n_modes {list(self.n_modes)} has {self.n_dims} axes")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.transform = build_transform(transform)
        self.mode_axes, real_coefficients = transform_layout(self.transform, self.n_dims)
        self.kept_modes = transform_kept_modes(self.transform)
        self.block = weight_mode_shape(self.n_modes, self.mode_axes)
        self.grid_embedding = bool(grid_embedding)
        self.lifting = PointwiseLinear(in_channels + (self.n_dims if grid_embedding else 0), hidden_channels)
        self.widest_channels = hidden_channels
        coefficients = math.prod(self.block)
        n_init = coefficients if init_grid is None else math.prod(int(n) for n in init_grid)
        if init_grid is not None and len(init_grid) != self.n_dims:
            raise ConfigError(f"init_grid {list(init_grid)} must have {self.n_dims} entries")
        std = T1_TRANSFORMS[transform] * math.sqrt(n_init / (hidden_channels * coefficients))
        self.layers = nn.ModuleList(
            T1Layer(hidden_channels, self.block, not real_coefficients, activation, frequency_mixing, std)
            for _ in range(n_layers)
        )
        self.head_in = PointwiseLinear(hidden_channels, projection_channels)
        self.head_out = PointwiseLinear(projection_channels, out_channels)
        self.head_act = activation_function(head_activation)

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """``n_modes`` one entry per axis and ``init_grid`` = the training grid, when unset."""
        filled = n_modes_from_grid(options, grid)
        if options.get("init_grid") is None:
            filled["init_grid"] = list(grid.shape)
        return filled

    def coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinate channels ``(B, d, *grid)`` at the transform's sample points (see module docstring)."""
        offset = 0.5 if self.transform.name == "dct" else 0.0
        axes = [(torch.arange(n, dtype=x.dtype, device=x.device) + offset) / n for n in x.shape[2:]]
        mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"))
        return mesh.unsqueeze(0).expand(x.shape[0], -1, *x.shape[2:])

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """Per-coefficient MLP (on the real and imaginary parts separately for complex ``z``)."""

        def mlp(part: torch.Tensor) -> torch.Tensor:
            return half_to_float32(self.head_out(self.head_act(self.head_in(part))))

        return torch.complex(mlp(z.real), mlp(z.imag)) if z.is_complex() else mlp(z)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        self.check_input(x, output_shape)
        grid_in = tuple(x.shape[2:])
        grid_out = grid_in if output_shape is None else tuple(int(s) for s in output_shape)
        points = max(math.prod(grid_in), math.prod(grid_out))
        size = samples_per_slice(self.batch_slice_mib, x, self.widest_channels, points)
        return in_batch_slices(lambda part: self._forward(part, grid_out), x, size)

    def _forward(self, x: torch.Tensor, grid_out: tuple[int, ...]) -> torch.Tensor:
        grid_in = tuple(x.shape[2:])
        if self.grid_embedding:
            x = torch.cat([x, self.coordinates(x)], dim=1)
        modes_in = self.kept_modes(self.n_modes, grid_in, grid_in)
        modes_out = self.kept_modes(self.n_modes, grid_out, grid_out)
        lifted = self.lifting(x)
        with transform_precision(x.device):
            z = self.transform.forward(half_to_float32(lifted), modes_in)
        z = embed_modes(z, modes_in, self.n_modes, 2, self.mode_axes)
        for layer in self.layers:
            z = layer(z)
        z = select_modes(self.head(z), modes_out, self.n_modes, 2, self.mode_axes)
        with transform_precision(x.device):
            return self.transform.inverse(half_to_float32(z), modes_out, grid_out)
