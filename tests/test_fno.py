"""FNO: the registry contract, parameter counts, resolution handling and symmetry."""

import sys

import pytest
import torch

from model_contract import (
    assert_gradients_reach_every_parameter,
    assert_inference_matches_the_tracked_forward,
    assert_round_trip_reproduces,
)
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


def saved_field_elements(model, x, field_points):
    """Elements of the distinct fields autograd keeps during ``model(x)``: tensors of batch
    ``x.shape[0]`` whose size is a multiple of ``field_points`` (not weights or spectral modes)."""
    kept = {}

    def pack(tensor):
        if tensor.ndim > 1 and tensor.shape[0] == x.shape[0] and tensor.numel() % field_points == 0:
            kept[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes() // tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x)
    return sum(kept.values())


def test_block_matches_a_plain_float64_reference():
    """conv(x) + W_s x -> GELU -> channel MLP -> + w ⊙ x, written with einsum and F.gelu; the
    last block without the GELU before its channel MLP (neuraloperator's ``FNOBlocks``)."""
    import torch.nn.functional as F

    torch.manual_seed(5)
    model = small_fno(grid="periodic", grid_embedding=False).double()
    block = model.blocks[0]
    with torch.no_grad():
        block.channel_mlp_skip.weight.normal_()
    p = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    x = F.gelu(p)
    mlp = block.channel_mlp
    y = block.conv(x) + torch.einsum("oi,bi...->bo...", block.skip.weight, x)

    def mlp_plus_gate(v):
        h = torch.einsum("oi,bi...->bo...", mlp.fc1.weight, v) + mlp.fc1.bias.view(1, -1, 1, 1)
        out = torch.einsum("oi,bi...->bo...", mlp.fc2.weight, F.gelu(h)) + mlp.fc2.bias.view(1, -1, 1, 1)
        return out + block.channel_mlp_skip.weight.view(1, -1, 1, 1) * x

    ref, ref_last = mlp_plus_gate(F.gelu(y)), mlp_plus_gate(y)
    assert (ref - ref_last).abs().max() > 1e-3
    assert (block.preactivation(x, p) - ref).abs().max() < 1e-12
    assert (block(x) - F.gelu(ref)).abs().max() < 1e-12
    assert (block(x, last=True) - ref_last).abs().max() < 1e-12
    assert (block.preactivation(x, p, last=True) - ref_last).abs().max() < 1e-12


def test_whole_model_passes_float64_gradcheck():
    torch.manual_seed(6)
    model = small_fno(hidden_channels=4, n_modes=[2, 3], domain_padding=0.2).double()
    names = ["lifting.fc1.weight", "blocks.0.skip.weight", "blocks.0.channel_mlp.fc2.bias", "blocks.1.channel_mlp_skip.weight",
             "blocks.1.conv.weight.weight", "projection.fc2.weight"]
    params = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters() if n in names}
    assert len(params) == len(names)
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)

    def f(inp, *values):
        return torch.func.functional_call(model, dict(zip(params, values)), (inp,))

    assert torch.autograd.gradcheck(f, (x, *params.values()))


def test_default_path_keeps_two_and_a_half_fields_per_block():
    """Kept for backward: per block the pre-activations of the block sum (C channels), of the
    channel MLP (C/2) and of the block output (C), which the next block's skips use instead of
    its activation; the first block keeps its input; the lifting and the projection keep their
    input and hidden pre-activation. A plain autograd implementation keeps twice as much per
    block (the activations as well)."""
    torch.manual_seed(7)
    c, layers = 8, 3
    model = small_fno(hidden_channels=c, n_layers=layers, grid="periodic", lifting_ratio=2.0, projection_ratio=2.0)
    x = torch.randn(2, 2, 12, 10)
    points = 12 * 10
    lifting = (2 + 2) + 2 * c  # input (2 data + 2 coordinate channels) and hidden pre-activation
    blocks = c + layers * (c + c // 2) + (layers - 1) * c  # the last block's output is the projection input
    projection = c + 2 * c
    assert saved_field_elements(model, x, points) == 2 * points * (lifting + blocks + projection)


def test_checkpoint_blocks_gives_the_same_values_and_gradients_and_needs_less_memory(repo_root):
    sys.path.insert(0, str(repo_root / "benchmarks"))
    from bench_spectral_conv import peak_live_mib

    torch.manual_seed(8)
    plain = small_fno(n_layers=6, domain_padding=0.2, hidden_channels=16).double()
    checkpointed = small_fno(n_layers=6, domain_padding=0.2, hidden_channels=16, checkpoint_blocks=True).double()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 2, 9, 11, dtype=torch.float64)
    outputs = []
    for model in (plain, checkpointed):
        out = model(x)
        (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out).sin()).sum().backward()
        outputs.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    assert (outputs[0][0] - outputs[1][0]).abs().max() < 1e-12
    assert all((a - b).abs().max() < 1e-10 for a, b in zip(outputs[0][1], outputs[1][1]))
    x = torch.randn(4, 2, 40, 40, dtype=torch.float64)
    peaks = [peak_live_mib(lambda m=model: m(x).sum().backward()) for model in (plain, checkpointed)]
    assert peaks[1] < 0.8 * peaks[0], peaks  # measured 0.70
    assert checkpointed.config["checkpoint_blocks"] is True
    with pytest.raises(ConfigError, match="checkpoint_blocks must be true or false"):
        small_fno(checkpoint_blocks="yes")



@pytest.mark.parametrize("overrides", [{}, {"spectral_weight": {"factorization": "tucker", "rank": 0.5}},
                                       {"channel_mlp_skip": "identity", "skip": "soft-gating"}])
@pytest.mark.parametrize("output_shape", [None, (13, 10)])
def test_inference_in_place_matches_the_tracked_forward(overrides, output_shape):
    torch.manual_seed(2)
    model = small_fno(domain_padding=0.2, grid="cell", **overrides)
    assert_inference_matches_the_tracked_forward(model, torch.randn(3, 2, 9, 8), output_shape)


def test_in_place_inference_leaves_hooked_outputs_and_aliased_inputs_alone():
    """Under ``torch.no_grad`` a forward hook that keeps a block's spectral or channel-MLP
    output sees the value grad mode gives (nothing writes over it later), and a block called on
    its own grid through ``output_shape`` with an identity gate (the resampled gate is the input
    itself) leaves its input unchanged."""
    from neuralops.models.fno import FourierBlock
    from neuralops.spectral import SpectralConv

    torch.manual_seed(5)
    model = small_fno(n_layers=3, domain_padding=0.2).double()
    x = torch.randn(2, 2, 9, 11, dtype=torch.float64)
    kept = {}
    for name in ("blocks.0.conv", "blocks.0.channel_mlp", "blocks.1.channel_mlp"):
        model.get_submodule(name).register_forward_hook(lambda m, args, out, name=name: kept.__setitem__(name, out))
    model(x)
    tracked = {name: out.detach().clone() for name, out in kept.items()}
    with torch.no_grad():
        model(x)
    assert all((kept[name] - tracked[name]).abs().max() < 1e-12 for name in tracked)

    block = FourierBlock(SpectralConv(4, 4, [3, 3]), "linear", 0.5, "identity", "gelu").double()
    h = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    original = h.clone()
    reference = block(h).detach()
    with torch.no_grad():
        out = block(h, output_shape=(8, 8))
    assert torch.equal(h, original) and (out - reference).abs().max() < 1e-12
