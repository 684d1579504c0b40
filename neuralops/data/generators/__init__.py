"""Data generators: each writes one neuralops HDF5 file (see ``docs/data_format.md``).

A generator is a function ``write_<name>(request: GenerationRequest, options) -> None`` that
draws the samples ``request.samples_at[n]`` on the grid with ``n`` points per axis and writes
them with :class:`neuralops.data.schema.DatasetWriter`; ``options`` is an instance of the
generator's options dataclass, whose fields (with ``metadata={"help": ...}``) become command-line
flags. The command line (``python -m neuralops.data.generate``) builds both and looks the
generator up by name in its ``GENERATORS`` table of :class:`GeneratorSpec`, so adding a generator
is one function, one options dataclass and one table entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
    """

    out: Path
    n_samples: int
    splits: dict[str, np.ndarray]
    samples_at: dict[int, np.ndarray]
    seed: int = 0
    overwrite: bool = False
    progress: bool = True


def assign_splits(n_samples: int, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    """Deterministic contiguous split: train first, then val, then test.

    Counts are ``round(n_samples * fraction)`` for val and test and the rest for train. Samples
    are independent draws, so contiguous blocks are as random as a shuffled assignment, and the
    split of a file can be read off its sample ids.
    """
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {fraction}")
    n_val = round(n_samples * val_fraction)
    n_test = round(n_samples * test_fraction)
    n_train = n_samples - n_val - n_test
    if n_train < 1:
        raise ConfigError(
            f"{n_samples} samples with val_fraction={val_fraction} and test_fraction={test_fraction} leave no training sample"
        )
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
        options: the generator's options dataclass; each field is a ``--flag`` (underscores
            become dashes) whose help text is ``field.metadata["help"]``.
        summary: one line for ``--help``.
    """

    write: Callable[[GenerationRequest, Any], None]
    options: type
    summary: str
