"""Atomic writes: umask permissions, signals (SIGTERM/SIGINT mid-write), disk full, safetensors loading.

References are plain filesystem facts (``stat`` modes against ``0o777 & ~umask``, directory
listings, file contents written before the failed write) and the state dict saved beforehand.
"""

import errno
import os
import pathlib
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_model

import neuralops.io as nio
from neuralops.errors import PretrainedFormatError, StorageError


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """``os.umask`` for one test; the process umask is restored afterwards."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def only_entries(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_writes_follow_the_umask(tmp_path, umask, mask):
    """Also for writers that pick a stricter mode themselves (safetensors creates 0600 files)."""
    umask(mask)
    with nio.atomic_directory(tmp_path / "new" / "ckpt") as staging:
        (staging / "weights.bin").write_bytes(b"1")
        (staging / "sub").mkdir()
        save_model(torch.nn.Linear(2, 2), str(staging / "sub" / "model.safetensors"))
    nio.write_json(tmp_path / "deep" / "metrics.json", {"a": 1})
    nio.atomic_write(tmp_path / "deep" / "w.safetensors", lambda tmp: save_model(torch.nn.Linear(2, 2), str(tmp)))
    dir_mode, file_mode = 0o777 & ~mask, 0o666 & ~mask
    ckpt = tmp_path / "new" / "ckpt"
    assert [mode(d) for d in (tmp_path / "new", ckpt, ckpt / "sub", tmp_path / "deep")] == [dir_mode] * 4
    files = [ckpt / "weights.bin", ckpt / "sub" / "model.safetensors", tmp_path / "deep" / "metrics.json", tmp_path / "deep" / "w.safetensors"]
    assert [mode(f) for f in files] == [file_mode] * 4


def test_directory_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "ckpt"
    with nio.atomic_directory(target) as staging:
        (staging / "a").write_text("v1")
    with pytest.raises(ValueError, match="boom"):
        with nio.atomic_directory(target) as staging:
            (staging / "a").write_text("v2")
            raise ValueError("boom")
    assert (target / "a").read_text() == "v1" and only_entries(tmp_path) == ["ckpt"]
    with nio.atomic_directory(target) as staging:
        (staging / "b").write_text("v3")
    assert only_entries(target) == ["b"] and only_entries(tmp_path) == ["ckpt"]


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import neuralops.io as nio
    root, kind = Path(sys.argv[1]), sys.argv[2]
    nio.write_json(root / "state.json", {"version": 1})
    with nio.atomic_directory(root / "ckpt") as staging:
        (staging / "weights").write_text("v1")
    with nio.signals_as_exceptions():
        if kind == "dir":
            with nio.atomic_directory(root / "ckpt") as staging:
                (staging / "weights").write_text("v2 half")
                print("writing", flush=True)
                time.sleep(60)
        else:
            def write(tmp):
                tmp.write_text("half")
                print("writing", flush=True)
                time.sleep(60)
            nio.atomic_write(root / "state.json", write)
    """
)


@pytest.mark.parametrize(
    "kind,signum,status", [("dir", signal.SIGTERM, nio.SIGTERM_EXIT_STATUS), ("file", signal.SIGINT, None)]
)
def test_signal_mid_write_leaves_previous_version_and_no_staging(tmp_path, kind, signum, status):
    """A child process killed mid-write (a checkpoint directory, a JSON file) exits non-zero,
    leaves the previous version in place and no hidden staging file."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), kind],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "writing", child.stderr.read()
        child.send_signal(signum)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert child.returncode != 0
    if status is not None:
        assert child.returncode == status, child.stderr.read()
    assert only_entries(tmp_path) == ["ckpt", "state.json"]
    assert only_entries(tmp_path / "ckpt") == ["weights"]
    assert (tmp_path / "ckpt" / "weights").read_text() == "v1"
    assert (tmp_path / "state.json").read_text() == '{\n  "version": 1\n}\n'


@pytest.mark.parametrize("existing", [False, True])
def test_signal_during_the_rename_is_delivered_after_it(tmp_path, monkeypatch, existing):
    """SIGTERM arriving in the middle of the final renames: the path is never left missing; the
    signal then ends the write as SystemExit(143)."""
    target = tmp_path / "ckpt"
    if existing:
        with nio.atomic_directory(target) as staging:
            (staging / "weights").write_text("v1")
    real_replace = os.replace

    def replace_with_signal(src, dst):
        signal.raise_signal(signal.SIGTERM)
        real_replace(src, dst)

    with nio.signals_as_exceptions():
        monkeypatch.setattr(os, "replace", replace_with_signal)
        with pytest.raises(SystemExit) as exit_info:
            with nio.atomic_directory(target) as staging:
                (staging / "weights").write_text("v2")
        monkeypatch.setattr(os, "replace", real_replace)
    assert exit_info.value.code == nio.SIGTERM_EXIT_STATUS
    assert (target / "weights").read_text() == "v2" and only_entries(tmp_path) == ["ckpt"]


def test_signals_as_exceptions_restores_the_handlers():
    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        with nio.signals_as_exceptions():
            assert signal.getsignal(signal.SIGTERM) is not own
            with pytest.raises(SystemExit):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_disk_full_is_one_line_naming_the_path(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    nio.write_json(target, {"epoch": 1})

    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_text", no_space)
    with pytest.raises(StorageError) as err:
        nio.write_json(target, {"epoch": 2})
    message = str(err.value)
    assert "\n" not in message and "disk full" in message and str(target) in message
    assert isinstance(err.value, OSError)
    monkeypatch.undo()
    assert target.read_text() == '{\n  "epoch": 1\n}\n' and only_entries(tmp_path) == ["metrics.json"]


def test_disk_full_behind_a_library_error(tmp_path, monkeypatch):
    """torch.save reports a full disk as RuntimeError("... iostream error"): recognized by the free
    space left; with space left, the library's error passes through unchanged."""
    free = {"bytes": 0}
    monkeypatch.setattr(nio.shutil, "disk_usage", lambda path: nio.shutil._ntuple_diskusage(10**9, 10**9, free["bytes"]))
    target = tmp_path / "ckpt"
    for bytes_free, expected in ((0, StorageError), (10**9, RuntimeError)):
        free["bytes"] = bytes_free
        with pytest.raises(expected) as err:
            with nio.atomic_directory(target) as staging:
                (staging / "training_state.pt").write_bytes(b"x")
                raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0: iostream error")
        assert (expected is StorageError) == (str(target) in str(err.value))
        assert only_entries(tmp_path) == []


# --- load_safetensors_weights -------------------------------------------------------------------


@pytest.fixture
def saved_linear(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 4)
    path = tmp_path / "model.safetensors"
    save_model(module, str(path))
    return module, path


def test_load_safetensors_weights_loads_the_saved_tensors(saved_linear):
    module, path = saved_linear
    fresh = torch.nn.Linear(3, 4)
    nio.load_safetensors_weights(fresh, path)
    for key, value in module.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)


@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda raw: raw[: len(raw) // 2], "not a readable safetensors file"),
        (lambda raw: raw[:-3], "not a readable safetensors file"),
        (lambda raw: b"", "not a readable safetensors file"),
        (lambda raw: b"\x80\x04garbage pickle", "not a readable safetensors file"),
    ],
)
def test_corrupt_weights_are_one_line_naming_the_file(saved_linear, damage, match):
    _, path = saved_linear
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(PretrainedFormatError, match=match) as err:
        nio.load_safetensors_weights(torch.nn.Linear(3, 4), path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "module,match",
    [
        (torch.nn.Linear(3, 5), "size mismatch"),
        (torch.nn.Linear(3, 4, bias=False), "unexpected keys bias"),
        (torch.nn.Sequential(torch.nn.Linear(3, 4)), "missing keys 0.bias, 0.weight; unexpected keys bias, weight"),
    ],
)
def test_mismatched_weights_are_one_line_naming_the_file(saved_linear, module, match):
    _, path = saved_linear
    with pytest.raises(PretrainedFormatError, match=match) as err:
        nio.load_safetensors_weights(module, path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_weights_file(tmp_path):
    with pytest.raises(PretrainedFormatError, match="is missing"):
        nio.load_safetensors_weights(torch.nn.Linear(3, 4), tmp_path / "model.safetensors")
