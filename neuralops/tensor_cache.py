"""Caching functions that build tensors reused across calls (DFT and SHT matrices, quadrature
weights).

A tensor created under ``torch.inference_mode`` is an *inference tensor*: autograd refuses to
save it for a backward pass. A plain :func:`functools.lru_cache` filled during an evaluation
under ``inference_mode`` would hand such tensors to the next training step, which then fails
with "Inference tensors cannot be saved for backward". :func:`cached_tensors` builds the cached
value with inference mode switched off, so one cache serves both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def cached_tensors(maxsize: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """:func:`functools.lru_cache` with ``maxsize`` entries whose values are built outside
    ``torch.inference_mode`` (see the module docstring). Arguments must be hashable."""

    def decorate(build: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(build)
        def build_normal(*args, **kwargs) -> T:
            with torch.inference_mode(False):
                return build(*args, **kwargs)

        return functools.lru_cache(maxsize=maxsize)(build_normal)

    return decorate
