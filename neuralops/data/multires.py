"""Training batches: the train split at one or several grids, each batch on one grid, sharded
over the processes of a data-parallel run.

Training on more than one sampling of the same functions is the standard recipe for
resolution robustness (a model that has seen two grids interpolates between them and
extrapolates further more gracefully). ``data.train_resolutions=[17, 33]`` opens the train
split at each listed grid and :class:`ResolutionBatchSampler` draws batches from all of them,
every batch from one grid, so batches stack without resampling; with one grid it is an
ordinary shuffling batch sampler.

Under ``torchrun`` every process draws the same *global* batches from identically seeded
generators and keeps its share of each, so ``world_size`` processes together take the steps
that one process would take with the same global batch size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Optional

import torch
from torch.utils.data import Sampler

from neuralops.errors import ConfigError


def shard_batch(batch: list[int], world_size: int, rank: int) -> list[int]:
    """Process ``rank``'s share of a global ``batch``: every ``world_size``-th index from
    ``rank`` on. A batch whose length is not a multiple of ``world_size`` is first padded by
    repeating its own first indices (as :class:`torch.utils.data.DistributedSampler` pads an
    epoch), so every process gets the same number of samples and DDP's gradient average is
    the mean over the padded batch."""
    padded = list(batch)
    while len(padded) % world_size:
        padded.append(batch[(len(padded) - len(batch)) % len(batch)])
    return padded[rank::world_size]


class ResolutionBatchSampler(Sampler[list[int]]):
    """Batches of indices into a dataset made of parts (a
    :class:`torch.utils.data.ConcatDataset`, or one dataset), each batch from one part.

    Every epoch each part is permuted (``shuffle``) and cut into global batches of
    ``batch_size`` (the last one of a part may be smaller); with several parts the batches are
    then visited in a random order. Process ``rank`` of ``world_size`` yields its share of each
    global batch (:func:`shard_batch`), so every process yields ``len(self)`` batches per epoch.

    The draws come from ``generator`` only, when iteration starts. The epoch's order is a
    function of the generator's state when the epoch starts: restoring that state and setting
    :attr:`skip` to the number of batches already taken resumes an epoch mid-way without
    reading the skipped samples. A :class:`~torch.utils.data.DataLoader` may share the
    generator (``generator=sampler.generator``; it draws its worker seed from it first), so one
    generator state decides the whole data order.

    Args:
        lengths: samples per part, in ConcatDataset order.
        batch_size: samples per global batch (>= 1), a multiple of ``world_size``.
        shuffle: permute samples and batch order (otherwise parts in order, samples in order).
        generator: the ``torch.Generator`` of the draws (``None``: a new one seeded from
            torch's global generator).
        world_size, rank: the data-parallel processes and this one (``1, 0``: all batches whole).

    Raises:
        ConfigError: ``batch_size < 1``, an empty part, or ``batch_size`` not a multiple of
            ``world_size``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        generator: Optional[torch.Generator] = None,
        world_size: int = 1,
        rank: int = 0,
    ):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not lengths or min(lengths) < 1:
            raise ConfigError(f"every training resolution needs samples, got {list(lengths)} per resolution")
        if batch_size % world_size:
            raise ConfigError(
                f"trainer.batch_size={batch_size} is the global batch, split over {world_size} processes; "
                f"make it a multiple of {world_size}"
            )
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside the {world_size} processes of the run")
        self.lengths = [int(n) for n in lengths]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        self.generator = generator
        self.world_size, self.rank = int(world_size), int(rank)
        self.skip = 0
        """Batches to leave out at the start of the next epoch (reset once that epoch starts)."""

    def __len__(self) -> int:
        return sum(math.ceil(n / self.batch_size) for n in self.lengths)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        batches: list[list[int]] = []
        offset = 0
        for n in self.lengths:
            order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
            batches += [(order[i : i + self.batch_size] + offset).tolist() for i in range(0, n, self.batch_size)]
            offset += n
        visit = range(len(batches))
        if self.shuffle and len(self.lengths) > 1:
            visit = torch.randperm(len(batches), generator=self.generator).tolist()
        for b in list(visit)[skip:]:
            yield shard_batch(batches[b], self.world_size, self.rank)
