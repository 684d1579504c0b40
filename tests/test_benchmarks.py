"""The benchmark scripts run on a CPU-only machine at tiny sizes and write their results files.

Timings at these sizes mean nothing; what is checked is that every section runs, that the
reported ratios are the ratios of the reported medians, and that the GPU check script's
CPU-safe parts run and write one file."""

import re
import subprocess
import sys

import pytest

ROW = re.compile(r"^\| (?P<name>[^|]+) \| (?P<extra>[^|]*) \| (?P<median>[\d.]+) \| (?P<min>[\d.]+) \| (?P<ratio>[\d.]+|n/a)")


@pytest.fixture
def benchmarks(repo_root, monkeypatch):
    monkeypatch.syspath_prepend(str(repo_root / "benchmarks"))
    return repo_root / "benchmarks"


def rows(text: str) -> dict[str, list[dict]]:
    """Timing rows of a results file by model name."""
    found: dict[str, list[dict]] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            found.setdefault(match["name"], []).append(match.groupdict())
    return found


def test_fno_step_quick_writes_every_section(benchmarks, tmp_path):
    import bench_fno_step

    out = tmp_path / "step.md"
    bench_fno_step.main(["--quick", "--no-isolate", "--sections", *bench_fno_step.SECTIONS, "--out", str(out)])
    text = out.read_text()
    for title in ("Training step", "Inference", "Peak memory", "Factorized", "bfloat16 autocast", "Optimizer update",
                  "Where a training step's time goes"):
        assert f"## {title}" in text
    found = rows(text)
    assert {"neuralops", "dense", "tucker", "cp", "tt", "float32", "bfloat16 autocast"} <= set(found)
    assert {"dense, fused", "dense, foreach", "tucker, per-parameter loop"} <= set(found)
    assert float(found["tucker, per-parameter loop"][0]["ratio"]) == 1.0
    assert re.search(r"^\| \*\*all ops, timed alone\*\* \| \d+ \| [\d.]+ \|", text, re.M)
    for name in ("tucker", "cp", "tt"):  # ratio = median / dense median, to the printed precision
        row, dense = found[name][0], found["dense"][0]
        assert abs(float(row["ratio"]) - float(row["median"]) / float(dense["median"])) < 0.01 + 0.06 * float(row["ratio"])
    assert float(found["dense"][0]["ratio"]) == 1.0


def test_isolated_op_times_counts_each_dispatched_op(benchmarks):
    import torch
    from bench_fno_step import isolated_op_times

    a, b = torch.randn(64, 64), torch.randn(64, 64)
    out = torch.empty(64, 64)

    def step():
        torch.mm(a, b)
        torch.mm(b, a, out=out)
        out.add_(a)

    times = isolated_op_times(step, torch.device("cpu"))
    assert {name: calls for name, (calls, _) in times.items()} == {"mm": 2, "add_": 1}
    assert all(seconds > 0 for _, seconds in times.values())


def test_fno_step_runs_each_section_in_a_fresh_process_under_each_allocator(benchmarks, tmp_path):
    import bench_fno_step

    out = tmp_path / "step.md"
    bench_fno_step.main(["--quick", "--sections", "step", "factorized", "--out", str(out)])
    text = out.read_text()
    assert text.count("## Training step") == 2 and text.count("## Factorized") == 1
    assert "hidden 8, default malloc" in text and "hidden 8, freed memory kept" in text
    found = rows(text)
    assert len(found["neuralops"]) == 2 and len(found["dense"]) == 1


def test_slicing_quick_times_every_family_sliced_and_whole_under_each_allocator(benchmarks, tmp_path):
    import bench_slicing

    out = tmp_path / "slicing.md"
    bench_slicing.main(["--quick", "--families", "t1", "--out", str(out)])
    text = out.read_text()
    assert "## default malloc" in text and "## freed memory kept" in text
    found = rows(text)
    assert set(found) == {"t1 whole", "t1 sliced"}
    whole, sliced = found["t1 whole"], found["t1 sliced"]
    assert [r["extra"] for r in sliced] == ["step", "inference"] * 2  # two allocators, each in its own process
    assert all(float(r["ratio"]) == 1.0 for r in whole)
    for row, ref in zip(sliced, whole):
        assert abs(float(row["ratio"]) - float(row["median"]) / float(ref["median"])) < 0.01 + 0.06 * float(row["ratio"])


def test_epoch_quick_runs_on_our_hdf5_path(benchmarks, tmp_path, capsys):
    import bench_epoch

    out = tmp_path / "epoch.md"
    bench_epoch.main(["--quick", "--out", str(out)])
    text = out.read_text()
    for run in ("neuralops FNO", "neuralops TFNO", "data only"):
        assert f"| {run} |" in text
    assert "of our FNO epoch" in text and "Darcy samples at 16²" in text


def test_device_check_rejects_a_bad_device(benchmarks):
    result = subprocess.run(["bash", str(benchmarks / "device_check.sh"), "--device", "tpu"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "device_check.sh: --device must be cuda or cpu, got 'tpu'"


def test_device_check_help_prints_the_usage(benchmarks):
    result = subprocess.run(["bash", str(benchmarks / "device_check.sh"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("GPU readiness check") and "Usage: benchmarks/device_check.sh" in result.stdout
    assert "set -u" not in result.stdout


@pytest.mark.slow
def test_device_check_cpu_parts_write_one_file(benchmarks, tmp_path):
    out = tmp_path / "device_check.md"
    result = subprocess.run(
        ["bash", str(benchmarks / "device_check.sh"), "--device", "cpu", "--out", str(out)],  # CPU: the quick sizes
        capture_output=True, text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    for title in ("Environment", "CUDA tests", "Spectral layer", "Training step, inference and peak memory", "bfloat16 autocast"):
        assert f"## {title}" in text
    assert "exit status" not in text and "NOT IMPORTABLE" not in text and "\nneuralops " in text
    assert list(tmp_path.iterdir()) == [out]


def test_device_check_resolves_a_relative_out_from_the_calling_folder(benchmarks, tmp_path):
    """``--out`` relative to where it is called (the script works from the repository root);
    a file that cannot be written is one line and status 2, not a "wrote" message."""
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = subprocess.run(["bash", str(benchmarks / "device_check.sh"), "--device", "cpu", "--out", "file/x.md"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and "wrote" not in result.stdout
    assert list(tmp_path.iterdir()) == [blocked]


def test_device_wheels_prints_its_usage_and_refuses_unknown_arguments(benchmarks):
    """Only the argument handling: gathering the wheels needs the package index."""
    script = str(benchmarks / "device_wheels.sh")
    usage = subprocess.run(["bash", script, "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and usage.stdout.startswith("Wheels for a lent GPU machine")
    assert "device_check.sh --device cuda" in usage.stdout and "set -e" not in usage.stdout
    bad = subprocess.run(["bash", script, "--python", "3.12"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("device_wheels.sh: unknown argument '--python'")


def test_environment_names_each_dependency_that_does_not_import(benchmarks):
    """A package that does not import (here tensorly, blocked) is named with its error, and the
    exit status says so."""
    result = subprocess.run(
        [sys.executable, "-c", "import runpy, sys; sys.modules['tensorly'] = None; "
         f"runpy.run_path({str(benchmarks / 'environment.py')!r}, run_name='__main__')"],
        capture_output=True, text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tensorly: NOT IMPORTABLE (ModuleNotFoundError" in result.stdout
    assert "NOT IMPORTABLE" not in result.stdout.replace("tensorly: NOT IMPORTABLE", "")  # neuraloperator is optional
    assert "\nnumpy " in result.stdout and "\ntorch_harmonics " in result.stdout
