"""Optimizers and learning-rate schedules: the ``optim`` config group and its ``scheduler``.

Each optimizer and each schedule is a dataclass listing exactly the options that apply to it;
they are the Hydra schemas of ``configs/optim/*.yaml`` and ``configs/optim/scheduler/*.yaml``
(:mod:`neuralops.config_store`), so an option that does not apply (``optim.momentum`` with
Adam, ``optim.scheduler.step_size`` with the cosine schedule) is refused when the config is
composed. Select a schedule with ``optim/scheduler=cosine`` and set its options as
``optim.scheduler.warmup_fraction=0.1``.

Optimizers: ``adam``, ``adamw`` (Kingma & Ba 2015; Loshchilov & Hutter 2019), ``sgd``.
Schedules: ``cosine`` (linear warm-up over a fraction of the run, then half a cosine down to a
fraction of ``lr``, stepped every batch),
``step`` (multiply by ``gamma`` every ``step_size`` epochs), ``onecycle`` (Smith & Topin 2019,
stepped every batch), ``none``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, List

import torch

from neuralops.errors import ConfigError


def _positive(option: str, value: float) -> None:
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{option} must be a positive finite number, got {value}")


def _non_negative(option: str, value: float) -> None:
    if not value >= 0 or not math.isfinite(value):
        raise ConfigError(f"{option} must be >= 0, got {value}")


@dataclass
class CosineSchedule:
    """Linear warm-up over the first ``warmup_fraction`` of the run's optimizer steps, then a
    half cosine from ``lr`` down to ``min_lr_fraction * lr`` at the last step (Loshchilov &
    Hutter 2017, without restarts). Both are fractions, so the schedule has the same shape in a
    run of 1 epoch or 1000: a fixed number of warm-up epochs would make a short run all warm-up.
    ``min_lr_fraction = 0.5`` over 15 epochs is neuraloperator's per-epoch ``T_max = 30`` cosine
    (see ``benchmarks/results/parity_neuraloperator.md``)."""

    name: str = "cosine"
    warmup_fraction: float = 0.0
    min_lr_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"optim.scheduler.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0 <= self.min_lr_fraction <= 1:
            raise ConfigError(f"optim.scheduler.min_lr_fraction must be in [0, 1], got {self.min_lr_fraction}")


@dataclass
class StepSchedule:
    """The learning rate times ``gamma`` every ``step_size`` epochs (the FNO paper's schedule)."""

    name: str = "step"
    step_size: int = 100
    gamma: float = 0.5

    def __post_init__(self) -> None:
        if self.step_size < 1:
            raise ConfigError(f"optim.scheduler.step_size must be >= 1 epoch, got {self.step_size}")
        _positive("optim.scheduler.gamma", self.gamma)


@dataclass
class OneCycleSchedule:
    """torch's ``OneCycleLR`` with ``max_lr = lr``; ``pct_start`` is the rising fraction."""

    name: str = "onecycle"
    pct_start: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.pct_start < 1:
            raise ConfigError(f"optim.scheduler.pct_start must be in (0, 1), got {self.pct_start}")


@dataclass
class NoSchedule:
    """A constant learning rate."""

    name: str = "none"


@dataclass
class OptimizerConfig:
    """Options every optimizer takes: ``lr``, ``weight_decay`` and the learning-rate
    ``scheduler`` (a schedule config, or a mapping with its ``name``)."""

    name: str = ""
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: Any = field(default_factory=lambda: {"name": "cosine"})

    def __post_init__(self) -> None:
        _positive("optim.lr", self.lr)
        _non_negative("optim.weight_decay", self.weight_decay)
        if not isinstance(self.scheduler, tuple(SCHEDULER_CONFIGS.values())):
            self.scheduler = _from_mapping(self.scheduler, SCHEDULER_CONFIGS, "optim.scheduler")


@dataclass
class AdamConfig(OptimizerConfig):
    """Adam: L2 ``weight_decay`` added to the gradient, ``betas``."""

    name: str = "adam"
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")


@dataclass
class AdamWConfig(AdamConfig):
    """AdamW: as Adam, with decoupled ``weight_decay``."""

    name: str = "adamw"


@dataclass
class SGDConfig(OptimizerConfig):
    """SGD with optional (Nesterov) ``momentum``."""

    name: str = "sgd"
    lr: float = 1e-2
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("optim.momentum", self.momentum)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("optim.nesterov=true needs optim.momentum > 0")


OPTIMIZER_CONFIGS: dict[str, type] = {"adam": AdamConfig, "adamw": AdamWConfig, "sgd": SGDConfig}
SCHEDULER_CONFIGS: dict[str, type] = {
    "cosine": CosineSchedule,
    "step": StepSchedule,
    "onecycle": OneCycleSchedule,
    "none": NoSchedule,
}
_TORCH_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def _from_mapping(options: Any, configs: Mapping[str, type], where: str) -> Any:
    """The dataclass of ``configs[options["name"]]`` built from a plain mapping; unknown names or
    options raise :class:`ConfigError` naming ``where``."""
    if isinstance(options, str):
        options = {"name": options}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where} must be a mapping with a 'name' ({', '.join(configs)}), got {options!r}")
    name = str(options.get("name", "")).lower()
    if name not in configs:
        raise ConfigError(f"{where}.name={options.get('name')!r} is not one of: {', '.join(configs)}")
    cls = configs[name]
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: option(s) {unknown} do not apply to {name!r}; its options: {', '.join(valid)}")
    return cls(**{**options, "name": name})


def optim_config(options: Mapping[str, Any] | Any) -> OptimizerConfig:
    """The checked optimizer config (with its schedule) from a plain mapping or a config object."""
    if isinstance(options, tuple(OPTIMIZER_CONFIGS.values())):
        return options
    return _from_mapping(options, OPTIMIZER_CONFIGS, "optim")


#: Device types on which torch's fused optimizer kernels run (``fused=True``).
FUSED_DEVICE_TYPES = ("cpu", "cuda")


def update_implementation(params: Sequence[torch.Tensor]) -> dict[str, bool]:
    """``{"fused": True}`` when every parameter is a floating-point tensor on a CPU or CUDA
    device (torch's fused kernel: one pass per parameter over its value, gradient and moments),
    else ``{"foreach": True}`` (torch's multi-tensor update). The fused update is the faster of
    the two: measured on one CPU thread for the benchmark FNO (1,192,801 parameters in 40 tensors),
    an AdamW step takes 1.0 ms fused, 4.1 ms with ``foreach`` and 3.8 ms in torch's
    per-parameter loop; for its Tucker TFNO (140,521 parameters in 56 tensors) 0.4, 1.1 and
    1.6 ms (``benchmarks/results/optimizer_cpu.md``). Both updates compute the same AdamW step
    up to float rounding."""
    fused = all(p.is_floating_point() and p.device.type in FUSED_DEVICE_TYPES for p in params)
    return {"fused": True} if fused else {"foreach": True}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """Load a saved ``optimizer.state_dict()`` into ``optimizer`` but keep ``optimizer``'s own
    update implementation (``fused`` / ``foreach``, :func:`update_implementation`): torch's
    ``load_state_dict`` takes every param-group option from the saved state, so a checkpoint
    written with another implementation (e.g. ``foreach``, before ``train.py`` took the fused
    update) would otherwise resume on that one. The moments and step counts carry over; the
    update is the same up to float rounding."""
    own = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    groups = [{**saved, **flags} for saved, flags in zip(state["param_groups"], own)]
    optimizer.load_state_dict({**state, "param_groups": groups})


def build_optimizer(params: Iterable[torch.nn.Parameter], options: Mapping[str, Any] | Any) -> torch.optim.Optimizer:
    """The torch optimizer for ``params``, with the update :func:`update_implementation` picks.
    Raises :class:`ConfigError` for invalid options."""
    config = optim_config(options)
    params = list(params)
    kwargs: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay, **update_implementation(params)}
    if isinstance(config, AdamConfig):
        kwargs["betas"] = tuple(config.betas)
    else:
        kwargs.update(momentum=config.momentum, nesterov=config.nesterov)
    return _TORCH_OPTIMIZERS[config.name](params, **kwargs)


def build_scheduler(
    optimizer: torch.optim.Optimizer, options: Mapping[str, Any] | Any, epochs: int, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, str]:
    """Return ``(scheduler, interval)``; ``interval`` is ``"step"`` or ``"epoch"`` (when to call ``step()``)."""
    schedule = optim_config(options).scheduler
    if isinstance(schedule, NoSchedule):
        return None, "epoch"
    if isinstance(schedule, StepSchedule):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=schedule.step_size, gamma=schedule.gamma), "epoch"
    total_steps = max(epochs * steps_per_epoch, 1)
    if isinstance(schedule, OneCycleSchedule):
        lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=schedule.pct_start), "step"
    warmup = math.ceil(schedule.warmup_fraction * total_steps)
    floor = schedule.min_lr_fraction

    def cosine_with_warmup(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup), "step"
