"""Pointwise (1×1) layers acting on the channel axis of ``(B, C, *grid)`` tensors.

Every pointwise layer runs through one fused operation, :func:`pointwise_maps`: several maps
of one input ``x``, each ``y_k = addend_k + bias_k + M_k x`` with ``M_k`` a dense matrix
(1×1 convolution), a diagonal (soft gating) or the identity, in one autograd node. Each map is
one BLAS call on the ``(B, C, N)`` view of the field (``N`` = grid points, no copy): the
1×1 convolution is ``baddbmm`` with the weight broadcast over the batch, which accumulates the
bias and the addend (e.g. the spectral convolution's output) inside the GEMM instead of in
separate passes over the field.

**Recomputation.** A map's weight gradient needs its input ``x``. When ``x = σ(p)`` is the
activation of a pre-activation ``p`` that autograd keeps anyway (for ``σ``'s own backward),
:func:`pointwise_maps` takes ``source=p`` and keeps only ``p``; the backward pass recomputes
``σ(p)``. This is the GEMM + bias + activation fusion with recomputation in backward: one
field per activation is not stored, and the backward pass evaluates the activation once more
(for GELU about 1 ms per 2·10⁶ elements on one CPU thread). A default FNO block keeps 2.5
fields of its width instead of 5 (``tests/test_fno.py``); the whole model's peak memory in
a training step is in ``benchmarks/results/fno_step_cpu.md``.

**Untracked runs.** When nothing records the operations (:func:`runs_untracked`: no gradient
is needed, no ``torch.func`` transform, no autocast, as at inference under ``torch.no_grad``),
the maps skip the autograd node, and a caller that passes ``overwrite_addends=True`` lets each
GEMM accumulate into its addend's storage instead of copying the addend into a new tensor;
:meth:`Activation.consume` likewise writes the activation over a pre-activation nobody reads
again. Measured on one CPU thread, the benchmark FNO's inference at 64², batch 32, in one
process, interleaved: 174 ms through the autograd node, 154 ms with in-place accumulation,
145 ms with in-place activations as well (whole-model ratios in
``benchmarks/results/fno_step_cpu.md``). A caller must not let a map overwrite a tensor that a
forward hook may hold (:func:`outputs_observed`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from neuralops.errors import ConfigError

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "silu": F.silu, "sin": torch.sin}
_IN_PLACE = {
    "gelu": torch.ops.aten.gelu_,
    "relu": torch.relu_,
    "tanh": torch.tanh_,
    "silu": partial(F.silu, inplace=True),
    "sin": torch.sin_,
}

MAP_KINDS = ("linear", "diagonal", "identity")


def runs_untracked(x: torch.Tensor) -> bool:
    """Whether no autograd graph is recorded for operations on ``x``, so intermediate fields
    may be overwritten: grad mode is off (``torch.no_grad``, ``torch.inference_mode``), no
    ``torch.func`` transform (vmap, grad, jvp) is active, autocast is off on ``x``'s device, and
    ``torch.compile`` is not tracing (its compiler reuses buffers itself).
    Grad mode alone decides, not ``requires_grad``, so every layer of one forward pass takes
    the same path (a pre-activation overwritten by :meth:`Activation.consume` is never a
    ``source`` kept for a backward pass). Forward-mode dual tensors (``torch.autograd.forward_ad``)
    take this path too; the in-place ops used carry their tangents."""
    if torch.compiler.is_compiling() or torch.is_grad_enabled() or torch._C._are_functorch_transforms_active():
        return False
    return not torch.is_autocast_enabled(x.device.type)


def outputs_observed(module: nn.Module) -> bool:
    """Whether a forward hook, global or on ``module`` or one of its submodules, may keep an
    output of a submodule: then a caller must not overwrite such outputs in place, even when
    it does not read them again."""
    return bool(nn.modules.module._global_forward_hooks) or any(m._forward_hooks for m in module.modules())


class Activation:
    """An activation function by name (a key of :data:`ACTIVATIONS`), elementwise on any shape.

    ``act(x)`` returns a new tensor. ``act.consume(p)`` is for a pre-activation ``p`` its caller
    does not read again (except as a :func:`pointwise_maps` ``source``): when nothing records
    the operation (:func:`runs_untracked`) it writes ``σ(p)`` over ``p`` and returns ``p``,
    else it returns a new tensor like ``act(p)``. Raises :class:`ConfigError` for an unknown
    name.
    """

    def __init__(self, name: str):
        if name not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {name!r}; available: {', '.join(sorted(ACTIVATIONS))}")
        self.name = name
        self._function = ACTIVATIONS[name]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._function(x)

    def consume(self, p: torch.Tensor) -> torch.Tensor:
        return _IN_PLACE[self.name](p) if runs_untracked(p) else self._function(p)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def activation(name: str) -> Activation:
    """The activation registered as ``name`` (:class:`Activation`)."""
    return Activation(name)


@dataclass(frozen=True)
class PointwiseMap:
    """One map ``y = addend + bias + M x`` of a ``(B, Cin, *grid)`` field.

    ``kind``: ``"linear"`` (``weight: (Cout, Cin)``, a 1×1 convolution), ``"diagonal"``
    (``weight: (C,)``, ``y_c = w_c x_c``) or ``"identity"`` (no weight). ``bias: (Cout,)`` or
    None; ``addend: (B, Cout, *grid)`` or None.
    """

    kind: str
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    addend: torch.Tensor | None = None


def _autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None


def _map_forward(kind: str, x: torch.Tensor, weight, bias, addend, overwrite_addend: bool = False) -> torch.Tensor:
    """``addend + bias + M x`` on flattened ``(B, C, N)`` tensors, as one GEMM or elementwise
    pass; with ``overwrite_addend`` written into ``addend``'s storage (no copy)."""
    batch = x.shape[0]
    out_channels = weight.shape[0] if kind == "linear" else x.shape[1]
    in_place = overwrite_addend and addend is not None and addend.shape == (batch, out_channels, x.shape[2])
    if kind == "linear":
        matrix = weight.expand(batch, -1, -1)
        if addend is None and bias is None:
            return torch.bmm(matrix, x)
        if in_place:
            out = addend.baddbmm_(matrix, x)
        else:
            out = torch.baddbmm(bias.view(1, -1, 1) if addend is None else addend, matrix, x)
        if addend is not None and bias is not None:
            out += bias.view(1, -1, 1)
        return out
    if kind == "diagonal":
        scale = weight.view(1, -1, 1)
        if in_place:
            out = addend.addcmul_(x, scale)
        else:
            out = x * scale if addend is None else torch.addcmul(addend, x, scale)
    elif in_place:
        out = addend.add_(x)
    else:
        out = x.clone() if addend is None else x + addend
    if bias is not None:
        out += bias.view(1, -1, 1)
    return out


def _map_tangent(kind: str, x, x_dot, weight, weight_dot, bias_dot, addend_dot) -> torch.Tensor | None:
    """The directional derivative of one map (forward-mode AD): ``ȧ + ḃ + M ẋ + Ṁ x``."""
    terms = []
    if x_dot is not None and kind != "identity":
        terms.append(_map_forward(kind, x_dot, weight, None, None))
    elif x_dot is not None:
        terms.append(x_dot)
    if weight_dot is not None:
        terms.append(_map_forward(kind, x, weight_dot, None, None))
    if bias_dot is not None:
        terms.append(bias_dot.view(1, -1, 1).expand(x.shape[0], -1, x.shape[2]))
    if addend_dot is not None:
        terms.append(addend_dot)
    if not terms:
        return None
    return sum(terms[1:], terms[0])


class _PointwiseMaps(torch.autograd.Function):
    """The autograd node of :func:`pointwise_maps` (all tensors flattened to ``(B, C, N)``).

    Inputs: ``kinds`` (per map), ``act`` (recomputes ``x`` from ``source``, or None), ``x``,
    ``source``, then ``(weight, bias, addend)`` per map. Saves ``source`` (or ``x``) once.
    Its backward is written in differentiable torch ops (double backward works), ``jvp`` gives
    forward-mode AD and vmap uses the generated rule.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(kinds, act, x, source, *params):
        dtype = _autocast_dtype(x)
        with torch.autocast(x.device.type, enabled=False):
            if dtype is not None:
                x = x.to(dtype)
                params = [None if p is None else p.to(dtype) for p in params]
            return tuple(_map_forward(kind, x, *params[3 * k : 3 * k + 3]) for k, kind in enumerate(kinds))

    @staticmethod
    def setup_context(ctx, inputs, output):
        kinds, act, x, source, *params = inputs
        ctx.kinds, ctx.act = kinds, act
        ctx.set_materialize_grads(False)  # outputs without a gradient are skipped, not zero-filled
        ctx.dtype = _autocast_dtype(x) or x.dtype
        kept = x if source is None else source
        ctx.save_for_backward(kept, *params[0::3])
        ctx.save_for_forward(x, *params[0::3])

    @staticmethod
    def backward(ctx, *grads):
        kept, *weights = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grads = [None if g is None else g.to(ctx.dtype) for g in grads]
        weights = [None if w is None else w.to(ctx.dtype) for w in weights]
        x = None
        grad_params: list[torch.Tensor | None] = []
        for k, (kind, grad) in enumerate(zip(ctx.kinds, grads)):
            slot = 4 + 3 * k
            grad_weight = grad_bias = None
            if grad is not None and needs[slot] and kind != "identity":
                if x is None:
                    x = (kept if ctx.act is None else ctx.act(kept)).to(ctx.dtype)
                if kind == "linear":
                    grad_weight = torch.bmm(grad, x.transpose(1, 2)).sum(0)
                else:
                    grad_weight = (grad * x).sum((0, 2))
            if grad is not None and needs[slot + 1]:
                grad_bias = grad.sum((0, 2))
            grad_params += [grad_weight, grad_bias, grad if needs[slot + 2] else None]
        grad_x = None
        if needs[2]:
            # Diagonal maps first: their product starts the sum, the others accumulate in place
            # (addcmul_ has no vmap batching rule).
            order = sorted(range(len(grads)), key=lambda k: ctx.kinds[k] != "diagonal")
            for k in order:
                if grads[k] is not None:
                    grad_x = _accumulate_input_grad(ctx.kinds[k], grad_x, weights[k], grads[k])
        return (None, None, grad_x, None, *grad_params)

    @staticmethod
    def jvp(ctx, _kinds, _act, x_dot, _source_dot, *param_dots):
        x, *weights = ctx.saved_tensors
        return tuple(
            _map_tangent(kind, x, x_dot, weights[k], *param_dots[3 * k : 3 * k + 3]) for k, kind in enumerate(ctx.kinds)
        )


def _accumulate_input_grad(kind: str, total: torch.Tensor | None, weight, grad: torch.Tensor) -> torch.Tensor:
    """``total + Mᵀ grad`` (a new tensor when ``total`` is None, else accumulated in place)."""
    if kind == "linear":
        matrix = weight.t().expand(grad.shape[0], -1, -1)
        return torch.bmm(matrix, grad) if total is None else total.baddbmm_(matrix, grad)
    if kind == "diagonal":
        scale = weight.view(1, -1, 1)
        return grad * scale if total is None else total.add_(grad * scale)
    return grad.clone() if total is None else total.add_(grad)


def pointwise_maps(
    x: torch.Tensor,
    maps: Sequence[PointwiseMap],
    source: torch.Tensor | None = None,
    activation_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    overwrite_addends: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Apply several pointwise maps to one field in one autograd node.

    Args:
        x: ``(B, Cin, *grid)``.
        maps: the maps, each ``addend + bias + M x`` (:class:`PointwiseMap`).
        source: ``p`` with ``x = activation_fn(p)``, kept for the backward pass instead of ``x``
            (which is recomputed there); None keeps ``x``.
        activation_fn: the activation that made ``x`` from ``source``.
        overwrite_addends: the caller does not read the addends again, so when nothing
            records the operations (:func:`runs_untracked`) each map's result is accumulated
            in its addend's storage (and the addend is returned); otherwise ignored.

    Returns one ``(B, Cout_k, *grid)`` tensor per map. Under autocast the products run in the
    autocast dtype. Differentiable to any order in reverse mode, in forward mode and under vmap.
    While ``torch.compile`` traces, the maps are the node's forward as plain differentiable
    torch ops (Dynamo cannot trace the custom node), so the compiler sees one graph and decides
    itself what to keep or recompute for the backward pass.
    Raises :class:`ConfigError` for an unknown map kind or a ``source`` without its activation.
    """
    if (source is None) != (activation_fn is None):
        raise ConfigError("pointwise_maps needs both source and activation_fn, or neither")
    unknown = [m.kind for m in maps if m.kind not in MAP_KINDS]
    if unknown:
        raise ConfigError(f"unknown pointwise map kind(s) {unknown}; expected one of {', '.join(MAP_KINDS)}")
    batch, channels = x.shape[:2]
    grid = x.shape[2:]

    def flat(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.reshape(batch, t.shape[1], -1)

    params = []
    for m in maps:
        params += [m.weight, m.bias, flat(m.addend)]
    flat_x = x.reshape(batch, channels, -1)
    kinds = tuple(m.kind for m in maps)
    if runs_untracked(x):
        outputs = [_map_forward(kind, flat_x, *params[3 * k : 3 * k + 3], overwrite_addends) for k, kind in enumerate(kinds)]
    elif torch.compiler.is_compiling():  # the node's forward as plain ops: autograd differentiates them
        outputs = _PointwiseMaps.forward(kinds, activation_fn, flat_x, flat(source), *params)
    else:
        outputs = _PointwiseMaps.apply(kinds, activation_fn, flat_x, flat(source), *params)
    return tuple(out.view(batch, out.shape[1], *grid) for out in outputs)


class PointwiseLinear(nn.Module):
    """A 1×1 convolution on any grid: ``(B, Cin, *grid) -> (B, Cout, *grid)``.

    One batched GEMM with the weight broadcast over the batch (no copy of the field), which on
    CPU runs forward+backward 1.5–2× faster than oneDNN's 1×1 ``conv1d`` for FNO-sized inputs.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        bound = 1.0 / in_channels**0.5
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None

    def as_map(self, addend: torch.Tensor | None = None) -> PointwiseMap:
        """This layer as a :class:`PointwiseMap` (plus ``addend``) for :func:`pointwise_maps`."""
        return PointwiseMap("linear", self.weight, self.bias, addend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, Cin, *grid)`` -> ``(B, Cout, *grid)``."""
        return pointwise_maps(x, [self.as_map()])[0]


class ChannelMLP(nn.Module):
    """Two pointwise layers with an activation between: ``Cin -> hidden -> Cout``.

    Keeps its input and the hidden pre-activation for the backward pass; the hidden activation
    is recomputed there (:func:`pointwise_maps`).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, activation_name: str = "gelu"):
        super().__init__()
        self.fc1 = PointwiseLinear(in_channels, hidden_channels)
        self.fc2 = PointwiseLinear(hidden_channels, out_channels)
        self.act = activation(activation_name)

    def forward(
        self,
        x: torch.Tensor,
        source: torch.Tensor | None = None,
        addend: torch.Tensor | None = None,
        overwrite_addend: bool = False,
    ) -> torch.Tensor:
        """``x: (B, Cin, *grid)`` -> ``(B, Cout, *grid)`` (+ ``addend``, accumulated in the last
        GEMM; with ``overwrite_addend``, in its storage when nothing records the operations, see
        :func:`pointwise_maps`). ``source``: the pre-activation ``p`` with ``x = act(p)``, kept
        instead of ``x``."""
        hidden = pointwise_maps(x, [self.fc1.as_map()], source, None if source is None else self.act)[0]
        return pointwise_maps(
            self.act.consume(hidden), [self.fc2.as_map(addend)], hidden, self.act, overwrite_addends=overwrite_addend
        )[0]


class SoftGating(nn.Module):
    """Per-channel scaling ``x · w_c`` (a skip connection with one weight per channel)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def as_map(self, addend: torch.Tensor | None = None) -> PointwiseMap:
        """This gate as a diagonal :class:`PointwiseMap` (plus ``addend``)."""
        return PointwiseMap("diagonal", self.weight, None, addend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view((1, -1) + (1,) * (x.ndim - 2))


class IdentitySkip(nn.Identity):
    """The identity skip ``x`` (no parameters)."""

    def as_map(self, addend: torch.Tensor | None = None) -> PointwiseMap:
        return PointwiseMap("identity", None, None, addend)


def make_skip(kind: str | None, channels: int) -> nn.Module | None:
    """Skip connection by name: ``"linear"`` (1×1, no bias), ``"soft-gating"``, ``"identity"`` or None.

    Each has ``as_map(addend)`` giving its :class:`PointwiseMap`."""
    if kind is None or kind == "none":
        return None
    if kind == "linear":
        return PointwiseLinear(channels, channels, bias=False)
    if kind == "soft-gating":
        return SoftGating(channels)
    if kind == "identity":
        return IdentitySkip()
    raise ConfigError(f"unknown skip {kind!r}; expected 'linear', 'soft-gating', 'identity' or null")
