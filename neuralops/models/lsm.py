"""LSM: Latent Spectral Model (Wu et al., ICML 2023) with physically sized patches.

Forward pass, ``x: (B, C_in, *grid)``:

1. grid embedding (vertex coordinates appended as channels) and a pointwise lift to ``width``;
2. bilinear resize of the lifted field up to the next grid divisible by every level's
   pooling and patch count (see below), so odd or otherwise non-divisible grids keep covering
   the whole domain instead of being padded with fake zeros;
3. U-Net encoder: ``DoubleConv`` (3×3 conv, GroupNorm, GELU, twice) at level 0, then max-pool
   by 2 and ``DoubleConv`` per level, channels ``width·2^i`` (the bottom repeats the level
   above, as in the reference);
4. every skip feature passes through a :class:`NeuralSpectralBlock`;
5. decoder: bilinear upsampling, concatenation with the processed skip, ``DoubleConv``;
6. pointwise projection MLP to ``out_channels`` and a bilinear resize back to the input grid.

Resolution: level ``i`` is cut into ``max(1, n_patches // 2^i)`` patches per axis whatever the
grid, so a patch always covers the same part of the physical domain and its pixel size
scales with the grid (the reference fixes the patch size in pixels instead). Attention
inside a patch is a softmax average over its pixels, which converges as the grid is refined.
GroupNorm (statistics per sample over space) replaces BatchNorm: its statistics are spatial
averages of the current sample, which approximate the same integrals on any grid, and it has
no running statistics fitted to the training batches and grid. What stays grid-dependent is
the 3×3 convolutions and 2× pooling, whose physical reach shrinks with ``h``; measured
numbers and the resampling-wrapper alternative are in ``docs/models_beyond_fourier.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuralops.errors import ConfigError
from neuralops.grid import Grid
from neuralops.layers.config_checks import check_choice, check_positive
from neuralops.layers.grid import GridEmbedding
from neuralops.layers.pointwise import ChannelMLP, PointwiseLinear
from neuralops.layers.resample import check_resample_method, resample
from neuralops.models.base import NeuralOperator, n_dims_from_grid
from neuralops.models.slicing import DEFAULT_BATCH_SLICE_MIB, check_batch_slice_mib, in_batch_slices, samples_per_slice

_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_MAX_POOLS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


class DoubleConv(nn.Module):
    """``(3×3 conv without bias -> GroupNorm -> GELU) × 2``: ``(B, C_in, *grid) -> (B, C_out, *grid)``."""

    def __init__(self, in_channels: int, out_channels: int, n_dims: int, norm_groups: int) -> None:
        super().__init__()
        conv = _CONVS[n_dims]
        self.net = nn.Sequential(
            conv(in_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(norm_groups, out_channels),
            nn.GELU(),
            conv(out_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(norm_groups, out_channels),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def patchify(x: torch.Tensor, patches: Sequence[int]) -> torch.Tensor:
    """``(B, C, *grid)`` with ``grid[a]`` divisible by ``patches[a]`` -> ``(B · Π patches, C, Π patch_size)``."""
    batch, channels, grid = x.shape[0], x.shape[1], x.shape[2:]
    d = len(grid)
    split = [v for n, p in zip(grid, patches) for v in (p, n // p)]
    x = x.reshape(batch, channels, *split)
    # axes: 0 batch, 1 channels, then (patch index, in-patch index) per grid axis
    order = [0, *(2 + 2 * a for a in range(d)), 1, *(3 + 2 * a for a in range(d))]
    return x.permute(order).reshape(batch * math.prod(patches), channels, -1)


def unpatchify(x: torch.Tensor, patches: Sequence[int], grid: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B · Π patches, C, Π patch_size) -> (B, C, *grid)``."""
    d = len(grid)
    channels = x.shape[1]
    sizes = [n // p for n, p in zip(grid, patches)]
    x = x.reshape(-1, *patches, channels, *sizes)
    order = [0, d + 1, *(v for a in range(d) for v in (1 + a, d + 2 + a))]
    return x.permute(order).reshape(x.shape[0], channels, *grid)


class NeuralSpectralBlock(nn.Module):
    """Patch-wise latent attention with a learned trigonometric transition: ``(B, C, *grid) -> same``.

    Per patch (``patches`` per axis): ``K, V = W_kv x`` (1×1); ``n_tokens`` learned latent queries
    ``Q`` per head attend to the patch pixels, ``z = softmax(Q Kᵀ / √d_h) V + Q``; the token
    values are transformed as ``z <- z + Σ_{k<n_basis} w_{c,k} sin(kπ z / n_basis) +
    w'_{c,k} cos(kπ z / n_basis)`` (a learned function per channel, no FFT); then every pixel
    reads the tokens back, ``x <- x + softmax(W_q x zᵀ / √d_h) z``.
    """

    def __init__(self, channels: int, patches: Sequence[int], n_tokens: int, n_basis: int, n_heads: int) -> None:
        super().__init__()
        self.patches = tuple(patches)
        self.n_heads = n_heads
        self.n_basis = n_basis
        head_dim = channels // n_heads
        self.scale = head_dim**-0.5
        self.key_value = PointwiseLinear(channels, 2 * channels)
        self.pixel_query = PointwiseLinear(channels, channels)
        self.latent_query = nn.Parameter(torch.randn(n_heads, n_tokens, head_dim) * head_dim**-0.5)
        self.basis_weight = nn.Parameter(torch.randn(channels, 2 * n_basis) / (2 * n_basis))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, n) -> (N, heads, C / heads, n)``."""
        return x.reshape(x.shape[0], self.n_heads, -1, x.shape[-1])

    def _transition(self, z: torch.Tensor) -> torch.Tensor:
        """``z: (N, C, T)`` -> ``z + Σ_k w [sin, cos](kπ z / M)``."""
        frequencies = torch.arange(self.n_basis, device=z.device, dtype=z.dtype) * (math.pi / self.n_basis)
        angles = z.unsqueeze(-1) * frequencies
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        return z + torch.einsum("nctm,cm->nct", features, self.basis_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = x.shape[2:]
        tokens = patchify(x, self.patches)  # (N, C, n)
        keys, values = self._heads(self.key_value(tokens)).chunk(2, dim=2)
        scores = torch.einsum("htd,nhdp->nhtp", self.latent_query, keys) * self.scale
        latent = torch.einsum("nhtp,nhdp->nhtd", scores.softmax(dim=-1), values) + self.latent_query
        latent = latent.permute(0, 1, 3, 2).reshape(tokens.shape[0], -1, latent.shape[2])  # (N, C, T)
        latent = self._heads(self._transition(latent))  # (N, h, d, T)
        queries = self._heads(self.pixel_query(tokens))
        weights = (torch.einsum("nhdp,nhdt->nhpt", queries, latent) * self.scale).softmax(dim=-1)
        update = torch.einsum("nhpt,nhdt->nhdp", weights, latent).reshape(tokens.shape)
        return unpatchify(tokens + update, self.patches, grid)


class LSM(NeuralOperator, name="lsm"):
    """Latent Spectral Model: ``(B, in_channels, *grid) -> (B, out_channels, *grid)``.

    Options:
        width: channels at the finest level (level ``i`` has ``width · 2^i``, bottom repeated).
        n_levels: U-Net levels including the finest (``n_levels - 1`` poolings).
        n_dims: grid dimensionality (1, 2 or 3).
        n_patches: patches per axis at the finest level; level ``i`` uses
            ``max(1, n_patches // 2^i)``.
        n_tokens: latent tokens per head and patch.
        n_basis: sin/cos pairs of the token transition.
        n_heads: attention heads (must divide ``width``).
        norm_groups: GroupNorm groups (must divide ``width``).
        projection_channels: hidden channels of the output MLP.
        resample_method: how ``output_shape`` is served: the input is resampled onto
            ``output_shape`` (``"bilinear"`` or ``"fourier"``) and the model runs there.
        batch_slice_mib: run the batch in slices of as many samples as keep the widest field
            of a slice (``samples × max(2·width, projection_channels) × working grid points``
            elements: the finest decoder's input or the projection's hidden field) within this
            many MiB, and concatenate the outputs; None runs the whole batch at once. Exact, as
            GroupNorm's statistics are per sample (:mod:`neuralops.models.slicing`). Only CPU
            tensors are sliced, and not under ``torch.compile``.
    """

    min_grid_size = 8

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 16,
        n_levels: int = 4,
        n_dims: int = 2,
        n_patches: int = 4,
        n_tokens: int = 4,
        n_basis: int = 12,
        n_heads: int = 4,
        norm_groups: int = 4,
        projection_channels: int = 64,
        resample_method: str = "bilinear",
        batch_slice_mib: float | None = DEFAULT_BATCH_SLICE_MIB,
    ) -> None:
        super().__init__()
        check_batch_slice_mib(batch_slice_mib, "LSM")
        self.batch_slice_mib = batch_slice_mib
        check_positive(in_channels=in_channels, out_channels=out_channels, width=width, n_levels=n_levels,
                       n_patches=n_patches, n_tokens=n_tokens, n_basis=n_basis, n_heads=n_heads,
                       norm_groups=norm_groups, projection_channels=projection_channels)
        check_choice("n_dims", n_dims, list(_CONVS))
        for option, value in (("n_heads", n_heads), ("norm_groups", norm_groups)):
            if width % value:
                raise ConfigError(f"{option}={value} must divide width={width}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_dims = n_dims
        self.resample_method = check_resample_method(resample_method, "resample_method")
        patch_counts = [max(1, n_patches // 2**i) for i in range(n_levels)]
        self.grid_multiple = math.lcm(*(2**i * p for i, p in enumerate(patch_counts)))
        self.min_grid_size = max(2 ** (n_levels - 1), n_patches)
        channels = [width * 2**i for i in range(max(n_levels - 1, 1))]
        channels = channels + channels[-1:] if n_levels > 1 else channels
        self.embedding = GridEmbedding("vertex")
        self.lift = PointwiseLinear(in_channels + n_dims, width)
        self.encoders = nn.ModuleList(
            DoubleConv(c_in, c_out, n_dims, norm_groups) for c_in, c_out in zip([width, *channels[:-1]], channels)
        )
        self.spectral_blocks = nn.ModuleList(
            NeuralSpectralBlock(c, [p] * n_dims, n_tokens, n_basis, n_heads) for c, p in zip(channels, patch_counts)
        )
        decoder_out = [width, *channels[:-2]]
        self.decoders = nn.ModuleList(
            DoubleConv(2 * channels[i], decoder_out[i], n_dims, norm_groups) for i in range(n_levels - 1)
        )
        self.projection = ChannelMLP(width, out_channels, projection_channels)
        self.widest_channels = max(2 * width, projection_channels)

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """``n_dims`` from the data when unset."""
        return n_dims_from_grid(options, grid)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """``x: (B, in_channels, *grid)`` -> ``(B, out_channels, *grid)``, or on ``output_shape``
        (the input is resampled there first with ``resample_method``)."""
        self.check_input(x, output_shape)
        if output_shape is not None:
            x = resample(x, output_shape, self.resample_method)
        grid = tuple(x.shape[2:])
        working = tuple(-(-n // self.grid_multiple) * self.grid_multiple for n in grid)
        size = samples_per_slice(self.batch_slice_mib, x, self.widest_channels, math.prod(working))
        return in_batch_slices(lambda part: self._forward(part, working), x, size)

    def _forward(self, x: torch.Tensor, working: tuple[int, ...]) -> torch.Tensor:
        """The model on ``x: (B, in_channels, *grid)``, run on the ``working`` grid and
        resampled back to ``grid``."""
        grid = tuple(x.shape[2:])
        h = resample(self.lift(self.embedding(x)), working, "bilinear")
        skips = []
        for i, (encoder, block) in enumerate(zip(self.encoders, self.spectral_blocks)):
            if i > 0:
                h = _MAX_POOLS[self.n_dims](h, 2)
            h = encoder(h)
            skips.append(block(h))
        h = skips[-1]
        for i in range(len(self.decoders) - 1, -1, -1):
            h = resample(h, skips[i].shape[2:], "bilinear")
            h = self.decoders[i](torch.cat([skips[i], h], dim=1))
        return resample(self.projection(h), grid, "bilinear")
