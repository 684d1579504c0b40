"""Leaderboard: train every (model, dataset) pair with train.py's pipeline, tabulate the results.

Each cell is a full run (its own run directory with metrics.json and a pretrained model) with
the same budget for every model. The table lists parameters, training time and every metric
at every test resolution of the dataset.

    python benchmarks/leaderboard.py --models fno tfno mgno_resampled lsm_resampled deeponet \
        pod_deeponet --data darcy --epochs 20 --out runs/leaderboard

Writes ``<out>/results.json``, ``<out>/results.csv`` and ``<out>/results.md``. Extra Hydra
overrides apply to every run (``--override trainer.batch_size=64``).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from neuralops.io import write_json
from neuralops.training.run import run_experiment

REPO = Path(__file__).resolve().parents[1]


def run_cell(model: str, data: str, epochs: int, overrides: list[str], out: Path) -> dict:
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={model}", f"data={data}", f"trainer.epochs={epochs}",
                                           "trainer.progress=false", *overrides])
    start = time.perf_counter()
    results = run_experiment(cfg, out / f"{data}_{model}", base_dir=REPO)
    results["wall_time_s"] = time.perf_counter() - start
    results["config_name"] = model
    return results


def table_rows(results: list[dict], metric: str) -> tuple[list[str], list[list[str]]]:
    resolutions = sorted({r["resolution"] for res in results for r in res["test"]}, key=lambda s: int(s.split("x")[0]))
    headers = ["model", "data", "parameters", "train time (s)", *[f"{metric} @ {res}" for res in resolutions]]
    rows = []
    for res in results:
        by_res = {r["resolution"]: r[metric] for r in res["test"]}
        rows.append([res["config_name"], Path(res["data"]).stem, f"{res['parameters']:,}", f"{res['train_time_s']:.0f}",
                     *[f"{by_res[r]:.4f}" if r in by_res else "" for r in resolutions]])
    return headers, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["fno", "tfno", "mgno_resampled", "lsm_resampled", "deeponet", "pod_deeponet"],
                        help="model config names in configs/model/")
    parser.add_argument("--data", nargs="+", default=["darcy"], help="data config names in configs/data/")
    parser.add_argument("--epochs", type=int, default=20, help="the same epoch budget for every run")
    parser.add_argument("--metric", default="rel_l2", help="metric shown in the markdown table")
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override for every run")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "leaderboard" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for data in args.data:
        for model in args.models:
            print(f"== {model} on {data}")
            results.append(run_cell(model, data, args.epochs, args.override, args.out))
    write_json(args.out / "results.json", results)
    headers, rows = table_rows(results, args.metric)
    with open(args.out / "results.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([headers, *rows])
    markdown = "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |" for r in rows]
    )
    (args.out / "results.md").write_text(
        f"Budget: {args.epochs} epochs per run; {args.metric} is the mean over test samples.\n\n{markdown}\n"
    )
    print(markdown)


if __name__ == "__main__":
    main()
