"""Data generators: each writes one neuralops HDF5 file, or one shard (see ``docs/data_format.md``).

A generator is a function ``write_<name>(request: GenerationRequest, options) -> None`` that
draws the samples ``request.samples_at[n]`` on the grid with ``n`` points per axis and writes
them with :class:`neuralops.data.schema.DatasetWriter`; ``options`` is an instance of the
generator's options dataclass, whose fields (with ``metadata={"help": ...}``) become command-line
flags. Its samples come from a per-sample function ``<name>_sample(seed, index, options,
resolution)`` (and its batched form ``<name>_samples(seed, ids, options, resolution)``), which
the writer maps over batches, in worker processes when ``request.pool`` is set
(:mod:`neuralops.data.generators.parallel`), and which online training calls directly. The
command line (``python -m neuralops.data.generate``) builds request and options and looks the
generator up by name in its ``GENERATORS`` table of :class:`GeneratorSpec`, so adding a generator
is one writer, one sample function, one options dataclass and one table entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralops.data.generators.parallel import WorkerPool
from neuralops.errors import ConfigError


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate and where.

    Attributes:
        out: the target file (written atomically).
        n_samples: number of global sample ids ``0 … n_samples-1``.
        splits: sorted global ids per split (``train``, ``val``, ``test``).
        samples_at: points per axis → sorted global ids to generate on that grid.
        seed: base seed; sample ``i`` must depend only on ``(seed, i)`` so that it is the same
            field whichever grids or sample counts are requested.
        overwrite: replace an existing ``out``.
        progress: show a tqdm progress bar.
        shard: ``(shard_index, n_shards)`` when ``out`` is one shard of a folder dataset
            (``samples_at`` then holds only the shard's ids); ``None`` for a complete file.
        pool: worker processes to solve batches in (``None``: in this process).
    """

    out: Path
    n_samples: int
    splits: dict[str, np.ndarray]
    samples_at: dict[int, np.ndarray]
    seed: int = 0
    overwrite: bool = False
    progress: bool = True
    shard: tuple[int, int] | None = None
    pool: WorkerPool | None = None

    def label(self, name: str) -> str:
        """Progress-bar label: the generator ``name``, and which shard when writing one."""
        return name if self.shard is None else f"{name} shard {self.shard[0] + 1}/{self.shard[1]}"


def _split_counts(n_samples: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    n_val, n_test = round(n_samples * val_fraction), round(n_samples * test_fraction)
    return n_samples - n_val - n_test, n_val, n_test


def _fits(n_samples: int, val_fraction: float, test_fraction: float) -> bool:
    """Every split with a non-zero fraction gets a sample, and train at least one."""
    n_train, n_val, n_test = _split_counts(n_samples, val_fraction, test_fraction)
    return n_train >= 1 and (n_val >= 1 or val_fraction == 0) and (n_test >= 1 or test_fraction == 0)


def assign_splits(n_samples: int, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    """Deterministic contiguous split: train first, then val, then test.

    Counts are ``round(n_samples * fraction)`` for val and test and the rest for train. Samples
    are independent draws, so contiguous blocks are as random as a shuffled assignment, and the
    split of a file can be read off its sample ids.

    Raises:
        ConfigError: a fraction outside ``[0, 1)``, or too few samples: no training sample, or an
            empty val or test split although its fraction is not zero (the message says how many
            samples the fractions need; a fraction of 0 asks for an empty split on purpose).
    """
    for name, fraction in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {fraction}")
    if not _fits(n_samples, val_fraction, test_fraction):
        needed = max([int(0.5 / f) + 1 for f in (val_fraction, test_fraction) if f > 0] + [n_samples + 1])
        needed = next((n for n in range(needed, needed + 1000) if _fits(n, val_fraction, test_fraction)), None)
        n_train, n_val, n_test = _split_counts(n_samples, val_fraction, test_fraction)
        advice = f"the splits need --samples >= {needed}" if needed else "lower the fractions"
        raise ConfigError(
            f"--samples {n_samples} with --val-fraction {val_fraction} and --test-fraction {test_fraction} gives "
            f"{n_train} train, {n_val} val and {n_test} test samples; {advice} (or set a fraction to 0 for no such split)"
        )
    n_train, n_val, _ = _split_counts(n_samples, val_fraction, test_fraction)
    ids = np.arange(n_samples, dtype=np.int64)
    return {"train": ids[:n_train], "val": ids[n_train : n_train + n_val], "test": ids[n_train + n_val :]}


def sample_rng(seed: int, sample_id: int) -> np.random.Generator:
    """The random generator of one sample: a function of ``(seed, sample_id)`` only."""
    return np.random.default_rng([int(seed), int(sample_id)])


def sample_torch_generator(seed: int, sample_id: int) -> torch.Generator:
    """A ``torch.Generator`` (CPU) that is a function of ``(seed, sample_id)`` only, for the
    torch-based initial-condition samplers: sample ``i`` is the same field whatever the batch."""
    state = np.random.SeedSequence([int(seed), int(sample_id)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) % 2**63)


@dataclass(frozen=True)
class GeneratorSpec:
    """One entry of the generator table.

    Attributes:
        write: ``write(request, options)`` writes the file.
        samples: ``samples(seed, ids, options, resolution)`` → the samples ``ids`` on the
            ``resolution`` grid as float32 arrays with a leading sample axis: ``{"x", "y"}``
            (pairs) or ``{"trajectory"}`` (``(B, T, C, *grid)``); each a function of
            ``(seed, id)`` only.
        options: the generator's options dataclass; each field is a ``--flag`` (underscores
            become dashes) whose help text is ``field.metadata["help"]``.
        summary: one line for ``--help``.
    """

    write: Callable[[GenerationRequest, Any], None]
    samples: Callable[[int, Sequence[int] | np.ndarray, Any, int], dict[str, np.ndarray]]
    options: type
    summary: str

    def sample(self, seed: int, index: int, options: Any, resolution: int) -> dict[str, np.ndarray]:
        """Sample ``index`` alone: ``samples(seed, [index], ...)`` without the sample axis, e.g.
        ``{"x": (1, n, n), "y": (1, n, n)}`` for Darcy or ``{"trajectory": (T, C, *grid)}``."""
        return {key: value[0] for key, value in self.samples(seed, [index], options, resolution).items()}
