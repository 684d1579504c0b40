"""Batches of samples solved in worker processes, written in order by the calling process.

A generator cuts the sample ids it must solve into batches (:func:`batches`: by ``id //
batch_size``, so a batch holds the same ids whatever else is requested, in a file or in a shard
whose size is a multiple of the batch size) and maps a picklable function over them with
:func:`map_batches`. With a :class:`WorkerPool` the batches run in its processes (a
:class:`multiprocessing.pool.Pool` of fork-server processes, one thread each), at most
``2 x workers`` at a time so finished results never pile up in memory; results come back in
batch order and only the calling process writes the file. Every sample is a function of
``(seed, index)`` and its batch, and the batches do not depend on the number of workers, so the
file is bitwise the same with 1 or N workers.

Progress: a solver calls :func:`report_progress` (the time-dependent ones once per stored time
step, through :func:`reported_frame`); the calls reach the progress bar of the calling process,
from a worker through a queue, and do nothing outside a generation.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import queue
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from neuralops.errors import ConfigError

POLL_SECONDS = 0.2
"""How often the calling process forwards worker progress to its bar while waiting."""
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

PRELOAD = ("neuralops.data.generators.darcy", "neuralops.data.generators.trajectory_writers")
"""Modules the fork server imports once, so that each worker forks from a process that has
torch, numpy and every generator loaded instead of importing them itself."""

_reporter: Callable[[float], Any] | None = None


def report_progress(amount: float) -> None:
    """Advance the progress bar of the running generation by ``amount`` (no-op outside one)."""
    if _reporter is not None:
        _reporter(amount)


def reported_frame(frame: torch.Tensor) -> torch.Tensor:
    """``frame`` (a batch ``(B, ...)`` of one stored time), after advancing the progress bar by
    ``B``: the time-dependent solvers pass every stored output through it."""
    report_progress(len(frame))
    return frame


@contextmanager
def reporting_to(bar: tqdm) -> Iterator[None]:
    """Within the block, :func:`report_progress` in this process advances ``bar``."""
    global _reporter
    previous, _reporter = _reporter, bar.update
    try:
        yield
    finally:
        _reporter = previous


def batches(ids: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Sorted ``ids`` grouped by ``id // batch_size`` (each group a batch, in order)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return []
    cuts = np.flatnonzero(np.diff(ids // batch_size)) + 1
    return np.split(ids, cuts)


@contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started within the block get ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` (read when they
    load numpy and torch), so N workers use N cores; this process's environment is restored after."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_worker(progress: multiprocessing.Queue) -> None:
    global _reporter
    torch.set_num_threads(1)
    _reporter = progress.put


class WorkerPool:
    """``workers`` solver processes and the queue their progress comes back through.

    Use as ``with WorkerPool(4) as pool:`` and pass it to the generators
    (``GenerationRequest.pool``). A :class:`multiprocessing.pool.Pool` of the ``forkserver``
    start method (``spawn`` where there is none), whose server preloads :data:`PRELOAD`: workers
    start with one torch thread and ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` in their
    environment, so they do not oversubscribe the cores. Leaving the block normally waits for the
    workers to finish; an exception (Ctrl-C, SIGTERM under
    :func:`~neuralops.io.signals_as_exceptions`, a failed batch) terminates them at once.
    """

    def __init__(self, workers: int):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload(list(PRELOAD))
        self.progress = context.Queue()
        with single_threaded_children():
            self.pool = context.Pool(workers, initializer=_start_worker, initargs=(self.progress,))

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()
        self.progress.close()

    def _forward_progress(self) -> None:
        while True:
            try:
                amount = self.progress.get_nowait()
            except queue.Empty:
                return
            report_progress(amount)

    def result(self, pending: multiprocessing.pool.AsyncResult) -> Any:
        """``pending.get()``, forwarding worker progress to this process's bar while waiting."""
        while True:
            try:
                value = pending.get(timeout=POLL_SECONDS)
            except multiprocessing.TimeoutError:
                self._forward_progress()
                continue
            self._forward_progress()
            return value


def map_batches(function: Callable[[np.ndarray], Any], tasks: Iterable[np.ndarray], pool: WorkerPool | None) -> Iterator[Any]:
    """``function(task)`` for every task, in order: in this process (``pool=None``) or in the
    pool's workers (``function`` must then be picklable, e.g. a ``functools.partial`` of a
    module-level function), at most ``2 x workers`` tasks in flight."""
    if pool is None:
        for task in tasks:
            yield function(task)
        return
    pending: deque[multiprocessing.pool.AsyncResult] = deque()
    for task in tasks:
        pending.append(pool.pool.apply_async(function, (task,)))
        if len(pending) >= 2 * pool.workers:
            yield pool.result(pending.popleft())
    while pending:
        yield pool.result(pending.popleft())
