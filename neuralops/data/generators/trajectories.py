"""Writing time-dependent generators: solve once on the finest grid, subsample the rest.

Burgers, Navier-Stokes and shallow water share this loop: every sample (of every split) is
solved once, in batches, on the finest requested grid; each coarser grid holds the exact point
subsample of that solution (``coarsening = "subsampled"``), which needs the grids to nest. The
file is written atomically by :class:`~neuralops.data.schema.DatasetWriter`, so a failure or
Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from tqdm import tqdm

from neuralops.data.generators import GenerationRequest
from neuralops.data.schema import DatasetMetadata, DatasetWriter
from neuralops.errors import ConfigError


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
    metadata: DatasetMetadata,
    times: np.ndarray,
    coords: Mapping[int, Mapping[str, np.ndarray]],
    strides: Mapping[int, int],
    solve: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
) -> None:
    """Solve every requested sample on the finest grid and write it at every grid holding it.

    Args:
        request: what to generate.
        metadata: the file's metadata (layout ``trajectories``).
        times: ``(T,)`` stored times.
        coords: points per axis ``n`` → coordinates of that grid, per axis name.
        strides: ``n`` → stride of that grid within the finest (1 for the finest).
        solve: sorted global ids ``(B,)`` → float ``(B, T, C, *finest grid)``; sample ``i`` must
            depend only on ``(request.seed, i)``.
        batch_size: samples per ``solve`` call (vectorized solving).
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    all_ids = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in request.samples_at.values()]))
    writer = DatasetWriter(request.out, metadata, request.n_samples, request.splits, overwrite=request.overwrite, times=times)
    with writer, tqdm(total=len(all_ids), desc=f"{metadata.name} -> {request.out}", unit="sample", disable=not request.progress) as bar:
        targets = {n: writer.add_resolution(coords[n], ids) for n, ids in sorted(request.samples_at.items())}
        held = {n: set(target.index.tolist()) for n, target in targets.items()}
        for start in range(0, len(all_ids), batch_size):
            batch = all_ids[start : start + batch_size]
            fields = np.asarray(solve(batch), dtype=np.float32)
            for sample_id, trajectory in zip(batch.tolist(), fields):
                for n, target in targets.items():
                    if sample_id in held[n]:
                        space = (slice(None, None, strides[n]),) * metadata.n_dims
                        target.write_trajectory(sample_id, np.ascontiguousarray(trajectory[(slice(None), slice(None), *space)]))
            bar.update(len(batch))
