"""Command line: generate a dataset file in the neuralops schema.

Example (the shipped ``data/darcy_small.h5``)::

    python -m neuralops.data.generate darcy --samples 1250 --val-fraction 0.08 --test-fraction 0.08 \\
        --resolutions 17 --test-resolutions 17 33 65 --seed 0 --out data/darcy_small.h5

Darcy on cell centres (``--grid cell``: ``N`` cells per axis, ``u = 0`` on the boundary faces)::

    python -m neuralops.data.generate darcy --samples 1200 --resolutions 32 --test-resolutions 32 64 128 --grid cell --out darcy_cell.h5

Time-dependent data (trajectories; coarser grids are exact subsamples of the finest)::

    python -m neuralops.data.generate navier_stokes --samples 1000 --resolutions 64 32 --viscosity 1e-3 --out ns.h5
    python -m neuralops.data.generate burgers --samples 1000 --resolutions 1024 256 --out burgers.h5
    python -m neuralops.data.generate shallow_water --samples 200 --resolutions 33 17 --out swe.h5

Every split is generated on ``--resolutions`` unless ``--train-resolutions``,
``--val-resolutions`` or ``--test-resolutions`` give it its own grids; a grid then holds the
samples of every split that asks for it. ``--train-subset 33:250`` also stores the first 250
training samples on the 33-point grid (for ``data.train_resolutions=[17, 33]``, multi-resolution
training without the cost of every sample on the finer grid). Generator-specific flags (listed per generator in
``--help``) come from each generator's options dataclass; a flag that the chosen generator does
not take is a usage error. The file is written atomically and an existing file is kept unless
``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuralops.data.generators import GenerationRequest, GeneratorSpec, assign_splits
from neuralops.data.generators.darcy import DarcyOptions, write_darcy
from neuralops.data.generators.trajectory_writers import (
    BurgersOptions,
    NavierStokesOptions,
    ShallowWaterOptions,
    write_burgers,
    write_navier_stokes,
    write_shallow_water,
)
from neuralops.errors import ConfigError, NeuralopsError

GENERATORS: dict[str, GeneratorSpec] = {
    "darcy": GeneratorSpec(write_darcy, DarcyOptions, "2-D Darcy flow a -> u (pairs), on vertex or cell grids, solved per grid or once on a finer reference grid and restricted"),
    "burgers": GeneratorSpec(write_burgers, BurgersOptions, "1-D viscous Burgers trajectories, periodic"),
    "navier_stokes": GeneratorSpec(write_navier_stokes, NavierStokesOptions, "2-D Navier-Stokes vorticity trajectories on the torus"),
    "shallow_water": GeneratorSpec(write_shallow_water, ShallowWaterOptions, "rotating shallow water on the sphere, trajectories of (h, u, v)"),
}
"""Generator name → spec (writer, options dataclass, summary). Add an entry to expose a generator."""

MIN_POINTS = 3


def _points(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer number of points per axis, got {text!r}") from None
    if value < MIN_POINTS:
        raise argparse.ArgumentTypeError(f"a grid needs at least {MIN_POINTS} points per axis, got {value}")
    return value


def _subset(text: str) -> tuple[int, int]:
    points, sep, count = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected POINTS:COUNT, e.g. 33:250, got {text!r}")
    return _points(points), _count(count)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return value


def _generator_flags() -> dict[str, dict]:
    """Flag name → {"type", "choices", "help", "defaults": {generator: default}} over all generators."""
    flags: dict[str, dict] = {}
    for name, spec in GENERATORS.items():
        hints = typing.get_type_hints(spec.options)
        for option in dataclasses.fields(spec.options):
            hint = hints[option.name]
            if isinstance(hint, types.UnionType):
                hint = next(t for t in typing.get_args(hint) if t is not type(None))
            entry = flags.setdefault(option.name, {"type": hint, "choices": option.metadata.get("choices"), "help": {}, "defaults": {}})
            entry["help"][name] = option.metadata.get("help", "")
            entry["defaults"][name] = option.default
    return flags


def _add_generator_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generator options (each lists the generators it applies to, with their defaults)")
    for option, entry in _generator_flags().items():
        text = "; ".join(f"{gen}: {entry['help'][gen]} [default {default}]" for gen, default in entry["defaults"].items())
        group.add_argument(
            f"--{option.replace('_', '-')}", dest=f"option_{option}", type=entry["type"], choices=entry["choices"], default=None,
            metavar=option.upper() if entry["choices"] is None else None, help=text,
        )


def options_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> object:
    """The chosen generator's options dataclass from the parsed flags; a flag of another
    generator is a usage error (exit 2)."""
    spec = GENERATORS[args.generator]
    own = {option.name for option in dataclasses.fields(spec.options)}
    given = {key[len("option_"):]: value for key, value in vars(args).items() if key.startswith("option_") and value is not None}
    foreign = sorted(set(given) - own)
    if foreign:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in foreign)
        parser.error(f"{flags} does not apply to {args.generator}; its options: {', '.join('--' + n.replace('_', '-') for n in sorted(own))}")
    return spec.options(**given)


def build_parser() -> argparse.ArgumentParser:
    summaries = "; ".join(f"{name}: {spec.summary}" for name, spec in GENERATORS.items())
    parser = argparse.ArgumentParser(
        prog="python -m neuralops.data.generate",
        description=(
            "Generate a PDE dataset in the neuralops HDF5 schema (docs/data_format.md). Sample i is a "
            f"function of (seed, i) only, and is the same field on every grid. Generators: {summaries}."
        ),
        epilog=(
            "example: python -m neuralops.data.generate darcy --samples 1250 --val-fraction 0.08 "
            "--test-fraction 0.08 --resolutions 17 --test-resolutions 17 33 65 --out data/darcy_small.h5"
        ),
    )
    parser.add_argument("generator", choices=sorted(GENERATORS), help="which PDE to generate")
    parser.add_argument("--samples", type=_count, required=True, help="total number of samples over all splits")
    parser.add_argument("--out", type=Path, required=True, help="output HDF5 file")
    parser.add_argument(
        "--resolutions", type=_points, nargs="+", required=True, metavar="N",
        help="grids, as points per axis (e.g. 17 33 65), for every split without its own option below",
    )
    for split in ("train", "val", "test"):
        parser.add_argument(
            f"--{split}-resolutions", type=_points, nargs="+", metavar="N",
            help=f"grids for the {split} split only (default: --resolutions)",
        )
    parser.add_argument(
        "--train-subset", type=_subset, nargs="+", default=[], metavar="N:COUNT",
        help="also store the first COUNT training samples on the N-point grid (multi-resolution training)",
    )
    parser.add_argument("--val-fraction", type=_fraction, default=0.1, help="fraction of samples in val (default 0.1)")
    parser.add_argument("--test-fraction", type=_fraction, default=0.1, help="fraction of samples in test (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_generator_flags(parser)
    return parser


def request_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> GenerationRequest:
    """Turn parsed arguments into a :class:`GenerationRequest`; usage errors exit via ``parser.error``."""
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    if args.out.is_dir():
        parser.error(f"--out {args.out} is a directory; give a file name")
    try:
        splits = assign_splits(args.samples, args.val_fraction, args.test_fraction)
    except ConfigError as err:
        parser.error(str(err))
    held: dict[int, list[np.ndarray]] = {}
    for split, ids in splits.items():
        grids = getattr(args, f"{split}_resolutions") or args.resolutions
        for n in set(grids):
            held.setdefault(n, []).append(ids)
    for n, count in args.train_subset:
        if count > len(splits["train"]):
            parser.error(f"--train-subset {n}:{count}: the train split has only {len(splits['train'])} samples")
        held.setdefault(n, []).append(splits["train"][:count])
    samples_at = {n: np.unique(np.concatenate(parts)) for n, parts in sorted(held.items())}
    return GenerationRequest(
        out=args.out,
        n_samples=args.samples,
        splits=splits,
        samples_at=samples_at,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse usage errors exit with 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    request = request_from_args(args, parser)
    options = options_from_args(args, parser)
    try:
        GENERATORS[args.generator].write(request, options)
    except (NeuralopsError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
