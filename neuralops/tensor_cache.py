"""Caching functions that build tensors reused across calls (DFT and SHT matrices, quadrature
weights).

A tensor created under ``torch.inference_mode`` is an *inference tensor*: autograd refuses to
save it for a backward pass. A plain :func:`functools.lru_cache` filled during an evaluation
under ``inference_mode`` would hand such tensors to the next training step, which then fails
with "Inference tensors cannot be saved for backward". :func:`cached_tensors` builds the cached
value with inference mode switched off, so one cache serves both.

The cache is a plain dictionary, not :func:`functools.lru_cache`: ``torch.compile`` (Dynamo)
ignores ``lru_cache`` and traces the wrapped builder, so a compiled model would rebuild every
DFT matrix on every call (on CUDA, on the host, then copied over). A dictionary lookup is traced
as such: after the first compiled call has filled it, Dynamo recompiles once and reads the
cached tensors as constants.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def cached_tensors(maxsize: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a builder's results by its positional arguments (hashable), at most ``maxsize``
    entries (the oldest is dropped first); values are built outside ``torch.inference_mode``
    (see the module docstring). ``cache_clear()`` empties the cache."""

    def decorate(build: Callable[..., T]) -> Callable[..., T]:
        cache: dict[tuple, T] = {}

        @functools.wraps(build)
        def lookup(*args) -> T:
            value = cache.get(args)
            if value is None:
                with torch.inference_mode(False):
                    value = build(*args)
                if len(cache) >= maxsize:
                    del cache[next(iter(cache))]
                cache[args] = value
            return value

        lookup.cache_clear = cache.clear  # as functools.lru_cache's
        return lookup

    return decorate
