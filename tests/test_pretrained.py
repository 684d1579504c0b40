"""Pretrained directories: inputs of any real dtype or numpy, corrupt files, permissions, disk full.

The reference for a pretrained prediction is the same computation written out by hand in float64
(``decode(model(encode(x)))`` with a float64 copy of the model); files are checked with ``stat``.
"""

import copy
import errno
import json
import os
import stat

import numpy as np
import pytest
import torch

import neuralops
import neuralops.pretrained as pretrained
from neuralops.data.normalize import ChannelNormalizer
from neuralops.errors import InputShapeError, PretrainedFormatError, StorageError
from neuralops.models import build


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build("fno", in_channels=2, out_channels=1, n_modes=[4], hidden_channels=4, n_layers=1)
    normalizers = ChannelNormalizer([1.0, -2.0], [3.0, 0.5]), ChannelNormalizer([0.5], [2.0])
    path = neuralops.save_pretrained(tmp_path / "model", model, *normalizers)
    return path, model, normalizers


def float64_reference(model, normalizers, x):
    reference = copy.deepcopy(model).double().eval()
    x_in, x_out = normalizers
    mean, scale = x_in.mean.double().view(1, -1, 1), (x_in.std.double() + x_in.eps).view(1, -1, 1)
    with torch.no_grad():
        y = reference((x - mean) / scale)
    return y * (x_out.std.double() + x_out.eps).view(1, -1, 1) + x_out.mean.double().view(1, -1, 1)


def test_float64_numpy_and_integer_inputs_just_work(saved):
    path, model, normalizers = saved
    operator = neuralops.load_pretrained(path)
    rng = np.random.default_rng(0)
    x64 = rng.normal(size=(3, 2, 15)) * 4
    expected = float64_reference(model, normalizers, torch.from_numpy(x64))
    with torch.no_grad():
        outputs = [operator(torch.from_numpy(x64)), operator(x64), operator(torch.from_numpy(x64).float())]
        integers = rng.integers(-5, 5, size=(3, 2, 15))
        from_ints = operator(integers)
    for y in outputs:
        assert y.dtype == torch.float32 and y.shape == (3, 1, 15)
        assert torch.allclose(y.double(), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(outputs[0], outputs[2]) and torch.equal(outputs[1], outputs[2])
    expected_ints = float64_reference(model, normalizers, torch.from_numpy(integers).double())
    assert torch.allclose(from_ints.double(), expected_ints, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x,match", [
    (torch.randn(1, 2, 15, dtype=torch.complex64), "complex"),
    (np.ones((1, 2, 15), dtype=bool), "torch.bool"),
    ([[0.0] * 15] * 2, "list"),
])
def test_unusable_inputs_are_one_line(saved, x, match):
    operator = neuralops.load_pretrained(saved[0])
    with pytest.raises(InputShapeError, match=match) as err:
        operator(x)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("keep", [0, 7, 100, -1])
def test_truncated_weights_name_the_file(saved, keep):
    path = saved[0]
    weights = path / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes(raw[:keep] if keep >= 0 else raw[:-1])
    with pytest.raises(PretrainedFormatError) as err:
        neuralops.load_pretrained(path)
    message = str(err.value)
    assert str(weights) in message and "\n" not in message and "truncated" in message


def test_pretrained_dir_is_readable_by_others_under_umask_022(tmp_path):
    saved_umask = os.umask(0o022)
    try:
        model = build("fno", in_channels=1, out_channels=1, n_modes=[4], hidden_channels=4, n_layers=1)
        path = neuralops.save_pretrained(tmp_path / "runs" / "model", model)
    finally:
        os.umask(saved_umask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "runs", path, *path.iterdir()]}
    assert modes == {"runs": 0o755, "model": 0o755, "config.json": 0o644, "model.safetensors": 0o644}


def test_disk_full_keeps_the_previous_model(saved, monkeypatch):
    path, model, _ = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def no_space(module, filename, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(pretrained, "save_model", no_space)
    with pytest.raises(StorageError, match="disk full") as err:
        neuralops.save_pretrained(path, model)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_numpy_input_moves_to_the_cuda_model_device(saved):
    path, model, normalizers = saved
    operator = neuralops.load_pretrained(path, device="cuda")
    x64 = np.random.default_rng(1).normal(size=(2, 2, 15))
    with torch.no_grad():
        y = operator(x64)
    assert y.device.type == "cuda" and y.dtype == torch.float32
    expected = float64_reference(model, normalizers, torch.from_numpy(x64))
    assert torch.allclose(y.cpu().double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,options", [
    ("fno", dict(n_modes=[4], hidden_channels=4, n_layers=1)),
    ("deeponet", dict(sensor_grid=[15], branch_hidden=[8], trunk_hidden=[8], n_basis=4)),
])
def test_version_1_dirs_load_unless_their_fourier_blocks_changed(tmp_path, name, options):
    """Format 1 predates the FNO-type last block without the activation before its channel MLP:
    such a directory is refused in one line naming the file; other models still load."""
    model = build(name, in_channels=2, out_channels=1, **options)
    path = neuralops.save_pretrained(tmp_path / "model", model)
    config_path = path / "config.json"
    config = json.loads(config_path.read_text())
    assert config["format_version"] == 2
    config["format_version"] = 1
    config_path.write_text(json.dumps(config))
    if name == "deeponet":
        neuralops.load_pretrained(path)
        return
    with pytest.raises(PretrainedFormatError, match=r"config\.json.*format_version 1.*retrain") as err:
        neuralops.load_pretrained(path)
    assert "\n" not in str(err.value)
