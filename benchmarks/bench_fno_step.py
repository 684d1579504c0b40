"""Time one training step (forward + backward + Adam step) of neuralops' FNO against
``neuralop.models.FNO`` (neuraloperator) on the same input, in the same process.

Shapes (same parameter count for both models; neuraloperator's ``n_modes=(M1, M2)`` keeps the
same coefficients as our ``(M1/2, M2/2+1)``):

* darcy16: batch 64, 16x16 grid, hidden 24, neuralop n_modes (8, 8)
* grid64:  batch 16, 64x64 grid, hidden 32, neuralop n_modes (16, 16)

Timings are the minimum over interleaved repeats (ours, theirs, ours, ...), the figure least
disturbed by background load; medians are printed beside them. Run: ``python benchmarks/bench_fno_step.py [--threads N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neuralops.models import build

SHAPES = {
    "darcy16": dict(batch=64, grid=(16, 16), hidden=24, neuralop_modes=(8, 8)),
    "grid64": dict(batch=16, grid=(64, 64), hidden=32, neuralop_modes=(16, 16)),
}


def ours(shape: dict) -> torch.nn.Module:
    m1, m2 = shape["neuralop_modes"]
    return build("fno", in_channels=1, out_channels=1, n_modes=[m1 // 2, m2 // 2 + 1], hidden_channels=shape["hidden"])


def theirs(shape: dict) -> torch.nn.Module | None:
    try:
        from neuralop.models import FNO
    except ImportError:
        return None
    return FNO(n_modes=shape["neuralop_modes"], in_channels=1, out_channels=1, hidden_channels=shape["hidden"])


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        optimizer.step()

    return step


def time_once(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    for name in args.shapes:
        shape = SHAPES[name]
        x = torch.randn(shape["batch"], 1, *shape["grid"])
        y = torch.randn(shape["batch"], 1, *shape["grid"])
        models = {"neuralops": ours(shape)}
        baseline = theirs(shape)
        if baseline is not None:
            models["neuralop"] = baseline
        steps = {key: step_fn(model, x, y) for key, model in models.items()}
        for step in steps.values():
            for _ in range(3):
                step()
        times: dict[str, list[float]] = {key: [] for key in steps}
        for _ in range(args.repeats):
            for key, step in steps.items():
                times[key].append(time_once(step))
        # The minimum is the least disturbed by other processes; the median is printed beside it.
        medians = {key: min(t) * 1e3 for key, t in times.items()}
        spread = {key: statistics.median(t) * 1e3 for key, t in times.items()}
        params = {key: count(model) for key, model in models.items()}
        line = f"{name}: neuralops {medians['neuralops']:.2f} ms (median {spread['neuralops']:.2f}; {params['neuralops']:,} params)"
        if "neuralop" in medians:
            line += (f" | neuralop {medians['neuralop']:.2f} ms (median {spread['neuralop']:.2f}; {params['neuralop']:,} params)"
                     f" | ratio neuralops/neuralop = {medians['neuralops'] / medians['neuralop']:.2f}")
        else:
            line += " | neuraloperator not installed: no baseline"
        print(line)


if __name__ == "__main__":
    main()
