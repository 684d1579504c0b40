"""The time-dependent generators of the command line: Burgers, Navier-Stokes, shallow water.

Each couples a solver (by another module, called as is) with its options and metadata in a
:class:`~neuralops.data.generators.trajectories.TrajectoryPlan` (``<name>_plan``) and hands the
loop to :func:`~neuralops.data.generators.trajectories.write_trajectories`: every sample is
solved once on the finest requested grid and the coarser grids are exact point subsamples
(``coarsening = "subsampled"``). Samples are drawn one by one from
:func:`~neuralops.data.generators.sample_torch_generator` and solved in batches of
``batch_size`` with a time step that does not depend on the batch, so sample ``i`` is a
function of ``(seed, i)`` only (to float64 rounding, 1e-16 relative, across different batch
compositions; the writers cut the same batches whatever the number of workers).
``<name>_samples(seed, ids, options, resolution)`` solves given samples on one grid, for online
training. Options are checked, naming their flag, before any file is opened.

Grids (``--resolutions N …``):

* Burgers, Navier-Stokes: periodic cell grid ``x_j = j / N`` on ``[0, 1)``, ``N`` even and
  ``>= 8``; ``N_c`` nests in ``N_f`` when it divides it (stride ``N_f / N_c``).
* Shallow water: equiangular ``N x 2(N - 1)`` grid (``nlat = N`` colatitudes from pole to pole,
  ``nlon = 2(N - 1)`` longitudes); ``N_c`` nests in ``N_f`` when ``N_c - 1`` divides
  ``N_f - 1``, e.g. 17, 33, 65. Non-nesting grids are refused (solving each grid separately
  would change the spectral truncation, hence the sample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch

from neuralops.data.generators import GenerationRequest, sample_torch_generator
from neuralops.data.generators.burgers import (
    BURGERS_DOMAIN_LENGTH,
    DEFAULT_CFL as BURGERS_CFL,
    burgers_grid,
    sample_burgers_initial_conditions,
    solve_burgers,
)
from neuralops.data.generators.navier_stokes import (
    FNO_DOMAIN_LENGTH,
    FNO_FINAL_TIMES,
    FNO_TIME_STEP,
    fno_forcing,
    sample_fno_initial_vorticity,
    solve_navier_stokes,
)
from neuralops.data.generators.shallow_water import (
    DEFAULT_CFL as SWE_CFL,
    EARTH_RADIUS,
    GALEWSKY_MEAN_DEPTH,
    GRAVITY,
    default_truncation,
    sample_shallow_water_initial_conditions,
    solve_shallow_water,
    sphere_grid,
)
from neuralops.data.generators.trajectories import TrajectoryPlan, nested_strides, write_trajectories
from neuralops.data.schema import DatasetMetadata
from neuralops.errors import ConfigError
from neuralops.spectral.pseudospectral import require_non_negative, require_positive

BURGERS_SPEED_BOUND = 3.0
"""Speed used for the default Burgers step ``dt = 0.5 dx / 3``: the largest ``max|u0|`` of the
default initial field over 2000 draws was 2.68, and viscous Burgers never exceeds its initial
maximum; ETDRK4 stays stable up to about 2.6 times the nominal CFL, so rarer peaks are safe."""
SWE_DEPTH_BOUND = 1.2
"""Default shallow-water step: gravity-wave speed ``sqrt(g * 1.2 * mean_depth)`` plus
``5 * rms_velocity`` (the balanced random states stay well inside both bounds)."""
SWE_SPEED_FACTOR = 5.0


def _output_times(final_time: float, n_times: int) -> np.ndarray:
    require_positive("--final-time", final_time)
    if n_times < 2:
        raise ConfigError(f"--n-times must be >= 2 (the initial state and at least one later one), got {n_times}")
    return np.linspace(0.0, final_time, n_times)


def _check_common(dt: float | None, batch_size: int) -> None:
    if dt is not None:
        require_positive("--dt", dt)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")


def _check_periodic(n: int) -> None:
    if n < 8 or n % 2:
        raise ConfigError(f"--resolutions: a periodic spectral grid needs an even number of points >= 8, got {n}")


def _periodic_strides(sizes: list[int]) -> tuple[int, dict[int, int]]:
    for n in sizes:
        _check_periodic(n)
    finest = max(sizes)
    return finest, nested_strides(sizes, finest, lambda f, c: f // c if f % c == 0 else None, "a coarse size must divide the finest")


def _as_ids(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64).ravel()


@dataclass(frozen=True)
class BurgersOptions:
    """Options of ``burgers`` (1-D viscous Burgers, FNO initial field ``N(0, 625(-Δ+25)^-2)``)."""

    viscosity: float = field(default=0.01, metadata={"help": "kinematic viscosity nu"})
    final_time: float = field(default=1.0, metadata={"help": "time of the last stored state"})
    n_times: int = field(default=21, metadata={"help": "stored states, equally spaced from t=0 to --final-time"})
    dt: float | None = field(default=None, metadata={"help": "largest time step (default 0.5 dx / 3, see BURGERS_SPEED_BOUND)"})
    batch_size: int = field(default=32, metadata={"help": "samples solved together (vectorized)"})


def _solve_burgers(seed: int, n: int, viscosity: float, times: np.ndarray, dt: float, ids: np.ndarray) -> np.ndarray:
    u0 = torch.stack([sample_burgers_initial_conditions(1, n, sample_torch_generator(seed, i))[0] for i in ids])
    return solve_burgers(u0, viscosity, times.tolist(), dt=dt)[0].numpy().astype(np.float32)


def burgers_plan(seed: int, options: BurgersOptions, n: int) -> TrajectoryPlan:
    """Metadata, times and batch solver of Burgers on the ``n``-point grid (options checked)."""
    require_non_negative("--viscosity", options.viscosity)
    _check_common(options.dt, options.batch_size)
    _check_periodic(n)
    times = _output_times(options.final_time, options.n_times)
    dt = options.dt if options.dt is not None else BURGERS_CFL * (BURGERS_DOMAIN_LENGTH / n) / BURGERS_SPEED_BOUND
    metadata = DatasetMetadata(
        name="burgers",
        description="1-D viscous Burgers u_t + (u^2/2)_x = nu u_xx on [0, 1), periodic; u0 ~ N(0, 625 (-Laplacian + 25)^-2). State u.",
        axes=("x",), boundary="periodic", grid="periodic", coarsening="subsampled", layout="trajectories",
        channels=("u",), time_units="1",
        pde_params={"viscosity": options.viscosity, "dt": dt, "seed": int(seed),
                    "solver": "Fourier pseudo-spectral, 2/3 dealiasing, ETDRK4, solved at the finest grid"},
    )
    return TrajectoryPlan(metadata, times, partial(_solve_burgers, int(seed), n, options.viscosity, times, dt), options.batch_size)


def burgers_samples(seed: int, ids: Sequence[int] | np.ndarray, options: BurgersOptions, resolution: int) -> dict[str, np.ndarray]:
    """Burgers trajectories of the samples ``ids`` solved on the ``resolution``-point grid:
    ``{"trajectory": float32 (B, T, 1, n)}`` (a file's coarser grids are subsamples of its finest)."""
    return {"trajectory": burgers_plan(seed, options, resolution).solve(_as_ids(ids))}


def write_burgers(request: GenerationRequest, options: BurgersOptions) -> None:
    """Burgers trajectories ``u`` of shape ``(T, 1, N)`` per sample on ``[0, 1)``."""
    finest, strides = _periodic_strides(list(request.samples_at))
    plan = burgers_plan(request.seed, options, finest)
    coords = {n: {"x": burgers_grid(n).numpy()} for n in request.samples_at}
    write_trajectories(request, plan, coords, strides)


@dataclass(frozen=True)
class NavierStokesOptions:
    """Options of ``navier_stokes`` (2-D vorticity on the unit torus, FNO initial field)."""

    viscosity: float = field(default=1e-3, metadata={"help": "kinematic viscosity nu"})
    final_time: float | None = field(default=None, metadata={"help": "time of the last stored state (default: the FNO horizon for "
                                                                      "nu = 1e-3 / 1e-4 / 1e-5, i.e. 50 / 30 / 20; else 20)"})
    n_times: int = field(default=21, metadata={"help": "stored states, equally spaced from t=0 to --final-time"})
    forcing: str = field(default="fno", metadata={"help": "forcing preset: fno (0.1 (sin 2pi(x+y) + cos 2pi(x+y))) or none",
                                                  "choices": ("fno", "none")})
    dt: float = field(default=FNO_TIME_STEP, metadata={"help": "largest time step"})
    batch_size: int = field(default=16, metadata={"help": "samples solved together (vectorized)"})


def _solve_navier_stokes(seed: int, n: int, viscosity: float, forcing: str, times: np.ndarray, dt: float, ids: np.ndarray) -> np.ndarray:
    w0 = torch.stack([sample_fno_initial_vorticity(1, n, sample_torch_generator(seed, i))[0] for i in ids])
    force = fno_forcing(n) if forcing == "fno" else None
    return solve_navier_stokes(w0, viscosity, times.tolist(), dt=dt, forcing=force)[0].numpy().astype(np.float32)


def navier_stokes_plan(seed: int, options: NavierStokesOptions, n: int) -> TrajectoryPlan:
    """Metadata, times and batch solver of Navier-Stokes on the ``n x n`` grid (options checked)."""
    require_non_negative("--viscosity", options.viscosity)
    _check_common(options.dt, options.batch_size)
    _check_periodic(n)
    if options.forcing not in ("fno", "none"):
        raise ConfigError(f"--forcing={options.forcing!r} is not a forcing preset; expected one of ['fno', 'none']")
    final_time = options.final_time if options.final_time is not None else FNO_FINAL_TIMES.get(options.viscosity, 20.0)
    times = _output_times(final_time, options.n_times)
    metadata = DatasetMetadata(
        name="navier_stokes",
        description="2-D incompressible Navier-Stokes, vorticity form, on the unit torus; w0 ~ N(0, 7^3 (-Laplacian + 49)^-2.5); "
                    f"forcing {options.forcing}. State w (vorticity).",
        axes=("x", "y"), boundary="periodic", grid="periodic", coarsening="subsampled", layout="trajectories",
        channels=("w",), time_units="1",
        pde_params={"viscosity": options.viscosity, "forcing": options.forcing, "dt": options.dt, "seed": int(seed),
                    "solver": "Fourier pseudo-spectral, 2/3 dealiasing, ETDRK4, solved at the finest grid"},
    )
    solve = partial(_solve_navier_stokes, int(seed), n, options.viscosity, options.forcing, times, options.dt)
    return TrajectoryPlan(metadata, times, solve, options.batch_size)


def navier_stokes_samples(seed: int, ids: Sequence[int] | np.ndarray, options: NavierStokesOptions, resolution: int) -> dict[str, np.ndarray]:
    """Vorticity trajectories of the samples ``ids`` solved on the ``resolution``² grid:
    ``{"trajectory": float32 (B, T, 1, n, n)}`` (a file's coarser grids are subsamples of its finest)."""
    return {"trajectory": navier_stokes_plan(seed, options, resolution).solve(_as_ids(ids))}


def write_navier_stokes(request: GenerationRequest, options: NavierStokesOptions) -> None:
    """Vorticity trajectories ``w`` of shape ``(T, 1, N, N)`` per sample on ``[0, 1)^2``."""
    finest, strides = _periodic_strides(list(request.samples_at))
    plan = navier_stokes_plan(request.seed, options, finest)
    grid = {n: (np.arange(n) * FNO_DOMAIN_LENGTH / n) for n in request.samples_at}
    coords = {n: {"x": grid[n], "y": grid[n]} for n in request.samples_at}
    write_trajectories(request, plan, coords, strides)


@dataclass(frozen=True)
class ShallowWaterOptions:
    """Options of ``shallow_water`` (rotating shallow water on the sphere, random balanced flows)."""

    final_time: float = field(default=86400.0, metadata={"help": "time of the last stored state, seconds"})
    n_times: int = field(default=25, metadata={"help": "stored states, equally spaced from t=0 to --final-time"})
    rms_velocity: float = field(default=20.0, metadata={"help": "area-weighted rms speed of the initial flow, m/s"})
    dt: float | None = field(default=None, metadata={"help": "largest time step in seconds (default: 0.5 of the ETDRK4 gravity-wave "
                                                             "limit at speed sqrt(1.2 g H) + 5 rms_velocity)"})
    batch_size: int = field(default=8, metadata={"help": "samples solved together (vectorized)"})


def sphere_shape(n: int) -> tuple[int, int]:
    """Grid of ``--resolutions n`` for shallow water: ``(nlat, nlon) = (n, 2 (n - 1))``."""
    return n, 2 * (n - 1)


def _check_sphere(n: int) -> None:
    if n < 9:
        raise ConfigError(f"--resolutions: shallow water needs nlat >= 9, got {n}")


def _solve_shallow_water(seed: int, n: int, rms_velocity: float, times: np.ndarray, dt: float, ids: np.ndarray) -> np.ndarray:
    nlat, nlon = sphere_shape(n)
    states = torch.stack([
        sample_shallow_water_initial_conditions(1, nlat, nlon, sample_torch_generator(seed, i), rms_velocity=rms_velocity)[0]
        for i in ids
    ])
    return solve_shallow_water(states, times.tolist(), dt=dt)[0].numpy().astype(np.float32)


def shallow_water_plan(seed: int, options: ShallowWaterOptions, n: int) -> TrajectoryPlan:
    """Metadata, times and batch solver of shallow water on the ``n x 2(n-1)`` grid (options checked)."""
    require_positive("--rms-velocity", options.rms_velocity)
    _check_common(options.dt, options.batch_size)
    _check_sphere(n)
    times = _output_times(options.final_time, options.n_times)
    lmax = default_truncation(n)
    speed = math.sqrt(GRAVITY * SWE_DEPTH_BOUND * GALEWSKY_MEAN_DEPTH) + SWE_SPEED_FACTOR * options.rms_velocity
    dt = options.dt if options.dt is not None else SWE_CFL * 2.8 * EARTH_RADIUS / (speed * lmax)
    metadata = DatasetMetadata(
        name="shallow_water",
        description="Rotating shallow-water equations on the sphere (Earth parameters), random balanced non-divergent initial flows "
                    "around a 10 km mean depth. State (h [m], u [m/s eastward], v [m/s northward]).",
        axes=("colatitude", "longitude"), boundary="none", grid="equiangular", coarsening="subsampled", layout="trajectories",
        channels=("h", "u", "v"), time_units="s",
        pde_params={"rms_velocity": options.rms_velocity, "dt": dt, "lmax": lmax, "seed": int(seed),
                    "solver": "spherical-harmonic transform method (torch-harmonics), ETDRK4 + hyperdiffusion, solved at the finest grid"},
    )
    return TrajectoryPlan(metadata, times, partial(_solve_shallow_water, int(seed), n, options.rms_velocity, times, dt), options.batch_size)


def shallow_water_samples(seed: int, ids: Sequence[int] | np.ndarray, options: ShallowWaterOptions, resolution: int) -> dict[str, np.ndarray]:
    """``(h, u, v)`` trajectories of the samples ``ids`` solved on the ``resolution x 2(resolution-1)``
    grid: ``{"trajectory": float32 (B, T, 3, nlat, nlon)}``."""
    return {"trajectory": shallow_water_plan(seed, options, resolution).solve(_as_ids(ids))}


def write_shallow_water(request: GenerationRequest, options: ShallowWaterOptions) -> None:
    """Trajectories of ``(h, u, v)`` of shape ``(T, 3, nlat, nlon)`` per sample (m, m/s)."""
    sizes = list(request.samples_at)
    for n in sizes:
        _check_sphere(n)
    finest = max(sizes)
    strides = nested_strides(sizes, finest, lambda f, c: (f - 1) // (c - 1) if (f - 1) % (c - 1) == 0 else None,
                             "N_c - 1 must divide N_f - 1, e.g. 17, 33, 65")
    plan = shallow_water_plan(request.seed, options, finest)
    coords = {}
    for n in sizes:
        grid = sphere_grid(*sphere_shape(n))
        coords[n] = {"colatitude": grid.colatitude.numpy(), "longitude": grid.longitude.numpy()}
    write_trajectories(request, plan, coords, strides)
