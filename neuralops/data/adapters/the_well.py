"""The Well's HDF5 files read in place (our own code, written from the Well's format document).

Layout (details in ``docs/foreign_data.md``)::

    /                       attrs: dataset_name, grid_type, n_spatial_dims, n_trajectories,
                                   simulation_parameters (names) + one attribute per parameter
    /dimensions/            attr spatial_dims (axis names); time [T] (or [N, T]), <axis> [n]
    /boundary_conditions/<bc>/  attrs bc_type, associated_dims, associated_fields, ...
    /scalars/               attr field_names; one dataset per scalar
    /t0_fields/ /t1_fields/ /t2_fields/   attr field_names; datasets
                            [N, T, *space] (+ [D] for t1, + [D, D] for t2) with attrs
                            sample_varying, time_varying, dim_varying (one bool per axis);
                            an axis a field does not vary over is absent from its array.

Channels: a t0 field ``p`` is one channel ``p``; a t1 field ``v`` gives ``v_x, v_y`` (one per
spatial axis name); a t2 field ``E`` gives ``E_xx, E_xy, E_yx, E_yy``. Order: t0 fields, then t1,
then t2, each in ``field_names`` order. Time-varying fields make the state; fields with
``time_varying = False`` are static input channels (appended to every model input by the
tasks). Fields that do not vary over the sample or a spatial axis are broadcast. Scalars that
vary neither over samples nor time, the simulation parameters and the boundary conditions go to
``attrs``. Coordinates or times stored per sample are taken from sample 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import h5py
import numpy as np

from neuralops.data.schema import attr_value, format_error, open_h5
from neuralops.data.sources import TrajectorySource
from neuralops.data.views import ResolutionView
from neuralops.grid import Grid

FIELD_ORDERS = (0, 1, 2)


def _attr(path: str, node: h5py.HLObject, name: str) -> Any:
    if name not in node.attrs:
        raise format_error(path, f"{node.name}@{name}", "missing attribute")
    return attr_value(node.attrs[name])


def _names(path: str, node: h5py.HLObject, name: str) -> list[str]:
    value = _attr(path, node, name)
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise format_error(path, f"{node.name}@{name}", f"expected a list of names, found {value!r}")
    return value


@dataclass(frozen=True)
class WellField:
    """One stored field: ``key`` (``t1_fields/velocity``), tensor ``order``, channel names, and
    which axes its array has (``sample_varying``, ``time_varying``, ``dim_varying`` per axis)."""

    key: str
    order: int
    channels: tuple[str, ...]
    sample_varying: bool
    time_varying: bool
    dim_varying: tuple[bool, ...]


@dataclass(frozen=True)
class WellFile:
    """An inspected Well file (see :func:`inspect_well`).

    Attributes:
        path: the file.
        n_samples: trajectories (``n_trajectories``).
        test_last: ``None``: PDEBench's split rule does not apply to the Well.
        state_fields, static_fields: time-varying fields (the state) and time-constant ones.
        axes, stored_shape, coords: spatial axes, points per axis and coordinates.
        times: ``(T,)`` step times.
        attrs: dataset name, grid type, simulation parameters, constant scalars, boundary
            conditions (``{name: {"bc_type", "associated_dims", "associated_fields"}}``),
            ``boundary`` summary and ``format``.
    """

    path: str
    n_samples: int
    test_last: bool | None
    state_fields: tuple[WellField, ...]
    static_fields: tuple[WellField, ...]
    axes: tuple[str, ...]
    stored_shape: tuple[int, ...]
    coords: dict[str, np.ndarray] = field(repr=False)
    times: np.ndarray = field(repr=False)
    attrs: dict[str, Any] = field(repr=False)

    @cached_property
    def grid(self) -> Grid:
        """The stored grid: an axis is periodic when a boundary condition of ``bc_type``
        periodic names it; ``grid_type: spherical`` is a sphere; cell or vertex points as the
        coordinates show (:meth:`Grid.infer`)."""
        conditions = self.attrs["boundary_conditions"].values()
        periodic = [
            any(str(c.get("bc_type", "")).lower() == "periodic" and axis in _as_list(c.get("associated_dims")) for c in conditions)
            for axis in self.axes
        ]
        sphere = str(self.attrs.get("grid_type", "")).lower() == "spherical"
        return Grid.infer(self.coords, periodic, self.attrs["boundary"], sphere, where=f"{self.path}: key '/dimensions'")

    def open(self, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None) -> "WellSource":
        """The lazy reader of the trajectories at positions ``sample_ids``."""
        return WellSource(self, sample_ids, view, rdcc_nbytes)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _flag(path: str, node: h5py.Dataset, name: str) -> bool:
    value = _attr(path, node, name)
    if not isinstance(value, (bool, int)):
        raise format_error(path, f"{node.name}@{name}", f"expected a boolean, found {value!r}")
    return bool(value)


def _inspect_field(path: str, node: h5py.Dataset, order: int, axes: tuple[str, ...], n: int, n_times: int,
                   shape: tuple[int, ...]) -> WellField:
    sample_varying = _flag(path, node, "sample_varying")
    time_varying = _flag(path, node, "time_varying")
    dim_varying = _attr(path, node, "dim_varying")
    dim_varying = [dim_varying] * len(axes) if isinstance(dim_varying, (bool, int)) else dim_varying
    if not isinstance(dim_varying, list) or len(dim_varying) != len(axes):
        raise format_error(path, f"{node.name}@dim_varying", f"expected one boolean per spatial axis {list(axes)}, found {dim_varying!r}")
    dim_varying = tuple(bool(v) for v in dim_varying)
    expected = (
        *((n,) if sample_varying else ()),
        *((n_times,) if time_varying else ()),
        *(m for m, varies in zip(shape, dim_varying) if varies),
        *((len(axes),) * order),
    )
    if node.shape != expected:
        raise format_error(path, node.name, f"expected shape {expected} from its sample/time/dim_varying attributes, found {node.shape}")
    name = node.name.rsplit("/", 1)[-1]
    components = [""]
    for _ in range(order):
        components = [c + a for c in components for a in axes]
    channels = tuple(name if order == 0 else f"{name}_{c}" for c in components)
    return WellField(node.name, order, channels, sample_varying, time_varying, dim_varying)


def _dimension(path: str, group: h5py.Group, name: str) -> np.ndarray:
    node = group.get(name)
    if not isinstance(node, h5py.Dataset) or node.ndim not in (1, 2):
        found = node.shape if isinstance(node, h5py.Dataset) else "nothing"
        raise format_error(path, f"/dimensions/{name}", f"expected a coordinate array [n] (or [N, n] when sample-varying), found {found}")
    values = node[0] if node.ndim == 2 else node[()]
    return np.asarray(values, dtype=np.float64)


def _boundary_conditions(path: str, h5: h5py.File) -> dict[str, dict[str, Any]]:
    group = h5.get("boundary_conditions")
    if not isinstance(group, h5py.Group):
        return {}
    return {
        name: {key: attr_value(bc.attrs[key]) for key in ("bc_type", "associated_dims", "associated_fields") if key in bc.attrs}
        for name, bc in group.items()
        if isinstance(bc, h5py.Group)
    }


def _summary_boundary(conditions: dict[str, dict[str, Any]]) -> str:
    kinds = {str(c.get("bc_type", "")).lower() for c in conditions.values()}
    if not kinds:
        return "unknown"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _constant_scalars(path: str, h5: h5py.File) -> dict[str, Any]:
    group = h5.get("scalars")
    if not isinstance(group, h5py.Group):
        return {}
    out = {}
    for name in _names(path, group, "field_names") if "field_names" in group.attrs else []:
        node = group.get(name)
        if isinstance(node, h5py.Dataset) and node.size == 1:
            out[f"scalar.{name}"] = attr_value(node[()].reshape(-1)[0])
    return out


def inspect_well(path: str | os.PathLike) -> WellFile:
    """Check a Well file's layout and read its metadata (no field arrays).

    Raises :class:`DataFormatError` naming the file and key for a missing or unreadable file,
    missing groups or attributes, or arrays whose shapes contradict their varying flags.
    """
    path = os.fspath(path)
    with open_h5(path) as h5:
        dims = h5.get("dimensions")
        if not isinstance(dims, h5py.Group):
            raise format_error(path, "/dimensions", "missing; not a Well file (expected dimensions/, t0_fields/, t1_fields/ ...)")
        axes = tuple(_names(path, dims, "spatial_dims"))
        n_dims = _attr(path, h5, "n_spatial_dims")
        if n_dims != len(axes):
            raise format_error(path, "/@n_spatial_dims", f"is {n_dims} but dimensions@spatial_dims names {list(axes)}")
        n = _attr(path, h5, "n_trajectories")
        coords = {a: _dimension(path, dims, a) for a in axes}
        shape = tuple(len(coords[a]) for a in axes)
        times = _dimension(path, dims, "time")
        state, static = [], []
        for order in FIELD_ORDERS:
            group = h5.get(f"t{order}_fields")
            if not isinstance(group, h5py.Group):
                continue
            for name in _names(path, group, "field_names"):
                node = group.get(name)
                if not isinstance(node, h5py.Dataset):
                    raise format_error(path, f"/t{order}_fields/{name}", "listed in field_names but missing")
                spec = _inspect_field(path, node, order, axes, n, len(times), shape)
                (state if spec.time_varying else static).append(spec)
        if not state:
            raise format_error(path, "/t0_fields", "no time-varying field in t0_fields, t1_fields or t2_fields")
        conditions = _boundary_conditions(path, h5)
        parameters = _names(path, h5, "simulation_parameters") if "simulation_parameters" in h5.attrs else []
        attrs = {
            "name": str(attr_value(h5.attrs.get("dataset_name", os.path.splitext(os.path.basename(path))[0]))),
            "grid_type": attr_value(h5.attrs.get("grid_type", "cartesian")),
            "format": "the_well",
            "boundary": _summary_boundary(conditions),
            "boundary_conditions": conditions,
            **{f"param.{p}": attr_value(h5.attrs[p]) for p in parameters if p in h5.attrs},
            **_constant_scalars(path, h5),
        }
    return WellFile(path, int(n), None, tuple(state), tuple(static), axes, shape, coords, times, attrs)


class WellSource(TrajectorySource):
    """Trajectories of a Well file: ``read_steps(i, steps)`` reads trajectory ``sample_ids[i]``
    of every time-varying field at ``steps`` as ``(n_steps, C, *grid)``; ``read_static(i)`` the
    time-constant fields as ``(S, *grid)``."""

    def __init__(self, info: WellFile, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None):
        self._init_handle(info.path, rdcc_nbytes)
        self._describe(info.attrs["name"], info.grid, info.coords, info.attrs, sample_ids, view)
        self._info = info
        self.channels = [c for f in info.state_fields for c in f.channels]
        self.static_channels = [c for f in info.static_fields for c in f.channels]
        self.times = info.times

    def _read_field(self, spec: WellField, row: int, steps: slice | None) -> np.ndarray:
        """``spec`` for one sample as ``(n_steps, n_components, *grid)`` (``steps=None``: static,
        ``(n_components, *grid)``), broadcast over the axes it does not vary on."""
        space = self._space()
        selection = (
            *((row,) if spec.sample_varying else ()),
            *((steps,) if spec.time_varying else ()),
            *(s for s, varies in zip(space, spec.dim_varying) if varies),
            *((slice(None),) * spec.order),
        )
        values = np.asarray(self._handle()[spec.key][selection])
        lead = 1 if spec.time_varying else 0
        read_shape = tuple(len(range(*s.indices(n))) for s, n in zip(space, self.stored_shape))
        for axis, varies in enumerate(spec.dim_varying):
            if not varies:
                values = np.expand_dims(values, lead + axis)
        values = np.broadcast_to(values, values.shape[:lead] + read_shape + values.shape[lead + self.n_dims :])
        components = int(np.prod(values.shape[lead + self.n_dims :], dtype=np.int64))
        values = values.reshape(*values.shape[: lead + self.n_dims], components)
        return np.moveaxis(values, -1, lead)

    def _read_steps(self, i: int, steps: slice) -> tuple[str, np.ndarray]:
        row = int(self.sample_ids[i])
        fields = self._info.state_fields
        return ", ".join(f.key for f in fields), np.concatenate([self._read_field(f, row, steps) for f in fields], axis=1)

    def _read_static(self, i: int) -> tuple[str, np.ndarray]:
        fields = self._info.static_fields
        if not fields:
            return super()._read_static(i)
        row = int(self.sample_ids[i])
        return ", ".join(f.key for f in fields), np.concatenate([self._read_field(f, row, None) for f in fields], axis=0)
