"""Forward+backward time and peak memory of ``SpectralConv`` with dense, Tucker and CP weights.

    python benchmarks/bench_spectral_conv.py [--device cpu|cuda] [--threads N] [--quick | --full | --smoke]

Cases (batch, channels, kept modes in our Li-style convention, grid): 2-D 64² (C=32, modes
16×16), 2-D 128² (C=64, modes 32×32), 3-D 32³ (C=32, modes 8×8×8); weights ``dense``,
``tucker`` (rank 0.1 = 10% of the dense parameters, ``implementation="auto"``) and ``cp`` (rank
0.1, ``auto``; skipped at 128² unless ``--full``). ``--full`` adds Tucker with each path forced
(``tucker-f`` factorized, ``tucker-r`` reconstructed). ``--smoke`` runs only a tiny dense case (2-D 16², C=4), to check
the script itself.

What is measured
----------------
* **time**: wall time of ``y = layer(x); y.backward(dy)`` with a fixed random output gradient
  ``dy`` made before the passes (CUDA: synchronized before and after each repeat). Both
  libraries run **in the same process, interleaved** (ours, theirs, ours, …) after a warm-up
  each, so load on a shared machine hits both alike; the median and the minimum over the
  repeats are printed, and the ratio of the medians. On CPU each (case, weight) pair gets a
  fresh process. ``--loss`` uses ``y.square().mean().backward()`` instead, as earlier
  versions did; a loss adds three or four output-sized temporaries of its own (the same for
  both libraries), which then make up most of the peak memory.
* **peak memory, CPU** (``peak MiB``): each library runs again alone in a fresh subprocess;
  the number is the increase of the process's peak resident set size
  (``getrusage(RUSAGE_SELF).ru_maxrss``) from after the layer and input are built to after a
  warm-up pass and one forward+backward pass: the extra memory the passes needed at their
  peak, including allocator slack. A tiny case of the same layer runs first, so one-time costs
  (lazy loading, BLAS/FFT buffers) are not counted. It is not ``tracemalloc`` (which does not
  see torch's allocations).
* **peak live memory, CPU** (``live MiB``): the largest total of tensor bytes held by torch's
  allocator at any moment of that forward+backward pass, relative to before it, from the
  profiler's memory events (``profile_memory=True``). Unlike the resident set size it does not
  depend on how the C allocator returns freed memory, so it is the figure that compares the
  two libraries' own footprints; both are reported.
* **peak memory, CUDA**: ``torch.cuda.max_memory_allocated`` during the passes minus the memory
  allocated before them (that is already live memory; ``live MiB`` repeats it).
* **bandwidth, CUDA**: the compulsory traffic of one forward+backward (read input, weight and
  output gradient; write output, input gradient and weight gradient) divided by the time, next
  to the device's copy bandwidth measured with a 1 GiB device-to-device copy (bytes read plus
  written). Real traffic is higher (FFT passes, spectra), so this is a lower bound.

neuraloperator comparison: when ``neuralop`` is importable, its ``SpectralConv`` runs with the
same channels, the same number of kept coefficients
(``n_modes=(2·m_1, .., 2·m_{d-1}, 2·(m_d − 1))`` in its convention) and the same factorization
and rank; otherwise the script says so and reports ours only.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralops.spectral import SpectralConv, build_spectral_weight, kept_modes  # noqa: E402

CASES = {
    "2d-64": dict(batch=16, channels=32, n_modes=(16, 16), grid=(64, 64), repeats=11),
    "2d-128": dict(batch=16, channels=64, n_modes=(32, 32), grid=(128, 128), repeats=3),
    "3d-32": dict(batch=4, channels=32, n_modes=(8, 8, 8), grid=(32, 32, 32), repeats=5),
    "2d-16": dict(batch=2, channels=4, n_modes=(4, 4), grid=(16, 16), repeats=3),  # --smoke only
}
SMOKE_CASE = "2d-16"
WEIGHTS = {
    "dense": ("dense", {}),
    "tucker": ("tucker", {"rank": 0.1}),
    "tucker-f": ("tucker", {"rank": 0.1, "implementation": "factorized"}),
    "tucker-r": ("tucker", {"rank": 0.1, "implementation": "reconstructed"}),
    "cp": ("cp", {"rank": 0.1}),
}
FORCED_PATHS = ("tucker-f", "tucker-r")
NEURALOP_FACTORIZATION = {"dense": None, "tucker": "Tucker", "cp": "CP"}


def build_ours(case: dict, weight: str) -> torch.nn.Module:
    c = case["channels"]
    factorization, options = WEIGHTS[weight]
    spectral_weight = build_spectral_weight(c, c, case["n_modes"], factorization, **options)
    return SpectralConv(c, c, case["n_modes"], weight=spectral_weight)


def build_neuralop(case: dict, weight: str) -> torch.nn.Module | None:
    if weight not in NEURALOP_FACTORIZATION:
        return None
    try:
        from neuralop.layers.spectral_convolution import SpectralConv as NeuralopSpectralConv
    except ImportError:
        return None
    modes = case["n_modes"]
    their_modes = tuple(2 * m for m in modes[:-1]) + (2 * (modes[-1] - 1),)
    options = {}
    if NEURALOP_FACTORIZATION[weight] is not None:
        options = dict(factorization=NEURALOP_FACTORIZATION[weight], rank=WEIGHTS[weight][1]["rank"], implementation="factorized")
    return NeuralopSpectralConv(case["channels"], case["channels"], their_modes, **options)


def count_parameters(layer: torch.nn.Module) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in layer.parameters())


def copy_bandwidth(device: torch.device) -> float:
    """Bytes read + written per second by a 1 GiB device-to-device copy."""
    src = torch.empty(2**28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 10 * 2 * src.numel() * 4 / (time.perf_counter() - start)


def make_step(layer: torch.nn.Module, case: dict, device: torch.device, loss: bool):
    """A forward+backward pass of ``layer`` on a fixed input, as a function of no arguments."""
    x = torch.randn(case["batch"], case["channels"], *case["grid"], device=device, requires_grad=True)
    grad_out = torch.randn_like(x)  # every case maps C channels to C on the same grid

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        y = layer(x)
        if loss:
            y.square().mean().backward()
        else:
            y.backward(grad_out)

    return step


def timed(step, device: torch.device) -> float:
    """Seconds of one ``step()``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_times(layers: dict[str, torch.nn.Module], case: dict, device: torch.device, loss: bool) -> dict:
    """Interleaved timing of several layers in this process: ``{name: (median s, min s)}``."""
    steps = {name: make_step(layer.to(device), case, device, loss) for name, layer in layers.items()}
    for step in steps.values():
        step()  # warm-up: contraction plans, DFT matrices, allocator
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(case["repeats"]):
        for name, step in steps.items():
            times[name].append(timed(step, device))
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def measure_memory(layer: torch.nn.Module, case: dict, device: torch.device, loss: bool) -> dict:
    """Peak memory of a warm-up pass and one forward+backward pass (``peak_mib``, ``live_mib``)."""
    layer = layer.to(device)
    step = make_step(layer, case, device, loss)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_memory = torch.cuda.memory_allocated()
        step()
        step()
        peak = (torch.cuda.max_memory_allocated() - base_memory) / 2**20
        return {"peak_mib": peak, "live_mib": peak}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up: its peak counts too
    live = peak_live_mib(step)
    return {"peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, "live_mib": live}


def peak_live_mib(step) -> float:
    """Peak of the bytes held by torch's CPU allocator during ``step()``, relative to its start.

    Reads the profiler's raw memory events (one per allocation or free, with signed sizes)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns())
    held = peak = 0
    for event in events:
        held += event.nbytes()
        peak = max(peak, held)
    return peak / 2**20


PRIMING_CASE = dict(batch=2, channels=4, n_modes=(2, 2), grid=(8, 8), repeats=1)
BUILDERS = {"ours": build_ours, "neuralop": build_neuralop}


def build_layers(name: str, weight: str, libraries: list[str], device: torch.device, loss: bool) -> dict:
    """The case's layers of the available ``libraries``, after a tiny case of each has run (so
    one-time costs such as lazy library loading are not counted)."""
    layers = {}
    for library in libraries:
        if BUILDERS[library](PRIMING_CASE, weight) is None:
            continue
        make_step(BUILDERS[library](PRIMING_CASE, weight).to(device), PRIMING_CASE, device, loss)()
        layers[library] = BUILDERS[library](CASES[name], weight)
    return layers


def contraction_path(layer: torch.nn.Module, case: dict) -> str:
    """The contraction an ``auto`` factorized weight of ours chooses for the case ("-" if none)."""
    choose = getattr(layer.weight, "choose_implementation", None)
    if choose is None:
        return "-"
    modes = kept_modes(case["n_modes"], case["grid"])
    return choose((case["batch"], case["channels"], *(m.count for m in modes)), modes)


def run_times(name: str, weight: str, libraries: list[str], device: torch.device, threads: int, loss: bool) -> dict:
    """``{library: {time_ms, min_ms, params, path}}`` for one case, libraries interleaved."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = build_layers(name, weight, libraries, device, loss)
    rows = {
        library: {"params": count_parameters(layer), "path": contraction_path(layer, CASES[name]) if library == "ours" else "-"}
        for library, layer in layers.items()
    }
    for library, (median, fastest) in measure_times(layers, CASES[name], device, loss).items():
        rows[library].update(time_ms=1e3 * median, min_ms=1e3 * fastest)
    return rows


def run_memory(name: str, weight: str, library: str, device: torch.device, threads: int, loss: bool) -> dict | None:
    """Peak memory of one library on one case (alone in a fresh process on CPU); None if unavailable."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = build_layers(name, weight, [library], device, loss)
    return measure_memory(layers[library], CASES[name], device, loss) if layers else None


def in_subprocess(args: argparse.Namespace, mode: str, *values: str) -> dict | None:
    """Run this script in ``mode`` (``--times`` or ``--memory``) in a fresh process; its JSON line."""
    command = [sys.executable, __file__, "--device", "cpu", "--threads", str(args.threads)]
    command += ["--loss"] if args.loss else []
    output = subprocess.run(command + [mode, *values], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: stable on a shared box)")
    parser.add_argument("--quick", action="store_true", help="only the 2-D 64² case")
    parser.add_argument(
        "--full", action="store_true", help="also the forced Tucker paths and CP at 128² (CP rank 0.1 there is ~3,700: minutes)"
    )
    parser.add_argument("--smoke", action="store_true", help="only a tiny dense case (checks the script)")
    parser.add_argument("--loss", action="store_true", help="backward from y.square().mean() instead of a fixed output gradient")
    parser.add_argument("--times", nargs=3, metavar=("CASE", "WEIGHT", "LIBRARIES"), help=argparse.SUPPRESS)
    parser.add_argument("--memory", nargs=3, metavar=("CASE", "WEIGHT", "LIBRARY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.times:  # subprocess modes: print one JSON line
        name, weight, libraries = args.times
        print(json.dumps(run_times(name, weight, libraries.split(","), device, args.threads, args.loss)))
        return
    if args.memory:
        print(json.dumps(run_memory(*args.memory, device, args.threads, args.loss)))
        return
    try:
        import neuralop  # noqa: F401

        libraries = ["ours", "neuralop"]
        print("neuraloperator found: comparing with matching configurations (same kept coefficients and rank)")
    except ImportError:
        libraries = ["ours"]
        print("neuraloperator is not installed: reporting neuralops numbers only")
    print(f"device={device}, torch {torch.__version__}, threads={args.threads}")
    cuda = device.type == "cuda"
    if cuda:
        print(f"{torch.cuda.get_device_name(device)}; device-to-device copy bandwidth {copy_bandwidth(device) / 1e9:.0f} GB/s")
    names = [SMOKE_CASE] if args.smoke else ["2d-64"] if args.quick else [c for c in CASES if c != SMOKE_CASE]
    header = (
        f"{'case':7} {'weight':9} {'library':8} {'path':13} {'params':>10} {'fwd+bwd ms':>11} {'min ms':>8} "
        f"{'ratio':>6} {'peak MiB':>9} {'live MiB':>9}"
    )
    print(header + (f" {'GB/s (lower bound)':>19}" if cuda else ""))
    for name in names:
        for weight in WEIGHTS:
            if not args.full and (weight in FORCED_PATHS or (weight == "cp" and name == "2d-128")):
                continue
            if args.smoke and weight != "dense":
                continue
            if cuda:
                rows = run_times(name, weight, libraries, device, args.threads, args.loss)
            else:
                rows = in_subprocess(args, "--times", name, weight, ",".join(libraries))
            for library, row in rows.items():
                if cuda:
                    row.update(run_memory(name, weight, library, device, args.threads, args.loss))
                else:
                    row.update(in_subprocess(args, "--memory", name, weight, library))
                reference = rows.get("neuralop", {}).get("time_ms")
                ratio = f"{row['time_ms'] / reference:.2f}" if reference else "-"
                line = (
                    f"{name:7} {weight:9} {library:8} {row['path']:13} {row['params']:>10,} {row['time_ms']:>11.1f} "
                    f"{row['min_ms']:>8.1f} {ratio:>6} {row['peak_mib']:>9.1f} {row['live_mib']:>9.1f}"
                )
                if cuda:
                    line += f" {compulsory_traffic(CASES[name], row['params']) / (row['time_ms'] / 1e3) / 1e9:>19.0f}"
                print(line, flush=True)


def compulsory_traffic(case: dict, params: int) -> int:
    """Bytes one forward+backward must move at least: read x, w and dy; write y, dx and dw (fp32)."""
    activations = case["batch"] * case["channels"] * math.prod(case["grid"])
    return 4 * (4 * activations + 2 * params)


if __name__ == "__main__":
    main()
