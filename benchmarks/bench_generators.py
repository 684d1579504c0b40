"""Wall-clock time per sample of the data-generator solvers on CPU, for several batch sizes.

Settings (float64, 2 threads unless ``--threads`` says otherwise):

* Burgers: N = 1024 on [0, 1), FNO initial conditions, nu = 0.1 (FNO/PDEBench Burgers), one
  time unit with 10 outputs, fixed dt = 1e-3 (max|u0| ~ 1.2 gives |u| k_max dt ~ 2.6, near the
  ETDRK4 limit 2.8; the solver's CFL default would pick ~4e-4, i.e. ~2.4x the work);
* Navier-Stokes: 64^2, FNO preset (nu = 1e-3, forcing, dt = FNO_TIME_STEP = 5e-3), simulated
  time ``--ns-time`` (default 5 time units, any positive number; outputs at every whole time
  unit and at the end; the FNO nu = 1e-3 data set runs to 50, so multiply the per-sample time
  by 10 for it);
* shallow water: 64 x 128 equiangular, lmax = mmax = 32, random balanced ICs, 1 simulated day
  with the CFL-based default step (~700 s).

Usage: ``python benchmarks/bench_generators.py [--threads 2] [--ns-time 5]``. Prints one line
per (solver, batch): seconds per batch and per sample.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from neuralops.data.generators.burgers import sample_burgers_initial_conditions, solve_burgers
from neuralops.data.generators.navier_stokes import (
    FNO_TIME_STEP,
    fno_forcing,
    sample_fno_initial_vorticity,
    solve_navier_stokes,
)
from neuralops.data.generators.shallow_water import sample_shallow_water_initial_conditions, solve_shallow_water


def report(name: str, batch: int, seconds: float) -> None:
    print(f"{name:<42s} batch {batch:>3d}: {seconds:8.2f} s/batch  {seconds / batch:8.3f} s/sample", flush=True)


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def positive(kind: type):
    """An argparse type: a finite ``kind`` (int or float) greater than 0."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    return parse


def output_times(final_time: float) -> list[float]:
    """Every whole time unit up to ``final_time``, and ``final_time`` itself."""
    return sorted({float(t) for t in range(1, math.floor(final_time) + 1)} | {float(final_time)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=positive(int), default=2)
    parser.add_argument("--ns-time", type=positive(float), default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)

    for batch in (1, 8, 32):
        u0 = sample_burgers_initial_conditions(batch, 1024, generator)
        times = [0.1 * (i + 1) for i in range(10)]
        report("burgers N=1024 nu=0.1 T=1 dt=1e-3", batch, timed(lambda: solve_burgers(u0, 0.1, times, dt=1e-3)))

    forcing = fno_forcing(64)
    for batch in (1, 8, 32):
        w0 = sample_fno_initial_vorticity(batch, 64, generator)
        times = output_times(args.ns_time)
        seconds = timed(lambda: solve_navier_stokes(w0, 1e-3, times, dt=FNO_TIME_STEP, forcing=forcing))
        report(f"navier-stokes 64^2 nu=1e-3 T={args.ns_time:g} dt={FNO_TIME_STEP:g}", batch, seconds)

    for batch in (1, 4, 16):
        state = sample_shallow_water_initial_conditions(batch, 64, 128, generator, lmax=32)
        times = [6 * 3600.0 * (i + 1) for i in range(4)]
        report("shallow-water 64x128 lmax=32 1 day", batch, timed(lambda: solve_shallow_water(state, times, lmax=32, mmax=32)))


if __name__ == "__main__":
    main()
