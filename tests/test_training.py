"""Hydra configs, an end-to-end train.py run, resume, load_pretrained, and clear errors."""

import json
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import neuralops
from neuralops.config_store import register
from neuralops.errors import ConfigError, DataFormatError, PretrainedFormatError
from neuralops.evaluation import evaluate_resolutions
from neuralops.training.run import run_experiment
from neuralops.training.trainer import TrainerConfig

# Tiny settings so a run takes seconds: 64 samples, 2 steps per epoch, a narrow FNO.
FAST = [
    "trainer.epochs=2",
    "trainer.batch_size=16",
    "trainer.limit_train_batches=2",
    "trainer.progress=false",
    "trainer.num_threads=1",
    "data.max_train_samples=64",
    "model.hidden_channels=8",
    "model.n_modes=[4,4]",
]


def compose_config(repo_root, overrides=()):
    register()
    with initialize_config_dir(config_dir=str(repo_root / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_default_config_composes(repo_root):
    cfg = compose_config(repo_root)
    assert cfg.model.name == "fno" and cfg.data.name == "darcy"
    assert cfg.data.path == "data/darcy_small.h5"
    assert cfg.optim.lr > 0 and cfg.trainer.epochs >= 1


def test_overrides_compose(repo_root):
    cfg = compose_config(repo_root, ["model=fno", "data=darcy", "trainer.epochs=20", "optim.lr=1e-3", "optim=adam"])
    assert cfg.trainer.epochs == 20
    assert cfg.optim.name == "adam" and cfg.optim.lr == pytest.approx(1e-3)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, repo_root):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_config(repo_root, FAST)
    results = run_experiment(cfg, run_dir, base_dir=repo_root)
    return run_dir, results, cfg


def test_run_writes_metrics_for_every_resolution(trained_run, darcy_file):
    run_dir, results, _ = trained_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [row["resolution"] for row in metrics["test"]] == ["17x17", "33x33", "65x65"]
    for row in metrics["test"]:
        assert row["samples"] == 100
        assert 0 < row["rel_l2"] < 1.5
    assert metrics["epochs"] == 2 and metrics["selection"] == "best_val"
    assert len((run_dir / "history.jsonl").read_text().splitlines()) == 2
    assert {p.name for p in (run_dir / "model").iterdir()} == {"config.json", "model.safetensors"}
    assert (run_dir / "plots" / "prediction_33x33.png").is_file()


def test_load_pretrained_reproduces_run_metrics(trained_run, darcy_file):
    run_dir, results, cfg = trained_run
    operator = neuralops.load_pretrained(run_dir / "model")
    rows = evaluate_resolutions(operator, darcy_file, list(cfg.trainer.metrics))
    for mine, theirs in zip(rows, results["test"]):
        assert mine["resolution"] == theirs["resolution"]
        for name in cfg.trainer.metrics:
            assert mine[name] == pytest.approx(theirs[name], rel=1e-6)
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["model"]["name"] == "fno" and config["normalizers"]["output"]["std"][0] > 0


def test_resume_continues_from_last_checkpoint(trained_run, repo_root, tmp_path):
    run_dir, _, _ = trained_run
    cfg = compose_config(repo_root, [o for o in FAST if not o.startswith("trainer.epochs")]
                         + ["trainer.epochs=3", f"trainer.resume={run_dir}"])
    results = run_experiment(cfg, tmp_path, base_dir=repo_root)
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    before = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert results["epochs"] == 3
    assert [h["epoch"] for h in history] == [1, 2, 3], "resume must continue at epoch 3, each epoch listed once"
    assert history[:2] == before, "the epochs before the checkpoint come from it, unchanged"
    original = json.loads((run_dir / "metrics.json").read_text())["train_time_s"]
    assert results["train_time_s"] > original, "train_time_s is the total over the original run and the resume"


def test_train_py_command_line(repo_root, tmp_path):
    """The real entry point, as a user runs it."""
    run_dir = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "train.py", *FAST, "trainer.epochs=1", f"hydra.run.dir={run_dir}"],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "65x65" in proc.stdout
    assert (run_dir / "metrics.json").is_file() and (run_dir / "model" / "model.safetensors").is_file()
    log = (run_dir / "train.log").read_text()
    assert "epoch 1/1  train rel_l2" in log and "samples/s" in log, "train.log receives the log lines"
    assert "65x65" in log and "test metrics of fno" in log

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert {"loss/train", "loss/val", "lr", "test/rel_l2/65x65"} <= set(events.Tags()["scalars"])
    assert {"test/prediction_17x17", "test/prediction_65x65"} <= set(events.Tags()["images"])
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert events.Scalars("loss/train")[0].value == pytest.approx(history[0]["train_loss"], rel=1e-6)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["data.path=/nonexistent/file.h5"], "no such data file"),
        (["model.name=fnoo"], "unknown model name 'fnoo'"),
        (["+model.n_mode=4"], "unknown option(s) 'n_mode'"),
        (["+trainer.epoch=4"], "unknown trainer option(s) ['epoch']"),
        (["optim.name=adagrad"], "optim.name='adagrad' is not one of"),
        (["model.n_modes=[4]"], "model.n_modes=[4] has 1 entries but the data is 2-D"),
    ],
)
def test_bad_config_gives_one_clear_error(repo_root, tmp_path, overrides, message):
    cfg = compose_config(repo_root, FAST + overrides)
    with pytest.raises((ConfigError, DataFormatError)) as err:
        run_experiment(cfg, tmp_path, base_dir=repo_root)
    assert message in str(err.value)


def test_train_py_reports_bad_input_without_traceback(repo_root, tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", "data.path=missing.h5", f"hydra.run.dir={tmp_path}"],
        cwd=repo_root, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "error:" in proc.stderr and "missing.h5" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_load_pretrained_rejects_bad_directories(tmp_path, trained_run):
    with pytest.raises(PretrainedFormatError, match="does not exist"):
        neuralops.load_pretrained(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(PretrainedFormatError, match="not valid JSON"):
        neuralops.load_pretrained(tmp_path)
    run_dir, _, _ = trained_run
    bad = tmp_path / "bad"
    bad.mkdir()
    config = json.loads((run_dir / "model" / "config.json").read_text())
    config["model"]["config"]["hidden_channels"] = 9
    (bad / "config.json").write_text(json.dumps(config))
    (bad / "model.safetensors").write_bytes((run_dir / "model" / "model.safetensors").read_bytes())
    with pytest.raises(PretrainedFormatError, match="does not match"):
        neuralops.load_pretrained(bad)


def test_pretrained_files_hold_no_pickle(trained_run):
    """model.safetensors is a safetensors file (JSON header), checkpoints load with weights_only."""
    run_dir, _, _ = trained_run
    raw = (run_dir / "model" / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")
    state = torch.load(run_dir / "checkpoints" / "last" / "training_state.pt", weights_only=True)
    assert state["epoch"] == 2


def test_run_fits_data_dependent_buffers_before_training(repo_root, tmp_path):
    """POD-DeepONet's basis is fitted from the training outputs by the run (not left at zero)."""
    cfg = compose_config(repo_root, [
        "model=pod_deeponet", "model.n_basis=8", "model.branch_hidden=[16]", "trainer.epochs=1",
        "trainer.limit_train_batches=1", "trainer.progress=false", "data.max_train_samples=32",
    ])
    run_experiment(cfg, tmp_path, base_dir=repo_root)
    basis = neuralops.load_pretrained(tmp_path / "model").model.pod_basis  # (C_out, n_basis, 17, 17)
    gram = torch.einsum("cixy,cjxy->cij", basis, basis) / basis[0, 0].numel()
    assert torch.allclose(gram, torch.eye(8).expand_as(gram), atol=1e-4), "basis must be orthonormal, not zero"


@pytest.mark.parametrize(
    "option,bad,good,message",
    [
        ("epochs", 0, 1, "trainer.epochs must be an integer >= 1, got 0"),
        ("epochs", 2.5, 2, "trainer.epochs must be an integer >= 1, got 2.5"),
        ("batch_size", -4, 1, "trainer.batch_size must be an integer >= 1, got -4"),
        ("checkpoint_every", 0, 1, "trainer.checkpoint_every must be an integer >= 1, got 0"),
        ("checkpoint_every_steps", 0, None, "trainer.checkpoint_every_steps must be an integer >= 1 or null, got 0"),
        ("num_workers", -1, 0, "trainer.num_workers must be an integer >= 0, got -1"),
        ("num_threads", 0, None, "trainer.num_threads must be an integer >= 1 or null, got 0"),
        ("limit_train_batches", 0, 1, "trainer.limit_train_batches must be an integer >= 1 or null, got 0"),
        ("limit_train_batches", -1, None, "trainer.limit_train_batches must be an integer >= 1 or null, got -1"),
        ("grad_clip", 0.0, 1.0, "trainer.grad_clip must be a positive number or null, got 0.0"),
        ("device", "gpu0", "cpu", "trainer.device='gpu0' is not a valid device"),
    ],
)
def test_trainer_options_out_of_range_give_one_line(option, bad, good, message):
    with pytest.raises(ConfigError) as err:
        TrainerConfig(**{option: bad})
    assert message in str(err.value) and "\n" not in str(err.value)
    assert getattr(TrainerConfig(**{option: good}), option) == good, "the boundary value is accepted"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_one_line():
    with pytest.raises(ConfigError, match=r"trainer.device='cuda' but this machine has no usable CUDA device"):
        TrainerConfig(device="cuda")


def test_diverging_loss_stops_with_one_line(repo_root, tmp_path):
    cfg = compose_config(repo_root, FAST + ["optim.lr=1e8", "trainer.epochs=1"])
    with pytest.raises(ConfigError, match=r"training diverged: the loss became (nan|inf) at epoch 1, step \d+; lower optim.lr \(now 1e\+08\)") as err:
        run_experiment(cfg, tmp_path, base_dir=repo_root)
    assert "\n" not in str(err.value)
