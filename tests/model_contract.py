"""Checks every model family must pass, shared by the family test files (not collected itself)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

import neuralops
from neuralops.models import NeuralOperator


def assert_gradients_reach_every_parameter(model: NeuralOperator, x: torch.Tensor,
                                           output_shape: Sequence[int] | None = None) -> None:
    """After backpropagating a random linear loss, every parameter has a non-zero gradient."""
    model.zero_grad(set_to_none=True)
    out = model(x, output_shape=output_shape)
    (out * torch.randn_like(out)).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    zero = [name for name, p in model.named_parameters() if p.grad is not None and not p.grad.any()]
    assert not missing, f"parameters without gradient: {missing}"
    assert not zero, f"parameters with an all-zero gradient: {zero}"


def assert_inference_matches_the_tracked_forward(model: NeuralOperator, x: torch.Tensor,
                                                 output_shape: Sequence[int] | None = None) -> None:
    """In float64, the forward pass under ``torch.no_grad`` (where layers may compute in place,
    ``neuralops.layers.pointwise.runs_untracked``) gives the tracked forward's values to 1e-12
    and leaves the input unchanged."""
    model = model.double()
    x = x.double()
    original = x.clone()
    tracked = model(x, output_shape=output_shape)
    assert tracked.requires_grad
    with torch.no_grad():
        untracked = model(x, output_shape=output_shape)
    assert torch.equal(x, original)
    assert untracked.shape == tracked.shape and (untracked - tracked.detach()).abs().max() < 1e-12


def assert_round_trip_reproduces(model: NeuralOperator, x: torch.Tensor, tmp_path) -> NeuralOperator:
    """``save_pretrained`` (JSON config + safetensors state dict) then ``load_pretrained``, which
    rebuilds with ``build(name, **config)``, gives bit-identical outputs; returns the rebuilt model."""
    model.eval()
    neuralops.save_pretrained(tmp_path / "model", model)
    rebuilt = neuralops.load_pretrained(tmp_path / "model").model
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    return rebuilt


def train(model: NeuralOperator, inputs: torch.Tensor, targets: torch.Tensor, steps: int, lr: float,
          batch_size: int, seed: int = 0) -> NeuralOperator:
    """Adam with cosine decay on the mean squared error, random mini-batches."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        index = torch.randint(0, inputs.shape[0], (batch_size,), generator=generator)
        loss = (model(inputs[index]) - targets[index]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over samples of ``‖prediction - target‖ / ‖target‖``."""
    diff = (prediction - target).flatten(1).norm(dim=1)
    return (diff / target.flatten(1).norm(dim=1)).mean().item()
