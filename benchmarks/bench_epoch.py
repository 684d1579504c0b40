"""End-to-end training epochs on our HDF5 data path: neuralops' FNO and TFNO against
neuraloperator's FNO, and the share of the epoch spent reading data.

    python benchmarks/bench_epoch.py [--samples 512] [--grid 64] [--batch 16] [--repeats 5]
                                     [--threads 1] [--data FILE] [--out FILE] [--quick]

Data: a Darcy file made by our generator (``python -m neuralops.data.generate darcy``) in a
temporary directory, ``--samples`` training samples on a ``--grid``² vertex grid, unless
``--data`` names an existing file in our schema. Each epoch reads the training split through
the loader ``train.py`` uses (:func:`neuralops.data.factory.open_split` + ``DataLoader``,
shuffled with a fixed seed, batch ``--batch``) and takes one AdamW step on the MSE per batch.

Runs, interleaved in one process (one epoch of each, in turn, ``--repeats`` times, after one
warm-up epoch each):

* ``neuralops FNO``: our FNO (the matched model of ``bench_fno_step.py``: 1,192,801 parameters)
  reading the HDF5 file;
* ``neuralops TFNO``: the same with Tucker spectral weights of rank 0.1 (10 % of the dense
  spectral parameters), reading the HDF5 file;
* ``neuralop FNO``: neuraloperator's FNO (``n_modes=(16, 16)``) on the same batches held in
  memory (a ``TensorDataset``), so it is not charged for reading;
* ``data only``: the HDF5 loader without a model: the time our data path adds to an epoch.

Printed and written: median and minimum epoch time, and the ratio of medians to neuraloperator's
(``data only``: the share of our FNO's median epoch).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fno_step import interleaved, machine_line, ours, theirs, write_results  # noqa: E402
from neuralops.data.factory import DataConfig, open_split, train_views  # noqa: E402
from neuralops.data.generate import main as generate  # noqa: E402


def make_darcy(path: Path, samples: int, grid: int) -> Path:
    """A Darcy file of ``samples`` training samples on a ``grid``² grid (solved on that grid)."""
    status = generate([
        "darcy", "--samples", str(samples), "--resolutions", str(grid), "--reference-resolution", str(grid),
        "--val-fraction", "0", "--test-fraction", "0", "--out", str(path), "--no-progress", "--overwrite",
    ])
    if status != 0:
        raise RuntimeError(f"generating {path} failed (status {status})")
    return path


def epoch_run(model: torch.nn.Module | None, dataset, batch: int, seed: int = 0) -> Callable[[], None]:
    """One epoch over ``dataset`` (items ``{"x", "y"}`` or ``(x, y)``), shuffled with ``seed``;
    an AdamW step per batch, or only the reading when ``model`` is None."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3) if model is not None else None

    def run() -> None:
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed))
        for item in loader:
            x, y = (item["x"], item["y"]) if isinstance(item, dict) else item
            if model is None:
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = torch.mean((model(x) - y) ** 2)
            loss.backward()
            optimizer.step()

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--grid", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="an existing data file in our schema (default: generate one)")
    parser.add_argument("--quick", action="store_true", help="32 samples at 16², hidden 8, 2 repeats (a smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="markdown results file (default: print only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hidden = 32
    if args.quick:
        args.samples, args.grid, args.batch, args.repeats, hidden = 32, 16, 8, 2, 8
    with tempfile.TemporaryDirectory() as tmp:
        path = args.data or make_darcy(Path(tmp) / "darcy.h5", args.samples, args.grid)
        cfg = DataConfig.from_dict({"path": str(path)})
        dataset = open_split(cfg, "train", train_views(cfg)[0])
        in_memory = TensorDataset(*(torch.stack([dataset[i][k] for i in range(len(dataset))]) for k in ("x", "y")))
        torch.manual_seed(0)
        runs = {
            "neuralops FNO": epoch_run(ours(hidden), dataset, args.batch),
            "neuralops TFNO": epoch_run(ours(hidden, "tucker"), dataset, args.batch),
            "neuralop FNO": epoch_run(theirs(hidden), in_memory, args.batch) if theirs(hidden) is not None else None,
            "data only": epoch_run(None, dataset, args.batch),
        }
        runs = {k: r for k, r in runs.items() if r is not None}
        times = interleaved(runs, args.repeats, warmup=1).wall
    median = {k: statistics.median(t) for k, t in times.items()}
    reference = median.get("neuralop FNO")
    lines = [
        "# Training epoch on our HDF5 data path against neuraloperator (CPU)", "",
        f"Command: `python benchmarks/bench_epoch.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
        f"Machine: {machine_line(args.threads)}. {len(dataset)} Darcy samples at {args.grid}², batch {args.batch}, AdamW; "
        f"epochs interleaved in one process, medians and minima over {args.repeats} repeats.", "",
        "| run | median s | min s | ratio |", "|---|---|---|---|",
    ]
    for name, t in times.items():
        if name == "data only":
            ratio = f"{median[name] / median['neuralops FNO']:.3f} of our FNO epoch"
        elif name == "neuralops TFNO":
            ratio = f"{median[name] / reference:.2f} (TFNO / our FNO: {median[name] / median['neuralops FNO']:.2f})" if reference else "n/a"
        else:
            ratio = f"{median[name] / reference:.2f}" if reference else "n/a"
        lines.append(f"| {name} | {median[name]:.2f} | {min(t):.2f} | {ratio} |")
    print("\n".join(lines[4:]))
    write_results(args.out, lines)


if __name__ == "__main__":
    main()
