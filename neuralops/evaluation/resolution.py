"""Evaluate a model on the same test samples at every resolution a data file holds."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from neuralops.data import OperatorDataset, resolutions
from neuralops.training.metrics import MetricAccumulator


def grid_label(shape: Sequence[int]) -> str:
    """``(32, 32) -> "32x32"``."""
    return "x".join(str(int(n)) for n in shape)


@torch.no_grad()
def evaluate_loader(
    operator: nn.Module,
    loader: DataLoader,
    metrics: Sequence[str],
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, float]:
    """Mean of each metric over every sample of ``loader`` (samples weighted equally).

    ``operator`` maps physical inputs ``(B, C_in, *grid)`` to physical outputs.
    """
    operator.eval()
    accumulator = MetricAccumulator(list(metrics))
    for batch in loader:
        x, y = batch["x"].to(device), batch["y"].to(device)
        with autocast():
            pred = operator(x)
        accumulator.update(pred.float(), y)
    return accumulator.means()


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
    """One row per grid: ``{"resolution": "32x32", "samples": n, <metric>: mean, ...}``.

    ``grids=None`` evaluates every resolution of ``path`` that holds ``split``.
    """
    rows = []
    for grid in grids if grids is not None else resolutions(path, split):
        dataset = OperatorDataset(path, split=split, resolution=tuple(grid))
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        means = evaluate_loader(operator, loader, metrics, device, autocast)
        rows.append({"resolution": grid_label(dataset.grid_shape), "samples": len(dataset), **means})
        dataset.close()
    return rows


def format_table(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> str:
    """A plain-text table, one row per resolution, one column per metric."""
    headers = ["resolution", "samples", *metrics]
    body = [[str(r["resolution"]), str(r["samples"]), *[f"{r[m]:.4g}" for m in metrics]] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in body]
    return "\n".join(lines)
