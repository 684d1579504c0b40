"""Whole-model FNO benchmark: training step, inference and peak memory of neuralops' FNO against
``neuralop.models.FNO`` (neuraloperator) on the same input, in the same process.

    python benchmarks/bench_fno_step.py [--threads 1] [--repeats 15] [--sections ...] [--device cpu]
                                        [--allocators default keep-freed] [--no-isolate]
                                        [--out FILE] [--quick]

The matched model (issue 12): 4 Fourier blocks, hidden width 32, neuraloperator
``n_modes=(16, 16)`` against our ``[8, 9]`` (the same kept coefficients), lifting and projection
ratio 2, channel MLP expansion 0.5 with soft gating, linear block skips, GELU: both have
1,192,801 parameters. Ours runs on a periodic grid without domain padding, like neuraloperator's
default. Before timing, the script checks that the two compute the same function
(:func:`same_function_deviation`) and stops if they do not.

Sections:

* **train step**: ``zero_grad``, forward, MSE loss, backward, ``AdamW.step`` at batch 16 on
  64² and 128² (``--grids``).
* **inference**: forward under ``torch.no_grad`` at batch 32 (``--infer-grids``).
* **peak memory** of one training step at 128², hidden 64, batch 16 (``--memory-grid``,
  ``--memory-hidden``): ours by default and with ``checkpoint_blocks=True``, and neuraloperator's,
  with the time of the same steps (the checkpointing trade-off).
* **factorized weights**: our step time with dense, Tucker, CP and TT spectral weights (rank 0.1,
  i.e. 10 % of the dense spectral parameters, ``implementation="auto"``) at each ``--grids``.
* **autocast** (not by default): our step in float32 and under bfloat16 autocast, with the
  forward's deviation from float32 and whether the gradients are finite.
* **compile** (not by default): both models' steps eager and under ``torch.compile``, with the
  first compiled step's time (``trainer.compile=true`` compiles ours the same way).
* **ops** (not by default): where a training step's time goes. Every aten op one step of each
  model dispatches is recorded (a ``TorchDispatchMode``) and replayed alone on its arguments;
  per op, the calls and the summed time of the fastest of three replays, against the measured
  step: each op's own time with its inputs in cache, nothing between the ops. CPU only, with
  freed memory kept (under the default malloc every replayed output would be a fresh ``mmap``).
* **optimizer** (not by default): one ``AdamW.step`` of our dense and Tucker FNO in torch's
  per-parameter loop (a plain ``AdamW``'s CPU default, used by the other sections for both
  libraries), ``foreach`` and ``fused`` updates (``train.py`` uses ``fused``).

``--device cuda`` runs on the GPU: timings wait for the device (``torch.cuda.synchronize``)
and peak memory is ``torch.cuda.max_memory_allocated`` during the step. TF32 is switched off
for matrix products and cuDNN convolutions (:func:`strict_float32`): by default torch runs
cuDNN convolutions, neuraloperator's 1×1 layers, in TF32 but our batched GEMMs in float32,
which would not compare the same arithmetic.

How it is measured: every model of a section is built in one process and run **interleaved**
(a, b, a, b, ...) after two warm-up steps each, so load from other processes hits all of them
alike. Each section runs in a **fresh process** (``--no-isolate``: all in this one), because
glibc's ``malloc`` adapts to the block sizes a process has freed before: the same
neuraloperator inference took 0.27 s after the training-step section and 0.48 s in a fresh
process. The step and inference sections run under each of ``--allocators`` (CPU default:
both): ``default`` is glibc's malloc as a Python process starts, where blocks of 32 MiB and
more are fresh ``mmap`` s that the kernel page-faults and zeroes on every use; ``keep-freed``
calls :func:`neuralops.runtime.keep_freed_memory` first (every block from the heap, freed
memory kept), as ``train.py`` does. Both models run under the same setting. The median and
the minimum over ``--repeats`` are printed, and the ratio of the medians to the reference
(neuraloperator, or our dense FNO for the factorized section). Peak memory is the peak of the
bytes held by torch's CPU allocator during one step after warm-up, relative to its start, read from the profiler's memory events (``profile_memory=True``; see
``bench_spectral_conv.peak_live_mib``); it counts activations, gradients, optimizer
temporaries and every temporary inside ops, not the parameters and optimizer state that exist
before the step. ``--quick`` runs tiny sizes (a smoke test, also used by the test suite).
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_spectral_conv import peak_live_mib  # noqa: E402
from neuralops.models import build  # noqa: E402
from neuralops.runtime import keep_freed_memory  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NEURALOP_MODES = (16, 16)
OUR_MODES = [NEURALOP_MODES[0] // 2, NEURALOP_MODES[1] // 2 + 1]
FACTORIZATIONS = ("dense", "tucker", "cp", "tt")


def ours(hidden: int, factorization: str = "dense", checkpoint_blocks: bool = False, n_modes=None) -> torch.nn.Module:
    """Our FNO matched to :func:`theirs` (periodic grid, no padding)."""
    weight = {"factorization": factorization} if factorization == "dense" else {"factorization": factorization, "rank": 0.1}
    return build(
        "fno", in_channels=1, out_channels=1, n_modes=n_modes or OUR_MODES, hidden_channels=hidden,
        grid="periodic", domain_padding=0.0, spectral_weight=weight, checkpoint_blocks=checkpoint_blocks,
    )


def theirs(hidden: int, n_modes=NEURALOP_MODES) -> torch.nn.Module | None:
    """neuraloperator's FNO with its defaults, or None when it is not installed."""
    try:
        from neuralop.models import FNO
    except ImportError:
        return None
    return FNO(n_modes=tuple(n_modes), in_channels=1, out_channels=1, hidden_channels=hidden)


def copy_neuraloperator_weights(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    """Copy the parameters of :func:`theirs` into :func:`ours` (same hidden width) in place, so
    both compute the same function. neuraloperator stores a spectral weight ``(Cin, Cout, 16, 9)``
    complex with the first mode axis centred (frequencies -8..7); ours is modes first,
    ``(16, 9, 2, Cin, Cout)`` real, frequencies 0..7 then -8..-1 (:mod:`neuralops.spectral.modes`).
    Its 1×1 convolutions are ``(Cout, Cin, 1)``, its gates and spectral biases ``(1, C, 1, 1)`` and
    ``(C, 1, 1)``."""
    theirs_ = reference.state_dict()
    with torch.no_grad():
        for name, mlp in (("lifting", model.lifting), ("projection", model.projection)):
            for k, fc in enumerate((mlp.fc1, mlp.fc2)):
                fc.weight.copy_(theirs_[f"{name}.fcs.{k}.weight"][..., 0])
                fc.bias.copy_(theirs_[f"{name}.fcs.{k}.bias"])
        for i, block in enumerate(model.blocks):
            weight = theirs_[f"fno_blocks.convs.{i}.weight.tensor"]
            weight = torch.roll(weight, -(weight.shape[2] // 2), dims=2)
            block.conv.weight.weight.copy_(torch.view_as_real(weight.permute(2, 3, 0, 1)).permute(0, 1, 4, 2, 3))
            block.conv.bias.copy_(theirs_[f"fno_blocks.convs.{i}.bias"].flatten())
            block.skip.weight.copy_(theirs_[f"fno_blocks.fno_skips.{i}.conv.weight"][..., 0])
            for k, fc in enumerate((block.channel_mlp.fc1, block.channel_mlp.fc2)):
                fc.weight.copy_(theirs_[f"fno_blocks.channel_mlp.{i}.fcs.{k}.weight"][..., 0])
                fc.bias.copy_(theirs_[f"fno_blocks.channel_mlp.{i}.fcs.{k}.bias"])
            block.channel_mlp_skip.weight.copy_(theirs_[f"fno_blocks.channel_mlp_skips.{i}.weight"].flatten())


def same_function_deviation(hidden: int = 8, n: int = 32) -> float | None:
    """max |ours − theirs| / max |theirs| of the two matched models in float64 on a random
    ``(2, 1, n, n)`` input, with neuraloperator's weights copied into ours
    (:func:`copy_neuraloperator_weights`); None without neuraloperator. About 1e-8: its spectral
    layer accumulates the modes in complex64 whatever the input's dtype."""
    reference = theirs(hidden)
    if reference is None:
        return None
    model = ours(hidden).double()
    reference = reference.double()
    for parameter in reference.parameters():
        if parameter.is_complex():
            parameter.data = parameter.data.to(torch.complex128)
    try:
        copy_neuraloperator_weights(model, reference)
    except KeyError as err:
        raise SystemExit(f"bench_fno_step: neuraloperator's FNO has no parameter {err}; copy_neuraloperator_weights "
                         "needs updating for this neuraloperator version") from None
    x = torch.randn(2, 1, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(x)
        return float((model(x) - expected).abs().max() / expected.abs().max())


def count(model: torch.nn.Module) -> int:
    """Real parameters (a complex parameter counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: torch.dtype | None = None) -> Callable[[], None]:
    """One AdamW step on the MSE of ``model(x)`` against ``y`` (on ``x``'s device, waiting for
    it to finish), under ``autocast`` to that dtype when given."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=autocast, enabled=autocast is not None):
            loss = torch.mean((model(x).float() - y) ** 2)
        loss.backward()
        optimizer.step()
        synchronize(x.device)

    return step


def inference(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            model(x)
        synchronize(x.device)

    return run


def peak_step_mib(step: Callable[[], None], device: torch.device) -> float:
    """Peak memory of one ``step()`` after a warm-up step, relative to its start: CUDA's
    ``max_memory_allocated``, or on CPU the peak of the bytes held by torch's allocator from the
    profiler's memory events (:func:`bench_spectral_conv.peak_live_mib`)."""
    step()  # warm-up: optimizer state, plans and allocator
    if device.type != "cuda":
        return peak_live_mib(step)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step()
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


@dataclass
class Timings:
    """Seconds per call of each run: ``wall`` (``time.perf_counter``) and ``cpu`` (the calling
    thread's CPU time, ``time.thread_time``: on one thread, the work done, without the time
    other processes held the core)."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleaved(runs: dict[str, Callable[[], None]], repeats: int, warmup: int = 2) -> Timings:
    """Time each run, calling them in turn (a, b, a, b, ...) after ``warmup`` calls each."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    timings = Timings({name: [] for name in runs}, {name: [] for name in runs})
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.thread_time()
            run()
            timings.cpu[name].append(time.thread_time() - cpu)
            timings.wall[name].append(time.perf_counter() - wall)
    return timings


TIME_COLUMNS = "median ms | min ms | ratio | CPU median ms | CPU ratio"


def summary_rows(timings: Timings, reference: str, extra: dict[str, str] | None = None) -> list[str]:
    """Markdown rows ``| name | extra | median ms | min ms | ratio | CPU median ms | CPU ratio |``,
    ratios of medians to ``reference``'s."""
    rows = []
    for name, wall in timings.wall.items():
        cells = [name, (extra or {}).get(name, ""), f"{statistics.median(wall) * 1e3:.1f}", f"{min(wall) * 1e3:.1f}"]
        for clock, times in (("wall", timings.wall), ("cpu", timings.cpu)):
            median = statistics.median(times[name])
            if clock == "cpu":
                cells.append(f"{median * 1e3:.1f}")
            cells.append(f"{median / statistics.median(times[reference]):.2f}" if reference in times else "n/a")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def machine_line(threads: int, device: str = "cpu") -> str:
    cuda = device.startswith("cuda")
    where = torch.cuda.get_device_name(torch.device(device)) if cuda else (platform.processor() or platform.machine())
    return (
        f"{where}, {torch.get_num_threads()} torch CPU thread(s) (requested {threads}), "
        f"torch {torch.__version__}, {date.today().isoformat()}" + (", TF32 off (strict float32)" if cuda else "")
    )


def emit(lines: list[str], *new: str) -> None:
    """Append ``new`` to the report and print it."""
    lines.extend(new)
    print("\n".join(new), flush=True)


def write_results(out: Path | None, lines: list[str]) -> None:
    """Write the report's ``lines`` to the markdown file ``out`` (its folder made if missing), or
    nothing when ``out`` is None."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def models_on(device: torch.device, **candidates) -> dict[str, torch.nn.Module]:
    """The models that exist (neuraloperator may be missing), moved to ``device``."""
    return {name.replace("_", " "): m.to(device) for name, m in candidates.items() if m is not None}


def fields(batch: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 1, n, n, device=device), torch.randn(batch, 1, n, n, device=device)


def step_section(grids, batch: int, hidden: int, repeats: int, lines: list[str], device: torch.device, allocator: str = "") -> None:
    emit(lines, "## Training step (AdamW), batch %d, hidden %d%s" % (batch, hidden, allocator), "",
            f"| model | grid, params | {TIME_COLUMNS} |", "|---|---|---|---|---|---|---|")
    for n in grids:
        torch.manual_seed(0)
        x, y = fields(batch, n, device)
        models = models_on(device, neuralops=ours(hidden), neuralop=theirs(hidden))
        times = interleaved({k: train_step(m, x, y) for k, m in models.items()}, repeats)
        extra = {k: f"{n}², {count(m):,}" for k, m in models.items()}
        emit(lines, *summary_rows(times, "neuralop", extra))
    emit(lines, "")


def inference_section(grids, batch: int, hidden: int, repeats: int, lines: list[str], device: torch.device, allocator: str = "") -> None:
    emit(lines, "## Inference (no_grad), batch %d, hidden %d%s" % (batch, hidden, allocator), "",
            f"| model | grid | {TIME_COLUMNS} |", "|---|---|---|---|---|---|---|")
    for n in grids:
        torch.manual_seed(0)
        x = fields(batch, n, device)[0]
        models = models_on(device, neuralops=ours(hidden), neuralop=theirs(hidden))
        times = interleaved({k: inference(m.eval(), x) for k, m in models.items()}, repeats)
        emit(lines, *summary_rows(times, "neuralop", {k: f"{n}²" for k in models}))
    emit(lines, "")


def memory_section(n: int, batch: int, hidden: int, repeats: int, lines: list[str], device: torch.device) -> None:
    torch.manual_seed(0)
    x, y = fields(batch, n, device)
    models = models_on(device, neuralops=ours(hidden), neuralops_checkpoint_blocks=ours(hidden, checkpoint_blocks=True),
                       neuralop=theirs(hidden))
    steps = {k: train_step(m, x, y) for k, m in models.items()}
    peaks = {name: peak_step_mib(step, device) for name, step in steps.items()}
    reference = peaks.get("neuralop")
    times = interleaved(steps, repeats, warmup=1).wall
    ref_time = statistics.median(times["neuralop"]) if "neuralop" in times else None
    emit(lines, f"## Peak memory of one training step, {n}², hidden {hidden}, batch {batch}", "",
            "| model | peak MiB | memory / neuralop | step median ms | min ms | time / neuralop |", "|---|---|---|---|---|---|")
    for name in steps:
        median = statistics.median(times[name])
        mem_ratio = f"{peaks[name] / reference:.2f}" if reference else "n/a"
        time_ratio = f"{median / ref_time:.2f}" if ref_time else "n/a"
        row = f"| {name} | {peaks[name]:.1f} | {mem_ratio} | {median * 1e3:.0f} | {min(times[name]) * 1e3:.0f} | {time_ratio} |"
        emit(lines, row)
    emit(lines, "")


def factorized_section(grids, batch: int, hidden: int, repeats: int, lines: list[str], device: torch.device) -> None:
    emit(lines, f"## Factorized spectral weights (rank 0.1), training step, batch {batch}, hidden {hidden}", "",
            f"| weight | grid, params | {TIME_COLUMNS} |", "|---|---|---|---|---|---|---|")
    for n in grids:
        torch.manual_seed(0)
        x, y = fields(batch, n, device)
        models = models_on(device, **{f: ours(hidden, f) for f in FACTORIZATIONS})
        times = interleaved({f: train_step(m, x, y) for f, m in models.items()}, repeats)
        emit(lines, *summary_rows(times, "dense", {f: f"{n}², {count(m):,}" for f, m in models.items()}))
    emit(lines, "")


def autocast_section(grids, batch: int, hidden: int, repeats: int, lines: list[str], device: torch.device) -> None:
    """Our FNO's training step in float32 and under bfloat16 autocast; the forward's largest
    deviation from float32 relative to the output's largest value, and whether the bfloat16
    step's gradients are finite."""
    emit(lines, f"## bfloat16 autocast, our FNO, training step, batch {batch}, hidden {hidden}", "",
            "| precision | grid | median ms | min ms | / float32 | forward max deviation (relative) | finite gradients |",
            "|---|---|---|---|---|---|---|")
    for n in grids:
        torch.manual_seed(0)
        x, y = fields(batch, n, device)
        model = ours(hidden).to(device)
        with torch.no_grad():
            reference = model(x)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                mixed = model(x).float()
        deviation = ((mixed - reference).abs().max() / reference.abs().max()).item()
        steps = {"float32": train_step(model, x, y), "bfloat16 autocast": train_step(model, x, y, torch.bfloat16)}
        times = interleaved(steps, repeats).wall
        finite = all(torch.isfinite(p.grad).all().item() for p in model.parameters() if p.grad is not None)
        ref = statistics.median(times["float32"])
        for name, t in times.items():
            median = statistics.median(t)
            dev = f"{deviation:.2e}" if name != "float32" else ""
            fin = str(finite) if name != "float32" else ""
            row = f"| {name} | {n}² | {median * 1e3:.1f} | {min(t) * 1e3:.1f} | {median / ref:.2f} | {dev} | {fin} |"
            emit(lines, row)
    emit(lines, "")


def compile_section(grids, batch: int, hidden: int, repeats: int, lines: list[str], device: torch.device) -> None:
    """Training steps of both models eager and under ``torch.compile`` (default mode), ratios
    to neuraloperator's eager step; the first compiled step's time (tracing and code generation)
    in the second column."""
    emit(lines, f"## torch.compile, training step, batch {batch}, hidden {hidden}", "",
            f"| model | grid, first step s | {TIME_COLUMNS} |", "|---|---|---|---|---|---|---|")
    for n in grids:
        torch.manual_seed(0)
        x, y = fields(batch, n, device)
        models = models_on(device, neuralops=ours(hidden), neuralop=theirs(hidden))
        steps, first = {}, {}
        for name, model in models.items():
            steps[name] = train_step(model, x, y)
            compiled = copy.deepcopy(model)
            torch._dynamo.reset()
            steps[f"{name} compiled"] = train_step(torch.compile(compiled), x, y)
            start = time.perf_counter()
            steps[f"{name} compiled"]()
            first[f"{name} compiled"] = time.perf_counter() - start
        times = interleaved(steps, repeats)
        extra = {k: f"{n}², {first[k]:.0f}" if k in first else f"{n}²" for k in steps}
        emit(lines, *summary_rows(times, "neuralop", extra))
    emit(lines, "")


class _RecordedOps(TorchDispatchMode):
    """Records every aten op call (op, args, kwargs) made while it is active."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls.append((func, args, kwargs))
        return func(*args, **kwargs)


def isolated_op_times(step: Callable[[], None], device: torch.device, replays: int = 3) -> dict[str, tuple[int, float]]:
    """``{aten op name: (calls, seconds)}`` of one call of ``step``: every op it dispatches,
    replayed alone on its recorded arguments ``replays`` times (under ``torch.no_grad``; in-place
    ops write into their recorded arguments again), the fastest replay of each, summed per op.
    Each op's own time with its inputs in cache, plus one Python call; without the autograd
    engine, the Python code and the cache misses between the ops. Meant for the CPU with freed
    memory kept (:func:`section_allocators`): under glibc's default malloc each replay's output
    is a fresh ``mmap`` and the sum can exceed the step. Every recorded argument stays alive
    until the replays end."""
    recorder = _RecordedOps()
    with recorder:
        step()
    totals: dict[str, tuple[int, float]] = {}
    with torch.no_grad():
        for func, args, kwargs in recorder.calls:
            fastest = float("inf")
            for _ in range(replays):
                synchronize(device)
                start = time.perf_counter()
                func(*args, **kwargs)
                synchronize(device)
                fastest = min(fastest, time.perf_counter() - start)
            name = func.overloadpacket.__name__
            calls, seconds = totals.get(name, (0, 0.0))
            totals[name] = (calls + 1, seconds + fastest)
    return totals


def ops_section(grids, batch: int, hidden: int, repeats: int, lines: list[str], device: torch.device, allocator: str = "", top: int = 12) -> None:
    """Where a training step's time goes: the ops of one step of each model timed alone
    (:func:`isolated_op_times`), the ``top`` costliest of either model per op, the rest summed,
    and the total against the measured (interleaved) step."""
    for n in grids:
        torch.manual_seed(0)
        x, y = fields(batch, n, device)
        models = models_on(device, neuralops=ours(hidden), neuralop=theirs(hidden))
        steps = {k: train_step(m, x, y) for k, m in models.items()}
        measured = interleaved(steps, repeats).wall
        ops = {k: isolated_op_times(step, device) for k, step in steps.items()}
        names = sorted({op for t in ops.values() for op in t}, key=lambda op: -max(t.get(op, (0, 0.0))[1] for t in ops.values()))
        header = " | ".join(f"{k} calls | {k} ms" for k in ops)
        emit(lines, f"## Where a training step's time goes, {n}², batch {batch}, hidden {hidden}{allocator}", "",
                f"| aten op (each call timed alone) | {header} |", "|---|" + "---|---|" * len(ops))
        for op in names[:top]:
            cells = [f"{ops[k].get(op, (0, 0.0))[0]} | {ops[k].get(op, (0, 0.0))[1] * 1e3:.1f}" for k in ops]
            emit(lines, f"| {op} | " + " | ".join(cells) + " |")
        rest = [(sum(t[op][0] for op in names[top:] if op in t), sum(t[op][1] for op in names[top:] if op in t)) for t in ops.values()]
        emit(lines, "| other ops | " + " | ".join(f"{c} | {s * 1e3:.1f}" for c, s in rest) + " |")
        totals = {k: sum(s for _, s in t.values()) for k, t in ops.items()}
        emit(lines, "| **all ops, timed alone** | " + " | ".join(f"{sum(c for c, _ in t.values())} | {totals[k] * 1e3:.1f}" for k, t in ops.items()) + " |")
        emit(lines, "| **measured step** (median) | " + " | ".join(f" | {statistics.median(measured[k]) * 1e3:.1f}" for k in ops) + " |")
        if "neuralop" in measured:
            reference = statistics.median(measured["neuralop"])
            emit(lines, "| **all ops timed alone / neuralop's measured step** | " + " | ".join(f" | {totals[k] / reference:.2f}" for k in ops) + " |")
        emit(lines, "")


OPTIMIZER_IMPLEMENTATIONS = {"per-parameter loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def optimizer_section(hidden: int, repeats: int, lines: list[str], device: torch.device) -> None:
    """One ``AdamW.step`` on given gradients of our dense and Tucker FNO, in each of torch's
    three update implementations; ratios to the per-parameter loop (the CPU default of a plain
    ``torch.optim.AdamW``, which the other sections use for both libraries). ``train.py`` takes
    the fused update where it runs (:func:`neuralops.training.optim.update_implementation`)."""
    emit(lines, f"## Optimizer update (AdamW.step), hidden {hidden}", "",
            f"| model, update | parameters (tensors) | {TIME_COLUMNS} |", "|---|---|---|---|---|---|---|")
    for weight in ("dense", "tucker"):
        torch.manual_seed(0)
        steps, extra = {}, {}
        for name, options in OPTIMIZER_IMPLEMENTATIONS.items():
            model = ours(hidden, weight).to(device)
            for p in model.parameters():
                p.grad = torch.randn_like(p)
            steps[f"{weight}, {name}"] = torch.optim.AdamW(model.parameters(), lr=1e-3, **options).step
            extra[f"{weight}, {name}"] = f"{count(model):,} ({len(list(model.parameters()))})"
        emit(lines, *summary_rows(interleaved(steps, repeats), f"{weight}, per-parameter loop", extra))
    emit(lines, "")


SECTIONS = ("step", "inference", "memory", "factorized", "autocast", "compile", "optimizer", "ops")


ALLOCATORS = {"default": "default malloc", "keep-freed": "freed memory kept (keep_freed_memory, as in train.py)"}


def section_runs(args, lines: list[str], device: torch.device, allocator: str) -> dict[str, Callable[[], None]]:
    batch, infer_batch, hidden, memory_hidden = 16, 32, 32, args.memory_hidden
    if args.quick:
        batch, infer_batch, hidden, memory_hidden = 2, 2, 8, 8
    return {
        "step": lambda: step_section(args.grids, batch, hidden, args.repeats, lines, device, f", {allocator}"),
        "inference": lambda: inference_section(args.infer_grids, infer_batch, hidden, args.repeats, lines, device, f", {allocator}"),
        "memory": lambda: memory_section(args.memory_grid, batch, memory_hidden, max(3, args.repeats // 3), lines, device),
        "factorized": lambda: factorized_section(args.grids, batch, hidden, args.repeats, lines, device),
        "autocast": lambda: autocast_section(args.grids, batch, hidden, args.repeats, lines, device),
        "compile": lambda: compile_section(args.grids, batch, hidden, args.repeats, lines, device),
        "optimizer": lambda: optimizer_section(hidden, args.repeats, lines, device),
        "ops": lambda: ops_section(args.grids, batch, hidden, args.repeats, lines, device, f", {allocator}"),
    }


def section_allocators(section: str, args) -> list[str]:
    """The allocator settings a section runs under: step and inference under each of
    ``--allocators``, ops with freed memory kept (its replays would otherwise page-fault a
    fresh ``mmap`` for every output), the others under the first."""
    if section == "ops":
        return ["keep-freed"]
    return args.allocators if section in ("step", "inference") else args.allocators[:1]


def child_command(args, section: str, allocator: str) -> list[str]:
    """The command that runs one section under one allocator in a fresh process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--no-isolate", "--body-only", "--sections", section,
               "--allocators", allocator, "--threads", str(args.threads), "--repeats", str(args.repeats),
               "--memory-grid", str(args.memory_grid), "--memory-hidden", str(args.memory_hidden), "--device", args.device,
               "--grids", *map(str, args.grids), "--infer-grids", *map(str, args.infer_grids)]
    return command + (["--quick"] if args.quick else [])


def strict_float32(device: torch.device) -> None:
    """On CUDA, no TF32 in matrix products or cuDNN convolutions, so both libraries compute in
    float32 (torch's defaults: off for matmuls, on for cuDNN)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--infer-grids", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--memory-grid", type=int, default=128)
    parser.add_argument("--memory-hidden", type=int, default=64)
    parser.add_argument("--sections", nargs="+", default=["step", "inference", "memory", "factorized"], choices=SECTIONS)
    parser.add_argument("--allocators", nargs="+", default=None, choices=sorted(ALLOCATORS),
                        help="CPU allocator settings to time step and inference under (default: both on CPU; "
                             "the other sections use the first)")
    parser.add_argument("--no-isolate", dest="isolate", action="store_false",
                        help="run every section in this process (default: each in a fresh process)")
    parser.add_argument("--body-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (timings wait for the device)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats (a smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="markdown results file (default: print only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.grids, args.infer_grids, args.memory_grid, args.repeats = [16], [16], 16, 2
    if "ops" in args.sections and args.device != "cpu":
        raise SystemExit("bench_fno_step: --sections ops runs on the CPU only (one op timed at a time measures launch latency on a GPU)")
    if args.allocators is None:
        args.allocators = ["default", "keep-freed"] if args.device == "cpu" else ["default"]
    lines: list[str] = []
    if not args.body_only:
        lines += [f"# FNO against neuraloperator ({args.device}): {', '.join(args.sections)}", "",
                  f"Command: `python benchmarks/bench_fno_step.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
                  f"Machine: {machine_line(args.threads, args.device)}. Interleaved in one process per section and "
                  f"allocator setting; medians and minima over {args.repeats} repeats; ratios are of medians.", ""]
        print(lines[-2], flush=True)
        deviation = same_function_deviation() if set(args.sections) & {"step", "inference", "memory", "compile"} else None
        if deviation is not None:
            if deviation > 1e-6:
                raise SystemExit(f"bench_fno_step: the matched models compute different functions (deviation {deviation:.1e})")
            emit(lines, "Same model: with neuraloperator's weights copied into ours, the two compute the same function "
                        f"(max deviation {deviation:.0e} of the output's maximum, float64, 32²).", "")
    jobs = [(section, allocator) for section in args.sections
            for allocator in section_allocators(section, args)]
    device = torch.device(args.device)
    strict_float32(device)
    for section, allocator in jobs:
        if args.isolate:  # glibc's malloc adapts to the sizes a process has freed: a fresh process per section
            result = subprocess.run(child_command(args, section, allocator), capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"bench_fno_step: section {section} ({allocator}) failed:\n{result.stderr[-2000:]}")
            emit(lines, *[line for line in result.stdout.splitlines() if line.startswith(("#", "|")) or not line])
            continue
        if allocator == "keep-freed":
            keep_freed_memory()
        section_runs(args, lines, device, ALLOCATORS[allocator])[section]()
    write_results(args.out, lines)


if __name__ == "__main__":
    main()
