"""The neuralops HDF5 schema: constants, an atomic writer, a cheap header reader and a validator.

A dataset (one PDE) holds one or more resolutions of the *same* samples. Samples have global
ids ``0 … n_samples-1``; each resolution group lists the ids it holds, so a coarse grid may hold
every sample while a fine grid holds only the test split. A dataset has one of two layouts:
``pairs`` (an input→output map, format version 1) or ``trajectories`` (time series of a state,
format version 2). It is one file, or a folder of **shards** (format version 3): files that
each hold an ascending range of the sample ids, with the same header, read together as one
dataset (:func:`read_header` of the folder). The layout is written down in
``docs/data_format.md``; in brief::

    /                     attrs: format="neuralops", format_version, layout, name, description,
                                 axes, n_dims, n_samples, boundary, grid, coarsening,
                                 param_<name> (PDE parameters),
                                 pairs: input_channels, output_channels
                                 trajectories: channels, time_units
                                 shards: shard_index, n_shards
    /splits/<split>       int64 [n_split]  sorted global sample ids (train, val, test required)
    /times                float64 [T]      trajectories only: time of each stored step
    /resolutions/<key>/   key = "17" (same points on every axis) or "32x64"
        index             int64 [n_r]      sorted global sample ids held at this grid
        inputs            float32 [n_r, C_in, *grid]      pairs; chunks (1, C_in, *grid)
        outputs           float32 [n_r, C_out, *grid]     pairs; chunks (1, C_out, *grid)
        trajectories      float32 [n_r, T, C, *grid]      trajectories; chunks (1, t_chunk, C, *grid)
        coords/<axis>     float64 [grid[d]] coordinate of each grid line, physical units
    /params/<name>        [n_samples]      optional per-sample parameters

Array axes after the channel axis follow ``axes`` (``["x", "y"]``: ``a[i, j]`` is the point
``(x[i], y[j])``). Nothing in this module reads a whole sample array: :func:`read_header` reads
attributes, ids and coordinates only, and :func:`validate` scans values a bounded block at a time.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from neuralops.errors import ConfigError, DataFormatError
from neuralops.grid import AXIS_KINDS, BOUNDARIES

FORMAT = "neuralops"
FORMAT_VERSION = 3
"""Newest version this code reads (it reads 1, 2 and 3). Pair files are written as version 1
(unchanged since it), trajectory files as version 2, shards of either layout as version 3."""
SHARD_VERSION = 3
"""Version of a shard file: it holds only part of its splits' samples, which a version-1 or -2
reader would refuse, so a shard says so by its version."""
LAYOUTS = ("pairs", "trajectories")
"""``pairs``: one input and one output array per sample. ``trajectories``: one array
``[T, C, *grid]`` per sample, the state at the times ``/times``."""
_LAYOUT_VERSION = {"pairs": 1, "trajectories": 2}
TRAJECTORY_CHUNK_BYTES = 2**18
"""Largest chunk of a trajectory array: ``(1, t_chunk, C, *grid)`` with as many time steps as fit
in 256 KiB (at least one), so a window of a few steps decompresses a few small chunks."""
REQUIRED_SPLITS = ("train", "val", "test")
GRID_TYPES = AXIS_KINDS
"""The file attribute ``grid``, one kind for every axis (see :mod:`neuralops.grid`):
``vertex``: N points per axis including both ends of the interval, spacing L/(N-1).
``periodic``: N points x_i = x_0 + i L/N (the right end is the left end's periodic image).
``cell``: N cell centres x_i = x_0 + (i + 1/2) L/N.
``equiangular``/``legendre_gauss``: the sphere, axes (colatitude, longitude): nlat colatitudes
pi j/(nlat-1) from pole to pole (equiangular) or at the Gauss-Legendre nodes, and nlon
longitudes 2 pi i/nlon (periodic)."""
COARSENINGS = ("solved_per_grid", "subsampled", "filtered")
"""How coarse resolutions were made: each grid solved on its own (``solved_per_grid``), point
subsampling of a finer solution (``subsampled``), or anti-aliased filtering (``filtered``)."""
PARAM_PREFIX = "param_"
COMPRESSION_LEVEL = 4

_ROOT_STRING_ATTRS = ("name", "description", "boundary", "grid", "coarsening")
_LAYOUT_LIST_ATTRS = {"pairs": ("input_channels", "output_channels"), "trajectories": ("channels",)}
_ROOT_INT_ATTRS = ("format_version", "n_dims", "n_samples")
_SHARD_ATTRS = ("shard_index", "n_shards")
_VALUE_SCAN_BYTES = 64 * 2**20
DATA_SUFFIXES = (".h5", ".hdf5")
"""File names a folder dataset is made of (neuralops shards, PDEBench and Well files)."""


def shard_file_name(name: str, index: int, count: int) -> str:
    """File name of shard ``index`` of ``count``: ``darcy-00002-of-00004.h5``."""
    return f"{name}-{index:05d}-of-{count:05d}.h5"


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def data_files(folder: str | os.PathLike) -> list[Path]:
    """The HDF5 files (``*.h5``, ``*.hdf5``, not hidden) directly in ``folder``, in natural name
    order (``ns-2.h5`` before ``ns-10.h5``), which is the order of their samples in the dataset.

    Raises:
        DataFormatError: ``folder`` holds no such file.
    """
    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if p.suffix in DATA_SUFFIXES and not p.name.startswith(".") and p.is_file()),
                   key=_natural_key)
    if not files:
        raise DataFormatError(f"{folder}: the folder holds no data file (*.h5 or *.hdf5)")
    return files


def resolution_key(shape: Sequence[int]) -> str:
    """Group name of a grid shape: ``(17, 17) -> "17"``, ``(32, 64) -> "32x64"``."""
    shape = tuple(int(n) for n in shape)
    if len(set(shape)) == 1:
        return str(shape[0])
    return "x".join(str(n) for n in shape)


def parse_resolution_key(key: str, n_dims: int) -> tuple[int, ...] | None:
    """Inverse of :func:`resolution_key` for a file with ``n_dims`` axes; ``None`` if malformed."""
    parts = key.split("x")
    if not all(p.isdigit() for p in parts):
        return None
    if len(parts) == 1:
        return (int(parts[0]),) * n_dims
    if len(parts) != n_dims:
        return None
    return tuple(int(p) for p in parts)


@dataclass(frozen=True, kw_only=True)
class DatasetMetadata:
    """Everything about a dataset that is not sample data.

    Attributes:
        name: short identifier, e.g. ``"darcy"``.
        description: one or two sentences: the PDE, its domain and what maps to what.
        axes: names of the spatial axes in array order, e.g. ``("x", "y")``.
        boundary: boundary condition type, one of :data:`BOUNDARIES`.
        grid: grid type, one of :data:`GRID_TYPES`.
        coarsening: how the coarser resolutions were made, one of :data:`COARSENINGS`.
        layout: ``"pairs"`` (default) or ``"trajectories"``, see :data:`LAYOUTS`.
        input_channels: pairs only: names of the input channels, e.g. ``("a",)``.
        output_channels: pairs only: names of the output channels, e.g. ``("u",)``.
        channels: trajectories only: names of the state channels, e.g. ``("w",)``.
        time_units: trajectories only: unit of ``/times``, e.g. ``"s"`` or ``"1"`` (nondimensional).
        pde_params: scalar PDE / generator parameters, stored as root attributes
            ``param_<name>``.
    """

    name: str
    description: str
    axes: tuple[str, ...]
    boundary: str
    grid: str
    coarsening: str
    layout: str = "pairs"
    input_channels: tuple[str, ...] = ()
    output_channels: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    time_units: str = ""
    pde_params: Mapping[str, float | int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"DatasetMetadata.layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        needed = ("axes", *_LAYOUT_LIST_ATTRS[self.layout])
        for attr in ("axes", "input_channels", "output_channels", "channels"):
            names = tuple(getattr(self, attr))
            if attr not in needed:
                if names:
                    raise ConfigError(f"DatasetMetadata.{attr} does not apply to layout {self.layout!r}; got {names!r}")
                continue
            if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
                raise ConfigError(f"DatasetMetadata.{attr} must be distinct non-empty strings, got {names!r}")
            object.__setattr__(self, attr, names)
        for attr, allowed in (("boundary", BOUNDARIES), ("grid", GRID_TYPES), ("coarsening", COARSENINGS)):
            if getattr(self, attr) not in allowed:
                raise ConfigError(f"DatasetMetadata.{attr} must be one of {list(allowed)}, got {getattr(self, attr)!r}")
        for key, value in self.pde_params.items():
            if not isinstance(value, (int, float, str, np.integer, np.floating)) or isinstance(value, bool):
                raise ConfigError(f"PDE parameter {key!r} must be an int, float or str, got {value!r}")

    @property
    def n_dims(self) -> int:
        return len(self.axes)

    @property
    def is_trajectory(self) -> bool:
        return self.layout == "trajectories"

    @property
    def array_channels(self) -> dict[str, tuple[str, ...]]:
        """Sample array name per resolution group → its channel names (``inputs``/``outputs``
        for pairs, ``trajectories`` for trajectories)."""
        if self.is_trajectory:
            return {"trajectories": self.channels}
        return {"inputs": self.input_channels, "outputs": self.output_channels}


@dataclass(frozen=True)
class ResolutionHeader:
    """One ``/resolutions/<key>`` group without its sample arrays.

    Attributes:
        key: group name, e.g. ``"17"``.
        shape: grid shape, points per axis in ``axes`` order.
        index: int64 ``(n_r,)`` sorted global ids of the samples held (row ``k`` is sample
            ``index[k]``).
        coords: 1-D coordinate array per axis name, physical units.
        parts: ``(file, rows)`` of every file holding the group, in row order: one entry for a
            file, one per shard for a folder (row ``k`` of the group is row ``k - start`` of the
            part whose rows start at ``start``).
    """

    key: str
    shape: tuple[int, ...]
    index: np.ndarray
    coords: dict[str, np.ndarray]
    parts: tuple[tuple[str, int], ...]

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(part, local row)`` int64 arrays of the group's ``rows``."""
        starts = np.cumsum([0] + [n for _, n in self.parts])
        part = np.searchsorted(starts, rows, side="right") - 1
        return part.astype(np.int64), (rows - starts[part]).astype(np.int64)

    def rows_of(self, sample_ids: np.ndarray) -> np.ndarray | None:
        """Rows holding ``sample_ids`` (int64), or ``None`` if any of them is not held here."""
        rows = np.searchsorted(self.index, sample_ids)
        rows = np.minimum(rows, max(len(self.index) - 1, 0))
        if len(sample_ids) and (len(self.index) == 0 or not np.array_equal(self.index[rows], sample_ids)):
            return None
        return rows.astype(np.int64)


@dataclass(frozen=True)
class FileHeader:
    """The metadata of a checked file: what :func:`read_header` returns.

    Attributes:
        path: the file.
        metadata: names, channels, axes, boundary, grid, coarsening and PDE parameters.
        n_samples: number of global sample ids.
        attrs: every root attribute as plain Python values.
        splits: sorted global ids per split name.
        resolutions: one header per resolution group, keyed by grid shape.
        sample_params: names of the per-sample parameters under ``/params``.
        times: trajectories only: float64 ``(T,)`` time of each stored step (``time_units``);
            ``None`` for pair files.
        shard: ``(shard_index, n_shards)`` of a shard file; ``None`` for a complete file or a
            folder.
    """

    path: str
    metadata: DatasetMetadata
    n_samples: int
    attrs: dict[str, Any]
    splits: dict[str, np.ndarray]
    resolutions: dict[tuple[int, ...], ResolutionHeader]
    sample_params: tuple[str, ...]
    times: np.ndarray | None = None
    shard: tuple[int, int] | None = None


def attr_value(value: Any) -> Any:
    """An HDF5 attribute value as plain Python (str, int, float, bool or list of those)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [attr_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def format_error(path: str | os.PathLike, key: str, message: str) -> DataFormatError:
    return DataFormatError(f"{os.fspath(path)}: key '{key}': {message}")


def open_h5(path: str | os.PathLike, rdcc_nbytes: int | None = None) -> h5py.File:
    """Open ``path`` read-only, turning a missing or unreadable file into :class:`DataFormatError`.

    ``rdcc_nbytes``: size in bytes of HDF5's chunk cache per open dataset (``None``: h5py's
    default, 1 MiB). A larger cache helps when consecutive reads hit the same chunks.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFormatError(f"{path}: no such data file")
    try:
        return h5py.File(path, "r", rdcc_nbytes=rdcc_nbytes)
    except OSError as err:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({err})") from None


def _read_ids(path: str, h5: h5py.File, key: str, n_samples: int) -> np.ndarray:
    node = h5.get(key)
    if not isinstance(node, h5py.Dataset):
        raise format_error(path, key, "missing; expected an int64 dataset of global sample ids")
    if node.ndim != 1 or node.dtype.kind not in "iu":
        raise format_error(path, key, f"expected a 1-D integer dataset, found shape {node.shape} dtype {node.dtype}")
    ids = node[()].astype(np.int64)
    if len(ids) and (ids[0] < 0 or ids[-1] >= n_samples or np.any(np.diff(ids) <= 0)):
        raise format_error(path, key, f"expected sorted distinct sample ids in [0, {n_samples}), found {ids[:8].tolist()}...")
    return ids


def _read_metadata(path: str, h5: h5py.File) -> tuple[DatasetMetadata, int, dict[str, Any]]:
    attrs = {k: attr_value(v) for k, v in h5.attrs.items()}
    if attrs.get("format") != FORMAT:
        raise format_error(path, "/@format", f"expected attribute format={FORMAT!r} (a neuralops data file), found {attrs.get('format')!r}")
    for key in _ROOT_INT_ATTRS:
        if not isinstance(attrs.get(key), int) or isinstance(attrs.get(key), bool):
            raise format_error(path, f"/@{key}", f"expected an integer attribute, found {attrs.get(key)!r}")
    if not 1 <= attrs["format_version"] <= FORMAT_VERSION:
        raise format_error(path, "/@format_version", f"this neuralops reads format versions 1..{FORMAT_VERSION}, found {attrs['format_version']}")
    layout = attrs.setdefault("layout", "pairs")
    if layout not in LAYOUTS or attrs["format_version"] < _LAYOUT_VERSION[layout]:
        raise format_error(path, "/@layout", f"expected one of {list(LAYOUTS)} (trajectories from format version 2), found {layout!r}")
    string_attrs = _ROOT_STRING_ATTRS + (("time_units",) if layout == "trajectories" else ())
    for key in string_attrs:
        if not isinstance(attrs.get(key), str):
            raise format_error(path, f"/@{key}", f"expected a string attribute, found {attrs.get(key)!r}")
    for key in ("axes", *_LAYOUT_LIST_ATTRS[layout]):
        value = attrs.get(key)
        if isinstance(value, str):
            attrs[key] = value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise format_error(path, f"/@{key}", f"expected a non-empty list of strings, found {value!r}")
    if attrs["n_dims"] != len(attrs["axes"]):
        raise format_error(path, "/@n_dims", f"n_dims={attrs['n_dims']} but axes={attrs['axes']} names {len(attrs['axes'])} axes")
    if attrs["n_samples"] < 0:
        raise format_error(path, "/@n_samples", f"expected n_samples >= 0, found {attrs['n_samples']}")
    if any(key in attrs for key in _SHARD_ATTRS):
        index, count = attrs.get("shard_index"), attrs.get("n_shards")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (index, count)) or not 0 <= index < count:
            raise format_error(path, "/@shard_index", f"expected integers 0 <= shard_index < n_shards, found {index!r} and {count!r}")
        if attrs["format_version"] < SHARD_VERSION:
            raise format_error(path, "/@format_version", f"a shard is format version {SHARD_VERSION}, found {attrs['format_version']}")
    params = {k[len(PARAM_PREFIX):]: v for k, v in attrs.items() if k.startswith(PARAM_PREFIX)}
    try:
        metadata = DatasetMetadata(
            name=attrs["name"],
            description=attrs["description"],
            axes=tuple(attrs["axes"]),
            boundary=attrs["boundary"],
            grid=attrs["grid"],
            coarsening=attrs["coarsening"],
            layout=layout,
            input_channels=tuple(attrs.get("input_channels", ())) if layout == "pairs" else (),
            output_channels=tuple(attrs.get("output_channels", ())) if layout == "pairs" else (),
            channels=tuple(attrs.get("channels", ())) if layout == "trajectories" else (),
            time_units=attrs.get("time_units", "") if layout == "trajectories" else "",
            pde_params=params,
        )
    except ConfigError as err:
        raise DataFormatError(f"{path}: root attributes: {err}") from None
    return metadata, attrs["n_samples"], attrs


def _read_times(path: str, h5: h5py.File) -> np.ndarray:
    node = h5.get("times")
    if not isinstance(node, h5py.Dataset) or node.ndim != 1 or len(node) < 1 or node.dtype.kind != "f":
        found = f"shape {node.shape} dtype {node.dtype}" if isinstance(node, h5py.Dataset) else "nothing"
        raise format_error(path, "/times", f"expected a 1-D float array with the time of each stored step, found {found}")
    times = node[()].astype(np.float64)
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise format_error(path, "/times", "expected finite, strictly increasing times")
    return times


def _read_resolution(
    path: str, h5: h5py.File, key: str, meta: DatasetMetadata, n_samples: int, n_times: int | None
) -> ResolutionHeader:
    where = f"/resolutions/{key}"
    group = h5[where]
    shape = parse_resolution_key(key, meta.n_dims)
    if not isinstance(group, h5py.Group) or shape is None or min(shape) < 1:
        raise format_error(path, where, f"expected a group named by points per axis ('17' or '17x33' for {meta.n_dims} axes)")
    index = _read_ids(path, h5, f"{where}/index", n_samples)
    leading = (len(index),) if n_times is None else (len(index), n_times)
    axis_names = ("sample",) if n_times is None else ("sample", "time")
    for name, channels in meta.array_channels.items():
        node = group.get(name)
        expected = (*leading, len(channels), *shape)
        if not isinstance(node, h5py.Dataset):
            raise format_error(path, f"{where}/{name}", f"missing; expected a float dataset of shape {expected}")
        if node.ndim != len(expected):
            names = ", ".join((*axis_names, "channel", *meta.axes))
            raise format_error(path, f"{where}/{name}", f"expected rank {len(expected)} ({names}), found shape {node.shape}")
        if node.shape[len(leading)] != len(channels):
            raise format_error(path, f"{where}/{name}", f"expected {len(channels)} channel(s) {list(channels)}, found {node.shape[len(leading)]}")
        if node.shape != expected or node.dtype.kind != "f":
            raise format_error(path, f"{where}/{name}", f"expected float shape {expected}, found {node.dtype} {node.shape}")
    coords = {}
    for axis, n in zip(meta.axes, shape):
        node = group.get(f"coords/{axis}")
        if not isinstance(node, h5py.Dataset) or node.shape != (n,):
            found = node.shape if isinstance(node, h5py.Dataset) else "nothing"
            raise format_error(path, f"{where}/coords/{axis}", f"expected a 1-D coordinate array of length {n}, found {found}")
        values = node[()].astype(np.float64)
        if not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
            raise format_error(path, f"{where}/coords/{axis}", "expected finite, strictly increasing coordinates")
        coords[axis] = values
    return ResolutionHeader(key=key, shape=shape, index=index, coords=coords, parts=((path, len(index)),))


def _check_held(path: str, splits: Mapping[str, np.ndarray], resolutions: Mapping[tuple[int, ...], ResolutionHeader]) -> None:
    all_split_ids = np.concatenate(list(splits.values()))
    held = np.unique(np.concatenate([r.index for r in resolutions.values()]))
    orphans = np.setdiff1d(all_split_ids, held)
    if len(orphans):
        raise format_error(path, "/resolutions", f"split sample(s) {orphans[:8].tolist()} are held at no resolution")


def read_header(path: str | os.PathLike) -> FileHeader:
    """Check a dataset's structure and return its metadata, reading no sample arrays.

    ``path`` is a file, or a folder of shards (:func:`read_folder_header`). Checks attributes,
    splits (sorted, distinct, disjoint, in range, each sample held by some resolution; a shard
    holds only its range, so that rule applies to its folder), every resolution's index, array
    ranks, shapes and channel counts, coordinates and per-sample parameters. Raises
    :class:`DataFormatError` naming the file and key at fault.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return read_folder_header(path)
    with open_h5(path) as h5:
        meta, n_samples, attrs = _read_metadata(path, h5)
        shard = (attrs["shard_index"], attrs["n_shards"]) if "n_shards" in attrs else None
        splits = {}
        split_group = h5.get("splits")
        if not isinstance(split_group, h5py.Group):
            raise format_error(path, "/splits", f"missing; expected a group with datasets {list(REQUIRED_SPLITS)}")
        for name in sorted(set(REQUIRED_SPLITS) | set(split_group)):
            splits[name] = _read_ids(path, h5, f"/splits/{name}", n_samples)
        times = _read_times(path, h5) if meta.is_trajectory else None
        all_split_ids = np.concatenate(list(splits.values()))
        if len(np.unique(all_split_ids)) != len(all_split_ids):
            raise format_error(path, "/splits", "expected disjoint splits; some sample id is in two splits")
        res_group = h5.get("resolutions")
        if not isinstance(res_group, h5py.Group) or len(res_group) == 0:
            raise format_error(path, "/resolutions", "missing or empty; expected one group per grid resolution")
        resolutions = {}
        for key in res_group:
            header = _read_resolution(path, h5, key, meta, n_samples, None if times is None else len(times))
            if header.shape in resolutions:
                raise format_error(path, f"/resolutions/{key}", f"grid {header.shape} appears twice")
            resolutions[header.shape] = header
        if shard is None:
            _check_held(path, splits, resolutions)
        params_group = h5.get("params", {})
        for name in params_group:
            node = params_group[name]
            if not isinstance(node, h5py.Dataset) or node.shape != (n_samples,):
                raise format_error(path, f"/params/{name}", f"expected a per-sample array of shape ({n_samples},)")
        sample_params = tuple(params_group)
    resolutions = dict(sorted(resolutions.items(), key=lambda item: (int(np.prod(item[0])), item[0])))
    return FileHeader(path, meta, n_samples, attrs, splits, resolutions, sample_params, times, shard)


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return not np.array_equal(a, b)
    return a != b


def read_folder_header(folder: str | os.PathLike) -> FileHeader:
    """The header of a folder of shards, as if it were one file.

    Every file of the folder (:func:`data_files`) must be a shard of the same dataset: equal root
    attributes except ``shard_index``, splits, times, grids and coordinates; shards
    ``0 … n_shards-1`` all present once; shard ``k`` holding lower sample ids than shard
    ``k + 1`` at every grid. A resolution group of the result concatenates the shards' rows
    (``ResolutionHeader.parts``); ``path`` is the folder and ``shard`` is ``None``.

    Raises:
        DataFormatError: one line naming the folder or the file and key at fault (a missing
            shard, a complete file among shards, a header that differs from shard 0's ...).
    """
    folder = os.fspath(folder)
    headers = [read_header(f) for f in data_files(folder)]
    for header in headers:
        if header.shard is None:
            raise format_error(header.path, "/@n_shards", "a complete dataset file, not a shard; a folder dataset holds the shards "
                               "of one dataset (generate --shard-size); point data.path at this file instead")
    count = headers[0].shard[1]
    found = sorted(h.shard[0] for h in headers)
    if found != list(range(count)):
        missing = sorted(set(range(count)) - set(found))
        twice = sorted({i for i in found if found.count(i) > 1})
        raise DataFormatError(f"{folder}: the folder holds {len(headers)} shard file(s) of a {count}-shard dataset; "
                              f"missing shard(s) {missing}" + (f", shard(s) {twice} twice" if twice else ""))
    headers.sort(key=lambda h: h.shard[0])
    first = headers[0]
    name0 = os.path.basename(first.path)
    for header in headers[1:]:
        checks = [(f"/@{k}", v, header.attrs.get(k)) for k, v in first.attrs.items() if k != "shard_index"]
        checks += [(f"/splits/{k}", v, header.splits.get(k)) for k, v in first.splits.items()]
        checks += [("/times", first.times, header.times), ("/resolutions", list(first.resolutions), list(header.resolutions))]
        checks += [(f"/resolutions/{r.key}/coords/{a}", c, header.resolutions[shape].coords[a])
                   for shape, r in first.resolutions.items() if shape in header.resolutions for a, c in r.coords.items()]
        for key, expected, found_value in checks:
            if _differs(expected, found_value):
                raise format_error(header.path, key, f"differs from shard 0 ({name0}); the shards of a folder share one header")
    resolutions = {}
    for shape, res in first.resolutions.items():
        index = np.concatenate([h.resolutions[shape].index for h in headers])
        if np.any(np.diff(index) <= 0):
            raise format_error(folder, f"/resolutions/{res.key}/index", "the shards must hold ascending, disjoint ranges of sample ids")
        parts = tuple((h.path, len(h.resolutions[shape].index)) for h in headers)
        resolutions[shape] = ResolutionHeader(res.key, shape, index, res.coords, parts)
    _check_held(folder, first.splits, resolutions)
    attrs = {k: v for k, v in first.attrs.items() if k != "shard_index"}
    return FileHeader(folder, first.metadata, first.n_samples, attrs, first.splits, resolutions, first.sample_params, first.times)


def _scan_values(path: str, dataset: h5py.Dataset, key: str) -> None:
    """Raise if any sample of ``dataset`` holds NaN/Inf, reading at most ``_VALUE_SCAN_BYTES`` at a time.

    Blocks of whole samples when a sample fits the budget; otherwise one sample at a time, a
    block of its second axis (time steps or channels) at a time.
    """
    row_bytes = max(1, int(np.prod(dataset.shape[1:])) * dataset.dtype.itemsize)
    if row_bytes <= _VALUE_SCAN_BYTES or dataset.ndim < 2:
        block = max(1, _VALUE_SCAN_BYTES // row_bytes)
        for start in range(0, dataset.shape[0], block):
            values = dataset[start : start + block]
            bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            if bad.any():
                raise format_error(path, key, f"row {start + int(np.argmax(bad))} holds NaN or Inf")
        return
    step_bytes = max(1, row_bytes // dataset.shape[1])
    block = max(1, _VALUE_SCAN_BYTES // step_bytes)
    for row in range(dataset.shape[0]):
        for start in range(0, dataset.shape[1], block):
            if not np.all(np.isfinite(dataset[row, start : start + block])):
                raise format_error(path, key, f"row {row} holds NaN or Inf")


def validate(path: str | os.PathLike, check_values: bool = True) -> FileHeader:
    """Check ``path`` (a file or a folder of shards) against the schema; return its header, or
    raise one :class:`DataFormatError`.

    With ``check_values`` every sample is also read (a bounded block of rows at a time) and
    checked for NaN/Inf. Without it only the structure is checked, which reads no sample data.
    """
    header = read_header(path)
    if check_values:
        for res in header.resolutions.values():
            for file, _ in res.parts:
                with open_h5(file) as h5:
                    for name in header.metadata.array_channels:
                        key = f"/resolutions/{res.key}/{name}"
                        _scan_values(file, h5[key], key)
    return header


class ResolutionWriter:
    """Writes the samples of one resolution group; made by :meth:`DatasetWriter.add_resolution`."""

    def __init__(self, group: h5py.Group, target: str, index: np.ndarray, shape: tuple[int, ...], layout: str):
        self._group = group
        self._target = target
        self._layout = layout
        self.index = index
        self.shape = shape
        self._written = np.zeros(len(index), dtype=bool)

    @property
    def complete(self) -> bool:
        return bool(self._written.all())

    def _store(self, sample_id: int, arrays: Mapping[str, np.ndarray]) -> None:
        row = int(np.searchsorted(self.index, sample_id))
        if row >= len(self.index) or self.index[row] != sample_id:
            raise ConfigError(f"sample {sample_id} is not in the index of resolution {resolution_key(self.shape)}")
        for name, value in arrays.items():
            dataset = self._group[name]
            if value.shape != dataset.shape[1:]:
                raise ConfigError(f"{name} of sample {sample_id} has shape {value.shape}, expected {dataset.shape[1:]}")
            if not np.all(np.isfinite(value)):
                raise DataFormatError(f"{self._target}: key '{dataset.name}': refusing to write NaN/Inf for sample {sample_id}")
        for name, value in arrays.items():
            self._group[name][row] = value
        self._written[row] = True

    def write(self, sample_id: int, x: np.ndarray, y: np.ndarray) -> None:
        """Pairs: store sample ``sample_id``: ``x`` of shape ``(C_in, *grid)``, ``y`` of ``(C_out, *grid)``."""
        if self._layout != "pairs":
            raise ConfigError(f"{self._target} holds trajectories; use write_trajectory(sample_id, trajectory)")
        self._store(sample_id, {"inputs": x, "outputs": y})

    def write_trajectory(self, sample_id: int, trajectory: np.ndarray) -> None:
        """Trajectories: store sample ``sample_id``, shape ``(T, C, *grid)`` (state at ``/times``)."""
        if self._layout != "trajectories":
            raise ConfigError(f"{self._target} holds input/output pairs; use write(sample_id, x, y)")
        self._store(sample_id, {"trajectories": trajectory})


class DatasetWriter:
    """Write a dataset file atomically: use as ``with DatasetWriter(...) as writer:``.

    Everything goes to a temporary file in the target's directory; only when the ``with`` block
    ends without an exception, every declared sample has been written and the result passes
    :func:`read_header`, is it moved onto ``path`` with :func:`os.replace`. An exception (or
    Ctrl-C) inside the block deletes the temporary file, so ``path`` never holds a partial dataset.

    Args:
        path: target file.
        metadata: names, channels, axes, boundary, grid, coarsening, PDE parameters.
        n_samples: number of global sample ids.
        splits: sorted global ids per split; must include ``train``, ``val`` and ``test``.
        overwrite: replace an existing ``path``; otherwise an existing file is an error.
        compression: ``"gzip"`` (level 4, with byte shuffling), ``"lzf"`` or ``None``.
        times: trajectories only (required there): float ``(T,)`` strictly increasing time of
            each stored step, in ``metadata.time_units``.
        shard: ``(shard_index, n_shards)`` to write one shard of a folder dataset (format
            version 3): its resolutions hold only the shard's range of sample ids, the splits
            and every other attribute are the whole dataset's.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        metadata: DatasetMetadata,
        n_samples: int,
        splits: Mapping[str, Sequence[int] | np.ndarray],
        overwrite: bool = False,
        compression: str | None = "gzip",
        times: Sequence[float] | np.ndarray | None = None,
        shard: tuple[int, int] | None = None,
    ):
        self.path = Path(path)
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ConfigError(f"shard must be (index, count) with 0 <= index < count, got {shard}")
        self.shard = shard
        self.metadata = metadata
        self.n_samples = int(n_samples)
        self.times = None if times is None else np.asarray(times, dtype=np.float64)
        if metadata.is_trajectory:
            if self.times is None or self.times.ndim != 1 or len(self.times) < 1:
                raise ConfigError("a trajectory dataset needs times: a 1-D array with the time of each stored step")
            if not np.all(np.isfinite(self.times)) or np.any(np.diff(self.times) <= 0):
                raise ConfigError(f"times must be finite and strictly increasing, got {self.times[:8].tolist()}...")
        elif self.times is not None:
            raise ConfigError("times apply to trajectory datasets only (metadata.layout='trajectories')")
        self.splits = {name: self._checked_ids(ids, f"split {name!r}") for name, ids in splits.items()}
        missing = set(REQUIRED_SPLITS) - set(self.splits)
        if missing:
            raise ConfigError(f"splits must include {list(REQUIRED_SPLITS)}; missing {sorted(missing)}")
        all_ids = np.concatenate(list(self.splits.values()))
        if len(np.unique(all_ids)) != len(all_ids):
            raise ConfigError("splits must be disjoint; some sample id is in two splits")
        if compression not in ("gzip", "lzf", None):
            raise ConfigError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
        self.overwrite = overwrite
        self.compression = compression
        self._tmp: Path | None = None
        self._h5: h5py.File | None = None
        self._resolutions: list[ResolutionWriter] = []

    def _checked_ids(self, ids: Sequence[int] | np.ndarray, what: str) -> np.ndarray:
        """``ids`` as sorted distinct int64, checked to lie in ``[0, n_samples)``."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        unique = np.unique(ids)
        if len(unique) != len(ids) or (len(ids) and (unique[0] < 0 or unique[-1] >= self.n_samples)):
            raise ConfigError(f"{what} must list distinct sample ids in [0, {self.n_samples}), got {ids[:8].tolist()}...")
        return unique

    def _refuse_existing(self) -> None:
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True (CLI: --overwrite) to replace it")

    def __enter__(self) -> "DatasetWriter":
        self._refuse_existing()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.partial"
        self._h5 = h5py.File(tmp, "x")
        self._tmp = tmp
        try:
            self._write_header()
        except BaseException:
            self._discard()
            raise
        return self

    def _write_header(self) -> None:
        meta, h5 = self.metadata, self._h5
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = _LAYOUT_VERSION[meta.layout] if self.shard is None else SHARD_VERSION
        if self.shard is not None:
            h5.attrs["shard_index"], h5.attrs["n_shards"] = self.shard
        h5.attrs["name"] = meta.name
        h5.attrs["description"] = meta.description
        if meta.is_trajectory:
            h5.attrs["layout"] = meta.layout
            h5.attrs["channels"] = list(meta.channels)
            h5.attrs["time_units"] = meta.time_units
            h5.create_dataset("times", data=self.times)
        else:
            h5.attrs["input_channels"] = list(meta.input_channels)
            h5.attrs["output_channels"] = list(meta.output_channels)
        h5.attrs["axes"] = list(meta.axes)
        h5.attrs["n_dims"] = meta.n_dims
        h5.attrs["n_samples"] = self.n_samples
        h5.attrs["boundary"] = meta.boundary
        h5.attrs["grid"] = meta.grid
        h5.attrs["coarsening"] = meta.coarsening
        for name, value in meta.pde_params.items():
            h5.attrs[PARAM_PREFIX + name] = value
        for name, ids in self.splits.items():
            h5.create_dataset(f"splits/{name}", data=ids)
        h5.create_group("resolutions")

    def _compression_options(self) -> dict[str, Any]:
        if self.compression == "gzip":
            return {"compression": "gzip", "compression_opts": COMPRESSION_LEVEL, "shuffle": True}
        if self.compression == "lzf":
            return {"compression": "lzf", "shuffle": True}
        return {}

    def add_resolution(self, coords: Mapping[str, np.ndarray], sample_ids: Sequence[int] | np.ndarray) -> ResolutionWriter:
        """Declare a grid: ``coords`` maps each axis name to its 1-D coordinates (physical units);
        ``sample_ids`` are the global ids to be held there. Returns the writer for its samples."""
        if set(coords) != set(self.metadata.axes):
            raise ConfigError(f"coords must name the axes {list(self.metadata.axes)}, got {sorted(coords)}")
        shape = tuple(len(coords[axis]) for axis in self.metadata.axes)
        key = resolution_key(shape)
        if key in self._h5["resolutions"]:
            raise ConfigError(f"resolution {key} was already added")
        index = self._checked_ids(sample_ids, f"sample_ids of resolution {key}")
        group = self._h5.create_group(f"resolutions/{key}")
        group.create_dataset("index", data=index)
        for axis in self.metadata.axes:
            group.create_dataset(f"coords/{axis}", data=np.asarray(coords[axis], dtype=np.float64))
        for name, channels in self.metadata.array_channels.items():
            sample_shape = (len(channels), *shape)
            chunk = (1, *sample_shape)
            if self.times is not None:
                step_bytes = 4 * int(np.prod(sample_shape))
                t_chunk = int(min(len(self.times), max(1, TRAJECTORY_CHUNK_BYTES // step_bytes)))
                sample_shape, chunk = (len(self.times), *sample_shape), (1, t_chunk, *sample_shape)
            group.create_dataset(
                name,
                shape=(len(index), *sample_shape),
                dtype=np.float32,
                chunks=chunk if len(index) else None,
                **(self._compression_options() if len(index) else {}),
            )
        writer = ResolutionWriter(group, os.fspath(self.path), index, shape, self.metadata.layout)
        self._resolutions.append(writer)
        return writer

    def set_sample_param(self, name: str, values: Sequence[float] | np.ndarray) -> None:
        """Store a per-sample parameter ``/params/<name>`` of shape ``(n_samples,)``."""
        values = np.asarray(values)
        if values.shape != (self.n_samples,):
            raise ConfigError(f"per-sample parameter {name!r} has shape {values.shape}, expected ({self.n_samples},)")
        self._h5.create_dataset(f"params/{name}", data=values)

    def _discard(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            incomplete = [resolution_key(r.shape) for r in self._resolutions if not r.complete]
            if incomplete:
                raise ConfigError(f"resolution(s) {incomplete} of {self.path} have samples that were never written")
            self._h5.close()
            self._h5 = None
            read_header(self._tmp)
            self._refuse_existing()
            os.replace(self._tmp, self.path)
            self._tmp = None
        finally:
            self._discard()


def iter_split_ids(header: FileHeader) -> Iterator[tuple[str, np.ndarray]]:
    """``(split name, sorted global ids)`` for every split of ``header``, required splits first."""
    for name in REQUIRED_SPLITS:
        yield name, header.splits[name]
    for name, ids in header.splits.items():
        if name not in REQUIRED_SPLITS:
            yield name, ids
