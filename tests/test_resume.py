"""Exact resume: a run stopped at any step and resumed ends as the run left alone.

The reference of every comparison is the same configuration trained without interruption.
"""

import json
import random
import shutil

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.optim.optimizer import register_optimizer_step_post_hook
from training_runs import REPO, finished, history, run_train, weights

from neuralops.config_store import register
from neuralops.data.multires import ResolutionBatchSampler
from neuralops.errors import ConfigError
from neuralops.training.checkpoint import rng_state, set_rng_state
from neuralops.training.run import run_experiment

# 3 epochs of 4 steps; only the step checkpoints (every 5 steps) and the last epoch's.
IN_PROCESS = [
    "trainer.epochs=3", "trainer.batch_size=8", "trainer.limit_train_batches=4", "trainer.checkpoint_every=10",
    "trainer.checkpoint_every_steps=5", "trainer.progress=false", "trainer.tensorboard=false", "trainer.metrics=[rel_l2]",
    "data.max_train_samples=32", "data.test_resolutions=[17]", "model.hidden_channels=8", "model.n_modes=[4,4]",
]


def compose_config(overrides):
    register()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


class Crash(Exception):
    """Raised from an optimizer step hook: the run stops there, as if killed."""


def crash_after(steps: int):
    count = 0

    def hook(optimizer, args, kwargs):
        nonlocal count
        count += 1
        if count == steps:
            raise Crash

    return register_optimizer_step_post_hook(hook)


def test_sampler_resumes_an_epoch_from_its_start_state_and_skip():
    lengths, batch = [10, 7], 3
    straight = ResolutionBatchSampler(lengths, batch, generator=torch.Generator().manual_seed(4))
    first = list(straight)
    start = straight.generator.get_state()
    second, third = list(straight), list(straight)

    resumed = ResolutionBatchSampler(lengths, batch, generator=torch.Generator().manual_seed(99))
    resumed.generator.set_state(start)
    resumed.skip = 2
    assert list(resumed) == second[2:], "skip leaves out the batches already taken, in the same order"
    assert list(resumed) == third, "the next epoch continues the generator as the straight run does"
    assert first != second


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    torch.save(rng_state(torch.device("cpu")), tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.standard_normal(3), [random.random() for _ in range(3)])
    torch.manual_seed(7), np.random.seed(8), random.seed(9)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), torch.device("cpu"))
    again = (torch.rand(3), np.random.standard_normal(3), [random.random() for _ in range(3)])
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


def test_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    """Stopped at step 10 (epoch 3, step 2) with the last checkpoint at step 5 (epoch 2, step 1):
    the resume replays epoch 2 from step 2 with the saved data order, RNGs and partial loss."""
    straight = run_experiment(compose_config(IN_PROCESS), tmp_path / "straight", base_dir=REPO)

    run_dir = tmp_path / "resumed"
    handle = crash_after(10)
    try:
        with pytest.raises(Crash):
            run_experiment(compose_config(IN_PROCESS), run_dir, base_dir=REPO)
    finally:
        handle.remove()
    assert [h["epoch"] for h in history(run_dir)] == [1, 2], "the stopped run wrote epoch 2 after its last checkpoint"
    state = torch.load(run_dir / "checkpoints" / "last" / "training_state.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 1, 5), "the last checkpoint is mid-epoch 2"
    resumed = run_experiment(compose_config(IN_PROCESS + [f"trainer.resume={run_dir}"]), run_dir, base_dir=REPO)

    assert resumed["val_best"] == pytest.approx(straight["val_best"], rel=1e-6, abs=0)
    assert resumed["test"][0]["rel_l2"] == pytest.approx(straight["test"][0]["rel_l2"], rel=1e-6, abs=0)
    assert [h["epoch"] for h in history(run_dir)] == [1, 2, 3], "no epoch twice"
    for mine, theirs in zip(history(run_dir), history(tmp_path / "straight")):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-6, abs=0)
    a, b = weights(run_dir), weights(tmp_path / "straight")
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)


def test_resume_refuses_another_data_file_or_model(tmp_path):
    run_dir = tmp_path / "run"
    base = [o for o in IN_PROCESS if not o.startswith("trainer.epochs")] + ["trainer.epochs=1", "trainer.limit_train_batches=1"]
    run_experiment(compose_config(base), run_dir, base_dir=REPO)
    copy = tmp_path / "copy.h5"
    shutil.copyfile(REPO / "data" / "darcy_small.h5", copy)
    with pytest.raises(ConfigError, match=r"was trained with data\.path='.*darcy_small\.h5', this run has data\.path='.*copy\.h5'"):
        run_experiment(compose_config(base + [f"trainer.resume={run_dir}", f"data.path={copy}"]), tmp_path / "other", base_dir=REPO)
    with pytest.raises(ConfigError, match=r"model\.config\.lifting_channels|model\.config\.hidden_channels=8.*=16"):
        run_experiment(compose_config(base + [f"trainer.resume={run_dir}", "model.hidden_channels=16"]), tmp_path / "other", base_dir=REPO)
    # a checkpoint written before the weights' format 2 (the FNO's last block changed since)
    state_file = run_dir / "checkpoints" / "last" / "training_state.pt"
    state = torch.load(state_file, weights_only=True)
    identity = json.loads(state["identity_json"])
    del identity["model"]["format_version"]
    state["identity_json"] = json.dumps(identity)
    torch.save(state, state_file)
    with pytest.raises(ConfigError, match=r"was trained with model\.format_version=None, this run has model\.format_version=2"):
        run_experiment(compose_config(base + [f"trainer.resume={run_dir}"]), tmp_path / "old", base_dir=REPO)


@pytest.mark.slow
def test_kill_9_in_epoch_3_then_resume_matches_the_uninterrupted_run(tmp_path):
    """A real SIGKILL after step 10 of 24 (epoch 3, step 2; last checkpoint at step 9), then
    ``trainer.resume`` into the same run directory, as a user does."""
    straight = finished(tmp_path / "straight", run_train(tmp_path / "straight"))
    run_dir = tmp_path / "resumed"
    killed = run_train(run_dir, kill_after=10)
    assert killed.returncode == -9 and not (run_dir / "metrics.json").exists()
    resumed = finished(run_dir, run_train(run_dir, [f"trainer.resume={run_dir}"]))

    assert resumed["val_best"] == pytest.approx(straight["val_best"], rel=1e-6, abs=0)
    for mine, theirs in zip(resumed["test"], straight["test"]):
        for metric in ("rel_l2", "rmse"):
            assert mine[metric] == pytest.approx(theirs[metric], rel=1e-6, abs=0)
    assert [h["epoch"] for h in history(run_dir)] == [1, 2, 3, 4, 5, 6]
    assert resumed["train_time_s"] > max(h["time_s"] for h in history(run_dir))
