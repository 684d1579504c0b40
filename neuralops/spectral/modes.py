"""Which Fourier coefficients a spectral layer keeps: the mode convention, stated once.

Convention
----------
``n_modes = (m_1, ..., m_d)`` counts **non-negative frequencies per axis** (the convention of
Li et al.'s FNO paper, not neuraloperator's "total count, centred" one):

* along every axis but the last, a layer keeps the integer frequencies
  ``k ∈ {0, 1, ..., m-1} ∪ {-m, ..., -1}`` — ``2m`` frequencies;
* along the last axis (the real-FFT axis) it keeps ``k ∈ {0, ..., m-1}`` — ``m`` frequencies.

A 2-D layer with ``n_modes=(m1, m2)`` therefore holds ``2·m1·m2`` complex weights per channel
pair. neuraloperator's ``n_modes=(M1, M2)`` (``M1`` centred rows, ``M2//2+1`` columns) holds the
same number of coefficients as ours with ``n_modes=(M1//2, M2//2+1)``.

Frequencies are those of the unit-period Fourier series: frequency ``k`` on an axis of ``N``
points is ``exp(2πi·k·n/N)``.

Resolution
----------
A grid of ``N`` points represents frequencies ``|k| < N/2`` unambiguously. The Nyquist
coefficient of an even grid (``k = N/2``) is the sum of ``+N/2`` and ``-N/2`` and cannot be
moved to another grid, so it is never used. A layer applied to a grid keeps the requested
frequencies that the grid represents: all of them on a fine grid, fewer on a coarse one. When
the output grid differs from the input grid, only frequencies representable on **both** grids
are kept, so ``output_shape`` yields the band-limited interpolation of the same function.

Mode axes of other transforms
-----------------------------
Every coefficient axis of a weight has a *kind*:

* ``"signed"`` (:data:`SIGNED`): frequencies ``0..m-1`` then ``-m..-1`` — ``2m`` entries
  (Fourier axes but the last);
* ``"nonneg"`` (:data:`NONNEG`): indices ``0..m-1`` — ``m`` entries (the real-FFT axis, every
  DCT axis, the SHT degree ``l`` and order ``m``);
* ``"shared"`` (:data:`SHARED`): the weight does not depend on this coefficient index and the
  axis is absent from the weight (the SHT order ``m`` of a per-degree, rotation-equivariant
  weight).

The Fourier layout above is ``("signed", ..., "signed", "nonneg")``. A transform other than the
FFT states its own layout and selection rule (e.g. the DCT keeps the low corner
``k_j < min(m_j, N_j)`` on every axis, :func:`corner_kept_modes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neuralops.errors import ConfigError

SIGNED = "signed"
NONNEG = "nonneg"
SHARED = "shared"
MODE_AXIS_KINDS = (SIGNED, NONNEG, SHARED)


@dataclass(frozen=True)
class AxisModes:
    """Frequencies kept along one axis: ``0..n_pos-1`` and ``-n_neg..-1``."""

    n_pos: int
    n_neg: int

    @property
    def count(self) -> int:
        return self.n_pos + self.n_neg


def normalize_n_modes(n_modes: int | Sequence[int], n_dims: int | None = None) -> tuple[int, ...]:
    """Return ``n_modes`` as a tuple of positive ints (an int means the same for every axis)."""
    if isinstance(n_modes, int):
        if n_dims is None:
            raise ConfigError("n_modes given as a single int needs the number of dimensions; pass a list, e.g. [12, 12]")
        n_modes = (n_modes,) * n_dims
    modes = tuple(int(m) for m in n_modes)
    if not modes:
        raise ConfigError(f"n_modes must be a non-empty list of positive ints, got {n_modes!r}")
    if any(m < 1 for m in modes):
        raise ConfigError(f"n_modes must be positive along every axis, got {list(modes)}")
    if n_dims is not None and len(modes) != n_dims:
        raise ConfigError(f"n_modes {list(modes)} has {len(modes)} entries, expected {n_dims}")
    return modes


def fourier_mode_axes(n_dims: int) -> tuple[str, ...]:
    """The Fourier layout: every axis ``"signed"`` but the last, which is ``"nonneg"``."""
    return (SIGNED,) * (n_dims - 1) + (NONNEG,)


def check_mode_axes(mode_axes: Sequence[str] | None, n_dims: int) -> tuple[str, ...]:
    """Validate a per-axis layout (``None`` means the Fourier layout) and return it as a tuple."""
    if mode_axes is None:
        return fourier_mode_axes(n_dims)
    axes = tuple(str(kind) for kind in mode_axes)
    if len(axes) != n_dims or any(kind not in MODE_AXIS_KINDS for kind in axes):
        raise ConfigError(f"mode_axes must list {n_dims} of {MODE_AXIS_KINDS}, got {list(mode_axes)}")
    if all(kind == SHARED for kind in axes):
        raise ConfigError(f"mode_axes {list(axes)}: a weight must depend on at least one coefficient axis")
    return axes


def mode_axis_size(m: int, kind: str) -> int:
    """Entries a weight holds along an axis of kind ``kind`` for ``m`` modes (0 for shared axes)."""
    return {SIGNED: 2 * m, NONNEG: m, SHARED: 0}[kind]


def weight_mode_shape(n_modes: Sequence[int], mode_axes: Sequence[str] | None = None) -> tuple[int, ...]:
    """Shape of the mode axes of a full weight; Fourier layout: ``(2·m_1, ..., 2·m_{d-1}, m_d)``.

    Shared axes are left out (the weight does not have them).
    """
    axes = check_mode_axes(mode_axes, len(n_modes))
    return tuple(mode_axis_size(m, kind) for m, kind in zip(n_modes, axes) if kind != SHARED)


def kept_modes(
    n_modes: Sequence[int], grid_in: Sequence[int], grid_out: Sequence[int] | None = None
) -> tuple[AxisModes, ...]:
    """Frequencies kept for an input grid ``grid_in`` and an output grid ``grid_out``.

    See the module docstring for the convention. Along each axis the usable grid size is
    ``N = min(N_in, N_out)``; positive frequencies ``k < N/2`` and negative ``|k| < N/2``.
    """
    grid_out = grid_in if grid_out is None else grid_out
    if not (len(n_modes) == len(grid_in) == len(grid_out)):
        raise ConfigError(
            f"n_modes {list(n_modes)}, input grid {list(grid_in)} and output grid {list(grid_out)} "
            "must have the same number of axes"
        )
    last = len(n_modes) - 1
    axes = []
    for axis, (m, n_in, n_out) in enumerate(zip(n_modes, grid_in, grid_out)):
        n = min(int(n_in), int(n_out))
        n_pos = min(m, (n + 1) // 2)
        n_neg = 0 if axis == last else min(m, (n - 1) // 2)
        axes.append(AxisModes(n_pos, n_neg))
    return tuple(axes)


def corner_kept_modes(
    n_modes: Sequence[int], grid_in: Sequence[int], grid_out: Sequence[int] | None = None
) -> tuple[AxisModes, ...]:
    """The low corner ``k_j < min(m_j, N_in_j, N_out_j)`` on every axis (DCT coefficients).

    A cosine series on ``N`` points represents indices ``0..N-1`` unambiguously (there is no
    Nyquist ambiguity), so every one of them may be kept.
    """
    grid_out = grid_in if grid_out is None else grid_out
    if not (len(n_modes) == len(grid_in) == len(grid_out)):
        raise ConfigError(
            f"n_modes {list(n_modes)}, input grid {list(grid_in)} and output grid {list(grid_out)} "
            "must have the same number of axes"
        )
    return tuple(AxisModes(min(int(m), int(a), int(b)), 0) for m, a, b in zip(n_modes, grid_in, grid_out))


def is_full(modes: Sequence[AxisModes], n_modes: Sequence[int], mode_axes: Sequence[str] | None = None) -> bool:
    """True when ``modes`` selects every coefficient of a weight with ``n_modes`` and layout ``mode_axes``."""
    axes = check_mode_axes(mode_axes, len(n_modes))
    return all(
        kind == SHARED or (a.n_pos == m and a.n_neg == (m if kind == SIGNED else 0))
        for a, m, kind in zip(modes, n_modes, axes)
    )
