"""LSM: physical patches on any grid, the neural spectral block, the model contract."""

import pytest
import torch
from model_contract import (
    assert_gradients_reach_every_parameter,
    assert_inference_matches_the_tracked_forward,
    assert_round_trip_reproduces,
)

from neuralops.errors import ConfigError, InputShapeError
from neuralops.models import build
from neuralops.models.lsm import patchify, unpatchify

SMALL = dict(in_channels=2, out_channels=3, width=8, n_levels=3, n_patches=2, n_heads=2, norm_groups=2,
             projection_channels=16)


@pytest.mark.parametrize("grid", [(16, 16), (19, 13)])
def test_output_shape_on_divisible_and_non_divisible_grids(grid):
    torch.manual_seed(0)
    model = build("lsm", **SMALL)
    x = torch.randn(2, 2, *grid)
    out = model(x)
    assert out.shape == (2, 3, *grid) and torch.isfinite(out).all()
    assert model(x, output_shape=(10, 14)).shape == (2, 3, 10, 14)


def test_one_and_three_dimensional_grids():
    assert build("lsm", **SMALL, n_dims=1)(torch.randn(2, 2, 21)).shape == (2, 3, 21)
    assert build("lsm", **SMALL, n_dims=3)(torch.randn(1, 2, 8, 6, 9)).shape == (1, 3, 8, 6, 9)


def test_patchify_cuts_contiguous_patches_and_unpatchify_inverts_it():
    x = torch.randn(2, 3, 8, 12)
    patches = patchify(x, [2, 3])
    assert patches.shape == (2 * 6, 3, 16)
    assert torch.equal(patches[1].reshape(3, 4, 4), x[0, :, 0:4, 4:8])  # patch (0, 1) of sample 0
    assert torch.equal(unpatchify(patches, [2, 3], (8, 12)), x)


def test_patch_count_is_fixed_per_level_so_patches_scale_with_the_grid():
    model = build("lsm", **SMALL)
    assert [block.patches for block in model.spectral_blocks] == [(2, 2), (1, 1), (1, 1)]
    # the working grid is the next multiple of lcm(2^i · patches_i): every level divides evenly
    assert model.grid_multiple == 4


def test_inference_in_place_matches_the_tracked_forward():
    torch.manual_seed(1)
    assert_inference_matches_the_tracked_forward(build("lsm", **SMALL), torch.randn(2, 2, 16, 16))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    assert_gradients_reach_every_parameter(build("lsm", **SMALL), torch.randn(2, 2, 12, 12))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    assert_round_trip_reproduces(build("lsm", **SMALL), torch.randn(2, 2, 13, 12), tmp_path)


def test_bad_input_gives_one_clear_error():
    model = build("lsm", **SMALL)
    with pytest.raises(InputShapeError, match="in_channels=2"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(InputShapeError, match="at least 4 grid points"):
        model(torch.randn(1, 2, 3, 16))
    with pytest.raises(ConfigError, match="n_heads=3 must divide width=8"):
        build("lsm", **{**SMALL, "n_heads": 3})
    with pytest.raises(ConfigError, match="resample_method='nearest'"):
        build("lsm", **SMALL, resample_method="nearest")
