"""Autoregressive rollout evaluation: feed predictions back, score every predicted step.

A model trained on windows maps ``k`` stacked states (plus static channels) to the next ``m``
states. :func:`rollout` starts from the first ``k`` true states of a trajectory, predicts ``m``
states, appends them, and repeats from the last ``k`` states until the horizon is covered; only
the predicted steps are scored (never the input frames). :func:`evaluate_rollout` reports each
metric per predicted step (mean over trajectories, samples weighted equally) and its mean over
steps (steps weighted equally).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from neuralops.errors import ConfigError
from neuralops.evaluation.metrics import MetricAccumulator, batch_grid
from neuralops.grid import Grid


@torch.no_grad()
def rollout(
    operator: nn.Module,
    initial: torch.Tensor,
    static: torch.Tensor,
    n_steps: int,
    steps_in: int,
    steps_out: int,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> torch.Tensor:
    """Predict ``n_steps`` states autoregressively.

    Args:
        operator: maps ``(B, k*C + S, *grid)`` to ``(B, m*C, *grid)`` (physical units).
        initial: the first ``k`` true states, ``(B, k, C, *grid)``.
        static: time-constant input channels ``(B, S, *grid)`` (``S`` may be 0), appended to
            every input.
        n_steps: states to predict.
        steps_in, steps_out: ``k`` and ``m`` of the model.

    Returns:
        ``(B, n_steps, C, *grid)``: the predicted states after the initial ones.
    """
    if initial.ndim < 3 or initial.shape[1] != steps_in:
        raise ConfigError(f"rollout needs the first {steps_in} states as (B, {steps_in}, C, *grid), got {tuple(initial.shape)}")
    batch, _, channels, *grid = initial.shape
    history = list(initial.unbind(1))
    predicted = 0
    while predicted < n_steps:
        window = torch.cat([*history[-steps_in:], static], dim=1)
        with autocast():
            out = operator(window)
        states = out.float().reshape(batch, steps_out, channels, *grid).unbind(1)
        history.extend(states)
        predicted += steps_out
    return torch.stack(history[steps_in : steps_in + n_steps], dim=1)


@torch.no_grad()
def evaluate_rollout(
    operator: nn.Module,
    loader: DataLoader,
    metrics: Sequence[str],
    steps_in: int,
    steps_out: int,
    grid: Grid | None = None,
    device: torch.device | str = "cpu",
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    channel_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-step metrics of rollouts over a loader of :class:`~neuralops.data.tasks.RolloutTask`
    items (``{"x": (B, k*C+S, *grid), "y": (B, R, C, *grid), "static": (B, S, *grid)}``).

    Every state is scored on ``grid`` (the trajectories' domain, resized to the batch as in
    :func:`~neuralops.evaluation.metrics.batch_grid`; ``None``: a uniform vertex grid on the unit
    domain).

    Returns ``{"steps": R, <metric>: mean over steps, "<metric>_per_step": [R values]}``, and
    with ``channel_names`` (one per state channel) also ``"per_channel": {<metric>: {<channel>:
    mean over steps}}``.

    Raises:
        ConfigError: an unknown metric, or the loader is empty.
    """
    operator.eval()
    per_step: list[MetricAccumulator] = []
    for batch in loader:
        target, static = batch["y"].to(device), batch["static"].to(device)
        n_steps, channels = target.shape[1], target.shape[2]
        initial = batch["x"].to(device)[:, : steps_in * channels].reshape(target.shape[0], steps_in, channels, *target.shape[3:])
        pred = rollout(operator, initial, static, n_steps, steps_in, steps_out, autocast)
        state_grid = batch_grid(grid, target.shape[3:])
        if not per_step:
            per_step = [MetricAccumulator(metrics) for _ in range(n_steps)]
        for step, accumulator in enumerate(per_step):
            accumulator.update(pred[:, step], target[:, step], state_grid)
    if not per_step:
        raise ConfigError("no trajectories were evaluated (the evaluation split is empty)")
    means = [accumulator.means() for accumulator in per_step]
    result: dict[str, Any] = {"steps": len(means)}
    for name in metrics:
        values = [m[name] for m in means]
        result[name] = sum(values) / len(values)
        result[f"{name}_per_step"] = values
    if channel_names is not None:
        channel_means = [accumulator.channel_means(channel_names) for accumulator in per_step]
        result["per_channel"] = {
            name: {c: sum(m[name][c] for m in channel_means) / len(channel_means) for c in channel_names} for name in metrics
        }
    return result
