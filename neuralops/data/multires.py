"""Multi-resolution training: the train split at several grids, each batch on one grid.

Training on more than one sampling of the same functions is the standard recipe for
resolution robustness (a model that has seen two grids interpolates between them and
extrapolates further more gracefully). ``data.train_resolutions=[17, 33]`` opens the train
split at each listed grid and :class:`ResolutionBatchSampler` draws batches from all of them,
every batch from one grid, so batches stack without resampling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from neuralops.errors import ConfigError


class ResolutionBatchSampler(Sampler[list[int]]):
    """Batches of indices into a :class:`torch.utils.data.ConcatDataset` of parts, each batch
    from one part.

    Every epoch each part is permuted (``shuffle``) and cut into batches of ``batch_size``
    (the last one of a part may be smaller); the batches of all parts are then visited in a
    random order. Every draw comes from ``generator``, so a seeded generator gives the same
    sequence, and saving its state resumes it.

    Args:
        lengths: samples per part, in ConcatDataset order.
        batch_size: samples per batch (>= 1).
        shuffle: permute samples and batch order (otherwise parts in order, samples in order).
        generator: the ``torch.Generator`` of the draws (``None``: torch's default one).

    Raises:
        ConfigError: ``batch_size < 1`` or an empty part.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not lengths or min(lengths) < 1:
            raise ConfigError(f"every training resolution needs samples, got {list(lengths)} per resolution")
        self.lengths = [int(n) for n in lengths]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return sum(math.ceil(n / self.batch_size) for n in self.lengths)

    def __iter__(self) -> Iterator[list[int]]:
        batches: list[list[int]] = []
        offset = 0
        for n in self.lengths:
            order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
            batches += [(order[i : i + self.batch_size] + offset).tolist() for i in range(0, n, self.batch_size)]
            offset += n
        visit = torch.randperm(len(batches), generator=self.generator).tolist() if self.shuffle else range(len(batches))
        for b in visit:
            yield batches[b]
