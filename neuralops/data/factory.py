"""The data factory: a data config → the dataset of a split at a grid, whatever the file.

``run_experiment`` and the evaluation go through here, so a neuralops file, a PDEBench file or
a Well file, with or without a time-dependent task, trains with the same code. ``data.path``
may also be a folder read as one dataset: neuralops shards (``generate --shard-size``), PDEBench
files such as the incompressible-NS shards, or a Well dataset with its ``train/``, ``valid/``
and ``test/`` folders (the splits are the folders)::

    cfg = DataConfig.from_dict(composed_cfg["data"], base_dir)
    train = open_split(cfg, "train")                       # at the training grid
    for view in available_resolutions(cfg, "test"):        # the evaluation grids
        test = open_split(cfg, "test", view)               # or open_rollout(cfg, "test", view)

Options (``configs/data/*.yaml``; every key is listed in :data:`DATA_OPTIONS`):

* ``format``: ``auto`` (from the file's content), ``neuralops``, ``pdebench`` or ``the_well``.
* ``task``: ``null`` for pair data (Darcy), else ``one_shot``, ``window`` or ``rollout``, with
  ``steps_in``, ``steps_out``, ``time_stride``, ``input_step``, ``target_step`` and
  ``rollout_steps`` (see :mod:`neuralops.data.tasks`).
* grids: ``train_resolution`` (a grid stored in a neuralops file) or ``train_resolutions``
  (several stored grids: multi-resolution training, each batch on one grid) and ``train_stride``;
  ``test_resolutions`` (stored grids) or ``test_strides`` (views of the finest stored grid);
  ``resolution_method`` (``stride`` or ``fourier_filter``) for every stride above 1.
* splits: ``split`` (``auto``: the stored splits of neuralops data and of split folders,
  ``random`` otherwise; ``file``, ``pdebench``, ``random``), ``val_fraction``,
  ``test_fraction``, ``split_seed``.
* ``max_train_samples``, ``normalize`` (used by the training run), ``rdcc_nbytes`` (HDF5
  chunk cache per dataset, bytes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from torch.utils.data import Dataset

from neuralops.data.adapters import ForeignFile
from neuralops.data.adapters.folders import FileCollection, inspect_folder, inspect_split_folders, split_folders
from neuralops.data.adapters.pdebench import NS_INCOM_STATE, inspect_pdebench
from neuralops.data.adapters.the_well import inspect_well
from neuralops.data.dataset import OperatorDataset, TrajectoryFileSource, resolutions
from neuralops.data.handles import check_rdcc_nbytes
from neuralops.data.schema import FORMAT, data_files, open_h5, read_header
from neuralops.data.sources import PairSource, TrajectorySource
from neuralops.data.splits import SPLIT_POLICIES, pdebench_split, random_split
from neuralops.data.tasks import TASKS, OneShotTask, RolloutTask, WindowTask
from neuralops.data.views import VIEW_METHODS, ResolutionView
from neuralops.errors import ConfigError, DataFormatError

FORMATS = ("auto", "neuralops", "pdebench", "the_well")


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` config group, checked. Field docs: the module docstring and
    ``configs/data/*.yaml``; ``path`` is resolved against the directory given to
    :meth:`from_dict`."""

    name: str
    path: Path
    format: str = "auto"
    task: str | None = None
    steps_in: int = 1
    steps_out: int = 1
    time_stride: int = 1
    input_step: int = 0
    target_step: int = -1
    rollout_steps: int | None = None
    train_resolution: int | tuple[int, ...] | None = None
    train_resolutions: tuple[int | tuple[int, ...], ...] | None = None
    train_stride: int = 1
    test_resolutions: tuple[int | tuple[int, ...], ...] | None = None
    test_strides: tuple[int, ...] | None = None
    resolution_method: str = "stride"
    split: str = "auto"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    max_train_samples: int | None = None
    normalize: bool = True
    rdcc_nbytes: int | None = None

    @classmethod
    def from_dict(cls, options: Mapping[str, Any], base_dir: str | os.PathLike = ".") -> "DataConfig":
        """Check ``options`` (the composed ``data`` group as a plain dict) and resolve the path."""
        unknown = sorted(set(options) - set(DATA_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown data option(s) {unknown}; valid options: {sorted(DATA_OPTIONS)}")
        if not options.get("path"):
            raise ConfigError("data.path is not set; point it at a data file, e.g. data.path=data/darcy_small.h5")
        path = Path(str(options["path"])).expanduser()
        values = dict(options)
        values["path"] = path if path.is_absolute() else Path(base_dir) / path
        values.setdefault("name", values["path"].stem)
        for key in ("test_resolutions", "test_strides", "train_resolutions"):
            if values.get(key) is not None:
                values[key] = tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in values[key])
        if isinstance(values.get("train_resolution"), list):
            values["train_resolution"] = tuple(values["train_resolution"])
        return cls(**values)

    def __post_init__(self) -> None:
        for key, allowed in (("format", FORMATS), ("split", ("auto", *SPLIT_POLICIES)), ("resolution_method", VIEW_METHODS[1:])):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"data.{key}={getattr(self, key)!r} is not one of {list(allowed)}")
        if self.task is not None and self.task not in TASKS:
            raise ConfigError(f"data.task={self.task!r} is not one of {list(TASKS)} (or null for input/output pair data)")
        for key in ("train_stride",):
            ResolutionView(self.resolution_method, getattr(self, key))
        for stride in self.test_strides or ():
            ResolutionView(self.resolution_method if stride != 1 else "file", stride)
        if self.train_resolutions is not None:
            if self.train_resolution is not None:
                raise ConfigError("give data.train_resolution (one grid) or data.train_resolutions (several), not both")
            if len(self.train_resolutions) == 0:
                raise ConfigError("data.train_resolutions is empty; list the stored grids to train on, e.g. [17, 33], or null")
        if self.test_strides is not None and self.test_resolutions is not None:
            raise ConfigError("give data.test_resolutions (grids stored in the file) or data.test_strides (views of one grid), not both")
        check_rdcc_nbytes(self.rdcc_nbytes)
        for key, low in (("steps_in", 1), ("steps_out", 1), ("time_stride", 1), ("train_stride", 1), ("max_train_samples", 1), ("rollout_steps", 1)):
            value = getattr(self, key)
            if value is not None and value < low:
                raise ConfigError(f"data.{key}={value} must be >= {low}" + (" (null: no cap)" if key == "max_train_samples" else ""))
        for key in ("val_fraction", "test_fraction"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"data.{key}={getattr(self, key)} must be in [0, 1)")

    @cached_property
    def file_format(self) -> str:
        """The format of ``path`` (``format``, or detected from the content when ``auto``)."""
        return self.format if self.format != "auto" else detect_format(self.path)

    @cached_property
    def foreign(self) -> ForeignFile | None:
        """The inspected foreign file, or folder of files (``None`` for neuralops data)."""
        if self.file_format == "neuralops":
            return None
        inspect = inspect_pdebench if self.file_format == "pdebench" else inspect_well
        if not self.path.is_dir():
            return inspect(self.path)
        folders = split_folders(self.path)
        return inspect_folder(self.path, inspect) if folders is None else inspect_split_folders(self.path, folders, inspect)

    @property
    def split_policy(self) -> str:
        if self.split != "auto":
            return self.split
        return "file" if self.file_format == "neuralops" or split_folders(self.path) is not None else "random"

    @cached_property
    def splits(self) -> dict[str, np.ndarray]:
        """Sample ids per split (global ids of neuralops data; positions in a foreign file, or in
        the files of a folder taken in order)."""
        policy = self.split_policy
        if self.file_format == "neuralops":
            if policy != "file":
                raise ConfigError(f"data.split={policy!r}: a neuralops dataset stores its own splits; use split: file (or auto)")
            return dict(read_header(self.path).splits)
        info = self.foreign
        stored = info.stored_splits if isinstance(info, FileCollection) else None
        if policy == "file":
            if stored is None:
                raise ConfigError(f"data.split=file: {self.path} ({self.file_format}) stores no splits; use random or pdebench")
            return stored
        if stored is not None:
            raise ConfigError(f"data.split={policy!r}: {self.path} stores its splits as train/valid/test folders; use split: auto (or file)")
        if policy == "pdebench":
            if info.test_last is None:
                raise ConfigError(f"data.split=pdebench applies to PDEBench files only; {self.path} is a {self.file_format} file")
            return pdebench_split(info.n_samples, info.test_last, self.val_fraction, self.test_fraction)
        return random_split(info.n_samples, self.val_fraction, self.test_fraction, self.split_seed)


DATA_OPTIONS = tuple(f.name for f in fields(DataConfig))


def detect_format(path: str | os.PathLike) -> str:
    """``"neuralops"``, ``"the_well"`` or ``"pdebench"`` from a file's content (root attributes
    and top-level keys); of a folder, from its first data file (of ``train/`` for split
    folders). :class:`DataFormatError` if none fits, or for neuralops files in split folders
    (they store their own splits)."""
    if os.path.isdir(path):
        folders = split_folders(path)
        found = detect_format(data_files(path if folders is None else folders["train"])[0])
        if found == "neuralops" and folders is not None:
            raise DataFormatError(f"{os.fspath(path)}: neuralops data stores its own splits; point data.path at a file or a folder "
                                  "of shards, not at train/valid/test folders")
        return found
    with open_h5(path) as h5:
        fmt = h5.attrs.get("format")
        if (fmt.decode() if isinstance(fmt, bytes) else fmt) == FORMAT:
            return "neuralops"
        if "t0_fields" in h5 or "t1_fields" in h5 or "n_spatial_dims" in h5.attrs:
            return "the_well"
        if ("tensor" in h5 or "density" in h5 or all(name in h5 for name in NS_INCOM_STATE)
                or any(isinstance(node, h5py.Group) and "data" in node for node in h5.values())):
            return "pdebench"
    raise DataFormatError(
        f"{os.fspath(path)}: key '/': not a known layout: expected a neuralops file (attribute format='neuralops'), "
        "a PDEBench file ('tensor', CFD fields, per-sample groups with 'data', or 'velocity' + 'particles') or a Well file "
        "(t0_fields/ ...)"
    )


def _stored_shape(cfg: DataConfig, resolution: int | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """A stored grid given as points per axis (``17``) or a tuple, as a tuple (``None`` kept)."""
    if resolution is None or isinstance(resolution, tuple):
        return resolution
    return (int(resolution),) * read_header(cfg.path).metadata.n_dims


def train_view(cfg: DataConfig) -> ResolutionView:
    """The grid training uses: ``train_resolution`` of a neuralops file (default: the finest
    holding the train split), or a foreign file's grid, coarsened by ``train_stride``."""
    method = "file" if cfg.train_stride == 1 else cfg.resolution_method
    if cfg.file_format != "neuralops":
        if cfg.train_resolution is not None:
            raise ConfigError(f"data.train_resolution applies to neuralops files with stored grids; {cfg.path} stores one grid: use data.train_stride")
        return ResolutionView(method, cfg.train_stride)
    stored = _stored_shape(cfg, cfg.train_resolution)
    if stored is None:
        holding = resolutions(cfg.path, "train")
        if not holding:
            raise DataFormatError(f"{cfg.path}: no resolution holds every sample of split 'train'")
        stored = holding[-1]
    return ResolutionView(method, cfg.train_stride, stored)


def train_views(cfg: DataConfig) -> list[ResolutionView]:
    """The grids training draws batches from, the *primary* grid first: it must hold the whole
    train split, and the model's grid options, the normalizers and validation use it. The others
    may store a subset of the training samples (``open_split(..., partial=True)``).

    * ``train_resolutions`` listed: those stored grids, in that order;
    * ``train_resolution`` (or ``train_stride``, or a foreign file): that one grid;
    * neither, on a neuralops file: :func:`train_view` (the finest grid holding the whole train
      split), then every other stored grid that holds training samples, coarsest first: a file
      that stores training samples at several grids is trained on all of them.
    """
    if cfg.train_resolutions is None:
        primary = train_view(cfg)
        if cfg.file_format != "neuralops" or cfg.train_resolution is not None or cfg.train_stride != 1:
            return [primary]
        others = [shape for shape in resolutions(cfg.path, "train", partial=True) if shape != primary.file_shape]
        return [primary] + [ResolutionView("file", 1, shape) for shape in others]
    if cfg.file_format != "neuralops":
        raise ConfigError(f"data.train_resolutions applies to neuralops files with stored grids; {cfg.path} stores one grid")
    method = "file" if cfg.train_stride == 1 else cfg.resolution_method
    return [ResolutionView(method, cfg.train_stride, _stored_shape(cfg, r)) for r in cfg.train_resolutions]


def holds(cfg: DataConfig, split: str, view: ResolutionView) -> bool:
    """Whether ``split`` has samples and can be served at ``view`` (validation may be absent,
    or stored only at some grids of a neuralops file)."""
    if len(cfg.splits.get(split, ())) == 0:
        return False
    return cfg.file_format != "neuralops" or view.file_shape in resolutions(cfg.path, split)


def available_resolutions(cfg: DataConfig, split: str = "test") -> list[ResolutionView]:
    """The views ``split`` is evaluated at, coarsest last for strides, in file order otherwise.

    ``test_strides``: views of the finest grid holding the split; ``test_resolutions``: those
    stored grids (neuralops files); neither: every stored grid holding the split (one for
    foreign files).
    """
    if cfg.file_format != "neuralops":
        if cfg.test_resolutions is not None:
            raise ConfigError(f"data.test_resolutions applies to neuralops files with stored grids; {cfg.path} stores one grid: use data.test_strides")
        return [ResolutionView("file" if s == 1 else cfg.resolution_method, s) for s in cfg.test_strides or (1,)]
    stored = resolutions(cfg.path, split)
    if cfg.test_strides is not None:
        if not stored:
            raise DataFormatError(f"{cfg.path}: no resolution holds every sample of split {split!r}")
        return [ResolutionView("file" if s == 1 else cfg.resolution_method, s, stored[-1]) for s in cfg.test_strides]
    grids = stored if cfg.test_resolutions is None else [_stored_shape(cfg, g) for g in cfg.test_resolutions]
    return [ResolutionView("file", 1, grid) for grid in grids]


def open_source(cfg: DataConfig, split: str, view: ResolutionView | None = None, partial: bool = False) -> PairSource | TrajectorySource:
    """The raw reader of ``split`` at ``view`` (default: :func:`train_view`), before any task;
    ``partial``: of a neuralops file, only the samples of the split that the grid stores."""
    view = train_view(cfg) if view is None else view
    if cfg.file_format == "neuralops":
        if cfg.split_policy != "file":
            raise ConfigError(f"data.split={cfg.split_policy!r}: a neuralops file stores its own splits; use split: file (or auto)")
        layout = read_header(cfg.path).metadata.layout
        reader = OperatorDataset if layout == "pairs" else TrajectoryFileSource
        return reader(cfg.path, split, view.file_shape, view, cfg.rdcc_nbytes, partial)
    splits = cfg.splits
    if split not in splits:
        raise ConfigError(f"unknown split {split!r}; splits of {cfg.path}: {sorted(splits)}")
    return cfg.foreign.open(splits[split], view, cfg.rdcc_nbytes)


def _checked_task(cfg: DataConfig, source: PairSource | TrajectorySource) -> str | None:
    if isinstance(source, PairSource):
        if cfg.task is not None:
            raise ConfigError(f"data.task={cfg.task!r} needs trajectories, but {cfg.path} holds input/output pairs; set data.task=null")
        return None
    if cfg.task is None:
        raise ConfigError(f"{cfg.path} holds trajectories; set data.task to one of {list(TASKS)}")
    return cfg.task


def open_split(cfg: DataConfig, split: str, resolution: ResolutionView | None = None, partial: bool = False) -> Dataset:
    """The training-style dataset of ``split`` at ``resolution`` (default: the training grid).

    Pair data: the pair reader (``{"x", "y"}`` items). Trajectories: the task's dataset:
    :class:`OneShotTask` for ``one_shot``, :class:`WindowTask` for ``window`` and ``rollout``
    (a rollout model is trained on windows; evaluate it with :func:`open_rollout`).
    """
    source = open_source(cfg, split, resolution, partial)
    task = _checked_task(cfg, source)
    if task is None:
        return source
    if task == "one_shot":
        return OneShotTask(source, cfg.input_step, cfg.target_step)
    return WindowTask(source, cfg.steps_in, cfg.steps_out, cfg.time_stride)


def open_rollout(cfg: DataConfig, split: str, resolution: ResolutionView | None = None) -> RolloutTask:
    """Whole trajectories of ``split`` for autoregressive evaluation (``task: rollout``)."""
    source = open_source(cfg, split, resolution)
    if _checked_task(cfg, source) != "rollout":
        raise ConfigError(f"open_rollout needs data.task=rollout, got {cfg.task!r}")
    return RolloutTask(source, cfg.steps_in, cfg.steps_out, cfg.time_stride, cfg.rollout_steps)

