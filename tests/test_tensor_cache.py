"""Cached tensors built during ``torch.inference_mode`` still serve training
(``neuralops.tensor_cache.cached_tensors``): the DFT and SHT matrices and metric weights."""

import torch

from neuralops.models import build
from neuralops.models.sfno import SFNO
from neuralops.spectral import sphere, transforms
from neuralops.tensor_cache import cached_tensors


def test_values_cached_under_inference_mode_are_normal_tensors():
    calls = []

    @cached_tensors(maxsize=4)
    def ramp(n: int) -> torch.Tensor:
        calls.append(n)
        return torch.arange(n, dtype=torch.float64)

    with torch.inference_mode():
        first = ramp(5)
    assert not first.is_inference() and ramp(5) is first and calls == [5]
    weight = torch.ones(5, dtype=torch.float64, requires_grad=True)
    (weight * ramp(5)).sum().backward()  # saving the cached tensor for backward works
    assert torch.equal(weight.grad, first)


def test_cache_keeps_at_most_maxsize_values_dropping_the_oldest():
    calls = []

    @cached_tensors(maxsize=2)
    def ramp(n: int) -> torch.Tensor:
        calls.append(n)
        return torch.arange(n)

    first, second = ramp(1), ramp(2)
    assert ramp(1) is first and calls == [1, 2]
    ramp(3)  # full: drops ramp(1), the oldest
    assert ramp(2) is second and ramp(3) is ramp(3) and calls == [1, 2, 3]
    assert ramp(1) is not first and calls == [1, 2, 3, 1]
    ramp.cache_clear()
    ramp(2)
    assert calls == [1, 2, 3, 1, 2]


def test_models_train_after_an_evaluation_under_inference_mode():
    """The first call of each transform size happens under ``inference_mode``; the training
    step after it gives the same output and a gradient for every parameter."""
    transforms.dft_matrix.cache_clear()
    sphere._sht.cache_clear()
    sphere._isht.cache_clear()
    torch.manual_seed(1)
    models = [
        (build("fno", in_channels=2, out_channels=1, n_modes=[3, 4], hidden_channels=8, n_layers=2), torch.randn(3, 2, 9, 11)),
        (SFNO(2, 1, [4, 4], hidden_channels=8, n_layers=2), torch.randn(2, 2, 8, 16)),
    ]
    for model, x in models:
        with torch.inference_mode():
            evaluated = model(x)
        out = model(x)
        out.square().sum().backward()
        assert torch.equal(out.detach(), evaluated)
        assert all(p.grad is not None for p in model.parameters())
