"""The training loop: epochs of optimizer steps, validation, model selection, checkpoints.

Model selection uses the validation split only (never the test split). Each epoch appends a
line to ``history.jsonl`` in the run directory (and its scalars to TensorBoard);
checkpoints go to ``checkpoints/last`` (every ``checkpoint_every`` epochs and every
``checkpoint_every_steps`` optimizer steps) and ``checkpoints/best`` (best validation loss).

A checkpoint holds everything that decides the next step (see
:mod:`neuralops.training.checkpoint`), so a run resumed from it — also from the middle of an
epoch — takes the same steps as the run left alone. In a data-parallel run
(:mod:`neuralops.training.distributed`) the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`; every rank takes part in every collective
and rank 0 alone writes files and logs.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Union

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from neuralops.data.multires import ResolutionBatchSampler
from neuralops.errors import ConfigError
from neuralops.evaluation.metrics import batch_grid, check_metrics
from neuralops.evaluation.resolution import evaluate_loader
from neuralops.grid import Grid
from neuralops.io import atomic_write
from neuralops.pretrained import PretrainedOperator
from neuralops.training.checkpoint import load_weights, read_training_state, rng_state, save_checkpoint, set_rng_state
from neuralops.training.distributed import Distributed, check_cuda
from neuralops.training.losses import METRIC_LOSSES, Loss, LossOptions
from neuralops.training.optim import load_optimizer_state

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SELECTIONS = ("best_val", "last")


def _check_int(option: str, value: Any, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        nullable = " or null" if optional else ""
        raise ConfigError(f"trainer.{option} must be an integer >= {minimum}{nullable}, got {value!r}")


def _check_device(name: str) -> None:
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"trainer.device={name!r} is not a valid device (auto, cpu, cuda or cuda:N): {err}") from None
    if device.type == "cuda":
        check_cuda(name)


@dataclass
class TrainerConfig:
    """Options of the ``trainer`` config group (see ``configs/trainer/default.yaml``).

    ``batch_size`` is the *global* batch: under ``torchrun`` with N processes each process
    takes ``batch_size / N`` samples per step (``batch_size`` must be a multiple of N), so a
    run takes the same steps whatever the number of processes.

    Raises:
        ConfigError: one line naming ``trainer.<option>`` for a value out of range, an unknown
            loss, metric, precision or selection, or a CUDA device this machine lacks.
    """

    epochs: int = 20
    batch_size: int = 32
    loss: Union[str, List[str]] = "rel_l2"
    loss_weights: Optional[List[float]] = None
    loss_options: LossOptions = field(default_factory=LossOptions)
    metrics: List[str] = field(default_factory=lambda: ["rel_l2", "rel_h1", "rmse", "max_error"])
    grad_clip: Optional[float] = None
    select: str = "best_val"
    checkpoint_every: int = 1
    checkpoint_every_steps: Optional[int] = None
    precision: str = "fp32"
    device: str = "auto"
    compile: bool = False
    num_threads: Optional[int] = None
    keep_freed_memory: bool = True
    num_workers: int = 0
    limit_train_batches: Optional[int] = None
    resume: Optional[str] = None
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for option in ("epochs", "batch_size", "checkpoint_every"):
            _check_int(option, getattr(self, option), 1)
        _check_int("num_workers", self.num_workers, 0)
        for option in ("checkpoint_every_steps", "num_threads", "limit_train_batches"):
            _check_int(option, getattr(self, option), 1, optional=True)
        if self.grad_clip is not None and not (isinstance(self.grad_clip, (int, float)) and 0 < self.grad_clip < math.inf):
            raise ConfigError(f"trainer.grad_clip must be a positive number or null, got {self.grad_clip!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"trainer.precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"trainer.select must be one of {SELECTIONS}, got {self.select!r}")
        _check_device(self.device)
        if not isinstance(self.loss_options, LossOptions):
            self.loss_options = LossOptions.from_mapping(self.loss_options)
        Loss(self.loss, self.loss_weights, self.loss_options)  # checks names, weights and options
        if not self.metrics:
            raise ConfigError("trainer.metrics is empty; list the metrics to report, e.g. trainer.metrics=[rel_l2]")
        self.metrics = check_metrics(self.metrics, option="trainer.metrics")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "TrainerConfig":
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(cfg) - valid)
        if unknown:
            raise ConfigError(f"unknown trainer option(s) {unknown}; valid options: {sorted(valid)}")
        return cls(**cfg)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


class Trainer:
    """Trains a :class:`PretrainedOperator` (model + normalizers) on physical data.

    The loss and all metrics are computed on physical (decoded) outputs, so the numbers mean
    the same thing in training logs, in ``metrics.json`` and for a user of the saved model.

    ``grid`` is the training data's :class:`~neuralops.grid.Grid` (its domain, kinds and
    quadrature); each batch is scored on ``grid.resized(batch shape)``, so batches may come from
    several resolutions of one domain. ``None`` scores each batch on a uniform vertex grid on the
    unit domain.

    ``context`` is this process's place in a data-parallel run (default: one process); the
    loaders given to :meth:`fit` then hold this rank's share (a
    :class:`~neuralops.data.multires.ResolutionBatchSampler` with this rank, and the
    :func:`~neuralops.evaluation.resolution.shard` of the validation set). ``identity`` (a
    JSON-able dict, e.g. the data file and model config) is stored in every checkpoint, and
    :meth:`resume` refuses a checkpoint whose identity differs.

    Raises:
        ConfigError: an unknown loss, or a metric undefined on ``grid`` (``brmse`` on a grid
            without boundary).
    """

    def __init__(
        self,
        operator: PretrainedOperator,
        optimizer: torch.optim.Optimizer,
        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler],
        scheduler_interval: str,
        config: TrainerConfig,
        run_dir: Path,
        device: torch.device,
        grid: Optional[Grid] = None,
        context: Distributed = Distributed(),
        identity: Optional[dict[str, Any]] = None,
    ):
        self.operator = operator.to(device)
        self.model: torch.nn.Module = self.operator
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = device
        self.grid = grid
        self.context = context
        self.identity = json.loads(json.dumps(identity or {}))
        check_metrics(config.metrics, grid, "trainer.metrics")
        self.loss = Loss(config.loss, config.loss_weights, config.loss_options)
        # Selection on the validation split uses the loss when it is a single metric, else rel_l2
        # (a weighted or physics loss is a training objective; selection compares predictions).
        self.selection_metric = config.loss if isinstance(config.loss, str) and config.loss in METRIC_LOSSES else "rel_l2"
        dtype = PRECISIONS[config.precision]
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else nullcontext
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
        self.epoch = 0  # completed epochs
        self.step = 0  # batches taken in the epoch in progress
        self.global_step = 0  # optimizer steps since the start of the run
        self.best_val = float("inf")
        self.history: list[dict[str, Any]] = []
        self.train_time_s = 0.0  # wall time of the kept work, over every resume
        self._epoch_start_s = 0.0  # train_time_s when the epoch in progress started
        self._epoch_sums = (0.0, 0.0)  # loss * samples and samples of the epoch in progress
        self._samples_seen = 0.0  # samples of the last epoch (all ranks)
        self._generator: Optional[torch.Generator] = None  # the train loader's: it decides the data order
        self._order: Optional[torch.Tensor] = None  # its state at the start of the epoch in progress
        self._resume_order = False
        self._clock = time.perf_counter()
        self._writer: Optional[SummaryWriter] = None
        self._purge_from = 1  # the first epoch this process reports

    def _to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["x"].to(self.device, non_blocking=True), batch["y"].to(self.device, non_blocking=True)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.train_time_s += now - self._clock
        self._clock = now

    def _steps_per_epoch(self, loader: DataLoader) -> int:
        limit = self.config.limit_train_batches
        return len(loader) if limit is None else min(len(loader), limit)

    def _batches(self, loader: DataLoader):
        """The loader's batches from ``self.step`` on, in the order its generator draws from the
        epoch's start (the checkpoint's after :meth:`resume`)."""
        generator = loader.generator
        if generator is not None:
            if self._resume_order:
                generator.set_state(self._order)
            self._order = generator.get_state()
        self._resume_order = False
        if isinstance(loader.batch_sampler, ResolutionBatchSampler):
            loader.batch_sampler.skip = self.step
            return iter(loader)
        return itertools.islice(iter(loader), self.step, None)

    def train_epoch(self, loader: DataLoader) -> float:
        """Take the epoch's remaining optimizer steps; return the epoch's mean training loss
        over its samples (all ranks)."""
        self.model.train()
        steps = self._steps_per_epoch(loader)
        samples = min(len(loader.dataset), steps * self.config.batch_size)
        total, count = self._epoch_sums
        bar = tqdm(total=samples, initial=min(int(count), samples), unit="sample", unit_scale=True, leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.config.epochs}", disable=not (self.config.progress and self.context.is_main))
        every = self.config.checkpoint_every_steps
        for batch in self._batches(loader):
            if self.step >= steps:
                break
            x, y = self._to_device(batch)
            with self.autocast():
                pred = self.model(x)
            loss = self.loss(pred.float(), y, batch_grid(self.grid, y.shape[2:]), x)
            batch_sums = self.context.sum(torch.tensor([loss.item() * x.shape[0], x.shape[0]], dtype=torch.float64, device=self.device)).tolist()
            if not math.isfinite(batch_sums[0]):
                raise ConfigError(
                    f"training diverged: the loss became {batch_sums[0] / batch_sums[1]} at epoch {self.epoch + 1}, step {self.step + 1}; "
                    f"lower optim.lr (now {self.optimizer.param_groups[0]['lr']:g}) or set trainer.grad_clip"
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
            total, count = total + batch_sums[0], count + batch_sums[1]
            self.step += 1
            self.global_step += 1
            bar.update(int(batch_sums[1]))
            bar.set_postfix(loss=f"{total / count:.4f}")
            if every is not None and self.global_step % every == 0:
                self._epoch_sums = (total, count)
                self._save("last")
        bar.close()
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        self._epoch_sums = (0.0, 0.0)
        self._samples_seen = count
        return total / max(count, 1)

    def evaluate(self, loader: DataLoader, metrics: Optional[list[str]] = None) -> dict[str, float]:
        """Mean of every metric over the loader's samples (each sample weighted equally; in a
        data-parallel run over every rank's shard: a collective)."""
        return evaluate_loader(self.operator, loader, metrics or self.config.metrics, self.grid, self.device, self.autocast, self.context)

    def _state(self) -> dict[str, Any]:
        """The loop state of a checkpoint; gathers every rank's random state (a collective)."""
        self._tick()
        return {
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "best_val": self.best_val,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "data_order": self._order if self.step > 0 or self._generator is None else self._generator.get_state(),
            "epoch_sums": list(self._epoch_sums),
            "rng": self.context.gather(rng_state(self.device)),
            "history_json": json.dumps(self.history),
            "train_time_s": self.train_time_s,
            "epoch_start_s": self._epoch_start_s,
            "identity_json": json.dumps(self.identity),
        }

    def _save(self, name: str) -> None:
        state = self._state()
        if self.context.is_main:
            save_checkpoint(self.run_dir / "checkpoints" / name, self.operator, state)

    def _check_identity(self, saved: dict[str, Any], where: Path) -> None:
        old, new = _flatten(saved), _flatten(self.identity)
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                raise ConfigError(
                    f"trainer.resume={str(where)!r} was trained with {key}={old.get(key)!r}, this run has {key}={new.get(key)!r}; "
                    "resume with the same data and model, or start a new run"
                )

    def resume(self, checkpoint_dir: str | Path) -> None:
        """Continue from a checkpoint directory written by this trainer: weights, optimizer,
        scheduler, scaler, position (epoch and step), data order and random states.

        Raises:
            ConfigError: the checkpoint's data or model (``identity``) differs from this run's,
                or it predates exact resume.
            PretrainedFormatError: missing or unreadable checkpoint files, weights that do not
                fit the model.
        """
        directory = Path(checkpoint_dir)
        state = read_training_state(directory)
        if "identity_json" not in state:
            raise ConfigError(f"trainer.resume={str(directory)!r} was written by an older neuralops without the run's identity and data order; start a new run")
        self._check_identity(json.loads(state["identity_json"]), directory)
        load_weights(directory, self.operator, self.device)
        load_optimizer_state(self.optimizer, state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.global_step = int(state["epoch"]), int(state["step"]), int(state["global_step"])
        self.best_val = float(state["best_val"])
        self.history = json.loads(state["history_json"])
        self.train_time_s, self._epoch_start_s = float(state["train_time_s"]), float(state["epoch_start_s"])
        self._epoch_sums = tuple(float(v) for v in state["epoch_sums"])
        self._order, self._resume_order = state["data_order"], state["data_order"] is not None
        ranks = state["rng"]
        if len(ranks) != self.context.world_size:
            log.warning("checkpoint %s was written by %d process(es), this run has %d: every rank restarts from rank 0's random state",
                        directory, len(ranks), self.context.world_size)
        set_rng_state(ranks[self.context.rank] if len(ranks) == self.context.world_size else ranks[0], self.device)
        self._clock = time.perf_counter()

    def _write_history(self) -> None:
        """``history.jsonl`` as the loop knows it (after a resume: the checkpoint's epochs,
        dropping lines a killed run wrote after its last checkpoint)."""
        lines = "".join(json.dumps(record) + "\n" for record in self.history)
        atomic_write(self.run_dir / "history.jsonl", lambda tmp: tmp.write_text(lines))

    def fit(self, train_loader: DataLoader, val_loader: Optional[DataLoader]) -> list[dict[str, Any]]:
        """Train until ``config.epochs``; afterwards the operator holds the selected weights
        (on every rank). Under DDP every rank starts from rank 0's parameters and buffers. Rank 0
        writes ``history.jsonl``, checkpoints and TensorBoard scalars."""
        if self.context.active and self.model is self.operator:
            self.context.broadcast_module(self.operator)  # also the buffers (data-fitted ones, normalizers)
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.operator, device_ids=device_ids, broadcast_buffers=False)
        self._generator = train_loader.generator
        self._purge_from = self.epoch + 1
        if self.context.is_main and (self.history or (self.run_dir / "history.jsonl").exists()):
            self._write_history()
        self._clock = time.perf_counter()
        while self.epoch < self.config.epochs:
            if self.step == 0:
                self._epoch_start_s = self.train_time_s
            train_loss = self.train_epoch(train_loader)
            samples = self._samples_seen
            self.epoch += 1
            self.step = 0
            record: dict[str, Any] = {"epoch": self.epoch, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"]}
            if hasattr(train_loader.dataset, "stats"):  # online data: generated, consumed, buffer occupancy
                record["online"] = train_loader.dataset.stats()
            improved = False
            if val_loader is not None:
                record["val_loss"] = self.evaluate(val_loader, [self.selection_metric])[self.selection_metric]
                improved = record["val_loss"] < self.best_val
                self.best_val = min(self.best_val, record["val_loss"])
            self._tick()
            record["time_s"] = self.train_time_s - self._epoch_start_s
            self.history.append(record)
            if improved:
                self._save("best")
            if self.epoch % self.config.checkpoint_every == 0 or self.epoch == self.config.epochs:
                self._save("last")
            if self.context.is_main:
                self._report(record, samples)
        if self.config.select == "best_val" and val_loader is not None and self.best_val < float("inf"):
            if self.context.is_main:
                load_weights(self.run_dir / "checkpoints" / "best", self.operator, self.device)
            self.context.broadcast_module(self.operator)
        return self.history

    def tensorboard(self) -> Optional[SummaryWriter]:
        """Rank 0's TensorBoard writer on ``<run dir>/tensorboard`` (``None`` on other ranks or
        with ``trainer.tensorboard=false``), created on first use: events a killed run logged
        after the epoch this one continues from are purged."""
        if self._writer is None and self.config.tensorboard and self.context.is_main:
            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=self._purge_from)
        return self._writer

    def _report(self, record: dict[str, Any], samples: float) -> None:
        with open(self.run_dir / "history.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        rate = samples / max(record["time_s"], 1e-9)
        val_text = f"  val {self.selection_metric} {record['val_loss']:.4g}" if "val_loss" in record else ""
        log.info("epoch %d/%d  train %s %.4g%s  lr %.3g  (%.1f s, %.0f samples/s)", record["epoch"], self.config.epochs,
                 "+".join([self.config.loss] if isinstance(self.config.loss, str) else self.config.loss), record["train_loss"], val_text, record["lr"], record["time_s"], rate)
        writer = self.tensorboard()
        if writer is not None:
            step = record["epoch"]
            writer.add_scalar("loss/train", record["train_loss"], step)
            if "val_loss" in record:
                writer.add_scalar("loss/val", record["val_loss"], step)
            writer.add_scalar("lr", record["lr"], step)
            writer.add_scalar("time/epoch_s", record["time_s"], step)
            writer.add_scalar("throughput/samples_per_s", rate, step)
