"""Leaderboard: train every (model, dataset, seed) with ``train.py``, tabulate mean ± std per cell.

Each run is ``python train.py model=M data=D seed=S trainer.epochs=E ...`` in a subprocess with
its own run directory ``<out>/runs/<data>_<model>_seed<S>`` (metrics.json, pretrained model),
so the leaderboard measures exactly what a user's run does: the checkpoint is selected on the
validation split, never the test split, and the test metrics are evaluated at every stored
resolution.

    python benchmarks/leaderboard.py --models fno tfno mgno_resampled lsm_resampled deeponet \
        pod_deeponet --data darcy --epochs 20 --seeds 0 1 2 --out runs/leaderboard

Every configuration is composed and validated before the first run, so a bad model name or
option fails at once with one line. Runs whose ``metrics.json`` exists are not repeated: rerun
the same command to finish an interrupted leaderboard. Writes ``<out>/results.json`` (every
run and the aggregates), ``results.csv``, ``results.md`` (rows ranked by the mean of the metric
over the test resolutions) and ``results.png`` (a bar chart of the metric per resolution, with
the standard deviation over seeds as error bars). Peak memory is the run process's maximum
resident set size (``getrusage``), in MiB. Extra Hydra overrides apply to every run
(``--override trainer.batch_size=64``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

from neuralops.config_store import one_line, register, validate  # noqa: E402
from neuralops.errors import NeuralopsError  # noqa: E402
from neuralops.io import atomic_write, write_json  # noqa: E402


def cell_overrides(model: str, data: str, seed: int, epochs: int, extra: list[str]) -> list[str]:
    return [f"model={model}", f"data={data}", f"seed={seed}", f"trainer.epochs={epochs}", "trainer.progress=false", *extra]


def check_configs(cells: list[list[str]]) -> None:
    """Compose and validate every run's config; raise :class:`NeuralopsError` with one line for
    the first bad one."""
    register()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        for overrides in cells:
            try:
                validate(compose("config", overrides=overrides))
            except NeuralopsError:
                raise
            except Exception as err:  # noqa: BLE001 - Hydra/OmegaConf composition errors
                raise NeuralopsError(one_line(err)) from None


def run_cell(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """Run ``train.py`` once; its metrics with ``peak_memory_mib`` (the process's max RSS)."""
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        print(f"   done before: {run_dir}")
        return json.loads(metrics_file.read_text())
    log = run_dir.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), *overrides, f"hydra.run.dir={run_dir}"], stdout=fh, stderr=subprocess.STDOUT, cwd=REPO
        )
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        last = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise NeuralopsError(f"run {' '.join(overrides)} failed: {last[0]} (log: {log})")
    metrics = json.loads(metrics_file.read_text())
    metrics["peak_memory_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    write_json(metrics_file, metrics)
    return metrics


def aggregate(runs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Mean and sample standard deviation over the seeds of one cell."""

    def mean_std(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    resolutions = [row["resolution"] for row in runs[0]["test"]]
    per_resolution = {
        res: mean_std([next(r[metric] for r in run["test"] if r["resolution"] == res) for run in runs]) for res in resolutions
    }
    return {
        "parameters": runs[0]["parameters"],
        "seeds": len(runs),
        "train_time_s": mean_std([run["train_time_s"] for run in runs]),
        "peak_memory_mib": mean_std([run.get("peak_memory_mib", float("nan")) for run in runs]),
        metric: per_resolution,
        "rank_score": statistics.fmean(m for m, _ in per_resolution.values()),
    }


def table(cells: dict[str, dict[str, Any]], metric: str) -> tuple[list[str], list[list[str]]]:
    resolutions = sorted({res for cell in cells.values() for res in cell[metric]}, key=lambda s: [int(n) for n in s.split("x")])
    headers = ["rank", "model", "data", "parameters", "train time (s)", "peak memory (MiB)", *[f"{metric} @ {r}" for r in resolutions]]
    rows = []
    for rank, (key, cell) in enumerate(sorted(cells.items(), key=lambda item: item[1]["rank_score"]), start=1):
        data, model = key.split("/")
        values = [f"{cell[metric][r][0]:.4f} ± {cell[metric][r][1]:.4f}" if r in cell[metric] else "" for r in resolutions]
        rows.append([str(rank), model, data, f"{cell['parameters']:,}", f"{cell['train_time_s'][0]:.0f}",
                     f"{cell['peak_memory_mib'][0]:.0f}", *values])
    return headers, rows


def bar_chart(cells: dict[str, dict[str, Any]], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(cells, key=lambda k: cells[k]["rank_score"])
    resolutions = sorted({res for cell in cells.values() for res in cell[metric]}, key=lambda s: [int(n) for n in s.split("x")])
    width = 0.8 / max(len(resolutions), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names)), 4))
    for i, res in enumerate(resolutions):
        means = [cells[n][metric].get(res, (float("nan"), 0))[0] for n in names]
        stds = [cells[n][metric].get(res, (0, 0))[1] for n in names]
        ax.bar([j + i * width for j in range(len(names))], means, width, yerr=stds, capsize=3, label=res)
    ax.set_xticks([j + width * (len(resolutions) - 1) / 2 for j in range(len(names))], names, rotation=20, ha="right")
    ax.set_ylabel(f"{metric} (mean ± std over seeds)")
    ax.legend(title="test grid")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["fno", "tfno", "mgno_resampled", "lsm_resampled", "deeponet", "pod_deeponet"],
                        help="model config names in configs/model/")
    parser.add_argument("--data", nargs="+", default=["darcy"], help="data config names in configs/data/")
    parser.add_argument("--epochs", type=int, default=20, help="the same epoch budget for every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per cell (mean ± std over them)")
    parser.add_argument("--metric", default="rel_l2", help="metric shown in the table and chart (one of trainer.metrics)")
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override for every run")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "leaderboard" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    args = parser.parse_args()

    plan = [(d, m, s) for d in args.data for m in args.models for s in args.seeds]
    try:
        if args.epochs < 1:
            raise NeuralopsError(f"--epochs must be >= 1, got {args.epochs}")
        check_configs([cell_overrides(m, d, s, args.epochs, args.override) for d, m, s in plan])
        runs: dict[str, list[dict[str, Any]]] = {}
        for data, model, seed in plan:
            print(f"== {model} on {data}, seed {seed}")
            run_dir = args.out.resolve() / "runs" / f"{data}_{model}_seed{seed}"
            runs.setdefault(f"{data}/{model}", []).append(run_cell(cell_overrides(model, data, seed, args.epochs, args.override), run_dir))
        if any(args.metric not in row for cell in runs.values() for run in cell for row in run["test"]):
            raise NeuralopsError(f"--metric {args.metric!r} is not among the runs' trainer.metrics")
    except NeuralopsError as err:
        sys.exit(f"error: {err}")
    cells = {key: aggregate(cell, args.metric) for key, cell in runs.items()}
    write_json(args.out / "results.json", {"epochs": args.epochs, "seeds": args.seeds, "overrides": args.override, "cells": cells, "runs": runs})
    headers, rows = table(cells, args.metric)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([headers, *rows])

    atomic_write(args.out / "results.csv", write_csv)
    markdown = "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |" for r in rows]
    )
    note = (f"Budget: {args.epochs} epochs per run; seeds {args.seeds}; {args.metric} is the mean over test samples, "
            "shown as mean ± std over seeds; checkpoints selected on the validation split; ranked by the mean over resolutions.")
    atomic_write(args.out / "results.md", lambda tmp: tmp.write_text(f"{note}\n\n{markdown}\n"))
    bar_chart(cells, args.metric, args.out / "results.png")
    print(markdown)


if __name__ == "__main__":
    main()
