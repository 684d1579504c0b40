"""Transform plug-ins against independent references: DCT-II/III vs scipy.fft, a DCT spectral
convolution vs explicit cosine sums, and the SHT convolution vs scipy's spherical harmonics."""

import math

import numpy as np
import pytest
import scipy.fft
import torch
from scipy.special import sph_harm_y

from neuralops.errors import ConfigError
from neuralops.spectral import SpectralConv
from neuralops.spectral.dct import dct_ii, dct_iii
from neuralops.spectral.modes import NONNEG, SHARED
from neuralops.spectral.weights import DenseSpectralWeight

TOL64 = 1e-12



@pytest.mark.parametrize("n", [1, 2, 7, 8, 16, 33])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_dct_ii_matches_scipy(n, dim):
    x = torch.randn(*[n if d == (dim % 3) else 3 for d in range(3)], dtype=torch.float64)
    ortho = scipy.fft.dct(x.numpy(), type=2, axis=dim, norm="ortho")
    assert np.abs(dct_ii(x, dim=dim, norm="ortho").numpy() - ortho).max() < TOL64
    # forward norm: cosine-series coefficients = scipy's unnormalized 2Σ scaled by 1/N (k>0), 1/(2N) (k=0)
    plain = scipy.fft.dct(x.numpy(), type=2, axis=dim) / n
    plain = np.moveaxis(plain, dim, -1)
    plain[..., 0] /= 2
    assert np.abs(np.moveaxis(dct_ii(x, dim=dim).numpy(), dim, -1) - plain).max() < TOL64


@pytest.mark.parametrize("n", [1, 5, 8, 17])
def test_dct_iii_matches_scipy_idct(n):
    coefficients = torch.randn(4, n, dtype=torch.float64)
    reference = scipy.fft.idct(coefficients.numpy(), type=2, axis=-1, norm="ortho")  # = DCT-III (ortho)
    assert np.abs(dct_iii(coefficients, n, norm="ortho").numpy() - reference).max() < TOL64


def test_truncated_coefficients_evaluate_the_cosine_series_on_any_grid():
    """K forward-normalized coefficients evaluated on n points equal Σ_k a_k cos(π k (j+1/2)/n)."""
    a = torch.randn(2, 5, dtype=torch.float64)
    for n in (5, 9, 24):
        t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        direct = (a[:, :, None] * torch.cos(math.pi * torch.arange(5.0, dtype=torch.float64)[:, None] * t)).sum(1)
        assert torch.allclose(dct_iii(a, n), direct, atol=TOL64)
        assert torch.allclose(dct_ii(direct, n_keep=5), a, atol=TOL64)  # and back (band-limited: exact)


def test_bad_dct_norm_is_a_config_error():
    with pytest.raises(ConfigError, match="norm"):
        dct_ii(torch.randn(4), norm="backward")


def direct_dct_conv(x, weight, n_modes, grid_out):
    """y = Σ_k (W_k a_k) Π_j cos(π k_j t_j) with a_k the cosine-series coefficients by explicit sums."""
    grid_in = x.shape[2:]
    counts = [min(m, a, b) for m, a, b in zip(n_modes, grid_in, grid_out)]
    coeff = x
    for axis, (n, count) in enumerate(zip(grid_in, counts)):
        k = torch.arange(count, dtype=torch.float64)[:, None]
        t = (torch.arange(n, dtype=torch.float64)[None, :] + 0.5) / n
        basis = torch.cos(math.pi * k * t) * torch.where(k == 0, 1.0, 2.0) / n  # (K, N)
        coeff = torch.movedim(torch.tensordot(torch.movedim(coeff, 2 + axis, -1), basis.T, dims=1), -1, 2 + axis)
    w = weight[(slice(None), slice(None)) + tuple(slice(0, c) for c in counts)]
    y = torch.einsum("bi...,io...->bo...", coeff, w)
    for axis, (n, count) in enumerate(zip(grid_out, counts)):
        k = torch.arange(count, dtype=torch.float64)[None, :]
        t = (torch.arange(n, dtype=torch.float64)[:, None] + 0.5) / n
        y = torch.movedim(torch.tensordot(torch.movedim(y, 2 + axis, -1), torch.cos(math.pi * k * t).T, dims=1), -1, 2 + axis)
    return y


@pytest.mark.parametrize("factorization", ["dense", "tucker"])
@pytest.mark.parametrize(
    "n_modes,grid_in,grid_out",
    [((5,), (12,), (12,)), ((4, 3), (10, 9), (10, 9)), ((4, 3), (3, 8), (3, 8)), ((4, 3), (10, 9), (17, 6))],
)
def test_dct_spectral_conv_matches_direct_cosine_sums(factorization, n_modes, grid_in, grid_out):
    torch.manual_seed(0)
    layer = SpectralConv(3, 2, n_modes, weight=factorization, transform="dct", bias=False).double()
    assert layer.weight.real and layer.weight.dense().dtype == torch.float64  # real weights for real coefficients
    x = torch.randn(2, 3, *grid_in, dtype=torch.float64)
    y = layer(x, output_shape=None if grid_in == grid_out else grid_out)
    reference = direct_dct_conv(x, layer.weight.dense(), n_modes, grid_out)
    assert y.shape == (2, 2, *grid_out)
    assert torch.allclose(y, reference, atol=1e-10), (y - reference).abs().max()


def equiangular(nlat, nlon):
    theta = np.linspace(0, np.pi, nlat)  # colatitude, poles included
    phi = 2 * np.pi * np.arange(nlon) / nlon
    return np.meshgrid(theta, phi, indexing="ij")


def spherical_harmonic(l, m, nlat, nlon):
    theta, phi = equiangular(nlat, nlon)
    return sph_harm_y(l, m, theta, phi)


def sht_layer(mode_axes, n_modes=(6, 6)):
    weight = DenseSpectralWeight(1, 1, n_modes, mode_axes=mode_axes)
    return SpectralConv(1, 1, n_modes, weight=weight, transform="sht", bias=False).double().requires_grad_(False)


@pytest.mark.parametrize("l,m", [(0, 0), (1, 0), (2, 1), (3, 3), (5, 2)])
def test_per_degree_sht_layer_maps_a_harmonic_to_a_multiple_of_itself(l, m):
    """Y_l^m -> w_l · Y_l^m with w_l the layer's weight of degree l (same for every order m).

    Real inputs Re Y and Im Y go through separately; by linearity out(Re Y) + i·out(Im Y) = w_l Y.
    For m = 0 (real Y) a real layer can only apply Re(w_l): the imaginary part of the order-0
    coefficient is dropped by the real inverse transform.
    """
    torch.manual_seed(l + 10 * m)
    layer = sht_layer((NONNEG, SHARED))
    assert layer.weight.dense().shape == (1, 1, 6)  # one weight per degree
    y_lm = spherical_harmonic(l, m, 16, 32)
    parts = torch.tensor(np.stack([y_lm.real, y_lm.imag])[:, None], dtype=torch.float64)  # (2, 1, nlat, nlon)
    out = layer(parts)
    response = out[0, 0].numpy() + 1j * out[1, 0].numpy()
    w_l = layer.weight.dense()[0, 0, l].item()
    w_l = w_l if m > 0 else w_l.real
    assert np.abs(response - w_l * y_lm).max() < 1e-10
    # evaluated on a finer grid it is the same multiple of Y_l^m there
    fine = layer(parts, output_shape=(24, 48))
    fine_response = fine[0, 0].numpy() + 1j * fine[1, 0].numpy()
    assert np.abs(fine_response - w_l * spherical_harmonic(l, m, 24, 48)).max() < 1e-10


def test_dense_sht_layer_scales_each_degree_and_order_separately():
    torch.manual_seed(3)
    layer = sht_layer((NONNEG, NONNEG))
    for l, m in [(2, 0), (2, 2), (4, 1)]:
        y_lm = spherical_harmonic(l, m, 16, 32)
        parts = torch.tensor(np.stack([y_lm.real, y_lm.imag])[:, None], dtype=torch.float64)
        out = layer(parts)
        response = out[0, 0].numpy() + 1j * out[1, 0].numpy()
        w_lm = layer.weight.dense()[0, 0, l, m].item()
        assert np.abs(response - (w_lm if m > 0 else w_lm.real) * y_lm).max() < 1e-10


def test_sht_keeps_exactly_the_degrees_the_grid_resolves():
    """8 latitudes resolve l < (8+1)//2 = 4: the layer keeps l <= 3 and is still exact at l = 3."""
    layer = sht_layer((NONNEG, SHARED))
    degrees, orders = layer.transform.kept_modes((6, 6), (8, 16))
    assert (degrees.n_pos, orders.n_pos) == (4, 4)
    y_lm = spherical_harmonic(3, 1, 8, 16)
    parts = torch.tensor(np.stack([y_lm.real, y_lm.imag])[:, None], dtype=torch.float64)
    out = layer(parts)
    response = out[0, 0].numpy() + 1j * out[1, 0].numpy()
    assert np.abs(response - layer.weight.dense()[0, 0, 3].item() * y_lm).max() < 1e-10


def test_weight_layout_must_fit_the_transform():
    with pytest.raises(ConfigError, match="does not fit"):
        SpectralConv(2, 2, (4, 4), weight=DenseSpectralWeight(2, 2, (4, 4)), transform="dct")


@pytest.mark.parametrize("method", ["matmul", "fft"])
def test_fourier_inverse_at_shifted_points_matches_a_direct_sum(method):
    """``inverse(..., offset)`` evaluates the band-limited series at ``(j + offset)/n`` per axis:
    checked against an explicit float64 sum of the same coefficients."""
    from neuralops.spectral.modes import kept_modes
    from neuralops.spectral.transforms import FourierTransform, signed_frequencies

    torch.manual_seed(0)
    modes = kept_modes([3, 4], (12, 10), (24, 15))
    block = torch.randn(2, 1, modes[0].count, modes[1].n_pos, dtype=torch.complex128)
    offset = (-0.25, 0.4)
    out = FourierTransform(method).inverse(block, modes, (24, 15), offset)
    kx = signed_frequencies(modes[0].n_pos, modes[0].n_neg)
    ky = torch.arange(modes[1].n_pos, dtype=torch.float64)
    x = (torch.arange(24, dtype=torch.float64) + offset[0]) / 24
    y = (torch.arange(15, dtype=torch.float64) + offset[1]) / 15
    ex = torch.exp(2j * math.pi * torch.outer(x, kx))  # (24, Kx)
    ey = torch.exp(2j * math.pi * torch.outer(y, ky))  # (15, Ky)
    weight = torch.full((len(ky),), 2.0, dtype=torch.float64)
    weight[0] = 1.0  # the real inverse counts each positive last-axis frequency with its conjugate
    reference = torch.einsum("xk,bckl,yl,l->bcxy", ex, block, ey, weight.to(torch.complex128)).real
    assert torch.allclose(out, reference, atol=1e-11)


def test_spectral_conv_output_offset_is_the_same_on_both_execution_paths():
    """The GEMM chain (every axis by DFT matrix) and the staged FFT path shift the output alike."""
    torch.manual_seed(1)
    layer = SpectralConv(3, 2, [3, 4]).double()
    x = torch.randn(2, 3, 16, 12, dtype=torch.float64)
    chain = layer(x, output_shape=(48, 36), output_offset=(-1.0, 0.3))
    layer.transform = type(layer.transform)("fft")
    staged = layer(x, output_shape=(48, 36), output_offset=(-1.0, 0.3))
    assert torch.allclose(chain, staged, atol=1e-11)
    # an offset of a whole output point is the unshifted output moved by one point (periodic)
    plain = layer(x, output_shape=(48, 36), output_offset=(0.0, 0.3))
    assert torch.allclose(chain[:, :, 1:], plain[:, :, :-1], atol=1e-11)
    with pytest.raises(ConfigError, match="output_offset needs the Fourier transform"):
        SpectralConv(3, 2, [3, 4], transform="dct").double()(x, output_shape=(48, 36), output_offset=(0.5, 0.0))
