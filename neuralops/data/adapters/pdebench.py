"""PDEBench files read in place (written from the layout specification, not from PDEBench code).

Three layouts (details and quirks in ``docs/foreign_data.md``):

* ``.hdf5`` whole-dataset arrays, trajectories ``[N, T, *space]``: one field ``tensor``
  (advection, Burgers, 1-D diffusion-reaction) or the CFD fields ``density``, ``pressure``,
  ``Vx``, ``Vy``, ``Vz`` stacked as channels in that order. Coordinates from
  ``x-/y-/z-coordinate``; times from ``t-coordinate``, which PDEBench stores with **T+1**
  entries: T is taken from the arrays and the first T entries are the step times.
* ``.hdf5`` Darcy: ``nu [N, *space]`` (coefficient) and ``tensor [N, 1, *space]`` (solution):
  an input→output pair ``nu → tensor`` (the stray ``t-coordinate`` is ignored).
* ``.h5`` one group per sample (``"0000"`` …, sorted by name): ``data [T, *space, C]`` and
  ``grid/x`` (``y``, ``z``, ``t``). PDEBench's 2-D generator writes ``(t, y, x)``, so a 2-D
  ``data`` array is read with axes ``("y", "x")`` (3-D: ``("z", "y", "x")``) unless only the
  other order matches the ``grid/*`` lengths. The group attribute ``config`` (a YAML string) of
  the first sample is parsed into ``attrs`` (scalar leaves, keys ``config.<path>``).
* ``.h5`` incompressible Navier-Stokes shards (``ns_incom_inhom_2d_512-<k>.h5``, a few
  trajectories each): ``velocity [B, T, X, Y, 2]`` and ``particles [B, T, X, Y, 1]`` stacked as
  the state ``velocity_x, velocity_y, particles``; ``force [B, X, Y, 2]`` as the static channels
  ``force_x, force_y``; ``t [B, T]``, of which row 0 gives the times. The files store no
  coordinates: the grid is taken as the cell centres of the domain ``config.domain_size`` of the
  root attribute ``config`` (``[1, 1]`` when absent, the value of PDEBench's generator config
  ``data_gen/configs/ns_incomp.yaml``). A folder of these shards is read as one dataset
  (:mod:`neuralops.data.adapters.folders`).

Channel names are the dataset names (``tensor``, ``density`` …, ``nu``); the ``.h5`` ``data``
channels have no names in the file and are named from the known file families
(:data:`H5_CHANNELS`) or ``data[c]``. Every read selects one sample (a window of its steps):
PDEBench's own loader instead loads the whole array into memory before subsampling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import h5py
import numpy as np
import yaml

from neuralops.data.schema import attr_value, format_error, open_h5
from neuralops.data.sources import PairSource, TrajectorySource
from neuralops.data.views import ResolutionView
from neuralops.grid import Grid

CFD_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")
"""Stacking order of the compressible-NS fields (PDEBench's channel order)."""
AXES = ("x", "y", "z")
H5_CHANNELS = {"2D_diff-react": ("u", "v"), "2D_rdb": ("h",), "1D_diff-sorp": ("u",)}
"""Channel names of the per-sample ``.h5`` families, by file-name prefix (the files name none)."""
PERIODIC_FAMILIES = ("1D_Advection", "1D_Burgers", "ReacDiff")
"""File-name prefixes of periodic data (the ``_periodic`` CFD files are recognised by name too)."""


def _plain_attrs(node: h5py.HLObject) -> dict[str, Any]:
    return {key: attr_value(value) for key, value in node.attrs.items()}


def _boundary(stem: str) -> str:
    if stem.startswith(PERIODIC_FAMILIES) or "_periodic" in stem:
        return "periodic"
    return "unknown"


def _coordinate(path: str, h5: h5py.File, key: str, n: int) -> np.ndarray:
    node = h5.get(key)
    if not isinstance(node, h5py.Dataset) or node.ndim != 1 or len(node) != n:
        found = f"shape {node.shape}" if isinstance(node, h5py.Dataset) else "nothing"
        raise format_error(path, key, f"expected a 1-D coordinate array of length {n}, found {found}")
    return node[()].astype(np.float64)


def _times(path: str, h5: h5py.File | h5py.Group, key: str, n_times: int) -> np.ndarray:
    """The first ``n_times`` entries of ``key`` (PDEBench stores T or T+1 of them)."""
    node = h5.get(key)
    if not isinstance(node, h5py.Dataset) or node.ndim != 1 or len(node) < n_times:
        found = f"shape {node.shape}" if isinstance(node, h5py.Dataset) else "nothing"
        raise format_error(path, key if h5.name == "/" else f"{h5.name}/{key}", f"expected a 1-D time array with at least {n_times} entries (T or T+1), found {found}")
    return node[:n_times].astype(np.float64)


def _config_tree(text: str) -> dict[str, Any] | None:
    """A YAML ``config`` attribute as a mapping; ``None`` if it is not one."""
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return tree if isinstance(tree, dict) else None


def _flatten_config(text: str) -> dict[str, Any]:
    """Scalar leaves of a YAML mapping as ``{"config.a.b": value}``; the raw text if not a mapping."""
    tree = _config_tree(text)
    if tree is None:
        return {"config": text}
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}", value)
        elif isinstance(node, (int, float, str, bool)):
            out[prefix] = node

    walk("config", tree)
    return out


@dataclass(frozen=True)
class PDEBenchFile:
    """An inspected PDEBench file (see :func:`inspect_pdebench`).

    Attributes:
        path: the file.
        layout: ``"arrays"`` (``.hdf5`` trajectories), ``"darcy"`` (``nu`` + ``tensor``),
            ``"groups"`` (``.h5`` one group per sample) or ``"ns_incom"`` (incompressible NS
            shards).
        n_samples: number of samples.
        test_last: PDEBench's test position: last 10% for the ``.h5`` layouts (``groups``,
            ``ns_incom``), first 10% otherwise.
        fields: dataset names stacked as channels (``arrays``, ``ns_incom``), ``("nu",
            "tensor")`` (darcy), or the ``.h5`` group names in sorted order (``groups``).
        channels: channel names.
        axes: spatial axis names in array order.
        stored_shape: points per spatial axis.
        coords: coordinates per axis.
        times: step times, ``(T,)`` (empty for darcy).
        attrs: file attributes (``beta``, ``Nu``, ``eta`` …), the parsed ``config``, ``name``,
            ``boundary`` and ``format``.
        static_fields: ``ns_incom``: the time-constant dataset read as static channels
            (``("force",)``, or empty).
        static_channels: their channel names.
    """

    path: str
    layout: str
    n_samples: int
    test_last: bool
    fields: tuple[str, ...]
    channels: tuple[str, ...]
    axes: tuple[str, ...]
    stored_shape: tuple[int, ...]
    coords: dict[str, np.ndarray] = field(repr=False)
    times: np.ndarray = field(repr=False)
    attrs: dict[str, Any] = field(repr=False)
    static_fields: tuple[str, ...] = ()
    static_channels: tuple[str, ...] = ()

    @cached_property
    def grid(self) -> Grid:
        """The stored grid: periodic axes for the periodic families, else cell or vertex points
        as the coordinates show (:meth:`Grid.infer`)."""
        periodic = self.attrs["boundary"] == "periodic"
        return Grid.infer(self.coords, [periodic] * len(self.axes), self.attrs["boundary"], where=f"{self.path}: coordinates")

    def open(self, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None) -> PairSource | TrajectorySource:
        """The lazy reader of the samples at positions ``sample_ids``."""
        reader = {"arrays": PDEBenchArraySource, "darcy": PDEBenchDarcySource, "groups": PDEBenchGroupSource,
                  "ns_incom": PDEBenchNSIncomSource}[self.layout]
        return reader(self, sample_ids, view, rdcc_nbytes)


def _inspect_darcy(path: str, h5: h5py.File, attrs: dict[str, Any]) -> PDEBenchFile:
    nu, tensor = h5["nu"], h5["tensor"]
    if not isinstance(nu, h5py.Dataset) or nu.ndim not in (2, 3, 4):
        raise format_error(path, "nu", f"expected the coefficient array [N, *space] with 1-3 spatial axes, found {getattr(nu, 'shape', 'a group')}")
    expected = (nu.shape[0], 1, *nu.shape[1:])
    if not isinstance(tensor, h5py.Dataset) or tensor.shape != expected:
        raise format_error(path, "tensor", f"expected the solution array [N, 1, *space] = {expected} next to 'nu' {nu.shape}, found {getattr(tensor, 'shape', 'a group')}")
    axes = AXES[: nu.ndim - 1]
    coords = {a: _coordinate(path, h5, f"{a}-coordinate", n) for a, n in zip(axes, nu.shape[1:])}
    return PDEBenchFile(path, "darcy", nu.shape[0], False, ("nu", "tensor"), ("nu", "tensor"), axes, tuple(nu.shape[1:]),
                        coords, np.zeros(0), attrs)


def _inspect_arrays(path: str, h5: h5py.File, fields: tuple[str, ...], attrs: dict[str, Any]) -> PDEBenchFile:
    shapes = {}
    for name in fields:
        node = h5[name]
        if not isinstance(node, h5py.Dataset) or node.ndim not in (3, 4, 5):
            found = node.shape if isinstance(node, h5py.Dataset) else "a group"
            raise format_error(path, name, f"expected a trajectory array [N, T, *space] with 1-3 spatial axes, found {found}")
        shapes[name] = node.shape
    first = shapes[fields[0]]
    for name, shape in shapes.items():
        if shape != first:
            raise format_error(path, name, f"expected the same shape as '{fields[0]}' {first}, found {shape}")
    n, n_times, *space = first
    axes = AXES[: len(space)]
    coords = {a: _coordinate(path, h5, f"{a}-coordinate", m) for a, m in zip(axes, space)}
    times = _times(path, h5, "t-coordinate", n_times)
    return PDEBenchFile(path, "arrays", n, False, fields, fields, axes, tuple(space), coords, times, attrs)


def _h5_axes(path: str, group: h5py.Group, space: tuple[int, ...]) -> tuple[str, ...]:
    """Axis names of a per-sample ``data`` array: reversed ``(…, y, x)`` (PDEBench's generator
    order) unless only the natural order matches the ``grid/*`` lengths."""
    natural = AXES[: len(space)]
    for order in (natural[::-1], natural):
        lengths = [len(group[f"grid/{a}"]) if isinstance(group.get(f"grid/{a}"), h5py.Dataset) else None for a in order]
        if lengths == list(space):
            return order
    raise format_error(path, f"{group.name}/grid", f"expected coordinate arrays grid/{'/'.join(natural)} matching the data's spatial shape {space}")


def _inspect_groups(path: str, h5: h5py.File, names: list[str], attrs: dict[str, Any]) -> PDEBenchFile:
    first = h5[names[0]]
    data = first.get("data")
    if not isinstance(data, h5py.Dataset) or data.ndim not in (3, 4, 5):
        found = data.shape if isinstance(data, h5py.Dataset) else "nothing"
        raise format_error(path, f"{first.name}/data", f"expected a per-sample array [T, *space, C] with 1-3 spatial axes, found {found}")
    n_times, *space, n_channels = data.shape
    axes = _h5_axes(path, first, tuple(space))
    coords = {a: first[f"grid/{a}"][()].astype(np.float64) for a in axes}
    times = _times(path, first, "grid/t", n_times)
    stem = os.path.basename(path)
    known = next((c for prefix, c in H5_CHANNELS.items() if stem.startswith(prefix) and len(c) == n_channels), None)
    channels = known or tuple(f"data[{c}]" for c in range(n_channels))
    config = first.attrs.get("config")
    if config is not None:
        attrs.update(_flatten_config(config.decode() if isinstance(config, bytes) else str(config)))
    return PDEBenchFile(path, "groups", len(names), True, tuple(names), channels, axes, tuple(space), coords, times, attrs)


NS_INCOM_STATE = ("velocity", "particles")
"""State datasets of the incompressible-NS shards, ``[B, T, *space, components]``, in channel order."""
NS_INCOM_STATIC = "force"
"""Their time-constant dataset ``[B, *space, components]``."""


def _component_names(name: str, count: int, axes: tuple[str, ...]) -> tuple[str, ...]:
    """``name`` for one component, ``name_<axis>`` for one per axis, ``name[c]`` otherwise."""
    if count == 1:
        return (name,)
    if count == len(axes):
        return tuple(f"{name}_{a}" for a in axes)
    return tuple(f"{name}[{c}]" for c in range(count))


def _inspect_ns_incom(path: str, h5: h5py.File, attrs: dict[str, Any]) -> PDEBenchFile:
    velocity = h5["velocity"]
    if not isinstance(velocity, h5py.Dataset) or velocity.ndim not in (4, 5, 6):
        raise format_error(path, "velocity", f"expected [B, T, *space, components] with 1-3 spatial axes, found {getattr(velocity, 'shape', 'a group')}")
    n, n_times, *space, _ = velocity.shape
    axes = AXES[: len(space)]
    channels = []
    for name in NS_INCOM_STATE:
        node = h5[name]
        if not isinstance(node, h5py.Dataset) or node.shape[:-1] != velocity.shape[:-1] or node.ndim != velocity.ndim:
            found = node.shape if isinstance(node, h5py.Dataset) else "a group"
            raise format_error(path, name, f"expected [B, T, *space, components] = ({', '.join(map(str, velocity.shape[:-1]))}, C), found {found}")
        channels += _component_names(name, node.shape[-1], axes)
    static, static_channels = (), ()
    force = h5.get(NS_INCOM_STATIC)
    if force is not None:
        if not isinstance(force, h5py.Dataset) or force.shape[:-1] != (n, *space):
            found = force.shape if isinstance(force, h5py.Dataset) else "a group"
            raise format_error(path, NS_INCOM_STATIC, f"expected [B, *space, components] = ({', '.join(map(str, (n, *space)))}, C), found {found}")
        static, static_channels = (NS_INCOM_STATIC,), _component_names(NS_INCOM_STATIC, force.shape[-1], axes)
    t = h5.get("t")
    if not isinstance(t, h5py.Dataset) or t.ndim != 2 or t.shape[0] != n or t.shape[1] < n_times:
        found = t.shape if isinstance(t, h5py.Dataset) else "nothing"
        raise format_error(path, "t", f"expected per-trajectory times [B, T] = ({n}, {n_times}), found {found}")
    times = t[0, :n_times].astype(np.float64)
    config = attrs.get("config")
    tree = _config_tree(config) if isinstance(config, str) else None
    if isinstance(config, str):
        attrs.update(_flatten_config(config))
    sizes = (tree or {}).get("domain_size")
    lengths = [float(v) for v in sizes] if isinstance(sizes, list) and len(sizes) == len(space) else [1.0] * len(space)
    coords = {a: (np.arange(m) + 0.5) * length / m for a, m, length in zip(axes, space, lengths)}
    return PDEBenchFile(path, "ns_incom", n, True, NS_INCOM_STATE, tuple(channels), axes, tuple(space), coords, times, attrs,
                        static, static_channels)


def inspect_pdebench(path: str | os.PathLike) -> PDEBenchFile:
    """Check a PDEBench file's layout and read its metadata (no sample arrays).

    Raises :class:`DataFormatError` naming the file and key for a missing or unreadable file,
    missing datasets, wrong ranks or inconsistent shapes.
    """
    path = os.fspath(path)
    with open_h5(path) as h5:
        stem = os.path.splitext(os.path.basename(path))[0]
        attrs = {**_plain_attrs(h5), "name": stem, "boundary": _boundary(stem), "format": "pdebench"}
        if "nu" in h5 and "tensor" in h5:
            return _inspect_darcy(path, h5, attrs)
        if all(name in h5 for name in NS_INCOM_STATE):
            return _inspect_ns_incom(path, h5, attrs)
        if "tensor" in h5:
            return _inspect_arrays(path, h5, ("tensor",), attrs)
        cfd = tuple(name for name in CFD_FIELDS if name in h5)
        if cfd:
            return _inspect_arrays(path, h5, cfd, attrs)
        groups = sorted(name for name in h5 if isinstance(h5[name], h5py.Group) and "data" in h5[name])
        if groups:
            return _inspect_groups(path, h5, groups, attrs)
    raise format_error(path, "/", "not a PDEBench layout: expected 'tensor', 'nu' + 'tensor', CFD fields "
                f"({', '.join(CFD_FIELDS)}), per-sample groups holding 'data', or 'velocity' + 'particles' (incompressible NS)")


class _PDEBenchReader:
    """Constructor shared by the three readers."""

    def __init__(self, info: PDEBenchFile, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None):
        self._init_handle(info.path, rdcc_nbytes)
        self._describe(info.attrs["name"], info.grid, info.coords, info.attrs, sample_ids, view)
        self._info = info


class PDEBenchArraySource(_PDEBenchReader, TrajectorySource):
    """``.hdf5`` trajectories: ``read_steps(i, steps)`` stacks ``field[k, steps, *space]`` of
    every field (``k = sample_ids[i]``, the row) into ``(n_steps, C, *grid)``."""

    def __init__(self, info: PDEBenchFile, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None):
        super().__init__(info, sample_ids, view, rdcc_nbytes)
        self.channels = list(info.channels)
        self.static_channels = []
        self.times = info.times

    def _read_steps(self, i: int, steps: slice) -> tuple[str, np.ndarray]:
        h5, row = self._handle(), int(self.sample_ids[i])
        values = np.stack([h5[name][(row, steps, *self._space())] for name in self._info.fields], axis=1)
        return ", ".join(self._info.fields), values


class PDEBenchDarcySource(_PDEBenchReader, PairSource):
    """Darcy pairs: ``ds[i] = {"x": nu[k] (1, *grid), "y": tensor[k, 0] (1, *grid)}``."""

    def __init__(self, info: PDEBenchFile, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None):
        super().__init__(info, sample_ids, view, rdcc_nbytes)
        self.input_channels = ["nu"]
        self.output_channels = ["tensor"]

    def _read_pair(self, i: int) -> tuple[tuple[str, np.ndarray], tuple[str, np.ndarray]]:
        h5, row, space = self._handle(), int(self.sample_ids[i]), self._space()
        return ("nu", h5["nu"][(row, *space)][None]), ("tensor", h5["tensor"][(row, slice(0, 1), *space)])


class PDEBenchGroupSource(_PDEBenchReader, TrajectorySource):
    """``.h5`` per-sample groups: ``read_steps(i, steps)`` reads ``<group>/data[steps, *space, :]``
    of the ``sample_ids[i]``-th group (sorted by name) as ``(n_steps, C, *grid)``."""

    def __init__(self, info: PDEBenchFile, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None):
        super().__init__(info, sample_ids, view, rdcc_nbytes)
        self.channels = list(info.channels)
        self.static_channels = []
        self.times = info.times

    def _where(self, i: int) -> str:
        return f"group '{self._info.fields[int(self.sample_ids[i])]}'"

    def _read_steps(self, i: int, steps: slice) -> tuple[str, np.ndarray]:
        key = f"{self._info.fields[int(self.sample_ids[i])]}/data"
        node = self._handle().get(key)
        expected = (len(self.times), *self.stored_shape, len(self.channels))
        if not isinstance(node, h5py.Dataset) or node.shape != expected:
            found = node.shape if isinstance(node, h5py.Dataset) else "nothing"
            raise format_error(self.path, key, f"expected shape {expected} like the first group, found {found}")
        return key, np.moveaxis(node[(steps, *self._space(), slice(None))], -1, 1)


class PDEBenchNSIncomSource(_PDEBenchReader, TrajectorySource):
    """Incompressible-NS shards: ``read_steps(i, steps)`` stacks the components of ``velocity``
    and ``particles`` of trajectory ``k = sample_ids[i]`` (its position in the file) as
    ``(n_steps, C, *grid)``; ``read_static(i)`` the components of ``force[k]`` as ``(S, *grid)``."""

    def __init__(self, info: PDEBenchFile, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None):
        super().__init__(info, sample_ids, view, rdcc_nbytes)
        self.channels = list(info.channels)
        self.static_channels = list(info.static_channels)
        self.times = info.times

    def _components(self, name: str, selection: tuple) -> np.ndarray:
        """``name[selection]`` with its trailing component axis moved before the spatial axes."""
        return np.moveaxis(self._handle()[name][(*selection, *self._space(), slice(None))], -1, -1 - self.n_dims)

    def _read_steps(self, i: int, steps: slice) -> tuple[str, np.ndarray]:
        row = int(self.sample_ids[i])
        return ", ".join(self._info.fields), np.concatenate([self._components(name, (row, steps)) for name in self._info.fields], axis=1)

    def _read_static(self, i: int) -> tuple[str, np.ndarray]:
        if not self._info.static_fields:
            return super()._read_static(i)
        return NS_INCOM_STATIC, self._components(NS_INCOM_STATIC, (int(self.sample_ids[i]),))
