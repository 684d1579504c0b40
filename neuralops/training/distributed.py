"""Data-parallel runs on :mod:`torch.distributed`: the process group that ``torchrun`` describes.

``torchrun --nproc_per_node=N train.py ...`` starts N processes and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables in each; :func:`init_distributed`
reads them and joins the group (gloo on CPU, NCCL on CUDA, one GPU per process: ``cuda:LOCAL_RANK``).
A plain ``python train.py`` has no ``WORLD_SIZE`` and runs as one process; every helper here is
then a no-op, so the training code has one path for both.

:class:`Distributed` carries the rank and world size and the few collectives a run needs:
broadcasting rank 0's objects (the run directory, normalizer statistics), gathering small
per-rank objects (evaluation sums, RNG states) and summing tensors (the training loss).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from neuralops.errors import ConfigError

#: How long a collective waits for the other ranks before it fails (a rank that died, a
#: rendezvous that never completes) instead of hanging.
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: ``rank`` of ``world_size`` processes, ``local_rank`` on
    its node. The default, ``Distributed()``, is a single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and logs progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process (a process group is initialised)."""
        return self.world_size > 1

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable; other ranks' values are ignored)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The elementwise sum of ``tensor`` over ranks (in place; returned for chaining)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every rank (in place)."""
        if self.active:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)


def resolve_device(name: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """The torch device of ``trainer.device`` for this process.

    ``auto``: ``cuda`` when available, else ``cpu``. Under torchrun with more than one process,
    ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK`` (one GPU per process).

    Raises:
        ConfigError: an unparsable device, CUDA asked for without CUDA, or a fixed ``cuda:N``
            under a multi-process run (every process would use the same GPU).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"trainer.device={name!r} is not a valid device: {err}") from None
    if device.type != "cuda":
        return device
    check_cuda(name)
    if world_size > 1:
        if device.index is not None:
            raise ConfigError(f"trainer.device={name!r} names one GPU, but torchrun runs one process per GPU; use trainer.device=cuda (process i uses cuda:LOCAL_RANK)")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started local rank {local_rank} but this node has {torch.cuda.device_count()} CUDA device(s); use --nproc_per_node={torch.cuda.device_count()}")
        return torch.device("cuda", local_rank)
    return device


def check_cuda(name: str) -> None:
    """:class:`ConfigError` if the device ``name`` (``cuda`` or ``cuda:N``) does not exist here."""
    if not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name!r} but this machine has no usable CUDA device (torch.cuda.is_available() is False); use trainer.device=cpu or auto")
    index = torch.device(name).index
    if index is not None and index >= torch.cuda.device_count():
        raise ConfigError(f"trainer.device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")


def _env_int(key: str, default: int) -> int:
    value = os.environ.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {key}={value!r} must be an integer (it is set by torchrun)") from None


def init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """Join the process group described by torchrun's environment, if any.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (absent: one process). With more than one
    process, initialises the default group with ``nccl`` for a CUDA device and ``gloo``
    otherwise (the rendezvous is torchrun's: ``MASTER_ADDR``/``MASTER_PORT``); an already
    initialised group is reused.

    Returns:
        ``(Distributed, device)``; ``device`` as in :func:`resolve_device`.

    Raises:
        ConfigError: a bad ``trainer.device`` (see :func:`resolve_device`).
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    device = resolve_device(device_name, local_rank, world_size)
    if world_size == 1:
        return Distributed(), device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return Distributed(rank, world_size, local_rank), device


def shutdown(context: Distributed) -> None:
    """Leave the process group :func:`init_distributed` joined (no-op for one process)."""
    if context.active and dist.is_initialized():
        dist.destroy_process_group()
