"""Evaluate a model on the same test samples at every resolution a data file holds or derives.

Data access goes through :mod:`neuralops.data.factory`, so every format (neuralops, PDEBench,
the Well) and task (pairs, one-shot, windows, rollouts) is evaluated by the same code; each row
records how its grid was made (``method``: ``file``, ``stride`` or ``fourier_filter``).

In a data-parallel run (``context``: a :class:`Processes`, e.g. the training run's
:class:`~neuralops.training.distributed.Distributed`) each process scores its share of the
samples (:func:`shard`) and the means are combined weighted by sample count
(:func:`merge_means`), which gives every process the single-process number up to float64
rounding.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Optional, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from neuralops.data.factory import DataConfig, available_resolutions, open_rollout, open_split
from neuralops.data.views import ResolutionView
from neuralops.errors import ConfigError
from neuralops.evaluation.metrics import MetricAccumulator, batch_grid
from neuralops.evaluation.rollout import evaluate_rollout
from neuralops.grid import Grid


class Processes(Protocol):
    """The processes an evaluation is split over: this one's ``rank`` of ``world_size``, and
    ``gather(obj)``: every process's picklable ``obj`` in rank order (a collective)."""

    rank: int
    world_size: int

    def gather(self, obj: Any) -> list[Any]: ...


def grid_label(shape: Sequence[int]) -> str:
    """``(32, 32) -> "32x32"``."""
    return "x".join(str(int(n)) for n in shape)


def shard(dataset: Dataset, context: Optional[Processes] = None) -> Dataset:
    """This process's share of ``dataset``: every ``world_size``-th sample from ``rank`` on,
    without padding (so shards may differ in size by one and a shard may be empty); the whole
    dataset for one process (``context=None``)."""
    if context is None or context.world_size == 1:
        return dataset
    return Subset(dataset, range(context.rank, len(dataset), context.world_size))


def merge_means(parts: Sequence[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Combine per-shard results ``[(samples, means), ...]`` into the means over all samples.

    Every float (also inside nested dicts and lists, e.g. ``per_channel`` and
    ``<metric>_per_step``) becomes the sample-weighted mean of the shards' values; other values
    (``steps``) are taken from the first part. Parts with 0 samples must be left out.
    """
    total = sum(n for n, _ in parts)

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {key: merge([v[key] for v in values]) for key in first}
        if isinstance(first, list):
            return [merge([v[i] for v in values]) for i in range(len(first))]
        if isinstance(first, float):
            return sum(n * v for (n, _), v in zip(parts, values)) / total
        return first

    return merge([means for _, means in parts])


def reduce_means(samples: int, means: dict[str, Any], context: Optional[Processes] = None) -> dict[str, Any]:
    """The means over every process's samples, on every process, from this process's
    ``samples`` and ``means`` (ignored when ``samples`` is 0). A collective: every rank calls it.

    Raises:
        ConfigError: no process evaluated any sample.
    """
    parts = [(n, m) for n, m in (context.gather((samples, means)) if context is not None else [(samples, means)]) if n > 0]
    if not parts:
        raise ConfigError("no samples were evaluated (the evaluation split is empty)")
    return parts[0][1] if len(parts) == 1 else merge_means(parts)


@torch.no_grad()
def accumulate_loader(
    operator: nn.Module,
    loader: DataLoader,
    metrics: Sequence[str],
    grid: Grid | None = None,
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> MetricAccumulator:
    """Score every sample of ``loader``: the :class:`MetricAccumulator` of ``metrics``.

    ``operator`` maps physical inputs ``(B, C_in, *grid)`` to physical outputs. ``grid`` is
    the domain of the samples; each batch is scored on ``grid.resized(batch shape)`` (see
    :func:`~neuralops.evaluation.metrics.batch_grid`; ``None``: a uniform vertex grid on the
    unit domain).
    """
    operator.eval()
    accumulator = MetricAccumulator(metrics)
    for batch in loader:
        x, y = batch["x"].to(device), batch["y"].to(device)
        with autocast():
            pred = operator(x)
        accumulator.update(pred.float(), y, batch_grid(grid, y.shape[2:]))
    return accumulator


def evaluate_loader(
    operator: nn.Module,
    loader: DataLoader,
    metrics: Sequence[str],
    grid: Grid | None = None,
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    context: Optional[Processes] = None,
) -> dict[str, float]:
    """Mean of each metric over every sample of ``loader`` (samples weighted equally), scored
    on ``grid`` as in :func:`accumulate_loader`.

    In a data-parallel run ``loader`` holds this process's :func:`shard` and the result is the
    mean over all shards (:func:`reduce_means`; every rank must call this).

    Raises:
        ConfigError: an unknown metric, or no process has a sample.
    """
    accumulator = accumulate_loader(operator, loader, metrics, grid, device, autocast)
    return reduce_means(accumulator.count, accumulator.means() if accumulator.count else {}, context)


def channel_names(dataset: Any, count: int) -> list[str]:
    """Names of the ``count`` output channels of ``dataset``: its ``output_channels``, else its
    ``channels``, when one of them has ``count`` names; else ``c0, c1, …``."""
    for attr in ("output_channels", "channels"):
        names = list(getattr(dataset, attr, None) or [])
        if len(names) == count:
            return names
    return [f"c{i}" for i in range(count)]


def evaluate_views(
    operator: nn.Module,
    data: DataConfig,
    metrics: Sequence[str],
    split: str = "test",
    views: Sequence[ResolutionView] | None = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    context: Optional[Processes] = None,
) -> list[dict[str, Any]]:
    """One row per view: ``{"resolution": "32x32", "method": "stride", "stride": 2, "samples": n,
    <metric>: mean, ...}``, plus for multi-channel data ``"per_channel": {<metric>: {<channel>:
    mean}}``. Every metric is computed on the dataset's grid (``dataset.grid``).

    ``views=None`` evaluates :func:`~neuralops.data.factory.available_resolutions`. With
    ``data.task == "rollout"`` each row also holds ``"steps"`` and ``"<metric>_per_step"`` (the
    metric's mean, and each per-channel value, is then the mean over predicted steps) and
    ``samples`` counts trajectories; for windows it counts windows. Rollout channels are the
    trajectory's state channels.

    In a data-parallel run every process scores its :func:`shard` of each view (``batch_size``
    samples per process and batch) and every process returns the rows over all samples; every
    rank must call this.
    """
    rows = []
    for view in views if views is not None else available_resolutions(data, split):
        dataset = open_rollout(data, split, view) if data.task == "rollout" else open_split(data, split, view)
        local = shard(dataset, context)
        means: dict[str, Any] = {}
        if len(local) > 0:
            loader = DataLoader(local, batch_size=batch_size, shuffle=False)
            if data.task == "rollout":
                names = list(dataset.source.channels)
                means = evaluate_rollout(operator, loader, metrics, dataset.steps_in, dataset.steps_out, dataset.grid, device,
                                         autocast, names if len(names) > 1 else None)
            else:
                accumulator = accumulate_loader(operator, loader, metrics, dataset.grid, device, autocast)
                means = accumulator.means()
                if accumulator.channels > 1:
                    means["per_channel"] = accumulator.channel_means(channel_names(dataset, accumulator.channels))
        means = reduce_means(len(local), means, context)
        rows.append({"resolution": grid_label(dataset.grid_shape), "method": view.method, "stride": view.stride,
                     "samples": len(dataset), **means})
        dataset.close()
    return rows


def evaluate_resolutions(
    operator: nn.Module,
    path: str | os.PathLike,
    metrics: Sequence[str],
    split: str = "test",
    grids: Sequence[Sequence[int]] | None = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> list[dict[str, Any]]:
    """Rows of :func:`evaluate_views` for the pair file ``path`` at its stored ``grids``.

    ``grids=None`` evaluates every resolution of ``path`` that holds ``split``.
    """
    data = DataConfig.from_dict({"path": os.fspath(path)})
    views = None if grids is None else [ResolutionView("file", 1, tuple(grid)) for grid in grids]
    return evaluate_views(operator, data, metrics, split, views, batch_size, device, autocast)


def format_table(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> str:
    """A plain-text table, one row per resolution, one column per metric (for rollouts: the
    mean over steps; the method column says how the grid was made)."""
    headers = ["resolution", "method", "samples", *metrics]
    body = [[str(r["resolution"]), _method_label(r), str(r["samples"]), *[f"{r[m]:.4g}" for m in metrics]] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in body]
    return "\n".join(lines)


def _method_label(row: dict[str, Any]) -> str:
    method = row.get("method", "file")
    return method if method == "file" else f"{method} {row.get('stride', 1)}"


def format_rollout(rows: Sequence[dict[str, Any]], metric: str) -> str:
    """Per-step values of ``metric`` for rollout rows, one line per resolution."""
    lines = []
    for row in rows:
        values = " ".join(f"{v:.3g}" for v in row[f"{metric}_per_step"])
        lines.append(f"{row['resolution']} ({_method_label(row)}) {metric} per step: {values}")
    return "\n".join(lines)
