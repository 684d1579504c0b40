"""Running a batch in slices (``batch_slice_mib`` of :class:`~neuralops.models.fno.FNO` and the
models built on it (TFNO, MG-TFNO's inner TFNO), :class:`~neuralops.models.sfno.SFNO`,
:class:`~neuralops.models.lsm.LSM`, :class:`~neuralops.models.t1.T1` and
:class:`~neuralops.models.mgno.MgNO`).

Only CPU tensors are sliced, and nothing while ``torch.compile`` traces (its compiler plans the
whole batch's buffers). Why: torch takes CPU tensors from the C library's ``malloc``, and
glibc's serves every block of 32 MiB or more with a fresh ``mmap`` that the kernel page-faults
and zeroes on first touch and unmaps on ``free``. A (16, 32, 128, 128) float32 field is exactly 32 MiB, so a training step at
128² spent about half its time in the kernel. Slices whose widest field stays under that
size are served from the heap and reused. Samples of these models are independent (no batch
statistics), so the sliced outputs and gradients are the whole batch's, up to the order of
floating-point sums. Smaller slices also keep a slice's fields in the processor's last-level
cache. Measured by ``benchmarks/bench_slicing.py`` (``benchmarks/results/slicing_cpu.md``): each
family's default model on one CPU thread at 128², sliced time / whole-batch time for a training
step (batch 16) and inference (batch 32): with glibc's default malloc FNO 0.58 / 0.58, LSM 0.83 /
0.69, T1 0.58 / 0.31, MgNO 0.78 / 0.49; with :func:`~neuralops.runtime.keep_freed_memory` (as
in ``train.py``) FNO 0.86 / 0.85, LSM 1.00 / 0.94, T1 0.75 / 0.39, MgNO 1.01 / 1.01.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import torch
from torch import nn

from neuralops.errors import ConfigError
from neuralops.layers.pointwise import PointwiseLinear
from neuralops.spectral.weights import SpectralWeight

DEFAULT_BATCH_SLICE_MIB = 8.0
"""Default budget of the widest field of one slice: a quarter of glibc's 32 MiB ``mmap`` limit,
so that several fields of a slice also stay in a 32 MiB last-level cache. Measured against 16 and
4 MiB on one CPU thread (hidden 32): training steps 244 / 251 / 247 ms at 64² and 977 / 1022 /
960 ms at 128²; inference (batch 32) 170 / 201 / 172 ms at 64² and 686 / 884 / 657 ms at 128²."""


def check_batch_slice_mib(value, model: str) -> None:
    """Raise :class:`ConfigError` naming ``model``'s option unless ``value`` is None or a
    positive finite number of MiB."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(f"{model} option batch_slice_mib must be a positive number of MiB or null, got {value!r}")


def widest_width(model: nn.Module) -> int:
    """The most channels any pointwise layer of ``model`` reads or writes (e.g. an FNO's lifting
    MLP): the channel count of its widest field."""
    return max(max(layer.weight.shape) for layer in model.modules() if isinstance(layer, PointwiseLinear))


def samples_per_slice(budget_mib: float | None, x: torch.Tensor, channels: int, points: int) -> int:
    """How many samples of the batch ``x: (B, ...)`` one slice takes: as many as keep their
    widest field (``samples × channels × points`` elements of ``x``'s dtype) within
    ``budget_mib`` MiB, at least 1. ``B`` (no slicing) when ``budget_mib`` is None or ``x`` is not on the CPU:
    CUDA's caching allocator reuses blocks, and smaller kernels would only cost parallelism;
    also while ``torch.compile`` traces, whose compiler plans the buffers of the whole batch."""
    if budget_mib is None or x.device.type != "cpu" or torch.compiler.is_compiling():
        return x.shape[0]
    return max(1, int(budget_mib * 2**20 // (channels * points * x.element_size())))


def in_batch_slices(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int, shared: nn.Module | None = None
) -> torch.Tensor:
    """``forward(x)`` for ``x: (B, ...)``, computed on slices of ``size`` samples along the batch
    axis and concatenated (one call when ``size >= B``). The spectral weights of ``shared``
    (the model, or None) build their dense forms once for all slices
    (:meth:`~neuralops.spectral.weights.SpectralWeight.shared_by_slices`); pass None when a
    slice's forward is recomputed later (activation checkpointing), which must rebuild them."""
    if size >= x.shape[0]:
        return forward(x)
    parts = x.split(size)
    with ExitStack() as stack:
        if shared is not None:
            for weight in shared.modules():
                if isinstance(weight, SpectralWeight):
                    stack.enter_context(weight.shared_by_slices(len(parts)))
        return torch.cat([forward(part) for part in parts])
