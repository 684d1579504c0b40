"""SpectralConv against an independent float64 direct-DFT reference, gradients, and resolution.

The reference never calls torch.fft: it evaluates the DFT sums with explicit exponentials and
picks each kept frequency's weight from the full weight tensor by the documented convention
(non-last axes: index k for k >= 0, 2m + k for k < 0).
"""

import itertools
import math

import pytest
import torch

from neuralops.errors import ConfigError, InputShapeError
from neuralops.spectral import FourierTransform, SpectralConv, fourier_resample, kept_modes
from neuralops.spectral.contract import (
    contract_dense,
    contract_dense_reference,
    contract_stacked,
    stack_complex_weight,
)

REFERENCE_TOL = 1e-10  # float64 direct sums vs float64 FFT path


def kept_frequencies(n_modes, grid_in, grid_out):
    """Per axis, the list of integer frequencies the layer keeps (from the documented rule)."""
    out = []
    for axis, sel in enumerate(kept_modes(n_modes, grid_in, grid_out)):
        out.append(list(range(sel.n_pos)) + list(range(-sel.n_neg, 0)))
    return out


def direct_spectral_conv(x, full_weight, bias, n_modes, grid_out):
    """y = Re Σ_k c_k (W_k · x̂_k) e^{2πi k·m/N_out} + b with x̂ the forward-normalized DFT."""
    grid_in = x.shape[2:]
    d = len(grid_in)
    freqs = kept_frequencies(n_modes, grid_in, grid_out)
    # Forward DFT, one axis at a time, as explicit sums: x̂[b,i,k] = (1/N) Σ_n x[n] e^{-2πikn/N}.
    coeff = x.to(torch.complex128)
    for axis, (n, ks) in enumerate(zip(grid_in, freqs)):
        k = torch.tensor(ks, dtype=torch.float64)[:, None]
        pos = torch.arange(n, dtype=torch.float64)[None, :]
        basis = torch.exp(-2j * math.pi * k * pos / n) / n  # (K, N)
        coeff = torch.movedim(torch.tensordot(torch.movedim(coeff, 2 + axis, -1), basis.T, dims=1), -1, 2 + axis)
    # Weight of each kept frequency by the documented index rule.
    index = []
    for axis, (ks, m) in enumerate(zip(freqs, n_modes)):
        index.append([k if k >= 0 else 2 * m + k for k in ks])
    w = full_weight
    for axis, idx in enumerate(index):
        w = torch.index_select(w, 2 + axis, torch.tensor(idx))
    y_hat = torch.einsum("bi...,io...->bo...", coeff, w)
    # Hermitian weights: a last-axis frequency k>0 stands for itself and its conjugate.
    c = torch.tensor([1.0 if k == 0 else 2.0 for k in freqs[-1]], dtype=torch.float64)
    y_hat = y_hat * c
    for axis, (n, ks) in enumerate(zip(grid_out, freqs)):
        k = torch.tensor(ks, dtype=torch.float64)[None, :]
        pos = torch.arange(n, dtype=torch.float64)[:, None]
        basis = torch.exp(2j * math.pi * k * pos / n)  # (N, K)
        y_hat = torch.movedim(torch.tensordot(torch.movedim(y_hat, 2 + axis, -1), basis.T, dims=1), -1, 2 + axis)
    y = y_hat.real
    return y + bias.view((1, -1) + (1,) * d)


CASES = [
    # (n_modes, grid_in, grid_out)
    ((5,), (16,), (16,)),
    ((5,), (13,), (13,)),
    ((5,), (6,), (6,)),  # coarse: keeps only frequencies 0..2
    ((5,), (16,), (27,)),  # super-resolution to an odd grid
    ((3, 4), (12, 10), (12, 10)),
    ((3, 4), (7, 9), (7, 9)),
    ((3, 4), (4, 5), (4, 5)),  # coarser than the modes on both axes
    ((3, 4), (12, 10), (20, 17)),
    ((3, 4), (12, 10), (8, 6)),  # output coarser than input
    ((2, 3, 2), (6, 8, 5), (6, 8, 5)),
    ((2, 3, 2), (6, 8, 5), (9, 10, 8)),
]


@pytest.mark.parametrize("method", ["fft", "matmul"])
@pytest.mark.parametrize("n_modes,grid_in,grid_out", CASES)
def test_matches_direct_dft_reference(n_modes, grid_in, grid_out, method):
    """Both transform methods (FFT + truncation, truncated DFT matrices) match the direct sums."""
    torch.manual_seed(sum(grid_in) + 7 * sum(grid_out))
    layer = SpectralConv(3, 2, n_modes).double()
    layer.transform = FourierTransform(method)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 3, *grid_in, dtype=torch.float64)
    out_shape = None if grid_out == grid_in else grid_out
    y = layer(x, output_shape=out_shape)
    ref = direct_spectral_conv(x, layer.weight.dense(), layer.bias, n_modes, grid_out)
    assert y.shape == (2, 2, *grid_out)
    assert torch.allclose(y, ref, atol=REFERENCE_TOL, rtol=0), (y - ref).abs().max()


def band_limited(grid, freqs, seed):
    """A random real trigonometric polynomial with |frequency| <= freqs on the unit period, sampled on ``grid``."""
    g = torch.Generator().manual_seed(seed)
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) / n for n in grid], indexing="ij")
    out = torch.zeros(grid, dtype=torch.float64)
    for k in itertools.product(range(-freqs, freqs + 1), repeat=len(grid)):
        phase = 2 * math.pi * sum(ki * a for ki, a in zip(k, axes))
        a, b = torch.randn(2, generator=g, dtype=torch.float64)
        out = out + a * torch.cos(phase) + b * torch.sin(phase)
    return out


@pytest.mark.parametrize("method", ["fft", "matmul"])
@pytest.mark.parametrize("coarse,fine", [((12,), (36,)), ((10, 12), (20, 24))])
def test_same_function_on_coarse_and_fine_grid(coarse, fine, method):
    """A band-limited input sampled on two grids gives the same output function (float32, tol 1e-5)."""
    torch.manual_seed(1)
    layer = SpectralConv(1, 2, (4,) * len(coarse))
    layer.transform = FourierTransform(method)
    x_fine = band_limited(fine, 3, seed=3)[None, None].float()
    stride = tuple(f // c for f, c in zip(fine, coarse))
    x_coarse = x_fine[(..., *[slice(None, None, s) for s in stride])]
    y_fine = layer(x_fine)
    y_coarse = layer(x_coarse)
    assert torch.allclose(y_coarse, y_fine[(..., *[slice(None, None, s) for s in stride])], atol=1e-5)
    # Super-resolving from the coarse grid reproduces the fine-grid output.
    assert torch.allclose(layer(x_coarse, output_shape=fine), y_fine, atol=1e-5)


def test_fourier_resample_is_exact_for_band_limited_data():
    f_fine = band_limited((24, 20), 3, seed=5)[None, None]
    f_coarse = f_fine[..., ::3, ::2]  # (8, 10) still represents |k| <= 3
    assert torch.allclose(fourier_resample(f_coarse, (24, 20)), f_fine, atol=1e-12)
    assert torch.allclose(fourier_resample(f_fine, (8, 10)), f_coarse, atol=1e-12)


def test_unknown_transform_method_is_rejected():
    with pytest.raises(ConfigError, match="unknown Fourier transform method"):
        FourierTransform("fftw")


def test_fast_contraction_matches_reference():
    torch.manual_seed(2)
    x = torch.randn(3, 4, 6, 5, dtype=torch.complex128)
    w = torch.randn(4, 7, 6, 5, dtype=torch.complex128)
    assert torch.allclose(contract_dense(x, w), contract_dense_reference(x, w), atol=1e-12)


def test_stacked_real_contraction_matches_reference():
    """The single real GEMM form equals the complex einsum (float64, tol 1e-12)."""
    torch.manual_seed(3)
    x = torch.randn(3, 4, 6, 5, dtype=torch.complex128)
    w = torch.randn(4, 7, 6, 5, dtype=torch.complex128)
    stacked = stack_complex_weight(w)
    assert stacked.shape == (6, 5, 2, 4, 7)
    assert torch.allclose(contract_stacked(x, stacked), contract_dense_reference(x, w), atol=1e-12)


def test_wrong_input_raises_clear_error():
    layer = SpectralConv(3, 2, (4, 4))
    with pytest.raises(InputShapeError, match="expects"):
        layer(torch.randn(2, 5, 8, 8))
    with pytest.raises(InputShapeError, match="2-D grid"):
        layer(torch.randn(2, 3, 8))
