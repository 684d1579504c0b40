"""The :class:`Grid`: where the samples of a field sit, read once from the file and carried to the
model, the resampler and the metrics.

A grid is a tensor product of axes. Each :class:`GridAxis` has a *kind*, which fixes where its
``n`` points sit in the physical interval ``[start, start + length]``:

============== =========================================== ============ ======================
kind           points ``x_j``, ``j = 0 … n-1``              intervals    quadrature weights
============== =========================================== ============ ======================
vertex         ``start + j·L/(n-1)`` (both ends included)   ``n - 1``    trapezoid (h/2 at ends)
cell           ``start + (j + 1/2)·L/n`` (cell centres)     ``n``        midpoint (h each)
periodic       ``start + j·L/n`` (right end = left end)     ``n``        h each (exact for
                                                                         band-limited fields)
equiangular    colatitude ``π j/(n-1)``, poles included     ``n - 1``    Clenshaw–Curtis for
                                                                         ``∫ f sin θ dθ``
legendre_gauss colatitude ``arccos`` of Gauss–Legendre      ``n``        Gauss–Legendre for
               nodes (no poles)                                          ``∫ f sin θ dθ``
============== =========================================== ============ ======================

``L`` is ``length`` and ``h = L / intervals``. The two colatitude kinds are the first axis of a
sphere grid whose second axis (longitude) is ``periodic`` with length ``2π``; their weights
include ``sin θ``, so the product of a sphere grid's axis weights is the area element of the
unit sphere (total ``4π``). Sphere nodes and weights come from torch-harmonics
(``torch_harmonics.quadrature.precompute_latitudes``), the transform the SFNO uses.

*Intervals* is the number of spacings that span the domain. It sets the period a Fourier layer
sees: ``m`` points of spacing ``h`` are one period ``m·h``, so a vertex grid of ``n`` points
is a period of ``L`` after dropping its last point, and padding a grid to
``round((1 + f)·intervals)`` points gives the period ``(1 + f)·L`` at every resolution
(:class:`neuralops.layers.grid.DomainPadding`).

Models see only *unit coordinates* ``(x - start) / L`` and the axis kinds; metrics see the
physical spacings and weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from neuralops.errors import ConfigError

AXIS_KINDS = ("vertex", "cell", "periodic", "equiangular", "legendre_gauss")
"""Point placements of one axis (see the module docstring)."""
COLATITUDE_KINDS = ("equiangular", "legendre_gauss")
UNIFORM_KINDS = ("vertex", "cell", "periodic", "equiangular")
"""Kinds whose points are equally spaced (a Fourier layer or finite differences apply)."""
BOUNDARIES = ("dirichlet", "neumann", "periodic", "mixed", "wall", "open", "none", "unknown")
"""Boundary types (the file schema's ``boundary`` attribute too): ``none`` is a closed manifold
(the sphere), ``unknown`` a foreign file that does not say."""


def check_axis_kind(kind: str, option: str = "grid") -> str:
    """Return ``kind`` if it is one of :data:`AXIS_KINDS`; :class:`ConfigError` naming ``option`` otherwise."""
    if kind not in AXIS_KINDS:
        raise ConfigError(f"{option}={kind!r} is not a grid kind; expected one of {list(AXIS_KINDS)}")
    return kind


def intervals(n: int, kind: str) -> int:
    """Spacings spanning the domain of an axis of ``n`` points: ``n - 1`` for vertex and
    equiangular axes (both ends are points), ``n`` otherwise."""
    return n - 1 if kind in ("vertex", "equiangular") else n


@lru_cache(maxsize=128)
def _colatitudes(n: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    from torch_harmonics.quadrature import precompute_latitudes

    theta, weights = precompute_latitudes(n, grid="equiangular" if kind == "equiangular" else "legendre-gauss")
    return theta.double().numpy(), weights.double().numpy()


def unit_coordinates(n: int, kind: str) -> np.ndarray:
    """Float64 ``(n,)``: the points of an axis of ``kind`` on the unit domain ``[0, 1]``
    (``θ/π`` for colatitudes)."""
    check_axis_kind(kind)
    j = np.arange(n, dtype=np.float64)
    if kind in COLATITUDE_KINDS:
        return _colatitudes(n, kind)[0] / math.pi
    if kind == "cell":
        return (j + 0.5) / n
    return j / max(intervals(n, kind), 1)


def unit_weights(n: int, kind: str) -> np.ndarray:
    """Float64 ``(n,)`` quadrature weights of the unit domain (summing to 1; colatitudes:
    ``∫ f sin θ dθ / 2``)."""
    check_axis_kind(kind)
    if kind in COLATITUDE_KINDS:
        return _colatitudes(n, kind)[1] / 2.0
    if kind == "vertex":
        if n == 1:
            return np.ones(1)
        w = np.full(n, 1.0 / (n - 1))
        w[[0, -1]] *= 0.5
        return w
    return np.full(n, 1.0 / n)


@dataclass(frozen=True)
class GridAxis:
    """One axis of a :class:`Grid`.

    Attributes:
        name: axis name, e.g. ``"x"`` or ``"lat"``.
        kind: point placement, one of :data:`AXIS_KINDS`.
        size: number of points.
        start: physical start of the domain (file units; ``0`` for colatitudes, in rad).
        length: physical length ``L > 0`` of the domain (``π`` for colatitudes).
        boundary: boundary type at the ends, one of :data:`BOUNDARIES`.
    """

    name: str
    kind: str
    size: int
    start: float = 0.0
    length: float = 1.0
    boundary: str = "none"

    def __post_init__(self) -> None:
        check_axis_kind(self.kind, f"grid axis {self.name!r} kind")
        if self.boundary not in BOUNDARIES:
            raise ConfigError(f"grid axis {self.name!r}: boundary {self.boundary!r} is not one of {list(BOUNDARIES)}")
        if isinstance(self.size, bool) or int(self.size) != self.size or self.size < 1:
            raise ConfigError(f"grid axis {self.name!r}: size must be a positive integer, got {self.size!r}")
        if not (math.isfinite(self.length) and self.length > 0 and math.isfinite(self.start)):
            raise ConfigError(f"grid axis {self.name!r}: needs a finite start and a length > 0, got {self.start}, {self.length}")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "start", float(self.start))
        object.__setattr__(self, "length", float(self.length))

    @property
    def periodic(self) -> bool:
        """Whether the field is periodic along this axis."""
        return self.kind == "periodic"

    @property
    def uniform(self) -> bool:
        return self.kind in UNIFORM_KINDS

    @property
    def intervals(self) -> int:
        return intervals(self.size, self.kind)

    @property
    def spacing(self) -> float:
        """Physical distance ``h = L / intervals`` between neighbours (uniform kinds; for
        ``legendre_gauss`` the mean spacing)."""
        return self.length / max(self.intervals, 1)

    @property
    def unit_coords(self) -> np.ndarray:
        """Float64 ``(size,)``: the points on ``[0, 1]`` (see :func:`unit_coordinates`)."""
        return unit_coordinates(self.size, self.kind)

    @property
    def coords(self) -> np.ndarray:
        """Float64 ``(size,)``: the physical points."""
        return self.start + self.length * self.unit_coords

    @property
    def weights(self) -> np.ndarray:
        """Float64 ``(size,)`` quadrature weights in physical units (sum ``length``; for
        colatitudes the weights of ``∫ f sin θ dθ``, sum 2)."""
        if self.kind in COLATITUDE_KINDS:
            return _colatitudes(self.size, self.kind)[1].copy()
        return self.length * unit_weights(self.size, self.kind)

    def resized(self, size: int) -> "GridAxis":
        """The same domain sampled with ``size`` points of the same kind."""
        return GridAxis(self.name, self.kind, size, self.start, self.length, self.boundary)

    @classmethod
    def from_coords(cls, name: str, kind: str, coords: Sequence[float] | np.ndarray, boundary: str = "none", where: str = "") -> "GridAxis":
        """The axis whose points of ``kind`` are ``coords`` (physical, ascending).

        Raises :class:`~neuralops.errors.DataFormatError` naming ``where`` when ``coords`` are
        not the equally spaced points of a uniform kind (relative tolerance 1e-3 of the spacing).
        """
        from neuralops.errors import DataFormatError

        check_axis_kind(kind, f"grid axis {name!r} kind")
        c = np.asarray(coords, dtype=np.float64).reshape(-1)
        n = len(c)
        if kind in COLATITUDE_KINDS:
            return cls(name, kind, n, 0.0, math.pi, boundary)
        if n < 2:
            return cls(name, kind, n, float(c[0]) if n else 0.0, 1.0, boundary)
        steps = np.diff(c)
        h = (c[-1] - c[0]) / (n - 1)
        if not (h > 0 and np.allclose(steps, h, rtol=0, atol=1e-3 * h)):
            raise DataFormatError(
                f"{where or 'coordinates'}: axis {name!r} ({kind}) needs equally spaced ascending coordinates; "
                f"spacings range over [{steps.min():.6g}, {steps.max():.6g}]"
            )
        if kind == "vertex":
            return cls(name, kind, n, float(c[0]), float(c[-1] - c[0]), boundary)
        if kind == "cell":
            return cls(name, kind, n, float(c[0] - h / 2), float(n * h), boundary)
        return cls(name, kind, n, float(c[0]), float(n * h), boundary)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "size": self.size, "start": self.start, "length": self.length, "boundary": self.boundary}

    def __str__(self) -> str:
        end = self.start + self.length
        return f"{self.name}: {self.size} {self.kind} points on [{self.start:.4g}, {end:.4g}] ({self.boundary})"


class Grid:
    """A tensor-product grid of 1 to 3 axes, in array order (``a[i, j]`` sits at ``(x[i], y[j])``).

    Built by every data reader from the file (our schema's ``grid`` and ``boundary`` attributes
    and coordinates, PDEBench's coordinates, the Well's ``grid_type``, dimensions and boundary
    conditions) and carried by the dataset as ``dataset.grid``.

    Args:
        axes: one :class:`GridAxis` per spatial axis.

    Raises:
        ConfigError: no axes, duplicate names, or a colatitude axis that is not the first of
            two (the sphere is ``(colatitude, periodic longitude)``).
    """

    def __init__(self, axes: Sequence[GridAxis]):
        self.axes = tuple(axes)
        if not self.axes:
            raise ConfigError("a Grid needs at least one axis")
        names = [a.name for a in self.axes]
        if len(set(names)) != len(names):
            raise ConfigError(f"grid axis names must be distinct, got {names}")
        for i, axis in enumerate(self.axes):
            if axis.kind in COLATITUDE_KINDS and not (i == 0 and len(self.axes) == 2 and self.axes[1].periodic):
                raise ConfigError(
                    f"grid axis {axis.name!r}: a {axis.kind} colatitude axis must be the first of two, "
                    "followed by a periodic longitude axis"
                )

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def uniform(cls, shape: Sequence[int], kind: str | Sequence[str] = "vertex", length: float | Sequence[float] = 1.0,
                boundary: str = "none", names: Sequence[str] | None = None) -> "Grid":
        """A grid of ``shape`` points with one kind (or one per axis) on ``[0, length]`` per
        axis (a sphere for ``kind="equiangular"`` or ``"legendre_gauss"`` on a 2-D shape)."""
        shape = tuple(int(n) for n in shape)
        kinds = expand_kinds(kind, len(shape))
        lengths = [float(length)] * len(shape) if isinstance(length, (int, float)) else [float(v) for v in length]
        if kinds[0] in COLATITUDE_KINDS:
            lengths = [math.pi, 2 * math.pi]
        names = list(names) if names is not None else ["x", "y", "z"][: len(shape)]
        if len(names) != len(shape) or len(lengths) != len(shape):
            raise ConfigError(f"Grid.uniform: shape {shape}, names {names} and lengths {lengths} disagree in length")
        return cls([GridAxis(n_, k, s, 0.0, l_, boundary) for n_, k, s, l_ in zip(names, kinds, shape, lengths)])

    @classmethod
    def from_file_attrs(cls, axes: Sequence[str], coords: Mapping[str, np.ndarray], grid: str, boundary: str, where: str = "") -> "Grid":
        """The grid of a neuralops file: root attributes ``grid`` (one of the schema's grid
        types) and ``boundary``, and the coordinates of each axis (physical units)."""
        kinds = expand_kinds(grid, len(axes))
        return cls([GridAxis.from_coords(name, kind, coords[name], boundary, where) for name, kind in zip(axes, kinds)])

    @classmethod
    def infer(cls, coords: Mapping[str, np.ndarray], periodic: Sequence[bool], boundary: str, sphere: bool = False, where: str = "") -> "Grid":
        """The grid of a foreign file that states coordinates and which axes are periodic, but
        not where its points sit in the cells.

        A periodic axis is ``periodic``. Otherwise the points are read as vertices (domain
        ``[x_0, x_{n-1}]``) or as cell centres (domain ``[x_0 - h/2, x_{n-1} + h/2]``), whichever
        gives the domain whose ends need fewer decimal digits (``linspace(-1, 1, n)`` is
        vertex, ``(j + 1/2)/n`` is cell); a tie is vertex. On a sphere (``sphere=True``, axes
        colatitude then longitude) the first axis is ``equiangular`` when it holds both poles and
        ``legendre_gauss`` otherwise.
        """
        names = list(coords)
        axes = []
        for i, (name, flag) in enumerate(zip(names, periodic)):
            c = np.asarray(coords[name], dtype=np.float64).reshape(-1)
            if sphere and i == 0:
                poles = len(c) > 1 and abs(min(c[0], c[-1])) < 1e-6 and abs(max(c[0], c[-1]) - math.pi) < 1e-6
                kind = "equiangular" if poles else "legendre_gauss"
            elif flag or (sphere and i == 1):
                kind = "periodic"
            else:
                h = (c[-1] - c[0]) / max(len(c) - 1, 1)
                as_cell = _decimals(c[0] - h / 2, c[-1] + h / 2, h)
                kind = "cell" if h > 0 and as_cell < _decimals(c[0], c[-1], h) else "vertex"
            axes.append(GridAxis.from_coords(name, kind, c, boundary, where))
        return cls(axes)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> "Grid":
        """Inverse of :meth:`to_dict`."""
        try:
            return cls([GridAxis(**axis) for axis in spec["axes"]])
        except (KeyError, TypeError) as err:
            raise ConfigError(f"not a grid description: {dict(spec)!r} ({err})") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON description (``{"axes": [{name, kind, size, start, length, boundary}, ...]}``)."""
        return {"axes": [a.to_dict() for a in self.axes]}

    # -- properties -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def n_dims(self) -> int:
        return len(self.axes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(a.kind for a in self.axes)

    @property
    def is_sphere(self) -> bool:
        return self.axes[0].kind in COLATITUDE_KINDS

    @property
    def periodic(self) -> bool:
        """Whether every axis is periodic."""
        return all(a.periodic for a in self.axes)

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Physical coordinates per axis name, float64 ``(size,)`` each."""
        return {a.name: a.coords for a in self.axes}

    @property
    def lengths(self) -> tuple[float, ...]:
        return tuple(a.length for a in self.axes)

    def weights(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None, normalized: bool = True) -> torch.Tensor:
        """Quadrature weights ``(*shape)``: the outer product of the axis weights.

        ``normalized=True`` divides by their sum, so ``(w * f).sum()`` is the mean of ``f`` over
        the domain (area-weighted on the sphere); otherwise ``(w * f).sum()`` is the integral
        in physical units (on the sphere: over the unit sphere, total ``4π``).
        """
        w = self.axes[0].weights
        for axis in self.axes[1:]:
            w = np.multiply.outer(w, axis.weights)
        if normalized:
            w = w / w.sum()
        return torch.as_tensor(w, dtype=dtype, device=device)

    def resized(self, shape: Sequence[int] | int) -> "Grid":
        """The same domain sampled with ``shape`` points (an int: on every axis)."""
        shape = (int(shape),) * self.n_dims if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
        if len(shape) != self.n_dims:
            raise ConfigError(f"grid of {self.n_dims} axes {self.names} cannot be resized to {shape}")
        return Grid([a.resized(n) for a, n in zip(self.axes, shape)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grid) and self.axes == other.axes

    def __hash__(self) -> int:
        return hash(self.axes)

    def __repr__(self) -> str:
        return "Grid(" + "; ".join(str(a) for a in self.axes) + ")"


def _decimals(start: float, end: float, spacing: float) -> int:
    """Decimal digits needed to write both ends of a domain to within 1e-4 of its spacing (at
    most 9): how "round" a candidate domain is, for :meth:`Grid.infer`."""
    tolerance = 1e-4 * abs(spacing) if spacing else 1e-12
    for digits in range(10):
        if all(abs(v - round(v, digits)) <= tolerance for v in (start, end)):
            return digits
    return 9


def expand_kinds(kind: str | Sequence[str], n_dims: int, option: str = "grid") -> tuple[str, ...]:
    """Per-axis kinds from one kind or a list: ``"vertex"`` → ``("vertex",)*n_dims``; a sphere
    kind (``equiangular``/``legendre_gauss``) on 2 axes → ``(kind, "periodic")``.

    Raises :class:`ConfigError` naming ``option`` for an unknown kind or a list of the wrong length.
    """
    if isinstance(kind, str):
        check_axis_kind(kind, option)
        if kind in COLATITUDE_KINDS:
            if n_dims != 2:
                raise ConfigError(f"{option}={kind!r} is a sphere grid (colatitude, longitude) and needs 2 axes, got {n_dims}")
            return (kind, "periodic")
        return (kind,) * n_dims
    kinds = tuple(kind)
    if len(kinds) != n_dims:
        raise ConfigError(f"{option}={list(kinds)} gives {len(kinds)} kinds for {n_dims} axes")
    for k in kinds:
        check_axis_kind(k, option)
    return kinds
