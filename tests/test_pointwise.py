"""The fused pointwise maps (``neuralops.layers.pointwise.pointwise_maps``) against plain
float64 einsum references: values, first and second derivatives (gradcheck), forward mode,
vmap, autocast, and the tensors they keep for the backward pass."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

from neuralops.errors import ConfigError
from neuralops.layers.pointwise import Activation, ChannelMLP, PointwiseMap, pointwise_maps, runs_untracked

TOL64 = 1e-12  # float64: the same sums in another order

F64 = dict(dtype=torch.float64)


def reference(x, maps):
    """``addend + bias + M x`` per map, written with einsum (no shared code)."""
    outs = []
    for kind, weight, bias, addend in maps:
        if kind == "linear":
            y = torch.einsum("oi,bi...->bo...", weight, x)
        elif kind == "diagonal":
            y = torch.einsum("c,bc...->bc...", weight, x)
        else:
            y = x
        if bias is not None:
            y = y + bias.view((1, -1) + (1,) * (x.ndim - 2))
        outs.append(y if addend is None else y + addend)
    return outs


def operands(seed=0, grid=(5, 3), c_in=3, c_out=4, batch=2, grad=True):
    torch.manual_seed(seed)
    p = torch.randn(batch, c_in, *grid, **F64, requires_grad=grad)
    tensors = dict(
        W=torch.randn(c_out, c_in, **F64), b=torch.randn(c_out, **F64), add=torch.randn(batch, c_out, *grid, **F64),
        w=torch.randn(c_in, **F64), b2=torch.randn(c_in, **F64), add2=torch.randn(batch, c_in, *grid, **F64),
    )
    for t in tensors.values():
        t.requires_grad_(grad)
    return p, tensors


def spec(t):
    return [("linear", t["W"], t["b"], t["add"]), ("diagonal", t["w"], None, None), ("identity", None, t["b2"], t["add2"])]


def fused(p, t, recompute=True):
    x = F.gelu(p)
    maps = [PointwiseMap(*m) for m in spec(t)]
    return pointwise_maps(x, maps, p if recompute else None, F.gelu if recompute else None)


@pytest.mark.parametrize("grid", [(7,), (5, 3), (3, 2, 4)])
@pytest.mark.parametrize("recompute", [True, False])
def test_values_and_gradients_match_the_einsum_reference(grid, recompute):
    p, t = operands(grid=grid)
    ours = fused(p, t, recompute)
    ref = reference(F.gelu(p), spec(t))
    cotangents = [torch.randn_like(o) for o in ref]
    inputs = [p, *t.values()]
    g_ours = torch.autograd.grad(ours, inputs, cotangents)
    g_ref = torch.autograd.grad(ref, inputs, cotangents)
    for a, r in zip(ours, ref):
        assert a.shape == r.shape and (a - r).abs().max() < TOL64
    for a, r in zip(g_ours, g_ref):
        assert (a - r).abs().max() < TOL64


@pytest.mark.parametrize("recompute", [True, False])
def test_gradcheck_and_gradgradcheck_in_float64(recompute):
    p, t = operands(grid=(4, 3))
    inputs = (p, *t.values())
    names = list(t)

    def f(p, *rest):
        return fused(p, dict(zip(names, rest)), recompute)

    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


def test_forward_mode_and_vmap_match_the_reference():
    from torch.func import jacfwd, jacrev, jvp, vmap

    p, t = operands(grid=(4, 3), grad=False)
    names = list(t)
    inputs = (p, *t.values())
    tangents = tuple(torch.randn_like(a) for a in inputs)
    _, ours = jvp(lambda *a: fused(a[0], dict(zip(names, a[1:]))), inputs, tangents)
    _, ref = jvp(lambda *a: tuple(reference(F.gelu(a[0]), spec(dict(zip(names, a[1:]))))), inputs, tangents)
    assert all((a - r).abs().max() < TOL64 for a, r in zip(ours, ref))
    # vmap over a leading axis of the field and the addends (weights shared)
    stack = torch.randn(3, *p.shape, **F64), torch.randn(3, *t["add"].shape, **F64), torch.randn(3, *t["add2"].shape, **F64)

    def one(p, add, add2):
        return fused(p, {**t, "add": add, "add2": add2})

    batched = vmap(one)(*stack)
    looped = [torch.stack(o) for o in zip(*(one(*(s[i] for s in stack)) for i in range(3)))]
    assert all((a - r).abs().max() < TOL64 for a, r in zip(batched, looped))
    # reverse- and forward-mode Jacobians agree
    first = lambda q: fused(q, t)[0].sum(0)  # noqa: E731
    assert (jacrev(first)(p) - jacfwd(first)(p)).abs().max() < TOL64


def test_recomputation_keeps_the_pre_activation_instead_of_the_input():
    """With ``source`` the node keeps ``p`` (which the activation keeps anyway) and the weights,
    not ``x = act(p)``: the fields kept for backward are one tensor fewer."""
    p, t = operands(grid=(6, 6))

    def kept_storages(recompute):
        kept = set()

        def pack(tensor):
            kept.add(tensor.untyped_storage().data_ptr())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            fused(p, t, recompute)
        return kept

    with_source, without = kept_storages(True), kept_storages(False)
    assert p.untyped_storage().data_ptr() in with_source
    assert len(with_source) == len(without) - 1


def test_channel_mlp_matches_plain_layers_and_keeps_two_fields():
    torch.manual_seed(3)
    mlp = ChannelMLP(3, 2, 5).double()
    x = torch.randn(2, 3, 4, 4, **F64, requires_grad=True)
    fc1, fc2 = mlp.fc1, mlp.fc2
    ref = torch.einsum("oh,bh...->bo...", fc2.weight, F.gelu(torch.einsum("hi,bi...->bh...", fc1.weight, x) + fc1.bias.view(1, -1, 1, 1)))
    ref = ref + fc2.bias.view(1, -1, 1, 1)
    assert (mlp(x) - ref).abs().max() < TOL64
    assert gradcheck(lambda inp: mlp(inp), (x,))
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        mlp(x)
    field = x[0, 0].numel() * 2
    # x (3 channels) and the hidden pre-activation (5 channels), each kept once per use
    assert sum(s for s in sizes if s >= field) <= 2 * (3 + 5) * field


def test_autocast_runs_the_products_in_bfloat16_close_to_float32():
    torch.manual_seed(4)
    x = torch.randn(2, 8, 6, 6)
    weight, bias = torch.randn(16, 8) / 8**0.5, torch.randn(16)
    exact = pointwise_maps(x, [PointwiseMap("linear", weight, bias)])[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = pointwise_maps(x, [PointwiseMap("linear", weight.requires_grad_(), bias)])[0]
    assert mixed.dtype == torch.bfloat16
    assert (mixed.float() - exact).abs().max() <= 2e-2 * exact.abs().max()
    mixed.float().sum().backward()
    assert weight.grad.dtype == torch.float32 and torch.isfinite(weight.grad).all()


def test_bad_maps_raise_config_errors():
    x = torch.randn(1, 2, 3)
    with pytest.raises(ConfigError, match="unknown pointwise map kind"):
        pointwise_maps(x, [PointwiseMap("conv3x3", torch.ones(2, 2))])
    with pytest.raises(ConfigError, match="both source and activation_fn"):
        pointwise_maps(x, [PointwiseMap("identity")], source=x)


@pytest.mark.parametrize("grid", [(7,), (5, 3)])
def test_untracked_maps_match_the_reference_and_overwrite_only_when_asked(grid):
    """Under ``torch.no_grad`` the maps skip the autograd node: same values as the einsum
    reference; with ``overwrite_addends`` each result lives in its addend's storage, without
    it the addends are untouched."""
    p, t = operands(grid=grid, grad=False)
    x = F.gelu(p)
    ref = reference(x, spec(t))
    for overwrite in (False, True):
        addends = {k: t[k].clone() for k in ("add", "add2")}
        maps = [PointwiseMap(*m) for m in spec({**t, **addends})]
        with torch.no_grad():
            assert runs_untracked(x)
            ours = pointwise_maps(x, maps, overwrite_addends=overwrite)
        assert all((a - r).abs().max() < TOL64 for a, r in zip(ours, ref))
        shared = [o.untyped_storage().data_ptr() == addends[k].untyped_storage().data_ptr() for o, k in ((ours[0], "add"), (ours[2], "add2"))]
        assert shared == [overwrite, overwrite]
        if not overwrite:
            assert all(torch.equal(addends[k], t[k]) for k in addends)


def test_untracked_means_grad_mode_off_without_transforms_or_autocast():
    x = torch.randn(2, 3)
    assert not runs_untracked(x)  # grad mode on, even though x needs no gradient
    with torch.no_grad():
        assert runs_untracked(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not runs_untracked(x)
        assert torch.func.vmap(lambda v: torch.tensor(runs_untracked(v)))(x).tolist() == [False, False]
    with torch.inference_mode():
        assert runs_untracked(x)


@pytest.mark.parametrize("name", ["gelu", "relu", "tanh", "silu", "sin"])
def test_activation_consume_overwrites_only_when_untracked(name):
    reference_fn = {"gelu": lambda v: 0.5 * v * (1 + torch.erf(v / 2**0.5)), "relu": lambda v: v.clamp(min=0),
                    "tanh": lambda v: (torch.exp(2 * v) - 1) / (torch.exp(2 * v) + 1), "silu": lambda v: v / (1 + torch.exp(-v)),
                    "sin": torch.sin}[name]
    torch.manual_seed(5)
    p = torch.randn(3, 4, 5, **F64)
    expected = reference_fn(p)
    act = Activation(name)
    kept = p.clone()
    tracked = act.consume(p)
    assert torch.equal(p, kept) and (tracked - expected).abs().max() < TOL64
    with torch.no_grad():
        out = act.consume(p)
    assert out.data_ptr() == p.data_ptr() and (out - expected).abs().max() < TOL64
    with pytest.raises(ConfigError, match="unknown activation"):
        Activation("swish2")
