"""Train/val/test splits of foreign files (which store none) and split manifests.

Two policies, chosen by ``data.split``:

* ``"pdebench"``: PDEBench's own rule, so numbers are comparable with its papers. Test is the
  **first** ``int(N * test_fraction)`` samples of a ``.hdf5`` file, or the samples from position
  ``int(N * (1 - test_fraction))`` on (the **last** ones, in sorted group-name order) of a
  ``.h5`` file. PDEBench validates on its test split; we do not: validation takes the last
  ``round(N * val_fraction)`` of the remaining samples (``val_fraction: 0`` reproduces PDEBench's
  training set exactly, and the run then keeps the last epoch).
* ``"random"``: a seeded permutation (``numpy.random.default_rng(seed)``) cut into test, val
  and train; the same ``(N, fractions, seed)`` always gives the same ids.

Every split is a sorted int64 array of sample positions ``0 … N-1`` in the file's order.
:func:`manifest` records the ids with a SHA-256 digest, so a run states exactly what it used.
"""

from __future__ import annotations

import hashlib

import numpy as np

from neuralops.errors import ConfigError

SPLIT_POLICIES = ("file", "pdebench", "random")
"""``file``: the splits stored in a neuralops file; ``pdebench`` and ``random``: see module doc."""


def _check_fractions(n: int, val_fraction: float, test_fraction: float) -> None:
    for name, fraction in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
            raise ConfigError(f"{name} must be a number in [0, 1), got {fraction!r}")
    if n < 1:
        raise ConfigError("the file holds no samples to split")


def _three_way(n: int, test: np.ndarray, rest: np.ndarray, val_fraction: float) -> dict[str, np.ndarray]:
    n_val = round(n * val_fraction)
    if n_val >= len(rest):
        raise ConfigError(f"data.val_fraction={val_fraction} leaves no training sample among {n} samples")
    return {"train": np.sort(rest[: len(rest) - n_val]), "val": np.sort(rest[len(rest) - n_val :]), "test": np.sort(test)}


def pdebench_split(n: int, test_last: bool, val_fraction: float, test_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """PDEBench's test rule (first 10% for ``.hdf5``, last 10% for ``.h5`` with ``test_last``)."""
    _check_fractions(n, val_fraction, test_fraction)
    ids = np.arange(n, dtype=np.int64)
    if test_last:
        start = int(n * (1 - test_fraction))
        return _three_way(n, ids[start:], ids[:start], val_fraction)
    n_test = int(n * test_fraction)
    return _three_way(n, ids[:n_test], ids[n_test:], val_fraction)


def random_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Seeded random split: ``round(N * test_fraction)`` test, ``round(N * val_fraction)`` val."""
    _check_fractions(n, val_fraction, test_fraction)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"data.split_seed must be an integer, got {seed!r}")
    order = np.random.default_rng(int(seed)).permutation(n).astype(np.int64)
    n_test = round(n * test_fraction)
    return _three_way(n, order[:n_test], order[n_test:], val_fraction)


def digest(ids: np.ndarray) -> str:
    """SHA-256 of the ids as little-endian int64 (hex)."""
    return hashlib.sha256(np.asarray(ids, dtype="<i8").tobytes()).hexdigest()


def manifest(policy: str, splits: dict[str, np.ndarray]) -> dict:
    """``{"policy": ..., "<split>": {"count", "sha256", "ids"}}`` for ``splits.json``."""
    return {"policy": policy, **{name: {"count": len(ids), "sha256": digest(ids), "ids": np.asarray(ids).tolist()} for name, ids in splits.items()}}
