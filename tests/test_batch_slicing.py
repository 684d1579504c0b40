"""Batch slicing (``batch_slice_mib``, :mod:`neuralops.models.slicing`): a batch run in slices
equals the whole batch at once (FNO, SFNO, LSM, T1, MgNO), and the slice size follows the memory budget."""

import math

import pytest
import torch

from neuralops.errors import ConfigError
from neuralops.models import build
from neuralops.models.sfno import SFNO
from neuralops.models.slicing import samples_per_slice
from neuralops.spectral.einsum_plan import ContractionPlan


def fno(**options):
    return build("fno", in_channels=2, out_channels=3, n_modes=[3, 4], hidden_channels=8, n_layers=2, domain_padding=0.2, **options)


def sfno(**options):
    return SFNO(2, 3, [5, 5], hidden_channels=8, n_layers=2, **options)


def assert_sliced_equals_whole(whole, sliced, x, output_shape=None):
    """Both models give the same output (of shape ``(B, 3, *grid)``) and parameter gradients
    of a fixed linear loss, in float64 to 1e-12."""
    results = []
    for model in (whole, sliced):
        model.zero_grad()
        out = model(x, output_shape=output_shape)
        (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out).cos()).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    assert results[0][0].shape == results[1][0].shape == (x.shape[0], 3, *(output_shape or x.shape[2:]))
    assert (results[0][0] - results[1][0]).abs().max() < 1e-12
    assert all((a - b).abs().max() < 1e-12 for a, b in zip(results[0][1], results[1][1]))


@pytest.mark.parametrize("make, grid, out_grid", [(fno, (9, 11), (13, 15)), (sfno, (10, 20), (14, 28))])
def test_batch_slices_give_the_whole_batch_values_and_gradients(make, grid, out_grid):
    """Outputs and parameter gradients in float64 to 1e-12, on the input grid and on another
    output grid, with slices of 2, 2 and 1 samples."""
    torch.manual_seed(9)
    whole = make(batch_slice_mib=None).double()
    sliced = make(batch_slice_mib=None).double()
    sliced.load_state_dict(whole.state_dict())
    x = torch.randn(5, 2, *grid, dtype=torch.float64)
    assert sliced.widest_channels == 16  # the lifting and projection MLPs: 2 x 8 channels
    padded = math.prod(sliced.padding.padded_shape(out_grid)) if hasattr(sliced, "padding") else math.prod(out_grid)
    sliced.batch_slice_mib = 2.5 * 16 * padded * 8 / 2**20  # two samples' widest field (8-byte floats)
    for shape in (None, out_grid):
        assert_sliced_equals_whole(whole, sliced, x, shape)


def test_batch_slice_size_follows_the_budget_and_refuses_bad_values():
    model = build("fno", in_channels=2, out_channels=1, n_modes=[3, 4], hidden_channels=32, grid="periodic")
    assert model.batch_slice_mib == 8.0 and model.widest_channels == 64  # lifting: 2 x 32
    x = torch.zeros(40, 2, 128, 128)
    assert model.samples_per_slice(x, (128, 128)) == 2  # 2 samples x 64 x 128² x 4 bytes = 8 MiB
    model.batch_slice_mib = 16.0
    assert model.samples_per_slice(x, (128, 128)) == 4
    assert model.samples_per_slice(x, (256, 256)) == 1  # the output grid counts too
    assert model.samples_per_slice(torch.zeros(40, 2, 8, 8), (8, 8)) == 1024
    assert model.samples_per_slice(torch.zeros(40, 2, 128, 128, device="meta"), (128, 128)) == 40  # CPU only
    for bad in (0, -1.0, float("inf"), True, "16"):
        with pytest.raises(ConfigError, match="FNO option batch_slice_mib must be a positive number of MiB or null"):
            build("fno", in_channels=1, out_channels=1, n_modes=[3], batch_slice_mib=bad)
        with pytest.raises(ConfigError, match="SFNO option batch_slice_mib"):
            sfno(batch_slice_mib=bad)
        for name, family, options in (("lsm", "LSM", {}), ("t1", "T1", {"n_modes": [3]}), ("mgno", "MgNO", {})):
            with pytest.raises(ConfigError, match=f"{family} option batch_slice_mib"):
                build(name, in_channels=1, out_channels=1, **options, batch_slice_mib=bad)


LSM_OPTIONS = dict(width=8, n_levels=3, n_patches=2, n_heads=2, norm_groups=2, projection_channels=24)


@pytest.mark.parametrize("name, options, grid, out_grid, widest, points", [
    # LSM: the projection's hidden field (24) is wider than 2 x width; it runs on a working grid
    # rounded up to a multiple of 4 (13 x 11 -> 16 x 12, 9 x 15 -> 12 x 16). GroupNorm is per sample.
    ("lsm", LSM_OPTIONS, (13, 11), (9, 15), 24, 16 * 12),
    ("t1", dict(n_modes=[4, 3], hidden_channels=6, projection_channels=10), (13, 11), (9, 15), 6, 13 * 11),
    ("mgno", dict(hidden_channels=6, n_layers=2), (13, 11), (9, 15), 6, 13 * 11),
])
def test_other_families_batch_slices_give_the_whole_batch_values_and_gradients(name, options, grid, out_grid, widest, points):
    """Slices of 2, 2 and 1 samples give the whole batch's outputs and parameter gradients in
    float64 to 1e-12, on the input grid and on another output grid."""
    torch.manual_seed(4)
    whole = build(name, in_channels=2, out_channels=3, **options, batch_slice_mib=None).double()
    sliced = build(name, in_channels=2, out_channels=3, **options).double()
    sliced.load_state_dict(whole.state_dict())
    assert sliced.widest_channels == widest
    x = torch.randn(5, 2, *grid, dtype=torch.float64)
    sliced.batch_slice_mib = 2.5 * widest * points * 8 / 2**20  # two samples' widest field
    assert samples_per_slice(sliced.batch_slice_mib, x, widest, points) == 2
    for shape in (None, out_grid):
        assert_sliced_equals_whole(whole, sliced, x, shape)


@pytest.mark.parametrize("implementation", ["reconstructed", "auto", "factorized"])
@pytest.mark.parametrize("checkpoint_blocks", [False, True])
def test_factorized_weights_are_rebuilt_once_for_all_slices(monkeypatch, implementation, checkpoint_blocks):
    """A Tucker FNO in slices of 2, 2 and 1 samples gives the whole batch's outputs and gradients
    (float64, 1e-12), also with activation checkpointing; on the reconstructed path each layer
    builds its dense weight once per forward pass, not once per slice (except under
    checkpointing, where each slice's recomputation must rebuild what its forward built)."""
    torch.manual_seed(6)
    weight = {"factorization": "tucker", "rank": 0.5, "implementation": implementation}
    whole = fno(spectral_weight=weight, batch_slice_mib=None).double()
    sliced = fno(spectral_weight=weight, checkpoint_blocks=checkpoint_blocks).double()
    sliced.load_state_dict(whole.state_dict())
    x = torch.randn(5, 2, 9, 11, dtype=torch.float64)
    sliced.batch_slice_mib = 2.5 * 16 * math.prod(sliced.padding.padded_shape((9, 11))) * 8 / 2**20
    calls = []
    original_call = ContractionPlan.__call__
    monkeypatch.setattr(ContractionPlan, "__call__", lambda plan, *ops: calls.append(len(ops)) or original_call(plan, *ops))
    assert_sliced_equals_whole(whole, sliced, x)
    if implementation == "reconstructed":
        # two layers, three slices: one build per layer, or per layer and slice when
        # checkpointed, and again in each slice's recomputation
        calls.clear()
        assert_sliced_equals_whole(sliced, sliced, x)
        assert len(calls) == 2 * (12 if checkpoint_blocks else 2)
        calls.clear()
        with torch.no_grad():
            sliced(x)
        assert len(calls) == 2  # nothing will be recomputed: one build per layer
