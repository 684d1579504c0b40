"""Batch slicing (``batch_slice_mib``, :mod:`neuralops.models.slicing`): a batch run in slices
equals the whole batch at once (FNO, SFNO, LSM), and the slice size follows the memory budget."""

import math

import pytest
import torch

from neuralops.errors import ConfigError
from neuralops.models import build
from neuralops.models.sfno import SFNO
from neuralops.models.slicing import samples_per_slice


def fno(**options):
    return build("fno", in_channels=2, out_channels=3, n_modes=[3, 4], hidden_channels=8, n_layers=2, domain_padding=0.2, **options)


def sfno(**options):
    return SFNO(2, 3, [5, 5], hidden_channels=8, n_layers=2, **options)


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
        results = []
        for model in (whole, sliced):
            model.zero_grad()
            out = model(x, output_shape=shape)
            (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out).cos()).sum().backward()
            results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
        assert results[0][0].shape == results[1][0].shape == (5, 3, *(shape or grid))
        assert (results[0][0] - results[1][0]).abs().max() < 1e-12
        assert all((a - b).abs().max() < 1e-12 for a, b in zip(results[0][1], results[1][1]))


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
        with pytest.raises(ConfigError, match="LSM option batch_slice_mib"):
            build("lsm", in_channels=1, out_channels=1, batch_slice_mib=bad)


def test_lsm_batch_slices_give_the_whole_batch_values_and_gradients():
    """LSM's GroupNorm statistics are per sample, so slices of 2, 2 and 1 samples give the whole
    batch's outputs and parameter gradients in float64 to 1e-12, on the input grid and on
    another output grid (odd sizes: the working grid is a resize)."""
    torch.manual_seed(4)
    options = dict(in_channels=2, out_channels=3, width=8, n_levels=3, n_patches=2, n_heads=2, norm_groups=2,
                   projection_channels=24)
    whole = build("lsm", **options, batch_slice_mib=None).double()
    sliced = build("lsm", **options).double()
    sliced.load_state_dict(whole.state_dict())
    assert sliced.widest_channels == 24  # the projection's hidden field is wider than 2 x width
    x = torch.randn(5, 2, 13, 11, dtype=torch.float64)
    sliced.batch_slice_mib = 2.5 * 24 * 16 * 12 * 8 / 2**20  # two samples on the 16 x 12 working grid
    assert samples_per_slice(sliced.batch_slice_mib, x, sliced.widest_channels, 16 * 12) == 2
    for shape in (None, (9, 15)):
        results = []
        for model in (whole, sliced):
            model.zero_grad()
            out = model(x, output_shape=shape)
            (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out).sin()).sum().backward()
            results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
        assert results[0][0].shape == (5, 3, *(shape or (13, 11)))
        assert (results[0][0] - results[1][0]).abs().max() < 1e-12
        assert all((a - b).abs().max() < 1e-12 for a, b in zip(results[0][1], results[1][1]))
