"""TFNO defaults and MG-TFNO: multigrid patching against a numpy reference, joint weights, shapes."""

import math

import numpy as np
import pytest
import torch

from neuralops.errors import ConfigError, InputShapeError
from neuralops.layers.patching import MultigridPatching
from neuralops.models import build
from neuralops.models.fno import FNO
from neuralops.models.mgtfno import MGTFNO
from neuralops.models.tfno import TFNO
from neuralops.spectral.factorized import FactorizedSpectralWeight



def spectral_parameters(model):
    return sum(p.numel() for name, p in model.named_parameters() if ".conv.weight." in name)


def test_tfno_is_fno_with_tucker_weights_of_a_tenth_of_the_parameters():
    torch.manual_seed(0)
    tfno = TFNO(1, 1, [6, 6], hidden_channels=16)
    fno = FNO(1, 1, [6, 6], hidden_channels=16)
    assert tfno.config["spectral_weight"] == {"factorization": "tucker", "rank": 0.1}
    assert all(b.conv.weight.tensor_factorization.kind == "tucker" for b in tfno.blocks)
    ratio = spectral_parameters(tfno) / spectral_parameters(fno)
    assert abs(ratio - 0.1) < 0.02, ratio
    # everything but the spectral weights is FNO's
    assert tfno.num_parameters() - spectral_parameters(tfno) == fno.num_parameters() - spectral_parameters(fno)
    x = torch.randn(2, 1, 16, 16)
    assert tfno(x).shape == (2, 1, 16, 16)
    assert tfno(x, output_shape=(32, 32)).shape == (2, 1, 32, 32)


def test_tfno_options_and_errors():
    cp = build("tfno", in_channels=1, out_channels=2, n_modes=[4, 4], spectral_weight={"factorization": "cp", "rank": 8})
    assert cp.blocks[0].conv.weight.tensor_factorization.rank == 8
    with pytest.raises(ConfigError, match="hidden_chanels"):
        build("tfno", in_channels=1, out_channels=1, n_modes=[4, 4], hidden_chanels=8)
    with pytest.raises(ConfigError, match="rnak"):
        TFNO(1, 1, [4, 4], spectral_weight={"factorization": "tucker", "rnak": 0.1})


def reference_context(x, level, patch, window_index, h, p, mode):
    """x[i·h + h//2 − 2^l(h//2 + p) + 2^l·j] per axis, outside points by numpy's pad modes."""
    big = 64
    numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "zeros": "constant"}[mode]
    padded = np.pad(x, [(0, 0), (0, 0)] + [(big, big)] * (x.ndim - 2), mode=numpy_mode)
    stride = 2**level
    index = [big + i * h + h // 2 - stride * (h // 2 + p) + stride * j for i, j in zip(patch, window_index)]
    return padded[(slice(None), slice(None), *index)]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "zeros"])
@pytest.mark.parametrize("levels", [1, 2])
def test_patch_context_matches_numpy_reference(mode, levels):
    torch.manual_seed(levels)
    grid, fraction = 16, 0.25
    patching = MultigridPatching(levels, fraction, mode)
    x = torch.randn(2, 3, grid, grid, dtype=torch.float64)
    patches = patching.patch(x)
    n, h = 2**levels, grid // 2**levels
    p = round(fraction * h)
    w = h + 2 * p
    assert patches.shape == (2 * n * n, 3 * (levels + 1), w, w)
    rng = np.random.default_rng(0)
    for _ in range(20):
        b, i0, i1, level = rng.integers(2), rng.integers(n), rng.integers(n), rng.integers(levels + 1)
        j0, j1 = rng.integers(w), rng.integers(w)
        expected = reference_context(x.numpy(), level, (i0, i1), (j0, j1), h, p, mode)[b]
        got = patches[b * n * n + i0 * n + i1, 3 * level : 3 * level + 3, j0, j1].numpy()
        assert np.allclose(got, expected, atol=0, rtol=0)


@pytest.mark.parametrize("shape,levels", [((2, 3, 16, 16), 1), ((2, 3, 16, 32), 2), ((1, 2, 24), 1), ((1, 1, 8, 8, 8), 1)])
def test_patch_then_stitch_is_the_identity(shape, levels):
    x = torch.randn(*shape)
    patching = MultigridPatching(levels, 0.25, "reflect")
    patches = patching.patch(x)
    assert torch.equal(patching.stitch(patches[:, : shape[1]], shape[2:]), x)


def test_patching_errors():
    with pytest.raises(InputShapeError, match="divisible by 4"):
        MultigridPatching(2, 0.25, "reflect").patch(torch.randn(1, 1, 18, 16))
    with pytest.raises(InputShapeError, match="padding_mode"):
        MultigridPatching(1, 0.9, "reflect").patch(torch.randn(1, 1, 8, 8))
    with pytest.raises(ConfigError, match="padding_mode"):
        MultigridPatching(1, 0.25, "mirror")


def test_mgtfno_joint_weights_and_two_resolutions():
    torch.manual_seed(0)
    model = MGTFNO(1, 1, [4, 4], levels=1, hidden_channels=8, n_layers=3)
    weights = [b.conv.weight for b in model.operator.blocks]
    assert all(isinstance(w, FactorizedSpectralWeight) for w in weights)
    shared = weights[0].tensor_factorization
    assert all(w.tensor_factorization is shared for w in weights) and shared.shape[0] == 3
    dense_count = 3 * 2 * math.prod((8, 8, 8, 4))  # three dense layers, real scalars
    assert abs(shared.num_parameters() / dense_count - 0.05) < 0.01
    assert spectral_parameters(model) == shared.num_parameters()  # counted once
    for grid in (16, 32, 17):  # 17: extended to 18 at the end, output cropped back
        y = model(torch.randn(2, 1, grid, grid))
        assert y.shape == (2, 1, grid, grid) and torch.isfinite(y).all()
    with pytest.raises(InputShapeError, match="input grid"):
        model(torch.randn(1, 1, 16, 16), output_shape=(32, 32))
    # one optimizer step moves the shared factors
    before = [p.detach().clone() for p in shared.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(2, 1, 16, 16)).pow(2).mean().backward()
    optimizer.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, shared.parameters()))
