"""Online training: fresh samples from our solvers, running next to the training, through a bounded buffer.

After Meyer et al., "Training Deep Surrogate Models with Large Scale Online Learning" (ICML 2023,
the Melissa framework): solver processes run concurrently with training and stream their samples
into a bounded in-memory buffer that the training reads; no sample is ever written to disk, so the
number of distinct training samples is bounded by solver time, not by storage.

Pieces:

* :class:`SolverSamples`: training items made by our torch/numpy solvers (Darcy, Burgers,
  Navier-Stokes) for global sample ids. Every solver and distribution parameter is read from a
  fixed neuralops file (``data.path``, which also serves validation and test), so sample ``i``
  with seed ``s`` is the array that ``python -m neuralops.data.generate`` stores for sample ``i``
  of a file made with ``--seed s`` (``tests/test_online.py`` checks it against the shipped
  ``data/darcy_small.h5``), served through the same view and task as the file's own data.
* :class:`FifoBuffer` and :class:`ReservoirBuffer`: the two buffers of the paper.
* :class:`OnlineDataset`: an ``IterableDataset`` of ``{"x": (C_in, *grid), "y": (C_out, *grid)}``
  items. It spawns ``workers`` solver processes (``torch.multiprocessing``, spawn start method)
  per rank, moves what they send into the buffer and yields ``samples_per_epoch / world_size``
  items per epoch; :meth:`OnlineDataset.stats` reports what was generated and consumed.

Sample ids: rank ``r`` of ``R`` with ``W`` workers per rank gives worker ``w`` the ids
``first_index + (r W + w) + k R W``, ``k = 0, 1, …`` (:func:`index_stream`): disjoint across ranks
and workers, and by default (``first_index`` = the file's ``n_samples``) disjoint from every sample
of the file, test split included. Arrival order between workers depends on timing, so with more
than one worker (or a reservoir) a run is not bit-reproducible, and cannot be resumed exactly.

Shutdown: :meth:`OnlineDataset.close` (also on ``with`` exit, garbage collection and interpreter
exit) stops, joins and if need be terminates the workers. A worker also exits by itself within one
solve batch when its parent process is gone (SIGTERM, SIGKILL), so no solver outlives a training.
Workers ignore SIGINT: Ctrl-C interrupts the training process, whose cleanup stops them.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import queue
import signal
import time
import traceback
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.multiprocessing
from torch.utils.data import IterableDataset, get_worker_info

from neuralops.data.dataset import resolutions
from neuralops.data.factory import DataConfig, open_split, train_view
from neuralops.data.generators.parallel import single_threaded_children
from neuralops.data.generators import sample_torch_generator
from neuralops.data.generators import darcy
from neuralops.data.generators.burgers import sample_burgers_initial_conditions, solve_burgers
from neuralops.data.generators.navier_stokes import fno_forcing, sample_fno_initial_vorticity, solve_navier_stokes
from neuralops.data.schema import FileHeader, read_header
from neuralops.data.sources import PairSource, SampleSource, TrajectorySource
from neuralops.data.tasks import OneShotTask, WindowTask
from neuralops.data.views import ResolutionView
from neuralops.errors import ConfigError, DataFormatError

BUFFERS = ("fifo", "reservoir")
"""``fifo``: every sample read once, oldest first; the solvers wait while it is full.
``reservoir``: a uniform random sample of everything generated (Vitter's Algorithm R), read at
random with replacement, so samples are seen several times while the buffer refreshes."""
SOLVERS = ("darcy", "burgers", "navier_stokes")
"""Generators whose files can be continued online (the file attribute ``name``)."""
_POLL_S = 0.2
"""How often a waiting worker or reader re-checks the stop flag and the other side's liveness."""
_JOIN_S = 10.0
"""How long :meth:`OnlineDataset.close` waits for workers to finish their batch before terminating them."""


@dataclass(frozen=True)
class OnlineConfig:
    """The ``data.online`` options (``configs/data/online_*.yaml``).

    Attributes:
        buffer: ``fifo`` or ``reservoir`` (:data:`BUFFERS`).
        buffer_size: samples the buffer holds at most (per rank).
        watermark: samples the buffer must hold before the first read (``None``: ``buffer_size // 8``,
            at least 1: training starts early while the buffer keeps filling).
        samples_per_epoch: samples consumed per epoch by all ranks together; each rank consumes
            ``samples_per_epoch / world_size`` (must divide).
        workers: solver processes per rank (one CPU thread each).
        solve_batch: samples each solver call computes together (vectorized).
        seed: base seed of the samples (``None``: the file's ``param_seed``).
        first_index: first global sample id generated (``None``: the file's ``n_samples``, so no
            online sample is a sample of the file).

    Raises:
        ConfigError: one line naming ``data.online.<option>`` and what it expects.
    """

    buffer: str = "reservoir"
    buffer_size: int = 1000
    watermark: int | None = None
    samples_per_epoch: int = 1000
    workers: int = 1
    solve_batch: int = 8
    seed: int | None = None
    first_index: int | None = None

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> "OnlineConfig":
        """Check ``options`` (the ``data.online`` group as a plain dict): unknown keys are refused."""
        unknown = sorted(set(options) - set(ONLINE_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown data.online option(s) {unknown}; valid options: {sorted(ONLINE_OPTIONS)}")
        return cls(**options)

    def __post_init__(self) -> None:
        if self.buffer not in BUFFERS:
            raise ConfigError(f"data.online.buffer={self.buffer!r} is not one of {list(BUFFERS)}")
        for key in ("buffer_size", "samples_per_epoch", "workers", "solve_batch"):
            _check_int(key, getattr(self, key), 1)
        for key, minimum in (("watermark", 1), ("seed", 0), ("first_index", 0)):
            if getattr(self, key) is not None:
                _check_int(key, getattr(self, key), minimum)
        if self.watermark is not None and self.watermark > self.buffer_size:
            raise ConfigError(f"data.online.watermark={self.watermark} exceeds data.online.buffer_size={self.buffer_size}")


ONLINE_OPTIONS = tuple(f.name for f in fields(OnlineConfig))


def _check_int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"data.online.{key} must be an integer >= {minimum}, got {value!r}")


def index_stream(first: int, rank: int, world_size: int, worker: int, workers: int) -> range:
    """Global sample ids of one worker: ``first + (rank·workers + worker) + k·world_size·workers``
    for ``k = 0, 1, …`` (up to ``2**63 - 1``).

    The ``world_size · workers`` streams of a run are disjoint and together cover every id from
    ``first`` on.
    """
    lanes = world_size * workers
    return range(first + rank * workers + worker, 2**63 - 1, lanes)


def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the arguments where given, else the initialized default
    ``torch.distributed`` group, else the ``RANK`` and ``WORLD_SIZE`` environment variables
    (set by ``torchrun``), else ``(0, 1)``.

    Raises:
        ConfigError: ``world_size < 1`` or ``rank`` outside ``[0, world_size)``.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        default_rank, default_world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    else:
        try:
            default_rank, default_world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        except ValueError:
            raise ConfigError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} are not integers") from None
    rank = default_rank if rank is None else rank
    world_size = default_world if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is not in [0, world_size={world_size})")
    return int(rank), int(world_size)


class FifoBuffer:
    """First in, first out, at most ``capacity`` samples: :meth:`get` removes and returns the
    oldest, so every sample is read exactly once, in arrival order.

    Raises:
        ConfigError: ``capacity < 1``.
    """

    def __init__(self, capacity: int):
        _check_int("buffer_size", capacity, 1)
        self.capacity = int(capacity)
        self._items: collections.deque = collections.deque()

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        """No room: :meth:`put` would fail (the reader stops taking samples from the solvers)."""
        return len(self._items) >= self.capacity

    def put(self, item: Any) -> bool:
        """Append ``item``; returns ``True`` (admitted). Raises :class:`OverflowError` when full."""
        if self.full():
            raise OverflowError(f"FIFO buffer is full ({self.capacity} samples)")
        self._items.append(item)
        return True

    def get(self) -> Any:
        """Remove and return the oldest sample; :class:`IndexError` when empty."""
        if not self._items:
            raise IndexError("get from an empty FIFO buffer")
        return self._items.popleft()


class ReservoirBuffer:
    """A uniform random sample of at most ``capacity`` of all samples offered (Vitter, "Random
    sampling with a reservoir", ACM TOMS 11(1), 1985, Algorithm R), read at random.

    The first ``capacity`` samples offered are kept; the ``n``-th after them (``n > capacity``)
    replaces a uniformly chosen resident with probability ``capacity / n`` and is dropped
    otherwise. After ``n`` offers every one of them is resident with probability
    ``min(1, capacity / n)``. :meth:`get` returns a uniformly chosen resident without removing
    it, so a sample is read several times while the buffer slowly refreshes (as in the paper's
    reservoir, which never blocks the training while it holds samples). Draws come from ``rng``.

    Raises:
        ConfigError: ``capacity < 1``.
    """

    def __init__(self, capacity: int, rng: np.random.Generator):
        _check_int("buffer_size", capacity, 1)
        self.capacity = int(capacity)
        self.offered = 0
        self._rng = rng
        self._items: list[Any] = []

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        """Always ``False``: the reservoir never refuses an offer (it keeps or drops it)."""
        return False

    def put(self, item: Any) -> bool:
        """Offer ``item``; returns whether it was admitted."""
        self.offered += 1
        if len(self._items) < self.capacity:
            self._items.append(item)
            return True
        slot = int(self._rng.integers(self.offered))
        if slot < self.capacity:
            self._items[slot] = item
            return True
        return False

    def get(self) -> Any:
        """A uniformly chosen resident (not removed); :class:`IndexError` when empty."""
        if not self._items:
            raise IndexError("get from an empty reservoir buffer")
        return self._items[int(self._rng.integers(len(self._items)))]


def _mirror(target: SampleSource, template: SampleSource, sample_ids: np.ndarray) -> None:
    """Give an in-memory source the metadata and view of a file's source at the same grid."""
    for name in ("path", "name", "axes", "stored_shape", "grid_shape", "grid", "coords", "attrs", "view"):
        setattr(target, name, getattr(template, name))
    target.sample_ids = np.asarray(sample_ids, dtype=np.int64)
    target._file, target._pid, target._rdcc_nbytes = None, None, None


class _SolvedPairs(PairSource):
    """Solved pairs held in memory, ``(B, C, *stored grid)``, served like ``template``'s samples."""

    def __init__(self, template: PairSource, sample_ids: np.ndarray, x: np.ndarray, y: np.ndarray):
        _mirror(self, template, sample_ids)
        self.input_channels, self.output_channels = template.input_channels, template.output_channels
        self._x, self._y = x, y

    def _read_pair(self, i: int) -> tuple[tuple[str, np.ndarray], tuple[str, np.ndarray]]:
        space = (slice(None), *self._space())
        return ("online solver: inputs", self._x[i][space]), ("online solver: outputs", self._y[i][space])


class _SolvedTrajectories(TrajectorySource):
    """Solved trajectories held in memory, ``(B, T, C, *stored grid)``, served like ``template``'s."""

    def __init__(self, template: TrajectorySource, sample_ids: np.ndarray, states: np.ndarray):
        _mirror(self, template, sample_ids)
        self.channels, self.static_channels, self.times = template.channels, [], template.times
        self._states = states

    def _read_steps(self, i: int, steps: slice) -> tuple[str, np.ndarray]:
        return "online solver: trajectories", self._states[i][(steps, slice(None), *self._space())]


def _task(data: DataConfig, source: PairSource | TrajectorySource) -> PairSource | OneShotTask | WindowTask:
    """The training dataset ``open_split`` builds on ``source`` (which checked ``data.task``
    against the file): the pairs, or the task's items."""
    if isinstance(source, PairSource):
        return source
    if data.task == "one_shot":
        return OneShotTask(source, data.input_step, data.target_step)
    return WindowTask(source, data.steps_in, data.steps_out, data.time_stride)


def _param(header: FileHeader, key: str) -> Any:
    params = header.metadata.pde_params
    if key not in params:
        raise DataFormatError(f"{header.path}: key '/@param_{key}': missing; the online {header.metadata.name} solver needs it")
    return params[key]


class _DarcySolve:
    """Darcy pairs ``(a, u)`` on the stored ``n``-point grid: :func:`~neuralops.data.generators.darcy.darcy_samples`
    with the options the file was written with (grid kind, solver, reference resolution, stored
    coefficient)."""

    def __init__(self, header: FileHeader, stored_shape: tuple[int, ...]):
        meta = header.metadata
        expected = {"tau": darcy.TAU, "alpha": darcy.ALPHA, "a_high": darcy.A_HIGH, "a_low": darcy.A_LOW,
                    "forcing": darcy.FORCING, "grf_modes": darcy.GRF_MODES}
        differ = {key: _param(header, key) for key, value in expected.items() if _param(header, key) != value}
        if differ:
            raise DataFormatError(f"{header.path}: Darcy parameters {differ} differ from the solver's {expected}; the online solver cannot continue this file")
        reference = meta.pde_params.get("reference_resolution")
        self.options = darcy.DarcyOptions(
            solver="direct" if "spsolve" in str(_param(header, "solver")) else "pcg",
            grid=meta.grid,
            reference_resolution=None if reference is None else int(reference),
            coefficient=str(meta.pde_params.get("coefficient", "point")),
        )
        self.n = stored_shape[0]

    def __call__(self, seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pair = darcy.darcy_samples(seed, ids, self.options, self.n)
        return pair["x"], pair["y"]


class _PeriodicSolve:
    """Burgers or Navier-Stokes trajectories ``(B, T, 1, *stored grid)``, as the generator makes
    them: solved on the file's finest grid at its stored times and time step, then subsampled."""

    def __init__(self, header: FileHeader, stored_shape: tuple[int, ...]):
        self.kind = header.metadata.name
        self.finest = max(shape[0] for shape in header.resolutions)
        n = stored_shape[0]
        if self.finest % n:
            raise DataFormatError(f"{header.path}: grid {stored_shape} does not nest in the finest stored grid {self.finest}")
        self.stride = self.finest // n
        self.times = [float(t) for t in header.times]
        self.viscosity = float(_param(header, "viscosity"))
        self.dt = float(_param(header, "dt"))
        self.forcing = str(_param(header, "forcing")) if self.kind == "navier_stokes" else None

    def __call__(self, seed: int, ids: np.ndarray) -> np.ndarray:
        if self.kind == "burgers":
            u0 = torch.stack([sample_burgers_initial_conditions(1, self.finest, sample_torch_generator(seed, i))[0] for i in ids])
            states = solve_burgers(u0, self.viscosity, self.times, dt=self.dt)[0]
        else:
            w0 = torch.stack([sample_fno_initial_vorticity(1, self.finest, sample_torch_generator(seed, i))[0] for i in ids])
            forcing = fno_forcing(self.finest) if self.forcing == "fno" else None
            states = solve_navier_stokes(w0, self.viscosity, self.times, dt=self.dt, forcing=forcing)[0]
        states = np.asarray(states.numpy(), dtype=np.float32)
        space = (slice(None, None, self.stride),) * (states.ndim - 3)
        return np.ascontiguousarray(states[(slice(None), slice(None), slice(None), *space)])


class SolverSamples:
    """Training items that our solvers make on demand, continuing a neuralops file.

    The solver (the file's ``name``: ``darcy``, ``burgers`` or ``navier_stokes``) and every
    parameter (Darcy: grid kind, reference resolution, stored coefficient; Burgers and
    Navier-Stokes: viscosity, time step, stored times, forcing, finest grid) come from the file,
    so the items have the file's channels, grid and distribution. Items go through the same
    :class:`~neuralops.data.views.ResolutionView` and task (``data.task``: pairs, ``one_shot``
    or ``window``; ``rollout`` trains on windows) as ``open_split`` serves from the file: a
    trajectory gives one item per window.

    Picklable (it holds a lazily opened file source for metadata), so a worker process can use it.

    Args:
        data: the data config (``data.path``: a neuralops file of one of :data:`SOLVERS`).
        view: the training grid (default :func:`~neuralops.data.factory.train_view`); any grid
            the file stores for some split.

    Attributes:
        template: the file's source at that grid (metadata: channels, grid, coordinates, attrs).
        dataset: a dataset of the file at that grid, with the task applied (its channel names).
        seed: the file's ``param_seed``. n_samples: the file's ``n_samples``.

    Raises:
        ConfigError / DataFormatError: not a neuralops file of a known solver, a Darcy file made
            with other constants, or a grid the file stores for no split.
    """

    def __init__(self, data: DataConfig, view: ResolutionView | None = None):
        self.data = data
        self.view = train_view(data) if view is None else view
        if data.file_format != "neuralops":
            raise ConfigError(f"data.online needs a neuralops file written by our generator; {data.path} is a {data.file_format} file")
        header = read_header(data.path)
        kind = header.metadata.name
        if kind not in SOLVERS:
            raise ConfigError(f"data.online: {data.path} holds {kind!r} data; online solvers exist for {list(SOLVERS)}")
        holding = [s for s in ("train", "val", "test") if self.view.file_shape in resolutions(data.path, s, partial=True)]
        if not holding:
            raise ConfigError(f"data.train_resolution: {data.path} stores no samples at {self.view.file_shape}; online training needs a grid of the file")
        self.dataset = open_split(data, holding[0], self.view, partial=True)
        self.template = getattr(self.dataset, "source", self.dataset)
        self.seed = int(_param(header, "seed"))
        self.n_samples = header.n_samples
        self._solve = _DarcySolve(header, self.template.stored_shape) if kind == "darcy" else _PeriodicSolve(header, self.template.stored_shape)

    def make(self, seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The items of global samples ``ids`` with base seed ``seed``.

        Returns:
            ``(sample_ids, x, y)``: int64 ``(K,)`` the sample each item comes from, float32
            ``(K, C_in, *grid)`` and ``(K, C_out, *grid)``; ``K = len(ids)`` for pairs and
            one-shot items, ``len(ids)`` times the windows per trajectory for windows.

        Raises:
            DataFormatError: a solution holding NaN or Inf; ConfigError: a solver failure.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if isinstance(self._solve, _DarcySolve):
            source = _SolvedPairs(self.template, ids, *self._solve(seed, ids))
        else:
            source = _SolvedTrajectories(self.template, ids, self._solve(seed, ids))
        items = _task(self.data, source)
        per_sample = len(items) // len(ids)
        stacked = [items[j] for j in range(len(items))]
        x = torch.stack([item["x"] for item in stacked]).numpy()
        y = torch.stack([item["y"] for item in stacked]).numpy()
        return np.repeat(ids, per_sample), x, y


def _solve_forever(samples: SolverSamples, seed: int, ids: range, batch: int, worker: int, out, stop) -> None:
    """Worker process: solve ``batch`` ids at a time from ``ids`` and send ``("samples", worker,
    n_ids, sample_ids, x, y)``, until ``stop`` is set or the parent process is gone. A failure is
    sent as ``("error", worker, type name, message, traceback)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    parent = multiprocessing.parent_process()

    def running() -> bool:
        return not stop.is_set() and (parent is None or parent.is_alive())

    def send(message: tuple) -> None:
        while running():
            try:
                out.put(message, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    stream = iter(ids)
    try:
        while running():
            chunk = np.fromiter(itertools.islice(stream, batch), dtype=np.int64, count=batch)
            send(("samples", worker, len(chunk), *samples.make(seed, chunk)))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        send(("error", worker, type(err).__name__, str(err), traceback.format_exc()))
        raise SystemExit(1) from None
    finally:
        if not running():  # nobody reads what is still buffered: exit without flushing it
            out.cancel_join_thread()


def _stop_workers(processes: list, channel, stop) -> None:
    """Stop, join and if need be terminate the workers; idempotent."""
    stop.set()
    deadline = time.monotonic() + _JOIN_S
    for process in processes:
        if process.pid is not None:
            process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(2.0)
        if process.is_alive():
            process.kill()
            process.join()
    channel.close()
    channel.cancel_join_thread()


class _SolverPool:
    """``workers`` spawned :func:`_solve_forever` processes of one rank and their queue."""

    def __init__(self, samples: SolverSamples, config: OnlineConfig, seed: int, first: int, rank: int, world_size: int):
        context = torch.multiprocessing.get_context("spawn")
        self.channel = context.Queue(maxsize=2 * config.workers)
        self.stop = context.Event()
        self.processes = [
            context.Process(
                target=_solve_forever, name=f"neuralops-online-r{rank}w{w}", daemon=True,
                args=(samples, seed, index_stream(first, rank, world_size, w, config.workers), config.solve_batch, w, self.channel, self.stop),
            )
            for w in range(config.workers)
        ]
        self._finalizer = weakref.finalize(self, _stop_workers, self.processes, self.channel, self.stop)
        with single_threaded_children():
            for process in self.processes:
                process.start()

    def receive(self, timeout: float) -> tuple | None:
        """The next message (``timeout`` 0: only one already there), or ``None``; raises what a
        worker reported, or a :class:`RuntimeError` for a worker that died without a report."""
        try:
            message = self.channel.get(timeout=timeout) if timeout > 0 else self.channel.get_nowait()
        except queue.Empty:
            dead = [p for p in self.processes if not p.is_alive()]
            if not dead or self._finalizer.alive is False:
                return None
            try:  # a worker that failed sent its report before exiting
                message = self.channel.get(timeout=1.0)
            except queue.Empty:
                raise RuntimeError(f"online solver worker {dead[0].name} exited with code {dead[0].exitcode} without a report") from None
        if message[0] == "error":
            _, worker, kind, text, trace = message
            if kind in ("ConfigError", "DataFormatError"):
                raise (ConfigError if kind == "ConfigError" else DataFormatError)(f"online solver worker {worker}: {text}")
            raise RuntimeError(f"online solver worker {worker} failed:\n{trace}")
        return message

    def close(self) -> None:
        self._finalizer()


class OnlineDataset(IterableDataset):
    """Training items streamed from solver processes through a bounded buffer.

    Each rank spawns ``online.workers`` processes running :class:`SolverSamples` on its own ids
    (:func:`index_stream`), on first iteration or :meth:`start`; they keep running across epochs
    until :meth:`close`. Iterating yields ``len(self) = samples_per_epoch / world_size`` items
    ``{"x": float32 (C_in, *grid), "y": float32 (C_out, *grid)}`` (one epoch), read from the
    buffer once it has held ``watermark`` samples: a :class:`FifoBuffer` (each sample once; the
    reader waits for the solvers when it is empty, and stops taking their samples when it is
    full, so they wait too) or a :class:`ReservoirBuffer` (offered every sample, read at random).
    Use it with ``DataLoader(dataset, batch_size=B)`` and ``num_workers=0``: the buffer lives in
    the training process; the solver processes are the parallelism.

    Metadata attributes (``input_channels``, ``output_channels``, ``grid``, ``grid_shape``,
    ``n_dims``, ``axes``, ``coords``, ``attrs``, ``path``, ``view``) are those of the file's
    data at the training grid, so the model and the loss are set up as for the file.

    Args:
        data: the data config (``data.path``: the fixed file for validation and test, whose
            generator the solvers continue; one training grid: ``data.train_resolution``).
        online: the ``data.online`` options.
        rank, world_size: this process's rank (default: :func:`distributed_rank`).

    Raises:
        ConfigError: ``data.train_resolutions`` set (online training serves one grid),
            ``samples_per_epoch`` not divisible by ``world_size``, or the errors of
            :class:`SolverSamples`; iterating from a ``DataLoader`` worker; iterating re-raises
            a worker's :class:`ConfigError`/:class:`DataFormatError`, and raises
            :class:`RuntimeError` for a worker that failed otherwise or died.
    """

    def __init__(self, data: DataConfig, online: OnlineConfig, rank: int | None = None, world_size: int | None = None):
        if data.train_resolutions is not None:
            raise ConfigError("data.train_resolutions: online training serves one grid; set data.train_resolution instead")
        self.online = online
        self.rank, self.world_size = distributed_rank(rank, world_size)
        if online.samples_per_epoch % self.world_size:
            raise ConfigError(f"data.online.samples_per_epoch={online.samples_per_epoch} is not divisible by the world size {self.world_size}")
        self.samples = SolverSamples(data)
        source = self.samples.dataset
        self.input_channels, self.output_channels = list(source.input_channels), list(source.output_channels)
        for name in ("path", "axes", "n_dims", "grid_shape", "grid", "coords", "attrs", "view"):
            setattr(self, name, getattr(source, name))
        self.seed = self.samples.seed if online.seed is None else online.seed
        self.first_index = self.samples.n_samples if online.first_index is None else online.first_index
        self.watermark = max(1, online.buffer_size // 8) if online.watermark is None else online.watermark
        rng = np.random.default_rng([self.seed, self.rank, 0x0B0F])
        self.buffer = FifoBuffer(online.buffer_size) if online.buffer == "fifo" else ReservoirBuffer(online.buffer_size, rng)
        self._pending: collections.deque = collections.deque()
        self._pool: _SolverPool | None = None
        self._closed = False
        self._ready = False
        self._started_at: float | None = None
        self._counts = {"simulations": 0, "samples_generated": 0, "samples_admitted": 0, "samples_consumed": 0}

    def __len__(self) -> int:
        return self.online.samples_per_epoch // self.world_size

    def start(self) -> None:
        """Spawn the solver processes (once; iteration calls it).

        Raises:
            RuntimeError: after :meth:`close` (a restart would solve the same ids again).
        """
        if self._closed:
            raise RuntimeError("this OnlineDataset is closed: its solver processes were stopped")
        if self._pool is None:
            self._started_at = time.monotonic()
            self._pool = _SolverPool(self.samples, self.online, self.seed, self.first_index, self.rank, self.world_size)

    def close(self) -> None:
        """Stop the solver processes (join, terminate after :data:`_JOIN_S` s); the counters stay."""
        self._closed = True
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> "OnlineDataset":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if get_worker_info() is not None:
            raise ConfigError("online data is read in the training process: set trainer.num_workers=0 (data.online.workers sets the solver processes)")
        self.start()
        for _ in range(len(self)):
            self._pull(wait=False)
            while not self._ready:
                self._pull(wait=True)
                self._ready = len(self.buffer) >= self.watermark
            while len(self.buffer) == 0:
                self._pull(wait=True)
            self._counts["samples_consumed"] += 1
            yield self.buffer.get()[1]

    def _pull(self, wait: bool) -> None:
        """Move solver messages into the buffer: all that are there, or (``wait``) at least one
        after waiting for it. A full FIFO takes nothing (its solvers then wait)."""
        while self._pending and not self.buffer.full():
            self._admit(self._pending.popleft())
        received = False
        while not self.buffer.full():
            message = self._pool.receive(_POLL_S if wait and not received else 0.0)
            if message is None:
                if received or not wait:
                    return
                continue
            received = True
            _, _, n_ids, sample_ids, x, y = message
            self._counts["simulations"] += n_ids
            self._counts["samples_generated"] += len(sample_ids)
            self._pending.extend((int(i), {"x": torch.from_numpy(x[k].copy()), "y": torch.from_numpy(y[k].copy())})
                                 for k, i in enumerate(sample_ids))
            while self._pending and not self.buffer.full():
                self._admit(self._pending.popleft())

    def _admit(self, item: tuple[int, dict[str, torch.Tensor]]) -> None:
        self._counts["samples_admitted"] += int(self.buffer.put(item))

    def stats(self) -> dict[str, float | int]:
        """This rank's counters, for the epoch log (sum ``simulations`` and ``samples_*`` over ranks
        for totals):

        * ``simulations``: solver samples received (global ids solved);
        * ``samples_generated``: training items received (windows count one each);
        * ``samples_admitted``: items the buffer took (a reservoir drops the rest);
        * ``samples_consumed``: items read by the training;
        * ``buffer_occupancy``, ``buffer_size``: items in the buffer now, and its capacity;
        * ``generated_per_s``: ``samples_generated`` per second since :meth:`start` (0 before).
        """
        elapsed = time.monotonic() - self._started_at if self._started_at is not None else 0.0
        return {
            **self._counts,
            "buffer_occupancy": len(self.buffer),
            "buffer_size": self.buffer.capacity,
            "generated_per_s": self._counts["samples_generated"] / elapsed if elapsed > 0 else 0.0,
        }
