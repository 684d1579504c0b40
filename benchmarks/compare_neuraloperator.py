"""Side-by-side with neuraloperator on its small-Darcy setting (issue 10, item 1).

Both libraries train on the same samples of one file from our generator (1000 training samples
at 16², the same 50 test samples at 16² and 32², cell-centred grid), with the same seeds, and are
scored by one metric implementation (:func:`rel_l2`: per-sample ``‖pred − y‖₂ / ‖y‖₂`` over the
grid points, then the mean over the 50 samples; on a cell grid this equals our ``rel_l2``).

* **neuraloperator**: its documented small-Darcy example as a plain loop: ``neuralop.models.FNO``
  (``n_modes=(8, 8)``, hidden 24, projection ratio 2, 191,881 parameters), ``neuralop.losses.H1Loss(d=2)``
  (its default ``sum`` reduction) on outputs encoded by a channel-wise ``UnitGaussianNormalizer``
  (inputs not encoded, as ``load_darcy_flow_small``), AdamW lr 1e-2, weight decay 1e-4,
  ``CosineAnnealingLR(T_max=30)`` stepped per epoch, batch 64, 15 epochs, the training loader not
  shuffled (as its Darcy loader), the last epoch's model.
* **neuralops**: our real training path, ``neuralops.training.run.run_experiment`` on a
  Hydra-composed config (``configs/`` + overrides, exactly what ``python train.py ...`` runs).
  Ablations that need a library change are monkeypatches applied around ``run_experiment`` (see
  ``PATCHES``); the recommended changes are in ``benchmarks/results/parity_neuraloperator.md``.

Usage (2 CPU threads shared: one process, one thread)::

    python benchmarks/compare_neuraloperator.py --make-data          # writes runs/parity/darcy_16_32.h5
    python benchmarks/compare_neuraloperator.py --variants nl matched recipe_fno_darcy_small --seeds 0 1 2
    python benchmarks/compare_neuraloperator.py --list               # every variant
    python benchmarks/compare_neuraloperator.py --table              # the table of finished runs

Results are appended to ``runs/parity/results.jsonl``; finished (variant, seed) pairs are skipped
on rerun. Run directories go to ``runs/parity/<variant>/seed<k>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "runs" / "parity" / "darcy_16_32.h5"
RESULTS = ROOT / "runs" / "parity" / "results.jsonl"

#: The documented command for the data (1100 samples: 1000 train, 50 val at 16², 50 test at 16² and 32²).
DATA_COMMAND = [
    "-m", "neuralops.data.generate", "darcy", "--samples", "1100", "--val-fraction", "0.04545454",
    "--test-fraction", "0.04545454", "--seed", "0", "--grid", "cell", "--reference-resolution", "128",
    "--coefficient", "point", "--resolutions", "16", "--test-resolutions", "16", "32", "--no-progress",
]

EPOCHS, BATCH = 15, 64


# --------------------------------------------------------------------------------------------
# data and the one metric


def load_split(path: Path, split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of one split at one resolution, ``(N, 1, n, n)`` float32, read with our reader."""
    from neuralops.data import OperatorDataset

    ds = OperatorDataset(str(path), split=split, resolution=resolution)
    xs, ys = zip(*((s["x"], s["y"]) for s in (ds[i] for i in range(len(ds)))))
    ds.close()
    return torch.stack(xs).float(), torch.stack(ys).float()


def rel_l2(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over samples of ``‖pred − y‖₂ / ‖y‖₂`` (sums over channels and grid points)."""
    e = (pred - y).flatten(1).pow(2).sum(1).sqrt()
    n = y.flatten(1).pow(2).sum(1).sqrt()
    return float((e / n).mean())


@torch.no_grad()
def score(predict: Callable[[torch.Tensor], torch.Tensor], tests: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    out = {}
    for n, (x, y) in tests.items():
        out[f"rel_l2_{n}"] = rel_l2(torch.cat([predict(x[i:i + 25]) for i in range(0, len(x), 25)]), y)
    return out


# --------------------------------------------------------------------------------------------
# neuraloperator: its example as a plain loop


def train_neuraloperator(seed: int, train, tests, input_map: str = "raw", shuffle: bool = False,
                         epochs: int = EPOCHS, lr: float = 1e-2, t_max: int = 30, batch: int = BATCH) -> dict[str, Any]:
    from neuralop.data.transforms.normalizers import UnitGaussianNormalizer
    from neuralop.losses import H1Loss
    from neuralop.models import FNO
    from neuralop.training import AdamW

    x_train, y_train = train
    # input_map "raw": the stored coefficient a in {3, 12}; "indicator": (a - 3)/9 in {0, 1}, the
    # boolean form of neuraloperator's own darcy_*.pt files. Inputs are never encoded (its loader).
    prep = (lambda x: x) if input_map == "raw" else (lambda x: (x - 3.0) / 9.0)
    torch.manual_seed(seed)
    model = FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=24, projection_channel_ratio=2)
    out_norm = UnitGaussianNormalizer(dim=[0, 2, 3])  # channel-wise, as encoding="channel-wise"
    out_norm.fit(y_train)
    opt = AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max)
    h1 = H1Loss(d=2)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=g) if shuffle else torch.arange(len(x_train))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            loss = h1(model(prep(x_train[idx])), out_norm.transform(y_train[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    train_time = time.perf_counter() - t0
    model.eval()
    result = score(lambda x: out_norm.inverse_transform(model(prep(x))), tests)
    result.update(parameters=sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters()), train_time_s=train_time)
    return result


# --------------------------------------------------------------------------------------------
# neuralops through run_experiment, with optional monkeypatches

BASE = [
    "trainer.progress=false", "trainer.tensorboard=false", "trainer.num_threads=1",
    "trainer.metrics=[rel_l2,rel_h1]",
]
MATCHED = [  # the matched run: same architecture and budget, our defaults otherwise
    "model.n_modes=[4,5]", "model.hidden_channels=24", "trainer.loss=rel_h1",
    f"trainer.batch_size={BATCH}", f"trainer.epochs={EPOCHS}", "trainer.select=last",
]

_CAPTURED: dict[str, Any] = {}


def _grid_coords_left(n: int, dtype, device) -> torch.Tensor:
    return torch.arange(n, dtype=dtype, device=device) / n


class LeftEmbedding(torch.nn.Module):
    """neuraloperator's coordinate channels: ``j/n`` on every axis (left end of each cell)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = [_grid_coords_left(n, x.dtype, x.device) for n in x.shape[2:]]
        mesh = torch.stack(torch.meshgrid(*axes, indexing="ij")).unsqueeze(0).expand(x.shape[0], -1, *x.shape[2:])
        return torch.cat([x, mesh], dim=1)


def h1_periodic_rel(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """neuraloperator's relative H1 per sample (its ``H1Loss.rel``): central differences that wrap
    around on every axis with ``h = 1/n``, unweighted sums of ``e² + Σ_d (∂_d e)²`` over the grid,
    square root of the ratio to the same sum for ``target``. ``(B,)``."""
    def terms(u):
        out = [u.flatten(1).pow(2).sum(1)]
        for d in range(2, u.ndim):
            n = u.shape[d]
            du = (torch.roll(u, -1, d) - torch.roll(u, 1, d)) * (n / 2.0)
            out.append(du.flatten(1).pow(2).sum(1))
        return sum(out)
    return (terms(pred - target) / terms(target)).sqrt()


class WrappedLoss(torch.nn.Module):
    """Replaces the trainer's loss: ``encode`` puts pred/target in the output normalizer's units
    (neuraloperator's training units); ``h1`` uses :func:`h1_periodic_rel` instead of our rel_h1."""

    def __init__(self, inner, normalizer=None, h1: bool = False):
        super().__init__()
        self.inner, self.normalizer, self.h1 = inner, normalizer, h1

    def forward(self, pred, target, grid, inputs=None):
        if self.normalizer is not None:
            pred, target = self.normalizer.encode(pred), self.normalizer.encode(target)
        if self.h1:
            return h1_periodic_rel(pred, target).mean()
        return self.inner(pred, target, grid) if inputs is None else self.inner(pred, target, grid, inputs)


@contextlib.contextmanager
def patched(names: list[str], epochs: int):
    """Apply the named monkeypatches (see ``PATCHES``) to ``neuralops.training.run`` for one run."""
    from neuralops.training import run as run_mod

    saved = {k: getattr(run_mod, k) for k in ("_model", "_normalizers", "build_scheduler", "Trainer", "evaluate_views")}
    hooks: list[Callable] = []
    loss_opts: dict[str, Any] = {}

    if "embed_left" in names:
        hooks.append(lambda m: setattr(m, "embedding", LeftEmbedding()))
    if "spectral_bias_init" in names:  # neuraloperator's spectral bias init N(0, sqrt(2/(Cin+Cout)))
        def _bias(m):
            with torch.no_grad():
                for b in m.blocks:
                    if getattr(b.conv, "bias", None) is not None:
                        b.conv.bias.normal_(0.0, (2.0 / (2 * b.conv.out_channels)) ** 0.5)
        hooks.append(_bias)

    def model_hooked(model_cfg, dataset):
        model = saved["_model"](model_cfg, dataset)
        for h in hooks:
            h(model)
        return model

    def normalizers_out_only(dataset, batch_size, context):
        _, out = saved["_normalizers"](dataset, batch_size, context)
        return None, out

    def scheduler_nl(optimizer, options, n_epochs, steps):  # CosineAnnealingLR(T_max=2·epochs), per epoch
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2 * n_epochs), "epoch"

    def scheduler_epoch_cosine(optimizer, options, n_epochs, steps):  # cosine to 0 stepped per epoch, no warm-up
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs), "epoch"

    if "loss_encoded" in names:
        loss_opts["encode"] = True
    if "h1_periodic" in names:
        loss_opts["h1"] = True

    class TrainerPatched(saved["Trainer"]):
        def __init__(self, operator, *args, **kwargs):
            super().__init__(operator, *args, **kwargs)
            if loss_opts:
                norm = operator.output_normalizer if loss_opts.get("encode") else None
                self.loss = WrappedLoss(self.loss, norm, loss_opts.get("h1", False))

    def evaluate_capture(operator, *args, **kwargs):
        _CAPTURED["operator"] = operator
        return saved["evaluate_views"](operator, *args, **kwargs)

    try:
        run_mod._model = model_hooked
        if "inputs_raw" in names:
            run_mod._normalizers = normalizers_out_only
        if "sched_nl" in names:
            run_mod.build_scheduler = scheduler_nl
        if "sched_epoch" in names:
            run_mod.build_scheduler = scheduler_epoch_cosine
        run_mod.Trainer = TrainerPatched
        run_mod.evaluate_views = evaluate_capture
        yield
    finally:
        for k, v in saved.items():
            setattr(run_mod, k, v)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir
    from neuralops.config_store import register, validate

    register()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    validate(cfg)
    return cfg


def train_neuralops(seed: int, overrides: list[str], patches: list[str], tests, run_dir: Path, data: Path) -> dict[str, Any]:
    from neuralops.training.run import run_experiment
    import logging

    logging.getLogger("neuralops").setLevel(logging.WARNING)
    cfg = compose([f"data.path={data}", f"seed={seed}", *BASE, *overrides])
    with patched(patches, int(cfg.trainer.epochs)):
        metrics = run_experiment(cfg, run_dir, base_dir=ROOT)
    operator = _CAPTURED.pop("operator")
    operator.eval()
    result = score(lambda x: operator(x), tests)
    own = {r["resolution"]: r["rel_l2"] for r in metrics["test"]}
    result.update(parameters=metrics["parameters"], train_time_s=metrics["train_time_s"], own_rel_l2=own)
    return result


# --------------------------------------------------------------------------------------------
# variants: (library, overrides, patches, description)

NL_LR = ["optim.lr=1e-2", "optim/scheduler=cosine", "optim.scheduler.warmup_fraction=0"]

VARIANTS: dict[str, tuple[str, list[str], list[str], str]] = {
    # neuraloperator
    "nl": ("neuraloperator", ["raw"], [], "neuraloperator example (inputs a in {3,12}, not encoded)"),
    "nl_indicator": ("neuraloperator", ["indicator"], [], "neuraloperator example, inputs (a-3)/9 in {0,1} as its bool data"),
    "nl_shuffle": ("neuraloperator", ["raw", "shuffle"], [], "neuraloperator example, shuffled loader"),
    "nl_b32": ("neuraloperator", ["raw", "b32"], [], "neuraloperator example at batch 32 (as our best recipe)"),
    # neuralops, matched architecture and budget
    "matched": ("neuralops", MATCHED, [], "neuralops matched (issue row 2): default optimizer adamw 3e-3, 1-epoch warm-up, cosine/step"),
    "m_lr1e-2": ("neuralops", MATCHED + ["optim.lr=1e-2"], [], "matched, lr 1e-2 (1-epoch warm-up kept)"),
    "m_warm0": ("neuralops", MATCHED + ["optim.scheduler.warmup_fraction=0"], [], "matched, no warm-up"),
    "m_lr1e-2_warm0": ("neuralops", MATCHED + NL_LR, [], "matched, lr 1e-2, no warm-up"),
    "m_sched_nl": ("neuralops", MATCHED + ["optim.lr=1e-2"], ["sched_nl"], "matched, lr 1e-2, neuraloperator's cosine T_max=30 per epoch"),
    "m_inputs_raw": ("neuralops", MATCHED, ["inputs_raw"], "matched, output-only normalization"),
    "m_loss_encoded": ("neuralops", MATCHED, ["loss_encoded"], "matched, loss on encoded outputs"),
    "m_h1_periodic": ("neuralops", MATCHED, ["h1_periodic"], "matched, neuraloperator's periodic H1"),
    "m_pad0": ("neuralops", MATCHED + ["model.domain_padding=0"], [], "matched, no domain padding"),
    "m_embed_left": ("neuralops", MATCHED, ["embed_left"], "matched, coordinates j/n (neuraloperator's)"),
    "m_grid_periodic": ("neuralops", MATCHED + ["model.grid=periodic"], [], "matched, model.grid=periodic"),
    "m_bias_init": ("neuralops", MATCHED, ["spectral_bias_init"], "matched, spectral bias initialised as neuraloperator"),
    "m_lr2e-2_warm0": ("neuralops", MATCHED + ["optim.lr=2e-2", "optim/scheduler=cosine", "optim.scheduler.warmup_fraction=0"], [],
                       "matched, lr 2e-2, no warm-up, cosine to 0"),
    "m_lr1e-2_const": ("neuralops", MATCHED + ["optim.lr=1e-2", "optim/scheduler=none"], [], "matched, lr 1e-2 constant"),
    "m_lr1e-2_wfrac": ("neuralops", MATCHED + ["optim.lr=1e-2", "optim.scheduler.warmup_fraction=0.05"], [], "matched, lr 1e-2, warm-up 5% of the steps, cosine to 0"),
    # neuraloperator's recipe, everything it does, through our path
    "m_as_nl": ("neuralops", MATCHED + ["optim.lr=1e-2", "model.domain_padding=0"],
                ["sched_nl", "inputs_raw", "loss_encoded", "h1_periodic", "embed_left", "spectral_bias_init"],
                "matched with every neuraloperator difference patched in"),
    # our default FNO on this data
    "default_fno_budget": ("neuralops", ["trainer.loss=rel_h1", f"trainer.batch_size={BATCH}", f"trainer.epochs={EPOCHS}", "trainer.select=last"], [],
                           "default FNO (602,977 params), the matched budget (rel_h1, batch 64, 15 epochs, last)"),
    "default_fno_budget_lr1e-2": ("neuralops", ["trainer.loss=rel_h1", f"trainer.batch_size={BATCH}", f"trainer.epochs={EPOCHS}", "trainer.select=last"] + NL_LR, [],
                                  "default FNO, matched budget, lr 1e-2, no warm-up, cosine to 0"),
    "default_fno_budget_sched_nl": ("neuralops", ["trainer.loss=rel_h1", f"trainer.batch_size={BATCH}", f"trainer.epochs={EPOCHS}", "trainer.select=last", "optim.lr=1e-2"], ["sched_nl"],
                                    "default FNO, matched budget, lr 1e-2, neuraloperator's cosine T_max=30 per epoch"),
    "default_fno_b32_lr1e-2": ("neuralops", ["trainer.loss=rel_h1", "trainer.batch_size=32", f"trainer.epochs={EPOCHS}", "trainer.select=last"] + NL_LR, [],
                               "default FNO, 15 epochs at batch 32 (our default batch), lr 1e-2, no warm-up, cosine to 0"),
    # the shipped recipes, composed from configs/experiment/
    "recipe_fno_darcy_small": ("neuralops", ["+experiment=fno_darcy_small"], [], "python train.py +experiment=fno_darcy_small"),
    "recipe_fno_darcy_small_best": ("neuralops", ["+experiment=fno_darcy_small_best"], [], "python train.py +experiment=fno_darcy_small_best"),
    "recipe_matched_baseline": ("neuralops", ["+experiment=neuraloperator_darcy_matched"], [], "python train.py +experiment=neuraloperator_darcy_matched"),
    "default_fno": ("neuralops", [], [], "python train.py data.path=... (every default: rel_l2, batch 32, 30 epochs, best_val)"),
}


def run_variant(name: str, seed: int, data: Path, train, tests) -> dict[str, Any]:
    lib, overrides, patches, _ = VARIANTS[name]
    if lib == "neuraloperator":
        return train_neuraloperator(seed, train, tests, input_map=overrides[0], shuffle="shuffle" in overrides,
                                    batch=32 if "b32" in overrides else BATCH)
    run_dir = ROOT / "runs" / "parity" / name / f"seed{seed}"
    return train_neuralops(seed, overrides, patches, tests, run_dir, data)


def load_results() -> list[dict[str, Any]]:
    if not RESULTS.exists():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def table(rows: list[dict[str, Any]], names: list[str] | None = None, reference: str = "nl") -> str:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    ref = {k: sum(r[k] for r in by[reference]) / len(by[reference]) for k in ("rel_l2_16", "rel_l2_32")} if reference in by else None

    def ms(vals):
        m = sum(vals) / len(vals)
        s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        return m, s

    lines = ["| variant | params | seeds | rel L2 16² | rel L2 32² | × nl 16² | × nl 32² | train s |", "|---|---|---|---|---|---|---|---|"]
    for name in names or list(by):
        if name not in by:
            continue
        rs = by[name]
        (m16, s16), (m32, s32) = ms([r["rel_l2_16"] for r in rs]), ms([r["rel_l2_32"] for r in rs])
        t = sum(r["train_time_s"] for r in rs) / len(rs)
        x16 = f"{m16 / ref['rel_l2_16']:.2f}" if ref else "-"
        x32 = f"{m32 / ref['rel_l2_32']:.2f}" if ref else "-"
        lines.append(f"| {name} | {rs[0]['parameters']:,} | {len(rs)} | {m16:.4f} ± {s16:.4f} | {m32:.4f} ± {s32:.4f} | {x16} | {x32} | {t:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--make-data", action="store_true", help="generate --data with the documented command")
    p.add_argument("--variants", nargs="+", default=["nl", "matched"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--list", action="store_true")
    p.add_argument("--table", action="store_true")
    p.add_argument("--rerun", action="store_true", help="train again even if results exist")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    if args.list:
        for k, (lib, ov, pa, desc) in VARIANTS.items():
            print(f"{k:22s} {lib:15s} {desc}\n{'':38s}overrides: {' '.join(ov)}  patches: {' '.join(pa)}")
        return
    if args.make_data:
        args.data.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, *DATA_COMMAND, "--out", str(args.data), "--overwrite"], check=True, cwd=ROOT)
        return
    if args.table:
        print(table(load_results(), args.variants if args.variants != ["nl", "matched"] else None))
        return
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"error: unknown variant(s) {unknown}; see --list")
    if not args.data.exists():
        sys.exit(f"error: {args.data} does not exist; run with --make-data first")
    train = load_split(args.data, "train", 16)
    tests = {n: load_split(args.data, "test", n) for n in (16, 32)}
    assert len(train[0]) == 1000 and all(len(t[0]) == 50 for t in tests.values())
    done = {(r["variant"], r["seed"]) for r in load_results()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        for seed in args.seeds:
            if (name, seed) in done and not args.rerun:
                continue
            t0 = time.perf_counter()
            r = run_variant(name, seed, args.data, train, tests)
            r.update(variant=name, seed=seed, wall_s=time.perf_counter() - t0)
            with RESULTS.open("a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"{name:22s} seed {seed}: 16² {r['rel_l2_16']:.4f}  32² {r['rel_l2_32']:.4f}  ({r['wall_s']:.0f} s)", flush=True)
    print(table(load_results(), args.variants))


if __name__ == "__main__":
    main()
