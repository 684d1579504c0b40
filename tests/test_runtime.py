"""Runtime settings (``neuralops.runtime``): the OpenMP wait policy set before torch loads,
the default thread count, and opt-in compilation with its fallback."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neuralops import runtime
from neuralops.errors import ConfigError


def run_python(code: str, **env) -> str:
    """stdout of ``python -c code`` in a fresh process with ``env`` added (and OMP_WAIT_POLICY
    removed unless given)."""
    import os

    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environment.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    return result.stdout.strip()


def test_prepare_openmp_sets_the_passive_policy_before_torch_loads():
    code = (
        "import os, sys; from neuralops import runtime; "
        "print('torch' in sys.modules, runtime.prepare_openmp(), os.environ['OMP_WAIT_POLICY'])"
    )
    assert run_python(code) == "False True PASSIVE"


def test_prepare_openmp_keeps_the_users_choice_and_cannot_act_after_torch():
    keep = "import os; from neuralops import runtime; print(runtime.prepare_openmp(), os.environ['OMP_WAIT_POLICY'])"
    assert run_python(keep, OMP_WAIT_POLICY="active") == "False active"
    late = "import torch; from neuralops import runtime; print(runtime.prepare_openmp(), 'OMP_WAIT_POLICY' in __import__('os').environ)"
    assert run_python(late) == "False False"


def test_default_threads_follow_the_wait_policy(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert runtime.default_threads() == runtime.available_cpus()
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert runtime.default_threads() == 1


def test_default_threads_take_omp_num_threads_and_share_the_cpus_among_local_processes(monkeypatch):
    """Under torchrun every process of a node would otherwise take every CPU."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    monkeypatch.setattr(runtime, "available_cpus", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert runtime.default_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert runtime.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the user, or 1 by torchrun
    assert runtime.default_threads() == 3
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert runtime.default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "0")  # not a thread count: ignored
    assert runtime.default_threads() == 1


def test_configure_threads_sets_torch_threads_and_checks_the_value(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    try:
        assert runtime.configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
        assert runtime.configure_threads(None) == runtime.available_cpus() == torch.get_num_threads()
        for bad in (0, -2, 1.5, True, "2"):
            with pytest.raises(ConfigError, match="trainer.num_threads must be a positive integer or null"):
                runtime.configure_threads(bad)
    finally:
        torch.set_num_threads(before)


def test_compile_model_is_a_no_op_when_disabled():
    model = torch.nn.Linear(3, 2)
    assert runtime.compile_model(model, False) is model
    assert getattr(model, "_compiled_call_impl", None) is None


def test_compile_model_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(runtime, "compiler_problem", lambda device: "InvalidCxxCompiler: No working C++ compiler found")
    model = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    expected = model(x)
    with caplog.at_level(logging.WARNING, logger="neuralops.runtime"):
        assert runtime.compile_model(model, True) is model
    assert [r.getMessage() for r in caplog.records] == [
        "trainer.compile=true but torch.compile does not work on cpu here "
        "(InvalidCxxCompiler: No working C++ compiler found); running eagerly"
    ]
    assert torch.equal(model(x), expected)


@pytest.mark.slow
def test_compile_model_compiles_in_place_and_keeps_values():
    from neuralops.models import build

    torch.manual_seed(0)
    model = build("fno", in_channels=1, out_channels=1, n_modes=[3, 3], hidden_channels=4, n_layers=1)
    x = torch.randn(2, 1, 10, 10)
    expected = model(x)
    keys = list(model.state_dict())
    assert runtime.compile_model(model, True) is model
    assert list(model.state_dict()) == keys
    assert (model(x) - expected).abs().max() < 1e-5



def huge_page_mode() -> str:
    """The kernel's transparent huge page setting, e.g. ``always [madvise] never``, or ''."""
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return ""


FAULTS_OF_A_REPEATED_STEP = """
import resource, torch
from neuralops import runtime
kept = runtime.keep_freed_memory({enabled})

def step():  # three large tensors made and freed, like the activations of a training step
    a = torch.ones(16 * 2**20); b = torch.ones(8 * 2**20); c = a + 1
    del a, b, c

for _ in range(8):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_reuses_large_blocks_instead_of_faulting_them_in_again():
    """A step that makes and frees 64, 32 and 64 MiB tensors, repeated: glibc's default maps
    each afresh every time (40,960 page faults of 4 KiB per step); with keep_freed_memory the
    freed heap serves them once it has grown to the step's size. Measured over steps 9-14:
    245,778 faults by default, 0-24,576 kept (how soon the heap's free blocks coalesce
    varies from run to run)."""
    per_step = 40960
    kept, faults = run_python(FAULTS_OF_A_REPEATED_STEP.format(enabled=True)).split()
    assert kept == "True" and int(faults) < 6 * per_step // 4, faults
    kept, faults = run_python(FAULTS_OF_A_REPEATED_STEP.format(enabled=False)).split()
    assert kept == "False"
    if "[always]" not in huge_page_mode():  # with huge pages always on, a 2 MiB page faults once
        assert int(faults) > 6 * per_step // 2, faults
