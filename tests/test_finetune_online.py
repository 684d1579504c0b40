"""Spectral-Refiner fine-tuning and online training, through the training run as a user starts it."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from neuralops.config_store import register, validate
from neuralops.errors import ConfigError
from neuralops.models import build
from neuralops.training.finetune import freeze_for_refinement
from neuralops.training.run import run_experiment

TINY = [
    "trainer.epochs=2",
    "trainer.batch_size=16",
    "trainer.limit_train_batches=3",
    "trainer.progress=false",
    "trainer.tensorboard=false",
    "trainer.metrics=[rel_l2]",
    "data.train_resolutions=[17]",
    "data.max_train_samples=48",
    "data.test_resolutions=[17,33]",
    "model.hidden_channels=8",
    "model.n_modes=[4,4]",
]


def composed(repo_root, overrides):
    register()
    with initialize_config_dir(config_dir=str(repo_root / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    validate(cfg)
    return cfg


def test_refinement_trains_only_the_last_spectral_layer():
    model = build("fno", in_channels=1, out_channels=1, n_modes=[3, 3], hidden_channels=8, n_layers=3)
    trainable = freeze_for_refinement(model, "last_spectral")
    last = {id(p) for p in model.blocks[-1].conv.parameters()}
    assert {id(p) for p in trainable} == last and all(not p.requires_grad for p in model.lifting.parameters())
    with_projection = freeze_for_refinement(model, "last_spectral_and_projection")
    assert {id(p) for p in with_projection} == last | {id(p) for p in model.projection.parameters()}
    with pytest.raises(ConfigError, match="no spectral convolution"):
        freeze_for_refinement(build("deeponet", in_channels=1, out_channels=1, sensor_grid=[5, 5], grid="vertex"), "last_spectral")


def test_finetune_run_changes_only_the_last_spectral_layer_and_writes_a_new_run(repo_root, tmp_path):
    from neuralops.data import generate

    data = tmp_path / "darcy.h5"
    generate.main(["darcy", "--samples", "40", "--resolutions", "9", "17", "--out", str(data), "--no-progress"])
    common = [*(o for o in TINY if not o.startswith(("data.", "model.n_modes"))), f"data.path={data}", "model.n_modes=[3,3]"]
    base = tmp_path / "base"
    run_experiment(composed(repo_root, [*common, "data.train_resolution=9"]), base, base_dir=repo_root)
    refined = tmp_path / "refined"
    overrides = [*common, "+finetune=refine", f"finetune.from_run={base}", "data.train_resolution=17",
                 "trainer.loss=rel_h_minus1", "optim.lr=1e-3"]
    results = run_experiment(composed(repo_root, overrides), refined, base_dir=repo_root)
    before = load_file(str(base / "model" / "model.safetensors"))
    after = load_file(str(refined / "model" / "model.safetensors"))
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed and all(k.startswith("blocks.3.conv.") for k in changed), changed
    assert results["finetuned_from"] == str(base / "model") and results["train_resolution"] == "17x17"
    config = json.loads((refined / "model" / "config.json").read_text())
    assert config["model"]["config"]["n_modes"] == [3, 3]


def test_finetune_from_a_directory_without_a_model_is_one_line(repo_root, tmp_path):
    with pytest.raises(ConfigError, match="finetune.from_run="):
        run_experiment(composed(repo_root, [*TINY, "+finetune=refine", f"finetune.from_run={tmp_path}"]), tmp_path / "r", base_dir=repo_root)


@pytest.mark.slow  # spawns a solver process
def test_online_darcy_trains_on_fresh_samples_and_reports_them(repo_root, tmp_path):
    overrides = ["data=online_darcy", "data.online.samples_per_epoch=64", "data.online.buffer_size=32",
                 *(o for o in TINY if not o.startswith(("data.train_resolutions", "data.max_train", "trainer.limit")))]
    results = run_experiment(composed(repo_root, overrides), tmp_path / "online", base_dir=repo_root)
    online = results["online"]
    assert online["samples_consumed"] == 2 * 64 and online["samples_generated"] >= online["buffer_occupancy"] > 0
    history = [json.loads(line) for line in (tmp_path / "online" / "history.jsonl").read_text().splitlines()]
    assert [h["online"]["samples_consumed"] for h in history] == [64, 128]
