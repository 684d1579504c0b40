"""FNO: the registry contract, parameter counts, resolution handling and symmetry."""

import pytest
import torch

from model_contract import assert_gradients_reach_every_parameter, assert_round_trip_reproduces
from neuralops.errors import ConfigError, InputShapeError
from neuralops.models import available, build


def small_fno(**overrides):
    config = dict(in_channels=2, out_channels=3, n_modes=[3, 4], hidden_channels=8, n_layers=2)
    config.update(overrides)
    return build("fno", **config)


def test_registry_lists_and_builds_fno():
    assert "fno" in available()
    model = small_fno()
    assert model.config["n_modes"] == [3, 4] and model.config["hidden_channels"] == 8
    rebuilt = build("fno", **model.config)
    assert rebuilt.config == model.config


def test_parameter_count_matches_neuraloperator_darcy_example():
    """neuraloperator's FNO(n_modes=(8, 8), hidden 24) on Darcy has 191,881 parameters (its
    documented figure); our equivalent modes are (4, 5)."""
    model = build("fno", in_channels=1, out_channels=1, n_modes=[4, 5], hidden_channels=24)
    assert model.num_parameters() == 191_881


def test_spectral_weight_count_follows_the_mode_convention():
    model = small_fno(channel_mlp_expansion=0, lifting_ratio=0)
    spectral = sum(p.numel() for n, p in model.named_parameters() if n.endswith("conv.weight.weight"))
    assert spectral == 2 * (8 * 8 * (2 * 3) * 4 * 2)  # layers * Cin*Cout*2m1*m2 * (re, im)


@pytest.mark.parametrize("n_modes,grid", [([4], (20,)), ([3, 4], (12, 10)), ([2, 2, 3], (6, 7, 8))])
def test_shapes_on_1d_2d_3d_grids_and_output_shape(n_modes, grid):
    model = small_fno(n_modes=n_modes)
    x = torch.randn(2, 2, *grid)
    assert model(x).shape == (2, 3, *grid)
    finer = tuple(2 * n for n in grid)
    assert model(x, output_shape=finer).shape == (2, 3, *finer)


def test_domain_padding_scales_with_resolution():
    model = small_fno(domain_padding=0.25)
    for n in (17, 33, 65):
        padded = model.padding.padded_shape((n,))[0]
        # The padded period, in units of the unit domain, stays 1.25 to within one grid step.
        assert abs((padded - 1) / (n - 1) - 1.25) <= 1 / (n - 1) + 1e-12
    x = torch.randn(1, 2, 17, 17)
    assert model(x).shape == (1, 3, 17, 17)
    assert model(x, output_shape=(33, 33)).shape == (1, 3, 33, 33)


def test_periodic_fno_commutes_with_periodic_shifts():
    """Without coordinates or padding, every layer is translation-equivariant on the torus."""
    torch.manual_seed(0)
    model = small_fno(grid="periodic", grid_embedding=False).double()
    x = torch.randn(2, 2, 12, 10, dtype=torch.float64)
    shifted = torch.roll(x, shifts=(3, -2), dims=(2, 3))
    assert torch.allclose(model(shifted), torch.roll(model(x), shifts=(3, -2), dims=(2, 3)), atol=1e-10)


def test_gradients_and_round_trip(tmp_path):
    torch.manual_seed(1)
    model = small_fno(domain_padding=0.1)
    x = torch.randn(2, 2, 9, 11)
    assert_gradients_reach_every_parameter(model, x)
    assert_round_trip_reproduces(model, x, tmp_path)


def test_bad_configs_and_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="unknown model name 'fnoo'"):
        build("fnoo", in_channels=1, out_channels=1)
    with pytest.raises(ConfigError, match="unknown option"):
        small_fno(n_mode=[3, 3])
    with pytest.raises(ConfigError, match="domain_padding"):
        small_fno(domain_padding=2.0)
    with pytest.raises(ConfigError, match="unknown activation"):
        small_fno(activation="swishy")
    model = small_fno()
    with pytest.raises(InputShapeError, match="in_channels=2"):
        model(torch.randn(1, 5, 8, 8))
    with pytest.raises(InputShapeError, match="2-D grid"):
        model(torch.randn(1, 2, 8))
