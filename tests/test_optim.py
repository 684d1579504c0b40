"""The optimizers ``train.py`` builds take the update of their papers, with the fused kernel.

Reference: the update rules written out in float64 numpy from the papers (Adam: Kingma & Ba
2015, Algorithm 1, with L2 weight decay added to the gradient as torch documents; AdamW:
Loshchilov & Hutter 2019, Algorithm 2, decay ``p ← p − lr·wd·p``; SGD with momentum and
Nesterov momentum as torch documents them), applied to fresh random parameters and gradients.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from neuralops.training.optim import build_optimizer, load_optimizer_state, update_implementation

STEPS = 4
# float32 parameters against the float64 reference: a few float32 roundings per step
RTOL = 2e-6


def reference_updates(name: str, params: list[np.ndarray], grads: list[list[np.ndarray]], options: dict) -> list[np.ndarray]:
    lr, wd = options["lr"], options["weight_decay"]
    out = []
    for p, steps in zip(params, grads):
        p = p.astype(np.float64).copy()
        m = np.zeros_like(p)
        v = np.zeros_like(p)
        buf = None
        for t, g in enumerate(steps, start=1):
            g = g.astype(np.float64)
            if name == "sgd":
                g = g + wd * p
                mu = options["momentum"]
                buf = g.copy() if buf is None else mu * buf + g
                p -= lr * (g + mu * buf if options["nesterov"] else buf)
                continue
            b1, b2 = options["betas"]
            if name == "adamw":
                p *= 1 - lr * wd
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            p -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        out.append(p)
    return out


@pytest.mark.parametrize(
    "options",
    [
        {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-2, "betas": (0.9, 0.99)},
        # weight decay large enough that Adam's L2 form and AdamW's decoupled form differ beyond RTOL
        {"name": "adam", "lr": 1e-3, "weight_decay": 1e-2, "betas": (0.8, 0.999)},
        {"name": "sgd", "lr": 1e-2, "weight_decay": 1e-4, "momentum": 0.9, "nesterov": True},
        {"name": "sgd", "lr": 1e-2, "weight_decay": 0.0, "momentum": 0.5, "nesterov": False},
    ],
)
def test_built_optimizer_takes_the_papers_update_fused(options):
    seed = np.random.SeedSequence().entropy  # fresh inputs each run, reported on failure
    rng = np.random.default_rng(seed)
    shapes = [(7, 5), (13,), (2, 3, 4)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for _ in range(STEPS)] for s in shapes]
    params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    optimizer = build_optimizer(params, options)
    assert optimizer.defaults["fused"] is True
    for t in range(STEPS):
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g[t].copy())
        optimizer.step()
    expected = reference_updates(options["name"], values, grads, options)
    for p, e, v in zip(params, expected, values):
        moved = np.abs(e - v).max()
        assert moved > 10 * RTOL * np.abs(v).max(), f"seed {seed}"  # the steps moved the parameters measurably
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=RTOL, atol=RTOL * np.abs(e).max(), err_msg=f"seed {seed}")


def test_a_checkpoint_of_another_update_resumes_on_the_fused_one():
    """A state saved by a ``foreach`` optimizer (older checkpoints) loads into the built one
    without switching it back to ``foreach``, and the next steps continue the saved run."""
    torch.manual_seed(0)
    values = [torch.randn(6, 4), torch.randn(9)]
    grads = [[torch.randn_like(v) for v in values] for _ in range(4)]
    options = {"name": "adamw", "lr": 1e-2, "weight_decay": 1e-2, "betas": (0.9, 0.99)}

    def run(optimizer, params, steps):
        for g in steps:
            for p, gp in zip(params, g):
                p.grad = gp.clone()
            optimizer.step()

    old_params = [torch.nn.Parameter(v.clone()) for v in values]
    old = torch.optim.AdamW(old_params, lr=1e-2, weight_decay=1e-2, betas=(0.9, 0.99), foreach=True)
    run(old, old_params, grads[:2])
    saved = copy.deepcopy(old.state_dict())  # as read back from a checkpoint file
    new_params = [torch.nn.Parameter(p.detach().clone()) for p in old_params]
    resumed = build_optimizer(new_params, options)
    load_optimizer_state(resumed, saved)
    assert resumed.param_groups[0]["fused"] is True and not resumed.param_groups[0]["foreach"]
    run(old, old_params, grads[2:])
    run(resumed, new_params, grads[2:])
    for a, b in zip(new_params, old_params):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=RTOL)


def test_update_implementation_falls_back_to_foreach_where_no_fused_kernel_runs():
    real = [torch.zeros(3), torch.zeros(2, dtype=torch.float64)]
    assert update_implementation(real) == {"fused": True}
    assert update_implementation(real + [torch.zeros(2, dtype=torch.complex64)]) == {"foreach": True}
    assert update_implementation([torch.zeros(3, device="meta")]) == {"foreach": True}
