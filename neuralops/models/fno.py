"""Fourier Neural Operator (Li et al., ICLR 2021) on the shared spectral core.

Lifting (pointwise MLP on input channels + optional coordinates) -> L Fourier blocks ->
projection (pointwise MLP). Each block computes ``conv(x) + skip(x)`` with a spectral
convolution, then optionally a channel MLP with a soft-gating skip, with activations between
blocks; the last block has none (neither before its channel MLP nor after it), as
neuraloperator's ``FNOBlocks``. With ``channel_mlp_expansion=0`` and ``skip="linear"`` a block is
the original ``σ(Kv + Wv)``; the defaults follow neuraloperator's block (channel MLP of
expansion 0.5 with a soft-gating skip), which trains better on Darcy.

Tensorized FNO variants use the same class with ``spectral_weight={"factorization": ...}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from neuralops.errors import ConfigError
from neuralops.grid import Grid, expand_kinds
from neuralops.layers.grid import DomainPadding, GridEmbedding, check_grid_kinds, interpolate
from neuralops.layers.pointwise import ChannelMLP, PointwiseLinear, activation, make_skip, outputs_observed, pointwise_maps
from neuralops.models.base import NeuralOperator, grid_kinds_from_data, n_modes_from_grid
from neuralops.models.slicing import (
    DEFAULT_BATCH_SLICE_MIB,
    check_batch_slice_mib,
    in_batch_slices,
    samples_per_slice,
    widest_width,
)
from neuralops.spectral import SpectralConv, build_layer_weights
from neuralops.spectral.modes import normalize_n_modes


DEFAULT_DOMAIN_PADDING = 0.25
"""Domain padding ``train.py`` gives an FNO on data with a non-periodic axis (measured on Darcy:
see the README's resolution table)."""


def fourier_grid_options(options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
    """What an FNO-type model takes from the data's grid, for options left unset (``None`` or
    absent): ``n_modes`` one entry per axis (:func:`~neuralops.models.base.n_modes_from_grid`),
    ``grid`` = the data's kinds (:func:`~neuralops.models.base.grid_kinds_from_data`, which also
    refuses kinds that contradict the data), and ``domain_padding``
    :data:`DEFAULT_DOMAIN_PADDING` when an axis is not periodic, else 0."""
    filled = {**n_modes_from_grid(options, grid), **grid_kinds_from_data(options.get("grid"), grid)}
    if options.get("domain_padding") is None:
        filled["domain_padding"] = 0.0 if grid.periodic else DEFAULT_DOMAIN_PADDING
    return filled


class FourierBlock(nn.Module):
    """One Fourier layer on ``(B, C, *grid)``, a grid the spectral convolution sees as one
    period; ``output_shape`` evaluates it on another sampling of the same period.

    On its input grid, the skip paths, the channel MLP and the additions between them run as
    fused pointwise maps (:func:`~neuralops.layers.pointwise.pointwise_maps`): the skip GEMM
    accumulates onto the spectral output, the gate onto the MLP output, and when the input is
    the activation of the previous block's pre-activation (``source``), only that
    pre-activation is kept for the backward pass. When nothing records the operations
    (:func:`~neuralops.layers.pointwise.runs_untracked`) these accumulations and the
    activations write over fields the block no longer reads, unless a forward hook may hold
    a submodule's output (:func:`~neuralops.layers.pointwise.outputs_observed`).
    """

    def __init__(
        self,
        conv: SpectralConv,
        skip: str | None,
        channel_mlp_expansion: float,
        channel_mlp_skip: str | None,
        activation_name: str,
    ):
        super().__init__()
        channels = conv.out_channels
        self.conv = conv
        self.skip = make_skip(skip, channels)
        hidden = int(round(channels * channel_mlp_expansion))
        self.channel_mlp = ChannelMLP(channels, channels, hidden, activation_name) if hidden > 0 else None
        self.channel_mlp_skip = make_skip(channel_mlp_skip, channels) if self.channel_mlp is not None else None
        self.act = activation(activation_name)

    @staticmethod
    def _resampled(module: nn.Module | None, x: torch.Tensor, shape: Sequence[int], offset: Sequence[float] | None) -> torch.Tensor | None:
        # Blocks run on the padded domain, which the spectral layers see as one period: the
        # skip paths are interpolated on the same periodic sampling as the spectral output.
        if module is None:
            return None
        return interpolate(module(x), shape, "periodic", offset)

    def preactivation(
        self,
        x: torch.Tensor,
        source: torch.Tensor | None = None,
        output_shape: Sequence[int] | None = None,
        output_offset: Sequence[float] | None = None,
        quadrature: torch.Tensor | None = None,
        last: bool = False,
    ) -> torch.Tensor:
        """The block before its final activation: ``x: (B, C, *grid)`` -> ``(B, C, *grid)``, or
        ``(B, C, *output_shape)`` with the output points shifted by ``output_offset`` output
        spacings per axis (see :class:`SpectralConv`). ``source``: the pre-activation ``p`` with
        ``x = act(p)`` (kept for the backward pass instead of ``x``), or None. ``quadrature``
        (``(*grid)``, :meth:`DomainPadding.quadrature_weights`) weights the samples the spectral
        convolution integrates. ``last``: the model's last block, whose channel MLP takes
        ``conv(x) + skip(x)`` without the activation before it, as neuraloperator's last block."""
        y = self.conv(x if quadrature is None else x * quadrature, output_shape=output_shape, output_offset=output_offset)
        owned = not outputs_observed(self)  # y, the spectral output, may be written over
        gate = None
        if output_shape is None:
            maps = [m.as_map(addend) for m, addend in ((self.skip, y), (self.channel_mlp_skip, None)) if m is not None]
            if maps:
                outputs = list(pointwise_maps(x, maps, source, None if source is None else self.act, overwrite_addends=owned))
                y = outputs.pop(0) if self.skip is not None else y
                gate = outputs.pop(0) if self.channel_mlp_skip is not None else None
        else:
            # A resampled identity gate may be x itself: never written over.
            shape = tuple(output_shape)
            skip = self._resampled(self.skip, x, shape, output_offset)
            gate = self._resampled(self.channel_mlp_skip, x, shape, output_offset)
            y = y if skip is None else y + skip
        if self.channel_mlp is not None and last:
            y = self.channel_mlp(y, addend=gate, overwrite_addend=output_shape is None)
        elif self.channel_mlp is not None:
            hidden = self.act.consume(y) if owned else self.act(y)
            y = self.channel_mlp(hidden, source=y, addend=gate, overwrite_addend=output_shape is None)
        return y

    def forward(
        self,
        x: torch.Tensor,
        output_shape: Sequence[int] | None = None,
        last: bool = False,
        output_offset: Sequence[float] | None = None,
        quadrature: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`preactivation` followed by the activation, unless ``last`` (then neither
        activation of the block runs: the one before the channel MLP and the final one)."""
        y = self.preactivation(x, None, output_shape, output_offset, quadrature, last)
        if last:
            return y
        return self.act(y) if outputs_observed(self) else self.act.consume(y)


def lifting_layer(in_channels: int, hidden_channels: int, ratio: float, activation_name: str) -> nn.Module:
    """Pointwise lift to ``hidden_channels``: an MLP of hidden width ``ratio·hidden_channels``,
    or a single linear layer when that width rounds to 0."""
    width = int(round(ratio * hidden_channels))
    if width > 0:
        return ChannelMLP(in_channels, hidden_channels, width, activation_name)
    return PointwiseLinear(in_channels, hidden_channels)


def projection_layer(hidden_channels: int, out_channels: int, ratio: float, activation_name: str) -> ChannelMLP:
    """Pointwise MLP ``hidden -> max(round(ratio·hidden), 1) -> out``."""
    return ChannelMLP(hidden_channels, out_channels, max(int(round(ratio * hidden_channels)), 1), activation_name)


def _block_step(
    block: FourierBlock,
    y: torch.Tensor,
    activated: bool,
    output_shape: Sequence[int] | None,
    output_offset: Sequence[float] | None,
    quadrature: torch.Tensor | None,
    y_owned: bool = False,
    last: bool = False,
) -> torch.Tensor:
    """One block from the previous block's pre-activation ``y`` (``activated``: ``y`` is then
    written over by its activation when nothing records the operations and ``y_owned``, i.e. no
    forward hook of the previous block may hold it) or from the lifted input ``y``, to this
    block's pre-activation (``last``: see :meth:`FourierBlock.preactivation`)."""
    if activated:
        x = block.act.consume(y) if y_owned else block.act(y)
        return block.preactivation(x, y, output_shape, output_offset, quadrature, last)
    return block.preactivation(y, None, output_shape, output_offset, quadrature, last)


def run_blocks(
    blocks: nn.ModuleList,
    x: torch.Tensor,
    last_output_shape: Sequence[int] | None,
    last_output_offset: Sequence[float] | None = None,
    quadrature: torch.Tensor | None = None,
    checkpoint_blocks: bool = False,
) -> torch.Tensor:
    """Apply Fourier-type blocks in order, each spectral convolution integrating with the
    weights ``quadrature``; only the last evaluates on ``last_output_shape`` (None: the input
    grid), with its points shifted by ``last_output_offset``, and skips both of its activations
    (:meth:`FourierBlock.preactivation`).

    Between blocks only the pre-activations are kept for the backward pass. With
    ``checkpoint_blocks`` (and gradients enabled) each block runs under
    :func:`torch.utils.checkpoint.checkpoint`: it keeps only its input and recomputes its
    forward pass during the backward pass."""
    last = len(blocks) - 1
    y, activated, y_owned = x, False, False
    for i, block in enumerate(blocks):
        shape, offset = (last_output_shape, last_output_offset) if i == last else (None, None)
        args = (block, y, activated, shape, offset, quadrature, y_owned, i == last)
        if checkpoint_blocks and torch.is_grad_enabled():
            y = checkpoint(_block_step, *args, use_reentrant=False)
        else:
            y = _block_step(*args)
        activated, y_owned = True, not outputs_observed(block)
    return y


class FNO(NeuralOperator, name="fno"):
    """Fourier Neural Operator for 1-D, 2-D and 3-D grids (dimension = ``len(n_modes)``).

    Args:
        in_channels, out_channels: physical input/output channels.
        n_modes: kept frequencies per axis, non-negative count (see :mod:`neuralops.spectral.modes`).
        hidden_channels: width of the Fourier blocks.
        n_layers: number of Fourier blocks.
        lifting_ratio: hidden width of the lifting MLP as a multiple of ``hidden_channels``
            (0: a single pointwise linear lift).
        projection_ratio: hidden width of the projection MLP as a multiple of ``hidden_channels``.
        channel_mlp_expansion: hidden width of each block's channel MLP as a multiple of the
            block width (0 disables it).
        skip: block skip, ``"linear"``, ``"soft-gating"``, ``"identity"`` or null.
        channel_mlp_skip: skip around the channel MLP (same choices).
        grid: the data's grid kind (:mod:`neuralops.grid`: ``"vertex"``, ``"cell"``,
            ``"periodic"``, ...) for every axis, or a list of one per axis. It sets the
            coordinate embedding and the period the spectral layers see. ``train.py`` fills it
            from the data.
        grid_embedding: append the unit coordinates of the grid points as input channels.
        domain_padding: extra period length as a fraction of the domain, in ``[0, 1]``, on the
            non-periodic axes (see :class:`~neuralops.layers.grid.DomainPadding`): the spectral
            layers see a period of ``(1 + domain_padding)`` domain lengths at every
            resolution, so a trained model gives the same function on every grid. Zero on a
            vertex axis still makes the period one domain length (its last point is the first
            point's periodic image). Unlike neuraloperator's, the padding is appended at the end
            of each axis and its point count follows the grid kind. ``train.py`` sets
            :data:`DEFAULT_DOMAIN_PADDING` for data with a non-periodic axis when unset.
        spectral_weight: weight parameterization of the spectral convolutions, e.g.
            ``{"factorization": "dense"}``.
        activation: ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"``.
        checkpoint_blocks: activation checkpointing per Fourier block
            (:func:`torch.utils.checkpoint.checkpoint`) while training: each block keeps only
            its input and recomputes its forward pass in the backward pass. Measured on one CPU
            thread at 128², 64 channels, 4 blocks, batch 16 (``benchmarks/results/fno_step_cpu.md``):
            a training step's peak memory 602 MiB instead of 989 (-39 %), its time 3.3 s instead
            of 2.5 (+28 %). Outputs and gradients are unchanged.
        batch_slice_mib: run the batch in slices of as many samples as keep the widest hidden
            field of a slice (``samples × widest layer width × padded grid points`` elements of
            the input's dtype) within this many MiB, and concatenate the outputs; None runs the
            whole batch at once. Samples are independent, so outputs and gradients are the
            whole batch's up to float rounding (about 1e-7 relative in float32). Why: glibc's
            ``malloc`` serves a block of 32 MiB or more with a fresh ``mmap`` that the kernel
            page-faults and zeroes on every use (:mod:`neuralops.models.slicing`). Measured on
            one CPU thread (``benchmarks/results/slicing_cpu.md``), a training step at 128²,
            hidden 32, batch 16, with that malloc: 0.86 s in 8 MiB slices against 1.48 s
            unsliced, inference at batch 32 0.58× the time; with freed memory kept
            (``train.py``'s default) 0.80 s against 0.93 s, inference 0.85× the time. Only
            CPU tensors are sliced, and not under ``torch.compile``.

    ``n_modes`` may be one number for every axis when ``grid`` lists one kind per axis, or
    through ``train.py``, which expands it to the data's dimension.

    ``forward(x: (B, in_channels, *grid), output_shape=None) -> (B, out_channels, *grid)``;
    with ``output_shape`` the last block evaluates its output on that grid.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        hidden_channels: int = 32,
        n_layers: int = 4,
        lifting_ratio: float = 2.0,
        projection_ratio: float = 2.0,
        channel_mlp_expansion: float = 0.5,
        skip: str | None = "linear",
        channel_mlp_skip: str | None = "soft-gating",
        grid: str | Sequence[str] = "vertex",
        grid_embedding: bool = True,
        domain_padding: float = 0.0,
        spectral_weight: dict | None = None,
        activation: str = "gelu",
        checkpoint_blocks: bool = False,
        batch_slice_mib: float | None = DEFAULT_BATCH_SLICE_MIB,
    ):
        super().__init__()
        if not isinstance(checkpoint_blocks, bool):
            raise ConfigError(f"FNO option checkpoint_blocks must be true or false, got {checkpoint_blocks!r}")
        check_batch_slice_mib(batch_slice_mib, "FNO")
        self.checkpoint_blocks = checkpoint_blocks
        self.batch_slice_mib = batch_slice_mib
        grid = check_grid_kinds(grid)
        self.n_modes = normalize_n_modes(n_modes, None if isinstance(grid, str) else len(grid))
        self.n_dims = len(self.n_modes)
        if self.n_dims not in (1, 2, 3):
            raise ConfigError(f"FNO supports 1-D, 2-D and 3-D grids; n_modes {list(self.n_modes)} has {self.n_dims} axes")
        if n_layers < 1 or hidden_channels < 1:
            raise ConfigError(f"FNO needs n_layers >= 1 and hidden_channels >= 1, got {n_layers} and {hidden_channels}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.embedding = GridEmbedding(grid) if grid_embedding else None
        lifted_in = in_channels + (self.n_dims if grid_embedding else 0)
        self.lifting = lifting_layer(lifted_in, hidden_channels, lifting_ratio, activation)
        self.padding = DomainPadding(domain_padding, grid)
        weights = build_layer_weights(n_layers, hidden_channels, hidden_channels, self.n_modes, spectral_weight)
        self.blocks = nn.ModuleList(
            FourierBlock(
                SpectralConv(hidden_channels, hidden_channels, self.n_modes, weight=w),
                skip,
                channel_mlp_expansion,
                channel_mlp_skip,
                activation,
            )
            for w in weights
        )
        self.projection = projection_layer(hidden_channels, out_channels, projection_ratio, activation)
        self.widest_channels = widest_width(self)

    def samples_per_slice(self, x: torch.Tensor, grid_out: Sequence[int]) -> int:
        """How many samples of ``x: (B, C, *grid)`` one slice of the batch takes (``batch_slice_mib``),
        at least 1; ``B`` when slicing is off."""
        points = max(math.prod(self.padding.padded_shape(g)) for g in (tuple(x.shape[2:]), tuple(grid_out)))
        return samples_per_slice(self.batch_slice_mib, x, self.widest_channels, points)

    def _output_offset(self, grid_in: Sequence[int], grid_out: Sequence[int]) -> tuple[float, ...] | None:
        """Where the output grid's points sit, in output spacings, relative to the sampling of the
        padded period that starts at the input's first point: ``(1 - n_out/n_in)/2`` on a cell
        axis (its first centre is half an output cell into the domain, the input's half an input
        cell), 0 on vertex, periodic and colatitude axes, whose first point is the domain start."""
        kinds = expand_kinds(self.padding.kind, len(grid_in))
        offset = tuple(0.5 * (1.0 - n_out / n_in) if k == "cell" else 0.0 for k, n_in, n_out in zip(kinds, grid_in, grid_out))
        return offset if any(offset) else None

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """``grid`` (the data's kinds), ``n_modes`` (one number → one per axis) and
        ``domain_padding`` (:data:`DEFAULT_DOMAIN_PADDING` when an axis is not periodic, else 0)."""
        return fourier_grid_options(options, grid)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        self.check_input(x, output_shape)
        grid_out = tuple(x.shape[2:]) if output_shape is None else tuple(int(s) for s in output_shape)
        recomputed = self.checkpoint_blocks and torch.is_grad_enabled()
        size = self.samples_per_slice(x, grid_out)
        return in_batch_slices(lambda part: self._forward(part, grid_out), x, size, None if recomputed else self)

    def _forward(self, x: torch.Tensor, grid_out: tuple[int, ...]) -> torch.Tensor:
        grid_in = tuple(x.shape[2:])
        if self.embedding is not None:
            x = self.embedding(x)
        x = self.padding.pad(self.lifting(x))
        quadrature = self.padding.quadrature_weights(grid_in, x.dtype, x.device)
        if grid_out == grid_in:
            x = run_blocks(self.blocks, x, None, quadrature=quadrature, checkpoint_blocks=self.checkpoint_blocks)
        else:
            shape, offset = self.padding.padded_shape(grid_out), self._output_offset(grid_in, grid_out)
            x = run_blocks(self.blocks, x, shape, offset, quadrature, self.checkpoint_blocks)
        x = self.padding.crop(x, grid_out)
        return self.projection(x)
