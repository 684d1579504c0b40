"""Batch slicing (``model.batch_slice_mib``) on and off, per model family: training step and
inference time of each family's default model with its batch in 8 MiB slices against the whole
batch at once, on one CPU thread.

    python benchmarks/bench_slicing.py [--families fno lsm t1 mgno] [--grid 128] [--repeats 7]
                                       [--allocators default keep-freed] [--out FILE] [--quick]

Each family is built with its constructor defaults (the FNO as in ``bench_fno_step.py``: 32
channels, ``n_modes=[8, 9]``, periodic, no padding) for one input and one output channel on a
2-D grid; the sliced and the whole-batch model share their weights. Step: AdamW on the MSE at batch 16; inference: forward
under ``torch.no_grad`` at batch 32. The two models run interleaved in one process per family
and allocator setting, a fresh process each (glibc's ``malloc`` adapts to what a process freed
before; see ``bench_fno_step.py``): ``default`` is glibc's malloc as a Python process starts,
``keep-freed`` calls :func:`neuralops.runtime.keep_freed_memory` first, as ``train.py`` does.
Ratios are sliced / whole, of medians. Why slicing helps: :mod:`neuralops.models.slicing`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fno_step import (  # noqa: E402
    ALLOCATORS,
    TIME_COLUMNS,
    emit,
    inference,
    interleaved,
    machine_line,
    summary_rows,
    train_step,
    write_results,
)
from neuralops.models import build  # noqa: E402
from neuralops.runtime import keep_freed_memory  # noqa: E402

FAMILY_OPTIONS = {
    "fno": {"n_modes": [8, 9], "grid": "periodic", "domain_padding": 0.0},
    "lsm": {"n_dims": 2},
    "t1": {"n_modes": [8, 8]},
    "mgno": {"n_dims": 2},
}


def pair(family: str, quick: bool) -> dict[str, torch.nn.Module]:
    """The family's default model whole-batch and sliced (8 MiB), with the same weights."""
    options = {**FAMILY_OPTIONS[family], **({"hidden_channels": 8} if quick and family in ("fno", "t1", "mgno") else {})}
    torch.manual_seed(0)
    whole = build(family, in_channels=1, out_channels=1, **options, batch_slice_mib=None)
    sliced = build(family, in_channels=1, out_channels=1, **options)
    sliced.load_state_dict(whole.state_dict())
    return {"whole": whole, "sliced": sliced}


def family_rows(family: str, grid: int, batch: int, infer_batch: int, repeats: int, quick: bool) -> list[str]:
    """Markdown rows for one family: step and inference of both models, interleaved."""
    models = pair(family, quick)
    x, y = torch.randn(batch, 1, grid, grid), torch.randn(batch, 1, grid, grid)
    x_infer = torch.randn(infer_batch, 1, grid, grid)
    rows = []
    for label, make in (("step", lambda m: train_step(m, x, y)), ("inference", lambda m: inference(m, x_infer))):
        timings = interleaved({name: make(model) for name, model in models.items()}, repeats)
        rows += [row.replace("| whole |", f"| {family} whole |").replace("| sliced |", f"| {family} sliced |")
                 for row in summary_rows(timings, "whole", {name: label for name in models})]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILY_OPTIONS), choices=list(FAMILY_OPTIONS))
    parser.add_argument("--grid", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--allocators", nargs="+", default=["default", "keep-freed"], choices=sorted(ALLOCATORS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats (a smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="markdown results file (default: print only)")
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "ALLOCATOR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    batch, infer_batch = (16, 32) if not args.quick else (2, 2)
    if args.quick:
        args.grid, args.repeats = 16, 2
    if args.child:
        family, allocator = args.child
        if allocator == "keep-freed":
            keep_freed_memory()
        print("\n".join(family_rows(family, args.grid, batch, infer_batch, args.repeats, args.quick)), flush=True)
        return
    lines: list[str] = []
    emit(lines, "# Batch slicing on and off per model family (cpu)", "",
         f"Command: `python benchmarks/bench_slicing.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
         f"Machine: {machine_line(1)}. {args.grid}², training step at batch {batch} (AdamW), inference at batch "
         f"{infer_batch} (no_grad); sliced (8 MiB) and whole-batch models with the same weights, interleaved in one "
         f"process per family and allocator setting; medians and minima over {args.repeats} repeats; ratios are "
         "sliced / whole.")
    for allocator in args.allocators:
        emit(lines, "", f"## {ALLOCATORS[allocator]}", "", f"| model | run | {TIME_COLUMNS} |", "|---|---|---|---|---|---|---|")
        for family in args.families:
            command = [sys.executable, str(Path(__file__).resolve()), "--child", family, allocator,
                       "--grid", str(args.grid), "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"bench_slicing: {family} ({allocator}) failed:\n{result.stderr[-2000:]}")
            emit(lines, *[line for line in result.stdout.splitlines() if line.startswith("|")])
    write_results(args.out, lines)


if __name__ == "__main__":
    main()
