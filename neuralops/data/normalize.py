"""Channel-wise normalization fitted on the training split.

Statistics are per channel (one mean and one standard deviation for each channel, pooled over
samples and grid points), so the same normalizer applies at every resolution — unlike the
per-grid-point normalizers of the FNO reference code, which tie a model to its training grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from neuralops.errors import ConfigError


class ChannelNormalizer(nn.Module):
    """``encode(x) = (x - mean) / (std + eps)`` per channel; ``decode`` inverts it.

    Args:
        mean: per-channel means, shape ``(C,)``.
        std: per-channel standard deviations, shape ``(C,)``.
        eps: added to ``std`` so a constant channel (std 0) maps to 0, not NaN.

    Tensors passed to ``encode``/``decode`` have shape ``(B, C, *grid)``.
    """

    def __init__(self, mean: torch.Tensor | list[float], std: torch.Tensor | list[float], eps: float = 1e-6):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float64).flatten()
        std = torch.as_tensor(std, dtype=torch.float64).flatten()
        if mean.shape != std.shape:
            raise ConfigError(f"normalizer mean has {mean.numel()} channels but std has {std.numel()}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()) or (std < 0).any():
            raise ConfigError(f"normalizer statistics must be finite with std >= 0, got mean={mean.tolist()} std={std.tolist()}")
        self.eps = float(eps)
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    @property
    def channels(self) -> int:
        return self.mean.numel()

    def _shape(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ConfigError(
                f"normalizer has {self.channels} channels, got a tensor of shape {tuple(x.shape)} "
                "(expected (batch, channels, *grid))"
            )
        view = (1, -1) + (1,) * (x.ndim - 2)
        return self.mean.view(view).to(x.dtype), (self.std + self.eps).view(view).to(x.dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        mean, scale = self._shape(x)
        return (x - mean) / scale

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        mean, scale = self._shape(x)
        return x * scale + mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def to_dict(self) -> dict[str, Any]:
        """Plain statistics for ``config.json``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "eps": self.eps}

    @classmethod
    def from_dict(cls, stats: dict[str, Any]) -> "ChannelNormalizer":
        missing = {"mean", "std"} - set(stats)
        if missing:
            raise ConfigError(f"normalizer statistics lack key(s) {sorted(missing)}; got keys {sorted(stats)}")
        return cls(stats["mean"], stats["std"], stats.get("eps", 1e-6))

    @classmethod
    def fit(cls, tensors: Iterable[torch.Tensor], eps: float = 1e-6) -> "ChannelNormalizer":
        """Fit on an iterable of batches of shape ``(B, C, *grid)``, one batch at a time.

        Memory stays bounded by one batch (see :class:`ChannelMoments`). The standard deviation
        is the population one (divisor = number of values), pooled over samples and grid points.
        """
        moments = ChannelMoments()
        for t in tensors:
            moments.update(t)
        return moments.normalizer(eps)


class ChannelMoments:
    """Running per-channel mean and variance over batches ``(B, C, *grid)``.

    Sums are accumulated in float64 and batches are merged with Chan et al.'s parallel update,
    which stays accurate when the mean is large compared with the spread.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, batch: torch.Tensor) -> None:
        """Add a batch of shape ``(B, C, *grid)``; every channel pools ``B * prod(grid)`` values."""
        t = torch.as_tensor(batch, dtype=torch.float64)
        if t.ndim < 2:
            raise ConfigError(f"normalizer.fit expects batches (batch, channels, *grid), got shape {tuple(t.shape)}")
        if self.mean is not None and t.shape[1] != self.mean.numel():
            raise ConfigError(f"batch has {t.shape[1]} channels, earlier batches had {self.mean.numel()}")
        flat = t.transpose(0, 1).reshape(t.shape[1], -1)
        n_b = flat.shape[1]
        if n_b == 0:
            return
        mean_b = flat.mean(dim=1)
        m2_b = ((flat - mean_b[:, None]) ** 2).sum(dim=1)
        if self.mean is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / total)
        self.count = total

    def normalizer(self, eps: float = 1e-6) -> ChannelNormalizer:
        """The :class:`ChannelNormalizer` with the mean and population std seen so far."""
        if self.mean is None:
            raise ConfigError("cannot fit a normalizer on an empty dataset")
        return ChannelNormalizer(self.mean, torch.sqrt(self.m2 / self.count), eps)


def fit_normalizers(
    dataset: Sequence[Mapping[str, torch.Tensor]], batch_size: int = 64, eps: float = 1e-6
) -> tuple[ChannelNormalizer, ChannelNormalizer]:
    """Fit input and output normalizers in one streaming pass over ``dataset``.

    Args:
        dataset: indexable samples ``{"x": (C_in, *grid), "y": (C_out, *grid)}``, e.g. an
            :class:`~neuralops.data.OperatorDataset` of the training split.
        batch_size: samples stacked per update; memory is bounded by one batch.
        eps: passed to both normalizers.

    Returns:
        ``(input_normalizer, output_normalizer)``.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    inputs, outputs = ChannelMoments(), ChannelMoments()
    for start in range(0, len(dataset), batch_size):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        inputs.update(torch.stack([s["x"] for s in samples]))
        outputs.update(torch.stack([s["y"] for s in samples]))
    return inputs.normalizer(eps), outputs.normalizer(eps)
