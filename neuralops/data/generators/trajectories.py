"""Writing time-dependent generators: solve once on the finest grid, subsample the rest.

Burgers, Navier-Stokes and shallow water share this loop: every sample (of every split) is
solved once, in batches, on the finest requested grid; each coarser grid holds the exact point
subsample of that solution (``coarsening = "subsampled"``), which needs the grids to nest. The
file is written atomically by :class:`~neuralops.data.schema.DatasetWriter`, so a failure or
Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from neuralops.data.generators import GenerationRequest
from neuralops.data.generators.parallel import batches, map_batches, reporting_to
from neuralops.data.schema import DatasetMetadata, DatasetWriter
from neuralops.errors import ConfigError


@dataclass(frozen=True)
class TrajectoryPlan:
    """How a time-dependent generator solves its samples on one grid.

    Attributes:
        metadata: the file's metadata (layout ``trajectories``).
        times: ``(T,)`` stored times.
        solve: sorted global ids ``(B,)`` → float32 ``(B, T, C, *grid)``; sample ``i`` depends only
            on ``(seed, i)``. Picklable (a ``functools.partial`` of a module-level function), so
            worker processes can run it.
        batch_size: samples per ``solve`` call (vectorized solving).
    """

    metadata: DatasetMetadata
    times: np.ndarray
    solve: Callable[[np.ndarray], np.ndarray]
    batch_size: int


def nested_strides(sizes: list[int], finest: int, nests: Callable[[int, int], int | None], rule: str) -> dict[int, int]:
    """Stride from ``finest`` to each size, or one :class:`ConfigError` naming the grids that
    do not nest. ``nests(fine, coarse)`` returns the stride or ``None``; ``rule`` explains it."""
    strides = {n: nests(finest, n) for n in sizes}
    bad = [n for n, stride in strides.items() if stride is None]
    if bad:
        raise ConfigError(f"--resolutions {bad} do not nest in the finest grid {finest} ({rule}); choose nested grids")
    return strides


def write_trajectories(
    request: GenerationRequest,
    plan: TrajectoryPlan,
    coords: Mapping[int, Mapping[str, np.ndarray]],
    strides: Mapping[int, int],
) -> None:
    """Solve every requested sample on the finest grid and write it at every grid holding it.

    Samples are solved in batches of the ids with equal ``id // plan.batch_size``
    (:func:`~neuralops.data.generators.parallel.batches`), in ``request.pool``'s workers when
    given. The progress bar counts stored frames (samples × stored times), so it moves while
    a batch is being solved.

    Args:
        request: what to generate (``request.shard``: one shard of a folder dataset).
        plan: metadata, times and the batch solver on the finest grid.
        coords: points per axis ``n`` → coordinates of that grid, per axis name.
        strides: ``n`` → stride of that grid within the finest (1 for the finest).
    """
    all_ids = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in request.samples_at.values()]))
    tasks = batches(all_ids, plan.batch_size)
    metadata, n_times = plan.metadata, len(plan.times)
    writer = DatasetWriter(request.out, metadata, request.n_samples, request.splits, overwrite=request.overwrite, times=plan.times,
                           shard=request.shard)
    bar = tqdm(total=len(all_ids) * n_times, desc=f"{request.label(metadata.name)} ({n_times} stored times per sample)",
               unit="frame", disable=not request.progress)
    with writer, bar, reporting_to(bar):
        targets = {n: writer.add_resolution(coords[n], ids) for n, ids in sorted(request.samples_at.items())}
        held = {n: set(target.index.tolist()) for n, target in targets.items()}
        for batch, fields in zip(tasks, map_batches(plan.solve, tasks, request.pool)):
            for sample_id, trajectory in zip(batch.tolist(), fields):
                for n, target in targets.items():
                    if sample_id in held[n]:
                        space = (slice(None, None, strides[n]),) * metadata.n_dims
                        target.write_trajectory(sample_id, np.ascontiguousarray(trajectory[(slice(None), slice(None), *space)]))
