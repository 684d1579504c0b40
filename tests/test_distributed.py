"""Data-parallel training: sharded batches and evaluation, and 2 gloo processes under torchrun
against 1 process with the same global batch."""

import pytest
import torch
from training_runs import finished, history, run_train, weights

from neuralops.data.multires import ResolutionBatchSampler, shard_batch
from neuralops.errors import ConfigError
from neuralops.evaluation.metrics import MetricAccumulator
from neuralops.evaluation.resolution import merge_means, shard
from neuralops.grid import Grid
from neuralops.training.distributed import Distributed


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_share_out_each_global_batch(world_size):
    lengths, batch = [11, 7], 6
    whole = list(ResolutionBatchSampler(lengths, batch, generator=torch.Generator().manual_seed(0)))
    ranks = [list(ResolutionBatchSampler(lengths, batch, generator=torch.Generator().manual_seed(0), world_size=world_size, rank=r))
             for r in range(world_size)]
    assert all(len(r) == len(whole) for r in ranks)
    for step, global_batch in enumerate(whole):
        shares = [r[step] for r in ranks]
        assert len({len(s) for s in shares}) == 1, "every rank gets as many samples (DDP averages per-rank means)"
        together = [i for s in shares for i in s]
        assert set(together) == set(global_batch)
        assert len(together) - len(global_batch) < world_size, "padding repeats fewer samples than there are ranks"
    with pytest.raises(ConfigError, match="batch_size=6 is the global batch, split over 4 processes"):
        ResolutionBatchSampler(lengths, batch, world_size=4, rank=0)


def test_shard_batch_pads_a_batch_smaller_than_the_world():
    assert [shard_batch([5], 3, r) for r in range(3)] == [[5], [5], [5]]
    assert [shard_batch([1, 2, 3, 4, 5], 2, r) for r in range(2)] == [[1, 3, 5], [2, 4, 1]]


def test_sharded_evaluation_reduces_to_the_single_process_means():
    """Shards of unequal size (one empty) merged by sample count give the mean over all samples,
    also per channel."""
    grid = Grid.uniform((9, 9))
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(10, 2, 9, 9, generator=generator)
    pred = target + 0.1 * torch.randn(10, 2, 9, 9, generator=generator)
    whole = MetricAccumulator(["rel_l2", "rmse"])
    whole.update(pred, target, grid)
    expected = {**whole.means(), "per_channel": whole.channel_means(["a", "b"])}

    parts = []
    world = 12  # more ranks than samples: ranks 10 and 11 hold nothing
    for rank in range(world):
        indices = list(shard(range(10), Distributed(rank, world)))
        if not indices:
            continue
        accumulator = MetricAccumulator(["rel_l2", "rmse"])
        accumulator.update(pred[indices], target[indices], grid)
        parts.append((len(indices), {**accumulator.means(), "per_channel": accumulator.channel_means(["a", "b"])}))
    merged = merge_means(parts)
    for name in ("rel_l2", "rmse"):
        assert merged[name] == pytest.approx(expected[name], rel=1e-12)
        for channel in ("a", "b"):
            assert merged["per_channel"][name][channel] == pytest.approx(expected["per_channel"][name][channel], rel=1e-12)


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory):
    """The same 6-epoch run with 1 process and with 2 gloo processes (global batch 8 both)."""
    root = tmp_path_factory.mktemp("ddp")
    one = finished(root / "one", run_train(root / "one"))
    two = finished(root / "two", run_train(root / "two", nproc=2))
    return root, one, two


@pytest.mark.slow
def test_two_processes_train_as_one(straight_runs):
    root, one, two = straight_runs
    assert two["processes"] == 2 and one["processes"] == 1
    for a, b in zip(history(root / "one"), history(root / "two")):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5, abs=0)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5, abs=0)
    w1, w2 = weights(root / "one"), weights(root / "two")
    assert w1.keys() == w2.keys()
    assert all(torch.allclose(w1[k], w2[k], rtol=0, atol=1e-5) for k in w1)
    for a, b in zip(one["test"], two["test"]):
        assert a["samples"] == b["samples"] == 100
        assert b["rel_l2"] == pytest.approx(a["rel_l2"], rel=1e-5, abs=0)


@pytest.mark.slow
def test_only_rank_0_writes_the_run_dir(straight_runs):
    root, _, _ = straight_runs
    run_dir = root / "two"
    assert [h["epoch"] for h in history(run_dir)] == [1, 2, 3, 4, 5, 6]
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    log = (run_dir / "train.log").read_text()
    assert log.count("epoch 1/6") == 1 and log.count("test metrics of fno") == 1
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(".") and p.name != ".hydra"], "no leftover staging files"
    assert {p.name for p in root.iterdir()} <= {"one", "two", "two_resumed"}, "no second run directory"


@pytest.mark.slow
def test_two_processes_killed_in_epoch_3_resume_to_the_uninterrupted_run(straight_runs):
    root, _, straight = straight_runs
    run_dir = root / "two_resumed"
    killed = run_train(run_dir, nproc=2, kill_after=10)
    assert killed.returncode != 0 and not (run_dir / "metrics.json").exists()
    resumed = finished(run_dir, run_train(run_dir, [f"trainer.resume={run_dir}"], nproc=2))
    assert resumed["val_best"] == pytest.approx(straight["val_best"], rel=1e-6, abs=0)
    for mine, theirs in zip(resumed["test"], straight["test"]):
        for metric in ("rel_l2", "rmse"):
            assert mine[metric] == pytest.approx(theirs[metric], rel=1e-6, abs=0)
    assert [h["epoch"] for h in history(run_dir)] == [1, 2, 3, 4, 5, 6]
