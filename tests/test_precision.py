"""Mixed precision: autocast forwards match float32 within stated tolerances, no NaN.

On CPU the spectral layers run entirely in float32 under autocast (documented policy), so a
SpectralConv matches float32 exactly; whole models differ only through their bfloat16
pointwise layers. The low-precision contraction used on CUDA is checked here in bfloat16 on
CPU against the float32 reference einsum.
"""

import copy

import pytest
import torch

from neuralops.models.fno import FNO
from neuralops.models.mgtfno import MGTFNO
from neuralops.models.sfno import SFNO
from neuralops.models.t1 import T1
from neuralops.models.tfno import TFNO
from neuralops.spectral import SpectralConv
from neuralops.spectral.contract import contract_dense_reference
from neuralops.spectral.precision import contract_dense_low_precision

MODEL_BF16_TOL = 5e-2  # relative max error of a whole model under CPU bf16 autocast (measured 4.7e-3 .. 8.1e-3)
CONTRACT_BF16_TOL = 2e-2  # relative max error of a bf16 contraction over 16 channels (measured 2.8e-3, 3.3e-3)



@pytest.mark.parametrize("transform,grid", [("fft", (15, 17)), ("dct", (15, 17)), ("sht", (12, 24))])
@pytest.mark.parametrize("weight", ["dense", "tucker"])
def test_spectral_conv_under_cpu_autocast_is_float32(transform, grid, weight):
    torch.manual_seed(0)
    layer = SpectralConv(4, 3, (5, 5), weight=weight, transform=transform)
    x = torch.randn(2, 4, *grid)
    reference = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = layer(x)
        from_half_input = layer(x.bfloat16())
    assert mixed.dtype == torch.float32 and torch.equal(mixed, reference)
    assert from_half_input.dtype == torch.bfloat16 and torch.isfinite(from_half_input.float()).all()
    assert (from_half_input.float() - reference).abs().max() <= 2e-2 * reference.abs().max()


MODELS = [
    lambda: FNO(1, 1, [6, 6], hidden_channels=16),
    lambda: TFNO(1, 1, [6, 6], hidden_channels=16),
    lambda: MGTFNO(1, 1, [4, 4], hidden_channels=16),
    lambda: SFNO(1, 1, [6, 6], hidden_channels=16),
    lambda: T1(1, 1, [6, 6], hidden_channels=16, init_grid=[16, 16]),
]


@pytest.mark.parametrize("make", MODELS, ids=["fno", "tfno", "mgtfno", "sfno", "t1"])
def test_models_under_bf16_autocast_match_float32(make):
    torch.manual_seed(1)
    model = make()
    x = torch.randn(4, 1, 16, 16)
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(x)
    assert torch.isfinite(mixed).all()
    relative = ((mixed.float() - reference).abs().max() / reference.abs().max()).item()
    assert relative < MODEL_BF16_TOL, relative
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x).float().pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("complex_valued", [True, False])
def test_low_precision_contraction_matches_reference(complex_valued):
    torch.manual_seed(2)
    dtype = torch.complex64 if complex_valued else torch.float32
    x = torch.randn(3, 16, 6, 5, dtype=dtype)
    w = torch.randn(16, 8, 6, 5, dtype=dtype)
    reference = contract_dense_reference(x, w)
    low = contract_dense_low_precision(x, w, torch.bfloat16)
    assert low.dtype == dtype
    assert (low - reference).abs().max() <= CONTRACT_BF16_TOL * reference.abs().max()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_on_a_grid_cufft_cannot_do_in_half(dtype):
    """An odd (non power-of-two) grid on the cuFFT path (over 64 points and more than half the
    frequencies kept, so no axis takes the DFT matrix): transforms fall back to float32,
    contraction in half."""
    torch.manual_seed(3)
    layer = SpectralConv(8, 8, (20, 36), weight="tucker").cuda()
    x = torch.randn(2, 8, 75, 67, device="cuda")
    modes = layer._kept_modes(layer.n_modes, x.shape[2:], x.shape[2:])
    assert not any(layer.transform._matmul(k, n) for k, n in zip((modes[0].count, modes[1].n_pos), x.shape[2:]))
    reference = layer(x)
    with torch.autocast("cuda", dtype=dtype):
        mixed = layer(x)
    assert torch.isfinite(mixed).all()
    assert (mixed - reference).abs().max() <= CONTRACT_BF16_TOL * reference.abs().max()


HALF_MODEL_TOL = {torch.bfloat16: MODEL_BF16_TOL, torch.float16: 1e-2}  # measured 6e-3 .. 1e-2 and 8e-4 .. 1.1e-3


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("make,output_shape", [(MODELS[0], None), (MODELS[1], None), (MODELS[3], None), (MODELS[3], (24, 48))],
                         ids=["fno", "tfno", "sfno", "sfno-resampled"])
def test_models_converted_to_half_precision_run_their_spectral_layers_in_float32(make, output_shape, dtype):
    """``model.to(torch.bfloat16)`` / ``.half()``: the pointwise layers run in the half dtype, the
    spectral weights are read in float32. Reference: the float32 model holding the same rounded
    weights, on the same rounded input."""
    torch.manual_seed(3)
    half = make().to(dtype)
    reference_model = copy.deepcopy(half).float()
    x = torch.randn(4, 1, 16, 32).to(dtype)
    args = () if output_shape is None else (output_shape,)
    out = half(x, *args)
    reference = reference_model(x.float(), *args)
    assert out.dtype == dtype and out.shape == reference.shape
    relative = ((out.float() - reference).abs().max() / reference.abs().max()).item()
    assert relative < HALF_MODEL_TOL[dtype], relative
    out.float().pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.dtype == dtype and torch.isfinite(p.grad).all() for p in half.parameters() if p.requires_grad)


def test_sfno_resampled_output_under_autocast_matches_float32():
    """The SFNO's skip paths are resampled by a spherical-harmonic transform, in float32 under
    autocast like every transform."""
    torch.manual_seed(4)
    model = MODELS[3]()
    x = torch.randn(2, 1, 16, 32)
    reference = model(x, (24, 48))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(x, (24, 48))
    relative = ((mixed.float() - reference).abs().max() / reference.abs().max()).item()
    assert relative < MODEL_BF16_TOL, relative
