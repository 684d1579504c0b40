"""The one-chain-of-GEMMs Fourier layer (``neuralops.spectral.fourier_gemm``) against the FFT path.

The direct-DFT reference in ``test_spectral_conv.py`` checks this path's forward values (method
``"matmul"``); here its gradients are checked against the independent FFT path (which shares no
code with it beyond the weight) and by ``gradcheck``, and its memory behaviour is pinned down.
"""

import pytest
import torch

import neuralops.spectral.conv as conv_module
from neuralops.spectral import FourierTransform, SpectralConv, build_spectral_weight, kept_modes
from neuralops.spectral.fourier_gemm import fourier_gemm_conv

TOL64 = 1e-12  # float64, two exact algorithms for the same sums


@pytest.fixture
def gemm_calls(monkeypatch):
    """Count the calls SpectralConv makes to the GEMM-chain path."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return fourier_gemm_conv(*args, **kwargs)

    monkeypatch.setattr(conv_module, "fourier_gemm_conv", counted)
    return calls


def fft_twin(layer: SpectralConv) -> SpectralConv:
    """The same layer (same parameters) running the FFT path."""
    twin = SpectralConv(layer.in_channels, layer.out_channels, layer.n_modes, bias=layer.bias is not None).double()
    twin.load_state_dict(layer.state_dict())
    twin.transform = FourierTransform("fft")
    return twin


CASES = [
    # (n_modes, c_in, c_out, grid_in, grid_out)
    ((5,), 3, 2, (16,), (16,)),
    ((5,), 2, 3, (16,), (27,)),
    ((3, 4), 3, 4, (12, 10), (12, 10)),
    ((3, 4), 2, 2, (12, 10), (20, 17)),
    ((3, 4), 2, 3, (4, 5), (4, 5)),  # coarser than the modes
    ((3, 4), 3, 2, (12, 10), (8, 6)),  # output coarser than input
    ((2, 3, 2), 3, 2, (6, 8, 5), (9, 10, 8)),
    ((2, 3, 2), 2, 2, (6, 8, 5), (6, 8, 5)),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n_modes,c_in,c_out,grid_in,grid_out", CASES)
def test_values_and_gradients_match_the_fft_path(gemm_calls, n_modes, c_in, c_out, grid_in, grid_out, bias):
    torch.manual_seed(sum(grid_in) + 3 * sum(grid_out) + c_in)
    layer = SpectralConv(c_in, c_out, n_modes, bias=bias).double()
    if bias:
        with torch.no_grad():
            layer.bias.normal_()
    twin = fft_twin(layer)
    x = torch.randn(3, c_in, *grid_in, dtype=torch.float64, requires_grad=True)
    x_twin = x.detach().clone().requires_grad_(True)
    y = layer(x, output_shape=grid_out)
    y_twin = twin(x_twin, output_shape=grid_out)
    assert len(gemm_calls) == 1  # only `layer` took the GEMM chain
    assert y.shape == (3, c_out, *grid_out)
    assert (y - y_twin).abs().max() < TOL64
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    y_twin.backward(grad_out)
    assert (x.grad - x_twin.grad).abs().max() < TOL64
    for (name, p), p_twin in zip(layer.named_parameters(), twin.parameters()):
        assert (p.grad - p_twin.grad).abs().max() < TOL64, name


@pytest.mark.parametrize("method", ["auto", "fft"])  # the GEMM chain, the staged FFT path
@pytest.mark.parametrize("n_modes,grid_in,grid_out", [((3,), (8,), (11,)), ((2, 2), (5, 6), (7, 4)), ((2, 2, 1), (4, 5, 3), (4, 5, 3))])
def test_gradcheck(gemm_calls, n_modes, grid_in, grid_out, method):
    torch.manual_seed(4)
    layer = SpectralConv(2, 3, n_modes).double()
    layer.transform = FourierTransform(method)
    x = torch.randn(2, 2, *grid_in, dtype=torch.float64, requires_grad=True)
    w = layer.weight.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().normal_().requires_grad_(True)

    def f(inp, weight, bias):
        return torch.func.functional_call(layer, {"weight.weight": weight, "bias": bias}, (inp,), {"output_shape": grid_out})

    assert torch.autograd.gradcheck(f, (x, w, b))
    assert bool(gemm_calls) == (method == "auto")


def test_mixed_axes_take_the_staged_path(gemm_calls):
    """An axis that keeps more than half of a long grid uses the FFT; the layer is then staged."""
    layer = SpectralConv(2, 2, (40, 3))
    y = layer(torch.randn(1, 2, 80, 8))
    assert y.shape == (1, 2, 80, 8)
    assert not gemm_calls
    layer(torch.randn(1, 2, 30, 8))  # 30 <= 64 points: matrices on both axes
    assert len(gemm_calls) == 1


@pytest.mark.parametrize("factorization", ["tucker", "cp"])
@pytest.mark.parametrize("n_modes,grid", [((3,), (14,)), ((3, 4), (12, 10)), ((2, 3, 2), (6, 8, 5))])
def test_factorized_weights_in_the_chain_match_the_fft_path(gemm_calls, factorization, n_modes, grid):
    """Reconstructed weights run the stacked contraction, factorized ones their own contraction
    inside the chain; values and gradients equal the FFT path's."""
    torch.manual_seed(5)
    weight = build_spectral_weight(4, 3, n_modes, factorization, rank=0.5).double()
    layer = SpectralConv(4, 3, n_modes, weight=weight).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, *grid, dtype=torch.float64)
    grad_out = torch.randn(2, 3, *grid, dtype=torch.float64)
    results = {}
    for implementation, method in [("reconstructed", "auto"), ("factorized", "auto"), ("factorized", "fft")]:
        weight.implementation = implementation
        layer.transform = FourierTransform(method)
        layer.zero_grad()
        x_in = x.clone().requires_grad_(True)
        y = layer(x_in)
        y.backward(grad_out)
        results[implementation, method] = [y, x_in.grad] + [p.grad.clone() for p in layer.parameters()]
    assert len(gemm_calls) == 2
    reference = results["factorized", "fft"]
    for key in [("reconstructed", "auto"), ("factorized", "auto")]:
        for a, b in zip(results[key], reference):
            assert (a - b).abs().max() < TOL64, key


def test_no_grid_sized_tensor_is_kept_for_backward():
    """Only mode-sized tensors (and the parameters) are saved: the activations of a deep
    network of these layers cost the coefficients, not the grid."""
    layer = SpectralConv(8, 8, (4, 4))
    x = torch.randn(4, 8, 64, 64, requires_grad=True)
    parameters = {p.data_ptr() for p in layer.parameters()}
    saved = []

    def pack(t):
        if t.data_ptr() not in parameters:
            saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x)
    modes = kept_modes((4, 4), (64, 64))
    expanded_coefficients = 4 * x.shape[0] * x.shape[1] * modes[0].count * modes[1].count
    assert sum(saved) <= expanded_coefficients + 4 * 64 * 64  # + the cached DFT matrices
    assert max(saved) < x.numel() // 4


def test_low_precision_contraction(gemm_calls):
    """``dtype`` runs only the channel contraction in that dtype (bfloat16 here, 3 significant digits)."""
    torch.manual_seed(6)
    layer = SpectralConv(16, 16, (6, 6))
    x = torch.randn(2, 16, 24, 24)
    modes = kept_modes((6, 6), (24, 24))
    stacked = layer.weight.stacked((2, 16, *(m.count for m in modes)), modes)
    reference = fourier_gemm_conv(x, modes, (24, 24), stacked, bias=layer.bias)
    low = fourier_gemm_conv(x, modes, (24, 24), stacked, bias=layer.bias, dtype=torch.bfloat16)
    assert low.dtype == torch.float32
    relative = (low - reference).norm() / reference.norm()
    assert 1e-5 < relative < 2e-2, relative


def test_needs_exactly_one_contraction():
    x = torch.randn(1, 2, 8)
    modes = kept_modes((3,), (8,))
    with pytest.raises(ValueError, match="exactly one"):
        fourier_gemm_conv(x, modes, (8,))


@pytest.mark.parametrize("n_modes,grid", [((3,), (10,)), ((2, 2), (6, 5)), ((2, 2, 1), (4, 5, 3))])
def test_second_order_forward_mode_and_vmap(gemm_calls, n_modes, grid):
    """The chain composes like plain torch ops: double backward, jvp, jacrev and vmap agree
    with the FFT path or with a loop (float64, tol 1e-12)."""
    from torch.func import jacrev, jvp, vmap

    torch.manual_seed(7)
    layer = SpectralConv(2, 3, n_modes).double()
    with torch.no_grad():
        layer.bias.normal_()
    twin = fft_twin(layer)
    x = torch.randn(2, 2, *grid, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(layer, (x,))
    tangent = torch.randn_like(x)
    _, ours = jvp(layer, (x.detach(),), (tangent,))
    _, reference = jvp(twin, (x.detach(),), (tangent,))
    assert (ours - reference).abs().max() < TOL64
    single = x.detach()[:1]
    assert (jacrev(layer)(single) - jacrev(twin)(single)).abs().max() < TOL64
    samples = torch.randn(4, 1, 2, *grid, dtype=torch.float64)
    looped = torch.stack([layer(sample) for sample in samples])
    assert (vmap(layer)(samples) - looped).abs().max() < TOL64
    assert gemm_calls
