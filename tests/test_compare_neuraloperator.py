"""The neuraloperator side-by-side (benchmarks/compare_neuraloperator.py): its metric and the
neuraloperator conventions its ablations patch in agree with neuraloperator itself. Fast; skipped
without ``neuralop``."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("neuralop")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare_neuraloperator", ROOT / "benchmarks" / "compare_neuraloperator.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("compare_neuraloperator", module)
    spec.loader.exec_module(module)
    return module


def test_rel_l2_is_ours_on_a_cell_grid(compare):
    from neuralops.evaluation.metrics import relative_l2
    from neuralops.grid import Grid

    g = torch.Generator().manual_seed(0)
    y, p = torch.randn(5, 1, 16, 16, generator=g), torch.randn(5, 1, 16, 16, generator=g)
    ours = relative_l2(p, y, Grid.uniform((16, 16), "cell")).mean()
    assert compare.rel_l2(p, y) == pytest.approx(float(ours), rel=1e-5)


def test_periodic_h1_is_neuraloperators(compare):
    from neuralop.losses import H1Loss

    g = torch.Generator().manual_seed(1)
    y, p = torch.randn(4, 1, 16, 12, generator=g), torch.randn(4, 1, 16, 12, generator=g)
    theirs = H1Loss(d=2, reduction="sum")(p, y) / 4  # sum over the batch
    assert float(compare.h1_periodic_rel(p, y).mean()) == pytest.approx(float(theirs), rel=1e-5)


def test_left_embedding_is_neuraloperators(compare):
    from neuralop.layers.embeddings import GridEmbeddingND

    x = torch.randn(2, 1, 8, 6)
    assert torch.allclose(compare.LeftEmbedding()(x), GridEmbeddingND(in_channels=1, dim=2)(x))


def test_matched_parameter_count(compare):
    from neuralop.models import FNO as TheirFNO

    from neuralops.models import build

    theirs = TheirFNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=24, projection_channel_ratio=2)
    n_theirs = sum(p.numel() * (2 if p.is_complex() else 1) for p in theirs.parameters())
    ours = build("fno", in_channels=1, out_channels=1, n_modes=[4, 5], hidden_channels=24, grid="cell", domain_padding=0.25)
    assert ours.num_parameters() == n_theirs == 191_881


@pytest.mark.parametrize("name, hidden, lr", [
    ("neuraloperator_darcy_matched", 24, 3e-3), ("fno_darcy_small", 24, 1e-2), ("fno_darcy_small_best", 32, 1e-2),
])
def test_experiment_configs_compose(compare, name, hidden, lr):
    cfg = compare.compose([f"+experiment={name}"])
    assert (cfg.model.name, cfg.model.hidden_channels, cfg.trainer.epochs) == ("fno", hidden, 15)
    assert cfg.optim.lr == pytest.approx(lr)


def test_benchmark_fno_computes_neuraloperators_function():
    """The speed benchmark's matched FNO with neuraloperator's weights copied in gives
    neuraloperator's output (float64, 32², a random input): the same architecture, down to
    the last block having no activation. Measured 8.5e-9 relative (neuraloperator accumulates
    its modes in complex64); the last block's former activation made it 0.11."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_fno_step import same_function_deviation

    assert same_function_deviation() < 1e-6
