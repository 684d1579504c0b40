"""Optimizers and learning-rate schedules built from a plain config (the ``optim`` group).

Config keys: ``name`` (adam, adamw, sgd), ``lr``, ``weight_decay``, ``betas`` (Adam family),
``momentum`` (SGD), ``scheduler`` (cosine, step, onecycle, none), ``step_size``/``gamma``
(step), ``warmup_epochs`` (cosine: linear warm-up). Unknown keys raise :class:`ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from neuralops.errors import ConfigError

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("cosine", "step", "onecycle", "none")
KNOWN_KEYS = {"name", "lr", "weight_decay", "betas", "momentum", "scheduler", "step_size", "gamma", "warmup_epochs"}


def _check_keys(cfg: Mapping[str, Any]) -> None:
    unknown = sorted(set(cfg) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"unknown optim option(s) {unknown}; valid options: {sorted(KNOWN_KEYS)}")


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    _check_keys(cfg)
    name = str(cfg.get("name", "adamw")).lower()
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer optim.name={name!r}; available: {', '.join(sorted(OPTIMIZERS))}")
    lr = float(cfg.get("lr", 1e-3))
    if not lr > 0:
        raise ConfigError(f"optim.lr must be positive, got {lr}")
    options: dict[str, Any] = {"lr": lr, "weight_decay": float(cfg.get("weight_decay", 0.0))}
    if name in ("adam", "adamw") and "betas" in cfg:
        options["betas"] = tuple(float(b) for b in cfg["betas"])
    if name == "sgd":
        options["momentum"] = float(cfg.get("momentum", 0.0))
    return OPTIMIZERS[name](params, **options)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], epochs: int, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, str]:
    """Return ``(scheduler, interval)``; ``interval`` is ``"step"`` or ``"epoch"`` (when to call ``step()``)."""
    _check_keys(cfg)
    kind = str(cfg.get("scheduler", "cosine")).lower()
    if kind not in SCHEDULERS:
        raise ConfigError(f"unknown optim.scheduler={kind!r}; available: {', '.join(SCHEDULERS)}")
    if kind == "none":
        return None, "epoch"
    if kind == "step":
        step_size = int(cfg.get("step_size", 100))
        gamma = float(cfg.get("gamma", 0.5))
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma), "epoch"
    total_steps = max(epochs * steps_per_epoch, 1)
    if kind == "onecycle":
        lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps), "step"
    warmup = int(cfg.get("warmup_epochs", 0)) * steps_per_epoch

    def cosine_with_warmup(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup), "step"
