"""One training run from a composed config: what ``python train.py`` does.

data -> normalizers (fitted on the training split) -> model -> Trainer (selection on the
validation split) -> evaluation of every metric at every test resolution -> ``metrics.json``,
a pretrained directory ``<run dir>/model``, plots and TensorBoard events.

Under ``torchrun`` every process runs :func:`run_experiment` and they train one model with
DistributedDataParallel (:mod:`neuralops.training.distributed`): ``trainer.batch_size`` is the
global batch, the normalizers are fitted once (rank 0) and broadcast, evaluation is sharded and
reduced exactly, and rank 0 alone writes the run directory (the one rank 0 was given, which
every rank then uses) and logs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import ConcatDataset, DataLoader, Subset

from neuralops import runtime
from neuralops.data import fit_normalizers
from neuralops.data.checks import check_finite, require_samples
from neuralops.data.factory import DataConfig, available_resolutions, holds, open_split, train_views
from neuralops.data.multires import ResolutionBatchSampler
from neuralops.data.normalize import ChannelNormalizer
from neuralops.data.online import OnlineConfig, OnlineDataset
from neuralops.data.splits import manifest
from neuralops.errors import ConfigError, DataFormatError
from neuralops.evaluation.plots import plot_history, plot_prediction
from neuralops.evaluation.resolution import evaluate_views, format_rollout, format_table, grid_label, shard
from neuralops.io import write_json
from neuralops.models import build
from neuralops.models.base import model_class
from neuralops.pretrained import FORMAT_VERSION as PRETRAINED_FORMAT_VERSION
from neuralops.pretrained import PretrainedOperator, load_pretrained, save_pretrained
from neuralops.training.finetune import RefineConfig, freeze_for_refinement, pretrained_directory
from neuralops.training.distributed import Distributed, init_distributed, shutdown
from neuralops.training.optim import build_optimizer, build_scheduler
from neuralops.training.trainer import Trainer, TrainerConfig

log = logging.getLogger(__name__)


def _plain(cfg: DictConfig | dict, key: str) -> dict[str, Any]:
    section = cfg[key] if key in cfg else None
    if section is None:
        raise ConfigError(f"config has no {key!r} group")
    return OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else dict(section)


def _model(model_cfg: dict[str, Any], dataset):
    """Build the configured model for ``dataset``: channel counts and the options the family
    takes from the data's grid (:meth:`NeuralOperator.options_from_grid`) are filled in, so
    they are part of the saved config."""
    options = dict(model_cfg)
    name = options.pop("name", None)
    if name is None:
        raise ConfigError("model config lacks 'name' (the registered model name, e.g. model=fno)")
    for key, value in (("in_channels", len(dataset.input_channels)), ("out_channels", len(dataset.output_channels))):
        if options.get(key) not in (None, value):
            raise ConfigError(f"model.{key}={options[key]} does not match the data, which has {value}")
        options[key] = value
    options.update(model_class(name).options_from_grid(options, dataset.grid))
    _warn_unresolved_modes(options.get("n_modes"), dataset.grid_shape)
    model = build(name, **options)
    n_dims = getattr(model, "n_dims", None)
    if n_dims is not None and n_dims != dataset.n_dims:
        raise ConfigError(f"model {name!r} is {n_dims}-D but the data is {dataset.n_dims}-D (grid {dataset.grid_shape})")
    return model


def _warn_unresolved_modes(n_modes: Any, grid_shape: tuple[int, ...]) -> None:
    """Warn (before training) when ``model.n_modes`` asks for frequencies the training grid
    cannot hold: ``n`` points resolve ``(n - 1) // 2 + 1`` non-negative frequencies per axis."""
    if not isinstance(n_modes, (list, tuple)) or len(n_modes) != len(grid_shape):
        return
    resolvable = [(n - 1) // 2 + 1 for n in grid_shape]
    if any(m > r for m, r in zip(n_modes, resolvable)):
        log.warning("model.n_modes=%s asks for more frequencies than the %s training grid holds (at most %s per axis): "
                    "the extra modes see only padding and aliasing and cost parameters; consider model.n_modes=%s",
                    list(n_modes), grid_label(grid_shape), resolvable, [min(m, r) for m, r in zip(n_modes, resolvable)])


def _normalized_batches(dataset, input_normalizer, output_normalizer, batch_size: int):
    """``(x, y)`` training batches in the model's normalized units."""
    for batch in DataLoader(dataset, batch_size=batch_size):
        x, y = batch["x"], batch["y"]
        yield (
            input_normalizer.encode(x) if input_normalizer is not None else x,
            output_normalizer.encode(y) if output_normalizer is not None else y,
        )


def _normalizers(dataset, batch_size: int, context: Distributed) -> tuple[ChannelNormalizer, ChannelNormalizer]:
    """Input and output normalizers fitted by rank 0 in one pass over ``dataset``, on every rank."""
    stats = [n.to_dict() for n in fit_normalizers(dataset, batch_size=batch_size)] if context.is_main else None
    inputs, outputs = (ChannelNormalizer.from_dict(s) for s in context.broadcast(stats))
    return inputs, outputs


def run_experiment(cfg: DictConfig, run_dir: str | Path, base_dir: str | Path = ".") -> dict[str, Any]:
    """Train and evaluate as configured; write everything into ``run_dir``; return the metrics.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1), every process calls this and joins one
    data-parallel run; every rank returns the same metrics, and rank 0's ``run_dir`` is used.

    Raises:
        ConfigError, DataFormatError, PretrainedFormatError: one line naming the bad option,
            file or key (also: ``trainer.resume`` on another data file or model, a diverging
            loss).
    """
    trainer_cfg = TrainerConfig.from_dict(_plain(cfg, "trainer"))
    context, device = init_distributed(trainer_cfg.device)
    try:
        if not context.is_main:
            logging.getLogger("neuralops").setLevel(logging.WARNING)
        agreed = Path(context.broadcast(str(run_dir)))
        if agreed != Path(run_dir):
            log.warning("rank %d was given run dir %s, rank 0 %s: using rank 0's (pass hydra.run.dir=DIR so every rank agrees)",
                        context.rank, run_dir, agreed)
        return _run(cfg, trainer_cfg, agreed, Path(base_dir), context, device)
    finally:
        shutdown(context)


def _run(cfg: DictConfig, trainer_cfg: TrainerConfig, run_dir: Path, base_dir: Path, context: Distributed, device: torch.device) -> dict[str, Any]:
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    data_cfg, model_cfg, optim_cfg = _plain(cfg, "data"), _plain(cfg, "model"), _plain(cfg, "optim")
    seed = int(cfg.get("seed", 0))
    torch.manual_seed(seed)
    runtime.configure_threads(trainer_cfg.num_threads)
    runtime.keep_freed_memory(trainer_cfg.keep_freed_memory)

    online_options = data_cfg.pop("online", None)
    data = DataConfig.from_dict(data_cfg, base_dir)
    require_samples(data)
    check_finite(data, "test")  # bad test data stops the run now, not after training
    path = data.path
    views = train_views(data)
    view = views[0]  # the primary grid: model grid options, normalizers, validation
    train_sets = [open_split(data, "train", v, partial=i > 0) for i, v in enumerate(views)]
    train_set = train_sets[0]
    train_label = "+".join(grid_label(s.grid_shape) for s in train_sets)  # "17x17", or "17x17+33x33"
    val_set = open_split(data, "val", view) if holds(data, "val", view) else None
    if data.max_train_samples:
        train_sets = [Subset(s, range(min(int(data.max_train_samples), len(s)))) for s in train_sets]
    primary = train_sets[0]
    if cfg.get("finetune") is not None:  # Spectral-Refiner: the trained model and its normalizers
        refine = RefineConfig(**_plain(cfg, "finetune"))
        source = load_pretrained(pretrained_directory(refine.from_run))
        model, normalizers = source.model, (source.input_normalizer, source.output_normalizer)
        freeze_for_refinement(model, refine.trainable)
    else:
        normalizers = _normalizers(primary, trainer_cfg.batch_size, context) if data.normalize else (None, None)
        model = _model(model_cfg, train_set)
    runtime.compile_model(model.to(device), trainer_cfg.compile, device)  # in place: state_dict keys unchanged
    operator = PretrainedOperator(model, *normalizers)
    if model.fits_to_data and context.is_main:  # the Trainer copies rank 0's buffers to every rank
        model.fit_to_data(_normalized_batches(primary, *normalizers, trainer_cfg.batch_size))
    local_batch = trainer_cfg.batch_size // context.world_size
    pinned = device.type == "cuda"  # page-locked batches: the trainer's non_blocking copies overlap the step
    if online_options is not None:  # fresh solver samples through a bounded buffer, never on disk
        if trainer_cfg.num_workers:
            raise ConfigError("trainer.num_workers must be 0 with online data (the solver processes are data.online.workers)")
        train_data = OnlineDataset(data, OnlineConfig.from_dict(online_options), context.rank, context.world_size)
        train_loader = DataLoader(train_data, batch_size=local_batch, pin_memory=pinned)
    else:
        train_data = primary if len(train_sets) == 1 else ConcatDataset(train_sets)
        # one generator decides the data order: the sampler's shuffles and the loader's worker seed
        generator = torch.Generator().manual_seed(seed)
        sampler = ResolutionBatchSampler([len(s) for s in train_sets], trainer_cfg.batch_size, generator=generator,
                                         world_size=context.world_size, rank=context.rank)
        train_loader = DataLoader(train_data, batch_sampler=sampler, generator=generator, num_workers=trainer_cfg.num_workers,
                                  pin_memory=pinned)
    val_loader = DataLoader(shard(val_set, context), batch_size=local_batch, pin_memory=pinned) if val_set is not None else None
    optimizer = build_optimizer([p for p in operator.parameters() if p.requires_grad], optim_cfg)
    steps = len(train_loader) if trainer_cfg.limit_train_batches is None else min(len(train_loader), trainer_cfg.limit_train_batches)
    scheduler, interval = build_scheduler(optimizer, optim_cfg, trainer_cfg.epochs, steps)
    identity = {
        "data": {"path": str(path.resolve()), "format": data.file_format, "task": _task_summary(data), "split": data.split_policy,
                 "train_resolution": train_label, "train_samples": len(train_data), "normalize": data.normalize},
        # the weights' format version: a checkpoint of an older block form is not resumed
        "model": {"name": model.name, "config": model.config, "format_version": PRETRAINED_FORMAT_VERSION},
        "trainer": {"batch_size": trainer_cfg.batch_size, "loss": trainer_cfg.loss},
    }
    trainer = Trainer(operator, optimizer, scheduler, interval, trainer_cfg, run_dir, device, grid=train_set.grid,
                      context=context, identity=identity)
    if trainer_cfg.resume:
        resume = Path(trainer_cfg.resume)
        trainer.resume(resume / "checkpoints" / "last" if (resume / "checkpoints").is_dir() else resume)

    log.info("model %s: %s parameters; data %s: %d train samples at %s; %d process(es), global batch %d; run dir %s",
             model.name, f"{model.num_parameters():,}", path.name, len(train_data), train_label, context.world_size,
             trainer_cfg.batch_size, run_dir)
    try:
        history = trainer.fit(train_loader, val_loader)
    finally:
        if online_options is not None:
            train_data.close()

    test_views = available_resolutions(data, "test")
    rows = evaluate_views(operator, data, trainer_cfg.metrics, "test", test_views, local_batch, device, trainer.autocast, context)
    if not rows:
        raise DataFormatError(f"{path}: no resolution holds a 'test' split, so nothing can be evaluated")
    results = {
        "model": model.name,
        "parameters": model.num_parameters(),
        "data": str(path),
        "data_format": data.file_format,
        "task": _task_summary(data),
        "split": data.split_policy,
        "train_resolution": train_label,
        "train_method": view.method,
        "train_samples": len(train_data),
        "epochs": trainer.epoch,
        "selection": trainer_cfg.select if val_loader is not None else "last",
        "processes": context.world_size,
        "train_time_s": trainer.train_time_s,
        "val_best": trainer.best_val if val_loader is not None else None,
        "test": rows,
    }
    if online_options is not None:
        results["online"] = train_data.stats()
    if cfg.get("finetune") is not None:
        results["finetuned_from"] = str(pretrained_directory(refine.from_run))
    if not context.is_main:
        return results
    table = format_table(rows, trainer_cfg.metrics)
    if data.task == "rollout":
        table += "\n" + format_rollout(rows, trainer_cfg.metrics[0])
    log.info("test metrics of %s trained at %s (mean over samples):\n%s", model.name, train_label, table)
    write_json(run_dir / "splits.json", {"data": str(path), **manifest(data.split_policy, data.splits)})
    write_json(run_dir / "metrics.json", results)
    save_pretrained(
        run_dir / "model",
        model,
        *normalizers,
        metadata={
            "input_channels": train_set.input_channels,
            "output_channels": train_set.output_channels,
            "train_resolution": list(train_set.grid_shape),
            "train_grid": train_set.grid.to_dict(),
            "data": train_set.attrs.get("name", path.stem),
            "task": _task_summary(data),
            "test": rows,
        },
    )
    writer = trainer.tensorboard()
    try:
        if writer is not None:
            for row in rows:
                for name in trainer_cfg.metrics:
                    writer.add_scalar(f"test/{name}/{row['resolution']}", row[name], trainer.epoch)
        _plots(operator, data, test_views, history, run_dir, trainer_cfg.loss, device, writer, trainer.epoch)
    finally:
        if writer is not None:
            writer.close()
    return results


def _task_summary(data: DataConfig) -> dict[str, Any] | None:
    """The task options that shape the model's input/output channels (``None`` for pairs)."""
    if data.task is None:
        return None
    if data.task == "one_shot":
        return {"name": "one_shot", "input_step": data.input_step, "target_step": data.target_step}
    return {"name": data.task, "steps_in": data.steps_in, "steps_out": data.steps_out, "time_stride": data.time_stride}


@torch.no_grad()
def _plots(operator, data: DataConfig, views, history, run_dir: Path, loss_name: str, device, writer, epoch: int) -> None:
    """``plots/loss.png`` and, at each test grid of a 1-D or 2-D dataset, truth / prediction /
    error of test sample 0 (``plots/prediction_<grid>.png`` and TensorBoard ``test/prediction_<grid>``)."""
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    plot_history(history, plots / "loss.png", loss_name)
    operator.eval()
    for view in views:
        dataset = open_split(data, "test", view)
        if dataset.n_dims > 2:
            dataset.close()
            continue
        label = grid_label(dataset.grid_shape)
        sample = dataset[0]
        pred = operator(sample["x"][None].to(device))[0]
        plot_prediction(sample["y"][0], pred[0], plots / f"prediction_{label}.png", f"test sample 0 at {label} ({view.label})",
                        writer, f"test/prediction_{label}", epoch)
        dataset.close()
