"""The training loop: epochs of optimizer steps, validation, model selection, checkpoints.

Model selection uses the validation split only (never the test split). Each epoch appends a
line to ``history.jsonl`` in the run directory; checkpoints go to ``checkpoints/last`` (every
``checkpoint_every`` epochs) and ``checkpoints/best`` (best validation loss).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from neuralops.errors import ConfigError
from neuralops.evaluation.metrics import batch_grid, check_metrics
from neuralops.evaluation.resolution import evaluate_loader
from neuralops.grid import Grid
from neuralops.pretrained import PretrainedOperator
from neuralops.training.checkpoint import load_checkpoint, save_checkpoint
from neuralops.training.losses import Loss, check_loss

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SELECTIONS = ("best_val", "last")


@dataclass
class TrainerConfig:
    """Options of the ``trainer`` config group (see ``configs/trainer/default.yaml``)."""

    epochs: int = 20
    batch_size: int = 32
    loss: str = "rel_l2"
    metrics: list[str] = field(default_factory=lambda: ["rel_l2", "rel_h1", "rmse", "max_error"])
    grad_clip: float | None = None
    select: str = "best_val"
    checkpoint_every: int = 1
    precision: str = "fp32"
    device: str = "auto"
    num_threads: int | None = None
    num_workers: int = 0
    limit_train_batches: int | None = None
    resume: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"trainer.epochs and trainer.batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"trainer.precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"trainer.select must be one of {SELECTIONS}, got {self.select!r}")
        check_loss(self.loss)
        self.metrics = check_metrics(self.metrics, option="trainer.metrics")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "TrainerConfig":
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(cfg) - valid)
        if unknown:
            raise ConfigError(f"unknown trainer option(s) {unknown}; valid options: {sorted(valid)}")
        return cls(**cfg)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"trainer.device={name!r} is not a valid device: {err}") from None


class Trainer:
    """Trains a :class:`PretrainedOperator` (model + normalizers) on physical data.

    The loss and all metrics are computed on physical (decoded) outputs, so the numbers mean
    the same thing in training logs, in ``metrics.json`` and for a user of the saved model.

    ``grid`` is the training data's :class:`~neuralops.grid.Grid` (its domain, kinds and
    quadrature); each batch is scored on ``grid.resized(batch shape)``, so batches may come from
    several resolutions of one domain. ``None`` scores each batch on a uniform vertex grid on the
    unit domain.

    Raises:
        ConfigError: an unknown loss, or a metric undefined on ``grid`` (``brmse`` on a grid
            without boundary).
    """

    def __init__(
        self,
        operator: PretrainedOperator,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        scheduler_interval: str,
        config: TrainerConfig,
        run_dir: Path,
        device: torch.device,
        grid: Grid | None = None,
    ):
        self.operator = operator.to(device)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = device
        self.grid = grid
        check_metrics(config.metrics, grid, "trainer.metrics")
        self.loss = Loss(config.loss)
        dtype = PRECISIONS[config.precision]
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else nullcontext
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
        self.epoch = 0
        self.best_val = float("inf")
        self.history: list[dict[str, Any]] = []

    def _to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["x"].to(self.device, non_blocking=True), batch["y"].to(self.device, non_blocking=True)

    def train_epoch(self, loader: DataLoader) -> float:
        self.operator.train()
        total, count = 0.0, 0
        batches = tqdm(loader, desc=f"epoch {self.epoch + 1}/{self.config.epochs}", leave=False, disable=not self.config.progress)
        for i, batch in enumerate(batches):
            if self.config.limit_train_batches is not None and i >= self.config.limit_train_batches:
                break
            x, y = self._to_device(batch)
            with self.autocast():
                pred = self.operator(x)
            loss = self.loss(pred.float(), y, batch_grid(self.grid, y.shape[2:]))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {self.epoch + 1}, batch {i}; "
                    "try a lower optim.lr or trainer.grad_clip"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.config.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.operator.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
            batches.set_postfix(loss=f"{total / count:.4f}")
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        return total / max(count, 1)

    def evaluate(self, loader: DataLoader, metrics: list[str] | None = None) -> dict[str, float]:
        """Mean of every metric over the loader's samples (each sample weighted equally)."""
        return evaluate_loader(self.operator, loader, metrics or self.config.metrics, self.grid, self.device, self.autocast)

    def _state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "best_val": self.best_val,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "history_json": json.dumps(self.history),
        }

    def resume(self, checkpoint_dir: str | Path) -> None:
        """Continue from a checkpoint directory written by this trainer."""
        state = load_checkpoint(checkpoint_dir, self.operator, self.device)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"].cpu())
        self.epoch = int(state["epoch"])
        self.best_val = float(state["best_val"])
        self.history = json.loads(state["history_json"])

    def fit(self, train_loader: DataLoader, val_loader: DataLoader | None) -> list[dict[str, Any]]:
        """Train until ``config.epochs``; afterwards the operator holds the selected weights."""
        checkpoints = self.run_dir / "checkpoints"
        history_file = self.run_dir / "history.jsonl"
        while self.epoch < self.config.epochs:
            start = time.perf_counter()
            train_loss = self.train_epoch(train_loader)
            self.epoch += 1
            record: dict[str, Any] = {"epoch": self.epoch, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"]}
            if val_loader is not None:
                val = self.evaluate(val_loader, [self.config.loss])
                record["val_loss"] = val[self.config.loss]
                if record["val_loss"] < self.best_val:
                    self.best_val = record["val_loss"]
                    save_checkpoint(checkpoints / "best", self.operator, self._state())
            record["time_s"] = time.perf_counter() - start
            self.history.append(record)
            with open(history_file, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            if self.epoch % self.config.checkpoint_every == 0 or self.epoch == self.config.epochs:
                save_checkpoint(checkpoints / "last", self.operator, self._state())
            if self.config.progress:
                val_text = f"  val {self.config.loss} {record['val_loss']:.4f}" if "val_loss" in record else ""
                tqdm.write(f"epoch {self.epoch:4d}  train {self.config.loss} {train_loss:.4f}{val_text}  ({record['time_s']:.1f}s)")
        if self.config.select == "best_val" and val_loader is not None and (checkpoints / "best").is_dir():
            load_checkpoint(checkpoints / "best", self.operator, self.device)
        return self.history
