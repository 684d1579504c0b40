"""The bad-input catalogue: every user error ends in one line that names the option, file or key,
a non-zero exit (or the documented exception type), and nothing left behind.

The CLI cases run ``train.py``'s entry point in-process (Hydra composes the config as on the
command line); the generator and leaderboard cases call their ``main``; the library cases call
the public API.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402

from neuralops import load_pretrained  # noqa: E402
from neuralops.data import generate  # noqa: E402
from neuralops.errors import InputShapeError, NeuralopsError, PretrainedFormatError  # noqa: E402
from neuralops.models import build  # noqa: E402
from neuralops.pretrained import save_pretrained  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A tiny Darcy file (9², 30 samples) and broken variants of it."""
    root = tmp_path_factory.mktemp("bad_inputs")
    good = root / "good.h5"
    assert generate.main(["darcy", "--samples", "30", "--resolutions", "9", "--out", str(good), "--no-progress", "--seed", "1"]) in (0, None)
    (root / "not_hdf5.h5").write_text("this is not an HDF5 file\n")
    (root / "truncated.h5").write_bytes(good.read_bytes()[:2000])
    for name, split, field, value in (("nan_train.h5", "train", "inputs", np.nan), ("inf_test.h5", "test", "outputs", np.inf)):
        shutil.copy(good, root / name)
        with h5py.File(root / name, "r+") as h5:
            ids = h5["splits"][split][()]
            group = h5["resolutions"]["9"]
            row = int(np.searchsorted(group["index"][()], ids[-1]))
            data = group[field][row]
            data[0, 4, 4] = value
            group[field][row] = data
    shutil.copy(good, root / "empty_test.h5")
    with h5py.File(root / "empty_test.h5", "r+") as h5:
        del h5["splits"]["test"]
        h5["splits"].create_dataset("test", data=np.zeros(0, dtype=np.int64))
    return root


def run_train(tmp_path: Path, data: Path, *overrides: str) -> tuple[object, Path]:
    """``python train.py`` on ``data`` with a tiny, fast model; returns (exit code, run dir)."""
    run_dir = tmp_path / "run"
    argv = [
        "train.py",
        f"data.path={data}",
        "trainer.num_threads=1",
        "trainer.progress=false",
        "trainer.epochs=1",
        "trainer.batch_size=8",
        "model.hidden_channels=8",
        "model.n_modes=3",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    old_argv = sys.argv
    sys.argv = argv
    try:
        train.cli()
    except SystemExit as exit_:
        return exit_.code, run_dir
    finally:
        sys.argv = old_argv
    return 0, run_dir


def assert_one_line(code: object, *names: str) -> None:
    assert code not in (0, None), "expected a failing exit"
    message = str(code)
    assert message.startswith("error: ") and "\n" not in message, message
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"


# (id, overrides, names the line must contain, data file in data_dir)
TRAIN_CASES = [
    ("epochs_not_int", ["trainer.epochs=abc"], ["trainer.epochs"], "good.h5"),
    ("batch_size_not_int", ["trainer.batch_size=abc"], ["trainer.batch_size"], "good.h5"),
    ("lr_not_float", ["optim.lr=abc"], ["optim.lr"], "good.h5"),
    ("seed_not_int", ["seed=abc"], ["seed"], "good.h5"),
    ("max_train_samples_not_int", ["data.max_train_samples=abc"], ["data.max_train_samples"], "good.h5"),
    ("n_modes_not_int", ["model.n_modes=abc"], ["model.n_modes"], "good.h5"),
    ("n_modes_list_of_str", ["model.n_modes=[3,x]"], ["model.n_modes"], "good.h5"),
    ("num_workers_negative", ["trainer.num_workers=-1"], ["trainer.num_workers"], "good.h5"),
    ("checkpoint_every_zero", ["trainer.checkpoint_every=0"], ["trainer.checkpoint_every"], "good.h5"),
    ("limit_train_batches_zero", ["trainer.limit_train_batches=0"], ["trainer.limit_train_batches"], "good.h5"),
    ("limit_train_batches_negative", ["trainer.limit_train_batches=-1"], ["trainer.limit_train_batches"], "good.h5"),
    ("max_train_samples_zero", ["data.max_train_samples=0"], ["data.max_train_samples"], "good.h5"),
    ("unknown_model_option", ["model.n_mode=4"], ["model.n_mode", "n_modes"], "good.h5"),
    ("unknown_model", ["model=fnox"], ["fnox", "fno"], "good.h5"),
    ("unknown_optimizer", ["optim=adamx"], ["adamx", "adamw"], "good.h5"),
    ("option_of_other_optimizer", ["optim.momentum=0.9"], ["optim.momentum"], "good.h5"),
    ("option_of_other_schedule", ["optim.scheduler.step_size=5"], ["optim.scheduler.step_size"], "good.h5"),
    ("negative_lr", ["optim.lr=-1"], ["optim.lr"], "good.h5"),
    ("betas_out_of_range", ["optim.betas=[1.5,0.9]"], ["optim.betas"], "good.h5"),
    ("unknown_metric", ["trainer.metrics=[foo]"], ["trainer.metrics", "foo"], "good.h5"),
    ("unknown_loss", ["trainer.loss=foo"], ["trainer.loss"], "good.h5"),
    ("no_metrics", ["trainer.metrics=[]"], ["trainer.metrics"], "good.h5"),
    ("loss_weights_mismatch", ["trainer.loss=[rel_l2,mse]", "trainer.loss_weights=[1]"], ["trainer.loss_weights"], "good.h5"),
    ("unknown_loss_option", ["trainer.loss_options.sobolev_ordr=1"], ["trainer.loss_options.sobolev_ordr"], "good.h5"),
    ("option_of_online_data", ["data.online.buffer=fifo"], ["data.online"], "good.h5"),
    ("finetune_without_source", ["+finetune=refine"], ["finetune.from_run"], "good.h5"),
    ("unknown_precision", ["trainer.precision=fp8"], ["trainer.precision"], "good.h5"),
    ("unknown_selection", ["trainer.select=foo"], ["trainer.select"], "good.h5"),
    ("unknown_split_policy", ["data.split=foo"], ["data.split"], "good.h5"),
    ("val_fraction_out_of_range", ["data.val_fraction=1.5"], ["data.val_fraction"], "good.h5"),
    ("unknown_data_format", ["data.format=foo"], ["data.format"], "good.h5"),
    ("unknown_task", ["data.task=foo"], ["data.task"], "good.h5"),
    ("unknown_trainer_option", ["trainer.epochz=3"], ["trainer.epochz", "epochs"], "good.h5"),
    ("unknown_top_level_option", ["sed=3"], ["sed"], "good.h5"),
    ("channel_mismatch", ["model.in_channels=3"], ["model.in_channels"], "good.h5"),
    ("n_modes_wrong_rank", ["model.n_modes=[3,3,3]"], ["model.n_modes"], "good.h5"),
    ("zero_hidden_channels", ["model.hidden_channels=0"], ["hidden_channels"], "good.h5"),
    ("zero_batch_slice", ["model.batch_slice_mib=0"], ["batch_slice_mib"], "good.h5"),
    ("keep_freed_memory_not_bool", ["trainer.keep_freed_memory=maybe"], ["trainer.keep_freed_memory"], "good.h5"),
    ("missing_file", [], ["missing.h5"], "missing.h5"),
    ("not_hdf5", [], ["not_hdf5.h5"], "not_hdf5.h5"),
    ("truncated_file", [], ["truncated.h5"], "truncated.h5"),
    ("nan_in_train", [], ["nan_train.h5", "train"], "nan_train.h5"),
    ("inf_in_test", [], ["inf_test.h5", "test"], "inf_test.h5"),
    ("empty_test_split", [], ["empty_test.h5", "test"], "empty_test.h5"),
    ("resume_missing_dir", ["trainer.resume=/nonexistent/run"], ["/nonexistent/run"], "good.h5"),
    ("diverging_lr", ["optim.lr=1e8", "optim/scheduler=none"], ["optim.lr"], "good.h5"),
]


@pytest.mark.parametrize(("overrides", "names", "data"), [c[1:] for c in TRAIN_CASES], ids=[c[0] for c in TRAIN_CASES])
def test_train_refuses_with_one_line_and_leaves_no_run_dir(tmp_path, data_dir, overrides, names, data):
    code, run_dir = run_train(tmp_path, data_dir / data, *overrides)
    assert_one_line(code, *names)
    assert not run_dir.exists(), f"left behind: {sorted(p.name for p in run_dir.iterdir())}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_device_without_cuda_is_one_line(tmp_path, data_dir):
    code, run_dir = run_train(tmp_path, data_dir / "good.h5", "trainer.device=cuda")
    assert_one_line(code, "trainer.device")
    assert not run_dir.exists()


def test_resume_on_other_data_is_refused(tmp_path, data_dir):
    code, run_dir = run_train(tmp_path, data_dir / "good.h5")
    assert code == 0
    shutil.copy(data_dir / "good.h5", tmp_path / "other.h5")
    with h5py.File(tmp_path / "other.h5", "r+") as h5:
        h5.attrs["name"] = "other"
    code, _ = run_train(tmp_path / "again", tmp_path / "other.h5", f"trainer.resume={run_dir}")
    assert_one_line(code, "data")


def test_modes_beyond_the_grid_warn_before_training(tmp_path, data_dir, capsys):
    code, run_dir = run_train(tmp_path, data_dir / "good.h5", "model.n_modes=[12,12]")
    assert code == 0
    captured = capsys.readouterr()
    warning = [line for line in (captured.out + captured.err).splitlines() if "WARNING" in line and "model.n_modes" in line]
    assert len(warning) == 1 and "9x9" in warning[0] and "[5, 5]" in warning[0], warning


# -- the generator -----------------------------------------------------------------------------

GENERATE_CASES = [
    ("one_sample", ["darcy", "--samples", "1", "--resolutions", "9"], ["--samples"]),
    ("zero_resolution", ["darcy", "--samples", "10", "--resolutions", "0"], ["--resolutions"]),
    ("negative_fraction", ["darcy", "--samples", "10", "--resolutions", "9", "--val-fraction", "-0.5"], ["--val-fraction"]),
]


@pytest.mark.parametrize(("argv", "names"), [c[1:] for c in GENERATE_CASES], ids=[c[0] for c in GENERATE_CASES])
def test_generator_refuses_with_one_line_and_writes_nothing(tmp_path, capsys, argv, names):
    out = tmp_path / "out.h5"
    with pytest.raises(SystemExit) as info:
        generate.main([*argv, "--out", str(out), "--no-progress"])
    code = info.value.code
    message = str(code) if isinstance(code, str) else capsys.readouterr().err.strip()
    assert code not in (0, None)
    assert len(message.strip().splitlines()) == 1 and all(n in message for n in names), message
    assert list(tmp_path.iterdir()) == []


def test_leaderboard_refuses_a_bad_model_before_training(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import leaderboard

    monkeypatch.setattr(sys, "argv", ["leaderboard.py", "--models", "fno", "fnox", "--epochs", "1", "--out", str(tmp_path / "lb")])
    with pytest.raises(SystemExit) as info:
        leaderboard.main()
    assert_one_line(info.value.code, "fnox")
    assert not (tmp_path / "lb").exists()


# -- the library -------------------------------------------------------------------------------


@pytest.fixture
def pretrained_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    model = build("fno", in_channels=1, out_channels=1, n_modes=[3, 3], hidden_channels=8)
    save_pretrained(tmp_path / "model", model)
    return tmp_path / "model"


def test_missing_pretrained_dir(tmp_path):
    with pytest.raises(PretrainedFormatError, match="nowhere"):
        load_pretrained(tmp_path / "nowhere")


def test_truncated_weights_name_the_file(pretrained_dir):
    weights = pretrained_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(PretrainedFormatError) as info:
        load_pretrained(pretrained_dir)
    assert "model.safetensors" in str(info.value) and "\n" not in str(info.value)


def test_corrupt_config_names_the_file(pretrained_dir):
    (pretrained_dir / "config.json").write_text("{not json")
    with pytest.raises(PretrainedFormatError, match="config.json"):
        load_pretrained(pretrained_dir)


def test_pickled_checkpoint_state_is_refused(tmp_path):
    import pickle

    from neuralops.training.checkpoint import read_training_state, save_checkpoint

    model = build("fno", in_channels=1, out_channels=1, n_modes=[3, 3], hidden_channels=8)
    save_checkpoint(tmp_path / "ckpt", model, {"epoch": 1})
    state_file = next(p for p in (tmp_path / "ckpt").iterdir() if p.suffix == ".pt")

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    state_file.write_bytes(pickle.dumps({"epoch": Payload()}))
    with pytest.raises(NeuralopsError) as info:
        read_training_state(tmp_path / "ckpt")
    assert state_file.name in str(info.value) and not (tmp_path / "pwned").exists()


def test_complex_input_names_the_dtype(pretrained_dir):
    operator = load_pretrained(pretrained_dir)
    with pytest.raises(InputShapeError, match="complex64"):
        operator(torch.zeros(1, 1, 9, 9, dtype=torch.complex64))


def test_wrong_channel_count_names_the_channels(pretrained_dir):
    operator = load_pretrained(pretrained_dir)
    with pytest.raises(InputShapeError, match="in_channels=1"):
        operator(torch.zeros(1, 2, 9, 9))


def test_float64_and_numpy_inputs_just_work(pretrained_dir):
    operator = load_pretrained(pretrained_dir)
    x = torch.randn(2, 1, 9, 9, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = operator(x)
        from_double = operator(x.double())
        from_numpy = operator(x.numpy())
    assert from_double.dtype == torch.float32 and from_numpy.dtype == torch.float32
    torch.testing.assert_close(from_double, reference, rtol=0, atol=0)
    torch.testing.assert_close(from_numpy, reference, rtol=0, atol=0)


def test_disk_full_is_one_line_and_leaves_no_partial_dir(tmp_path, monkeypatch):
    import safetensors.torch

    model = build("fno", in_channels=1, out_channels=1, n_modes=[3, 3], hidden_channels=8)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    monkeypatch.setattr(safetensors.torch, "save_model", full_disk)
    with pytest.raises(NeuralopsError) as info:
        save_pretrained(tmp_path / "model", model)
    assert "space" in str(info.value).lower() and str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_pretrained_dir_is_readable_by_others(tmp_path, pretrained_dir):
    old = os.umask(0o022)
    try:
        model = build("fno", in_channels=1, out_channels=1, n_modes=[3, 3], hidden_channels=8)
        save_pretrained(tmp_path / "shared", model)
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "shared").iterdir())


@pytest.mark.parametrize("kind", ["cp", "tucker", "tt"])
def test_factorized_full_rank_reproduces_the_weight(kind):
    from neuralops.spectral import CPSpectralWeight, TTSpectralWeight, TuckerSpectralWeight

    cls = {"cp": CPSpectralWeight, "tucker": TuckerSpectralWeight, "tt": TTSpectralWeight}[kind]
    dense = torch.randn(3, 4, 6, 3, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    weight = cls.from_dense(dense, 1.0)
    assert float((weight.dense().detach() - dense).norm() / dense.norm()) < 1e-8


@pytest.mark.parametrize(("kind", "rank"), [("tt", 4), ("tucker", [4, 4, 6, 3])])
def test_factorized_ranks_beyond_the_decomposition_are_refused_in_one_line(kind, rank):
    from neuralops.errors import ConfigError
    from neuralops.spectral import TTSpectralWeight, TuckerSpectralWeight

    cls = TTSpectralWeight if kind == "tt" else TuckerSpectralWeight
    dense = torch.randn(3, 4, 6, 3, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError) as info:
        cls.from_dense(dense, rank)
    assert "rank" in str(info.value) and "\n" not in str(info.value)
