"""Helpers of the resume and data-parallel tests: tiny ``train.py`` runs as a user starts them.

Not a test module: ``run_train`` starts ``python train.py`` (or ``torchrun`` with ``nproc``
processes, gloo on the CPU), optionally through ``kill_after_step.py`` so that every process
kills itself with SIGKILL right after a given optimizer step.
"""

import json
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]

# 6 epochs of 4 steps (32 samples at 17x17 and 32 at 33x33, global batch 8, 4 steps taken per
# epoch), a narrow FNO, checkpoints every 3 steps as well as every 2 epochs.
TINY = [
    "trainer.epochs=6",
    "trainer.batch_size=8",
    "trainer.limit_train_batches=4",
    "trainer.checkpoint_every=2",
    "trainer.checkpoint_every_steps=3",
    "trainer.progress=false",
    "trainer.num_threads=1",
    "trainer.metrics=[rel_l2,rmse]",
    "data.max_train_samples=32",
    "data.test_resolutions=[17,33]",
    "model.hidden_channels=8",
    "model.n_modes=[4,4]",
    "seed=0",
]


def run_train(run_dir: Path, overrides=(), nproc: int = 1, kill_after: int | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``train.py`` with :data:`TINY` and ``overrides`` into ``run_dir``; return the process
    (not checked: a killed run exits non-zero)."""
    script = ["train.py"] if kill_after is None else ["tests/kill_after_step.py", str(kill_after), "train.py"]
    launcher = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    command = [*launcher, *script, *TINY, *overrides, f"hydra.run.dir={run_dir}"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def finished(run_dir: Path, proc: subprocess.CompletedProcess) -> dict:
    """``metrics.json`` of a run that must have succeeded."""
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return json.loads((run_dir / "metrics.json").read_text())


def history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def weights(run_dir: Path, checkpoint: str = "last") -> dict:
    return load_file(str(run_dir / "checkpoints" / checkpoint / "model.safetensors"))
