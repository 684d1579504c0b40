"""SFNO and T1 models: shapes, resolution behaviour, initialization."""

import math

import pytest
import torch

from model_contract import assert_inference_matches_the_tracked_forward

from neuralops.errors import ConfigError
from neuralops.models.sfno import SFNO
from neuralops.models.t1 import T1

T1_GRID_EMBEDDING_TOL = 2e-3  # measured 6e-4 between 10² and 30² grids (coordinates are not band-limited)



def test_sfno_shapes_resolutions_and_weight_sharing():
    torch.manual_seed(0)
    degree = SFNO(2, 1, [6, 6], hidden_channels=8, n_layers=2)
    per_mode = SFNO(2, 1, [6, 6], hidden_channels=8, n_layers=2, weight_sharing="none")
    assert degree.blocks[0].conv.weight.dense().shape == (8, 8, 6)
    assert per_mode.blocks[0].conv.weight.dense().shape == (8, 8, 6, 6)
    x = torch.randn(2, 2, 12, 24)
    for model in (degree, per_mode):
        assert model(x).shape == (2, 1, 12, 24)
        y = model(x, output_shape=(18, 36))
        assert y.shape == (2, 1, 18, 36) and torch.isfinite(y).all()
    with pytest.raises(ConfigError, match="weight_sharing"):
        SFNO(1, 1, [4, 4], weight_sharing="order")


@pytest.mark.parametrize("output_shape", [None, (18, 36)])
def test_sfno_inference_in_place_matches_the_tracked_forward(output_shape):
    torch.manual_seed(3)
    model = SFNO(2, 1, [6, 6], hidden_channels=8, n_layers=2)
    assert_inference_matches_the_tracked_forward(model, torch.randn(2, 2, 12, 24), output_shape)


def test_sfno_with_factorized_weights_trains_a_step():
    model = SFNO(1, 1, [4, 4], hidden_channels=8, n_layers=2, spectral_weight={"factorization": "tucker", "rank": 0.5})
    loss = model(torch.randn(2, 1, 8, 16)).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def cosine_field(grid):
    """A field with cosine-series coefficients only below index 4, sampled at cell centres."""
    t = [(torch.arange(n, dtype=torch.float64) + 0.5) / n for n in grid]
    x, y = torch.meshgrid(*t, indexing="ij")
    field = 1 + 0.5 * torch.cos(math.pi * x) + 0.3 * torch.cos(2 * math.pi * y) * torch.cos(3 * math.pi * x)
    return field[None, None]


def test_t1_gives_the_same_function_on_two_resolutions():
    """Cell-centred grids of 10 and 30 points share every 3rd point (j -> 3j+1); float64."""
    torch.manual_seed(1)
    model = T1(1, 1, [6, 6], hidden_channels=8, n_layers=2, grid_embedding=False).double()
    coarse, fine = model(cosine_field((10, 10))), model(cosine_field((30, 30)))
    assert torch.isfinite(fine).all()
    assert torch.allclose(coarse, fine[..., 1::3, 1::3], atol=1e-12, rtol=0)
    # output_shape evaluates the output series on the fine grid
    assert torch.allclose(model(cosine_field((10, 10)), output_shape=(30, 30)), fine, atol=1e-12, rtol=0)
    # a grid with fewer coefficients than n_modes works (missing coefficients are zero)
    assert model(cosine_field((4, 5))).shape == (1, 1, 4, 5)


def test_t1_with_coordinates_is_close_across_resolutions():
    torch.manual_seed(2)
    model = T1(1, 1, [6, 6], hidden_channels=8, n_layers=2).double()
    coarse, fine = model(cosine_field((10, 10))), model(cosine_field((30, 30)))
    relative = (coarse - fine[..., 1::3, 1::3]).abs().max() / fine.abs().max()
    assert relative < T1_GRID_EMBEDDING_TOL


def test_t1_variance_preserving_init():
    model = T1(1, 1, [8, 8], hidden_channels=16, n_layers=1, init_grid=[64, 64])
    std = model.layers[0].channel_weight.std().item()
    expected = math.sqrt(64 * 64 / (16 * 8 * 8))
    assert abs(std / expected - 1) < 0.02
    fft = T1(1, 1, [8, 8], hidden_channels=16, n_layers=1, transform="fft", init_grid=[64, 64])
    complex_std = torch.view_as_complex(fft.layers[0].channel_weight).abs().pow(2).mean().sqrt().item()
    assert abs(complex_std / (0.5 * math.sqrt(64 * 64 / (16 * 16 * 8))) - 1) < 0.02  # block 16×8, gain 1/2


def test_t1_fft_variant_and_errors():
    model = T1(2, 3, [4, 4], hidden_channels=8, n_layers=2, transform="fft")
    y = model(torch.randn(2, 2, 16, 16), output_shape=(24, 24))
    assert y.shape == (2, 3, 24, 24) and torch.isfinite(y).all()
    with pytest.raises(ConfigError, match="transform"):
        T1(1, 1, [4, 4], transform="sht")
