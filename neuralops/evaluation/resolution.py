"""Evaluate a model on the same test samples at every resolution a data file holds or derives.

Data access goes through :mod:`neuralops.data.factory`, so every format (neuralops, PDEBench,
the Well) and task (pairs, one-shot, windows, rollouts) is evaluated by the same code; each row
records how its grid was made (``method``: ``file``, ``stride`` or ``fourier_filter``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from neuralops.data.factory import DataConfig, available_resolutions, open_rollout, open_split
from neuralops.data.views import ResolutionView
from neuralops.evaluation.metrics import MetricAccumulator, batch_grid
from neuralops.evaluation.rollout import evaluate_rollout
from neuralops.grid import Grid


def grid_label(shape: Sequence[int]) -> str:
    """``(32, 32) -> "32x32"``."""
    return "x".join(str(int(n)) for n in shape)


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
) -> dict[str, float]:
    """Mean of each metric over every sample of ``loader`` (samples weighted equally), scored
    on ``grid`` as in :func:`accumulate_loader`.

    Raises:
        ConfigError: an unknown metric, or the loader is empty.
    """
    return accumulate_loader(operator, loader, metrics, grid, device, autocast).means()


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
) -> list[dict[str, Any]]:
    """One row per view: ``{"resolution": "32x32", "method": "stride", "stride": 2, "samples": n,
    <metric>: mean, ...}``, plus for multi-channel data ``"per_channel": {<metric>: {<channel>:
    mean}}``. Every metric is computed on the dataset's grid (``dataset.grid``).

    ``views=None`` evaluates :func:`~neuralops.data.factory.available_resolutions`. With
    ``data.task == "rollout"`` each row also holds ``"steps"`` and ``"<metric>_per_step"`` (the
    metric's mean, and each per-channel value, is then the mean over predicted steps) and
    ``samples`` counts trajectories; for windows it counts windows. Rollout channels are the
    trajectory's state channels.
    """
    rows = []
    for view in views if views is not None else available_resolutions(data, split):
        if data.task == "rollout":
            dataset = open_rollout(data, split, view)
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
            names = list(dataset.source.channels)
            means = evaluate_rollout(operator, loader, metrics, dataset.steps_in, dataset.steps_out, dataset.grid, device,
                                     autocast, names if len(names) > 1 else None)
        else:
            dataset = open_split(data, split, view)
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
            accumulator = accumulate_loader(operator, loader, metrics, dataset.grid, device, autocast)
            means = accumulator.means()
            if accumulator.channels > 1:
                means["per_channel"] = accumulator.channel_means(channel_names(dataset, accumulator.channels))
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
