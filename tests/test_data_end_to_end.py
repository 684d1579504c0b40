"""Training end to end on trajectory data: a generated NS file (window, rollout), a PDEBench file
(through ``python train.py``) and a Well file, each writing per-resolution metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from neuralops.config_store import register
from neuralops.data.generate import main as generate
from neuralops.training.run import run_experiment

FAST = ["trainer.epochs=1", "trainer.batch_size=8", "trainer.limit_train_batches=2", "trainer.progress=false",
        "model.hidden_channels=4", "trainer.metrics=[rel_l2,rmse]"]


def compose_config(repo_root, overrides):
    register()
    with initialize_config_dir(config_dir=str(repo_root / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def ns_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("ns") / "ns.h5"
    args = ["navier_stokes", "--samples", "8", "--val-fraction", "0.25", "--test-fraction", "0.25", "--resolutions", "16", "8",
            "--final-time", "0.5", "--n-times", "6", "--dt", "0.05", "--no-progress", "--out", str(out)]
    assert generate(args) == 0
    return out


def test_navier_stokes_window_task_trains_and_reports_every_resolution(repo_root, ns_file, tmp_path):
    cfg = compose_config(repo_root, ["data=navier_stokes", f"data.path={ns_file}", "data.steps_in=2", "model.n_modes=[4,4]", *FAST])
    results = run_experiment(cfg, tmp_path, base_dir=repo_root)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["task"] == {"name": "window", "steps_in": 2, "steps_out": 1, "time_stride": 1}
    assert [(r["resolution"], r["method"], r["samples"]) for r in metrics["test"]] == [("8x8", "file", 8), ("16x16", "file", 8)]  # 2 trajectories x 4 windows
    assert all(np.isfinite(r["rel_l2"]) and r["rel_l2"] > 0 for r in metrics["test"])
    splits = json.loads((tmp_path / "splits.json").read_text())
    assert splits["policy"] == "file" and splits["test"]["ids"] == [6, 7] and len(splits["train"]["sha256"]) == 64
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    # the file stores the train split at 16 and 8 points: both are trained on (2 grids x 4 trajectories x 4 windows)
    assert config["metadata"]["input_channels"] == ["w[t-1]", "w[t+0]"] and results["train_samples"] == 2 * 4 * 4
    assert results["train_resolution"] == "16x16+8x8"


def test_navier_stokes_rollout_reports_per_step_metrics(repo_root, ns_file, tmp_path):
    cfg = compose_config(repo_root, ["data=navier_stokes", f"data.path={ns_file}", "data.task=rollout", "data.steps_in=2",
                                     "data.test_resolutions=[16]", "model.n_modes=[4,4]", *FAST])
    run_experiment(cfg, tmp_path, base_dir=repo_root)
    (row,) = json.loads((tmp_path / "metrics.json").read_text())["test"]
    assert row["resolution"] == "16x16" and row["samples"] == 2 and row["steps"] == 4
    assert len(row["rel_l2_per_step"]) == 4 and row["rel_l2"] == pytest.approx(np.mean(row["rel_l2_per_step"]))


def test_train_py_on_a_pdebench_file_with_stride_views(repo_root, tmp_path):
    path = tmp_path / "1D_Advection_Sols_beta0.1.hdf5"
    x = (np.arange(32) + 0.5) / 32
    t = np.linspace(0, 1, 9)
    phase = np.random.default_rng(0).uniform(0, 1, (20, 1, 1))
    with h5py.File(path, "w") as h5:
        h5["tensor"] = np.sin(2 * np.pi * (x[None, None, :] - 0.1 * t[None, :8, None] + phase)).astype(np.float32)
        h5["x-coordinate"] = x.astype(np.float32)
        h5["t-coordinate"] = t.astype(np.float32)  # T + 1 entries, as PDEBench writes them
        h5.attrs["beta"] = 0.1
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "train.py", "data=pdebench", f"data.path={path}", "data.steps_in=2", "data.split=pdebench",
         "model.n_modes=[4]", *FAST, f"hydra.run.dir={run_dir}"],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["data_format"] == "pdebench" and metrics["split"] == "pdebench"
    assert [(r["resolution"], r["method"], r["stride"]) for r in metrics["test"]] == [("32", "file", 1), ("16", "stride", 2), ("8", "stride", 4)]
    assert all(r["samples"] == 2 * 6 for r in metrics["test"])  # test = first 2 trajectories, 6 windows each
    assert "stride 4" in proc.stdout


def test_run_on_a_well_file(repo_root, tmp_path):
    path = tmp_path / "toy_well.hdf5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as h5:
        h5.attrs.update({"dataset_name": "toy", "grid_type": "cartesian", "n_spatial_dims": 2, "n_trajectories": 10,
                         "simulation_parameters": []})
        dims = h5.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        for name, values in (("time", np.arange(6.0)), ("x", np.arange(8.0) / 8), ("y", np.arange(8.0) / 8)):
            dims[name] = values
            dims[name].attrs.update({"sample_varying": False, "time_varying": name == "time"})
        t0 = h5.create_group("t0_fields")
        t0.attrs["field_names"] = ["c"]
        t0["c"] = rng.standard_normal((10, 6, 8, 8)).astype(np.float32)
        t0["c"].attrs.update({"sample_varying": True, "time_varying": True, "dim_varying": [True, True]})
    cfg = compose_config(repo_root, ["data=the_well", f"data.path={path}", "model.n_modes=[2,2]", *FAST])
    run_experiment(cfg, tmp_path / "run", base_dir=repo_root)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [(r["resolution"], r["method"]) for r in metrics["test"]] == [("8x8", "file"), ("4x4", "stride")]
    assert metrics["data_format"] == "the_well" and metrics["split"] == "random"
