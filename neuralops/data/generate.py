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

Sharded and parallel generation::

    python -m neuralops.data.generate darcy --samples 2000 --shard-size 500 --workers 4 --resolutions 33 --out darcy_dir/
    torchrun --standalone --nproc_per_node=4 -m neuralops.data.generate navier_stokes --samples 1000 --resolutions 64 --out ns_dir/

``--shard-size N`` writes a folder of shards, shard ``k`` holding sample ids ``kN … (k+1)N - 1``
(``docs/data_format.md``), read back as one dataset with the same samples as one file. The
folder appears complete at ``--out`` or not at all. ``--workers N`` solves batches in N worker
processes (:mod:`neuralops.data.generators.parallel`); the batches, hence the samples, are the
same as with one. Under ``torchrun`` (``WORLD_SIZE > 1``) every rank writes every
``WORLD_SIZE``-th shard (default ``--shard-size``: one shard per rank) into a staging folder
that rank 0 moves onto ``--out`` once all ranks succeeded. Every user error is one line on
stderr and a non-zero exit (2: usage, 1: a failure while generating), and leaves no file behind;
SIGTERM is handled like Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch.distributed as dist

from neuralops.data.generators import GenerationRequest, GeneratorSpec, assign_splits
from neuralops.data.generators.parallel import WorkerPool
from neuralops.data.generators.darcy import DarcyOptions, darcy_samples, write_darcy
from neuralops.data.generators.trajectory_writers import (
    BurgersOptions,
    NavierStokesOptions,
    ShallowWaterOptions,
    burgers_samples,
    navier_stokes_samples,
    shallow_water_samples,
    write_burgers,
    write_navier_stokes,
    write_shallow_water,
)
from neuralops.data.schema import shard_file_name
from neuralops.errors import ConfigError, NeuralopsError
from neuralops.io import atomic_directory, atomic_write, signals_as_exceptions

GENERATORS: dict[str, GeneratorSpec] = {
    "darcy": GeneratorSpec(write_darcy, darcy_samples, DarcyOptions,
                           "2-D Darcy flow a -> u (pairs), on vertex or cell grids, solved per grid or once on a finer reference grid and restricted"),
    "burgers": GeneratorSpec(write_burgers, burgers_samples, BurgersOptions, "1-D viscous Burgers trajectories, periodic"),
    "navier_stokes": GeneratorSpec(write_navier_stokes, navier_stokes_samples, NavierStokesOptions,
                                   "2-D Navier-Stokes vorticity trajectories on the torus"),
    "shallow_water": GeneratorSpec(write_shallow_water, shallow_water_samples, ShallowWaterOptions,
                                   "rotating shallow water on the sphere, trajectories of (h, u, v)"),
}
"""Generator name → spec (writer, sample function, options dataclass, summary). Add an entry to
expose a generator; ``GENERATORS[name].sample(seed, index, options, resolution)`` is one sample."""

MIN_POINTS = 3


def _integer(minimum: int, what: str, too_small: str | None = None) -> typing.Callable[[str], int]:
    """An argparse type: an integer ``>= minimum``. Errors say ``expected <what>, got ...``, or
    ``too_small`` (formatted with the value) below the minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError((too_small or f"expected {what}, got {{}}").format(value))
        return value

    return parse


_points = _integer(MIN_POINTS, "an integer number of points per axis", f"a grid needs at least {MIN_POINTS} points per axis, got {{}}")
_count = _integer(1, "a positive integer")
_seed = _integer(0, "a non-negative integer")


def _subset(text: str) -> tuple[int, int]:
    points, sep, count = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected POINTS:COUNT, e.g. 33:250, got {text!r}")
    return _points(points), _count(count)


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


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    summaries = "; ".join(f"{name}: {spec.summary}" for name, spec in GENERATORS.items())
    parser = OneLineParser(
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
    parser.add_argument("--seed", type=_seed, default=0, help="base random seed, a non-negative integer (default 0)")
    parser.add_argument(
        "--shard-size", type=_count, metavar="N",
        help="write --out as a folder of shards of N consecutive sample ids each, read back as one dataset "
             "(default: one file; under torchrun: one shard per rank)",
    )
    parser.add_argument("--workers", type=_count, default=1, metavar="N",
                        help="solve batches in N worker processes (default 1: in this process); the samples do not depend on it")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_generator_flags(parser)
    return parser


def request_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> GenerationRequest:
    """Turn parsed arguments into a :class:`GenerationRequest`; usage errors exit via ``parser.error``."""
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    if args.shard_size is None and args.out.is_dir():
        parser.error(f"--out {args.out} is a directory; give a file name (or --shard-size N to write a folder of shards)")
    if args.shard_size is not None and args.out.is_file():
        parser.error(f"--out {args.out} is a file; with --shard-size give a folder")
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


def shard_requests(request: GenerationRequest, shard_size: int, folder: Path, name: str) -> list[GenerationRequest]:
    """The requests of the shards of ``request`` in ``folder``: shard ``k`` of ``ceil(n / shard_size)``
    holds ids ``k * shard_size …`` at the grids that hold them, in the file
    :func:`~neuralops.data.schema.shard_file_name` ``(name, k, count)``."""
    count = math.ceil(request.n_samples / shard_size)
    shards = []
    for k in range(count):
        low, high = k * shard_size, min((k + 1) * shard_size, request.n_samples)
        samples_at = {n: ids[(ids >= low) & (ids < high)] for n, ids in request.samples_at.items()}
        shards.append(dataclasses.replace(request, out=folder / shard_file_name(name, k, count), samples_at=samples_at, shard=(k, count)))
    return shards


def _world() -> tuple[int, int]:
    """``(rank, world size)`` from torchrun's environment (``(0, 1)`` outside torchrun)."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} are not integers") from None


def _write_rank_shards(spec: GeneratorSpec, shards: list[GenerationRequest], options: object, rank: int, world: int) -> None:
    """Under torchrun: write this rank's shards (every ``world``-th), then raise one
    :class:`NeuralopsError` on every rank if any rank failed (so rank 0 discards the folder)."""
    error = None
    try:
        for shard in shards[rank::world]:
            spec.write(shard, options)
    except (NeuralopsError, OSError) as err:
        error = str(err)
    errors: list[str | None] = [None] * world
    dist.all_gather_object(errors, error)
    ranks: dict[str, list[int]] = {}
    for r, message in enumerate(errors):
        if message is not None:
            ranks.setdefault(message, []).append(r)
    if ranks:
        raise NeuralopsError("; ".join(f"rank {', '.join(map(str, rs))}: {message}" for message, rs in ranks.items()))


def generate(name: str, request: GenerationRequest, options: object, shard_size: int | None = None) -> None:
    """Write ``request`` with the generator ``name``: one file, or with ``shard_size`` a folder of
    shards.

    Under torchrun (``WORLD_SIZE > 1``, a gloo process group is created here) the ranks share
    the shards (default ``shard_size``: one shard per rank) and rank 0 moves the staging folder
    onto ``request.out`` once every rank succeeded. The file or folder appears complete or not
    at all (:func:`~neuralops.io.atomic_write`, :func:`~neuralops.io.atomic_directory`).

    Raises:
        ConfigError, DataFormatError, StorageError (disk full): one line each; on any rank's
        failure under torchrun, a :class:`NeuralopsError` naming the ranks.
    """
    rank, world = _world()
    spec = GENERATORS[name]
    if world == 1 and shard_size is None:
        atomic_write(request.out, lambda tmp: spec.write(dataclasses.replace(request, out=tmp, overwrite=True), options))
        return
    if world == 1:
        with atomic_directory(request.out) as staging:
            for shard in shard_requests(request, shard_size, staging, name):
                spec.write(shard, options)
        return
    shard_size = shard_size or math.ceil(request.n_samples / world)
    dist.init_process_group("gloo")
    try:
        with atomic_directory(request.out) if rank == 0 else contextlib.nullcontext() as staging:
            box = [None if staging is None else str(staging)]
            dist.broadcast_object_list(box, src=0)
            _write_rank_shards(spec, shard_requests(request, shard_size, Path(box[0]), name), options, rank, world)
    finally:
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse usage errors exit with 2, a
    failure while generating returns 1 after one ``error:`` line, SIGTERM exits with 143)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    request = request_from_args(args, parser)
    options = options_from_args(args, parser)
    try:
        with signals_as_exceptions(), (WorkerPool(args.workers) if args.workers > 1 else contextlib.nullcontext()) as pool:
            generate(args.generator, dataclasses.replace(request, pool=pool), options, args.shard_size)
    except (NeuralopsError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
