"""Factorized spectral weights: CP, Tucker and tensor-train (TT) forms of the complex weight.

The weight of a spectral convolution is a complex tensor ``W`` of shape
``(Cin, Cout, *mode_shape)`` (see :mod:`neuralops.spectral.weights`). Here it is stored in
factorized form; with a *joint* factorization one tensor of shape
``(n_layers, Cin, Cout, *mode_shape)`` holds the weights of every layer of a model and each
layer's weight is its slice along the first ("layer") mode.

Factorizations (``N`` = number of tensor modes, ``d_n`` their sizes, complex entries):

* **CP** (``"cp"``), rank ``R``: ``W[i_1..i_N] = Σ_r Π_n U_n[i_n, r]``;
  ``R·Σ_n d_n`` complex parameters.
* **Tucker** (``"tucker"``), ranks ``(R_1..R_N)``: ``W = G ×_1 U_1 ··· ×_N U_N`` with core
  ``G: (R_1..R_N)`` and factors ``U_n: (d_n, R_n)``; ``Π_n R_n + Σ_n d_n R_n`` parameters.
* **Tensor train** (``"tt"``), ranks ``(1, r_1, .., r_{N-1}, 1)``:
  ``W[i_1..i_N] = G_1[:, i_1, :] ··· G_N[:, i_N, :]`` with cores ``G_n: (r_{n-1}, d_n, r_n)``;
  ``Σ_n r_{n-1} d_n r_n`` parameters.

**Rank.** An ``int`` (or a list, one entry per rank) is an explicit rank; a ``float`` in ``(0, 1]``
is a *fraction of the dense parameter count*: the ranks are chosen (by tensorly's
``validate_*_rank``) so that the factorization holds about that fraction of
``Π_n d_n`` complex entries. An int Tucker rank is clipped to each mode size.

**Storage.** Every factor is a real ``nn.Parameter`` with a trailing ``(real, imag)`` axis, like
the dense weight. **Initialization**: entries are complex Gaussians whose scales are chosen so
the reconstructed weight's entries have the dense weight's standard deviation
(``sqrt(2/(Cin+Cout))`` unless ``init_std`` is given).

**Contraction paths** (``implementation``):

* ``"factorized"``: contract the kept coefficients ``x: (B, Cin, *K)`` with the factors directly
  (mode factors sliced to the kept modes by the same rule as ``select_modes``); no intermediate
  without the batch axis may hold both channel axes, so the dense weight is never formed.
* ``"reconstructed"``: rebuild the dense weight of the kept modes, then the dense contraction.
* ``"auto"`` (default): per input shape, the path with the lower estimated cost
  ``MACs + MEMORY_COST_PER_ELEMENT · (elements written)``, both taken from the contraction plans.

Contraction orders are found once per operand shapes by
:func:`neuralops.spectral.einsum_plan.plan_contraction` and cached on the weight; tensorly is
used only to validate ranks and to decompose a given dense tensor (``from_dense``), each time
inside a local ``tensorly.backend_context("pytorch")``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import ClassVar

import tensorly
import torch
from tensorly.cp_tensor import validate_cp_rank
from tensorly.decomposition import parafac, tensor_train, tucker
from tensorly.tt_tensor import validate_tt_rank
from tensorly.tucker_tensor import validate_tucker_rank
from torch import nn

from neuralops.errors import ConfigError
from neuralops.spectral.einsum_plan import ContractionPlan, plan_contraction
from neuralops.spectral.modes import SHARED, SIGNED, AxisModes, check_mode_axes
from neuralops.spectral.weights import (
    SpectralWeight,
    contract_modes,
    default_init_std,
    parameter_value,
    register_weight,
    select_axis,
    weight_layout,
    weight_parameter,
)

#: Cost of writing (and later reading) one complex intermediate element, in complex
#: multiply-accumulates; used by ``implementation="auto"`` to weigh memory traffic against
#: arithmetic (16 bytes moved per complex64 element vs 8 real flops per complex MAC).
MEMORY_COST_PER_ELEMENT = 4

IMPLEMENTATIONS = ("auto", "factorized", "reconstructed")

Operand = tuple[torch.Tensor, tuple[Hashable, ...]]


def load_value(param: nn.Parameter, value: torch.Tensor, real: bool) -> None:
    """Copy a tensor into a :func:`weight_parameter` (complex values as a trailing (re, im) axis)."""
    with torch.no_grad():
        stored = value.real if real else torch.view_as_real(value.to(torch.complex128).resolve_conj())
        param.copy_(stored.to(param.dtype))


def _check_fraction_or_rank(rank) -> None:
    if isinstance(rank, bool) or not isinstance(rank, (int, float, list, tuple)):
        raise ConfigError(f"rank must be an int, a list of ints or a float fraction in (0, 1], got {rank!r}")
    if isinstance(rank, float) and not 0.0 < rank <= 1.0:
        raise ConfigError(f"a float rank is a fraction of the dense parameter count and must lie in (0, 1], got {rank}")


class TensorFactorization(nn.Module):
    """A complex (or, with ``real``, real) tensor of ``shape`` with named axes, in factorized form.

    Subclasses define the factors; :meth:`operands` lists them as complex tensors, each with
    the labels of its axes (tensor axis names, or rank labels private to the factorization).
    Contracting all operands over shared rank labels gives the full tensor.
    """

    kind: ClassVar[str]

    def __init__(self, shape: Sequence[int], axis_names: Sequence[Hashable], real: bool = False):
        super().__init__()
        if len(shape) != len(axis_names):
            raise ConfigError(f"factorized tensor shape {list(shape)} and axis names {list(axis_names)} differ in length")
        self.shape = tuple(int(s) for s in shape)
        self.axis_names = tuple(axis_names)
        self.real = bool(real)

    def value(self, param: torch.Tensor) -> torch.Tensor:
        """The (complex unless ``real``) tensor a stored factor stands for."""
        return parameter_value(param, self.real)

    def operands(self) -> list[Operand]:
        raise NotImplementedError

    @property
    def rank(self):
        raise NotImplementedError

    def num_parameters(self) -> int:
        """Real scalars held by the factorization (twice the complex parameter count)."""
        return sum(p.numel() for p in self.parameters())

    def to_tensor(self) -> torch.Tensor:
        """The full complex tensor (for tests and for the reconstructed path's reference)."""
        operands = self.operands()
        sizes = dict(zip(self.axis_names, self.shape))
        for tensor, labels in operands:
            sizes.update(zip(labels, tensor.shape))
        plan = plan_contraction([labels for _, labels in operands], self.axis_names, sizes)
        return plan(*[tensor for tensor, _ in operands])

    def extra_repr(self) -> str:
        return f"shape={list(self.shape)}, rank={self.rank}"


class CPFactorization(TensorFactorization):
    """CP (canonical polyadic) factorization: factors ``U_n: (d_n, R)``; see the module docstring."""

    kind = "cp"

    def __init__(self, shape, axis_names, rank, init_std: float, real: bool = False):
        super().__init__(shape, axis_names, real)
        _check_fraction_or_rank(rank)
        if isinstance(rank, (list, tuple)):
            raise ConfigError(f"a CP rank is a single int or a float fraction, got {rank!r}")
        self._rank = int(validate_cp_rank(self.shape, rank)) if isinstance(rank, float) else int(rank)
        if self._rank < 1:
            raise ConfigError(f"CP rank must be >= 1, got {self._rank}")
        # Var(W) = R · Π_n s² for N factors of entry std s.
        std = (init_std**2 / self._rank) ** (1.0 / (2 * len(self.shape)))
        self.factors = nn.ParameterList(weight_parameter((d, self._rank), std, real) for d in self.shape)

    @property
    def rank(self) -> int:
        return self._rank

    def operands(self) -> list[Operand]:
        return [(self.value(f), (name, "cp_rank")) for f, name in zip(self.factors, self.axis_names)]

    def load_decomposition(self, weights: torch.Tensor, factors: Sequence[torch.Tensor]) -> None:
        scaled = [factors[0] * weights.unsqueeze(0)] + list(factors[1:])
        for param, value in zip(self.factors, scaled):
            load_value(param, value, self.real)


class TuckerFactorization(TensorFactorization):
    """Tucker factorization: core ``(R_1..R_N)`` and factors ``U_n: (d_n, R_n)``."""

    kind = "tucker"

    def __init__(self, shape, axis_names, rank, init_std: float, real: bool = False):
        super().__init__(shape, axis_names, real)
        _check_fraction_or_rank(rank)
        if isinstance(rank, (list, tuple)):
            if len(rank) != len(self.shape):
                raise ConfigError(f"a Tucker rank list needs {len(self.shape)} entries for shape {list(self.shape)}, got {list(rank)}")
            ranks = [int(r) for r in rank]
        elif isinstance(rank, float):
            ranks = [int(r) for r in validate_tucker_rank(self.shape, rank)]
        else:
            ranks = [min(int(rank), d) for d in self.shape]
        if any(r < 1 for r in ranks):
            raise ConfigError(f"Tucker ranks must be >= 1, got {ranks}")
        self._rank = tuple(ranks)
        # Var(W) = s_core² · Π_n R_n s_n²: factors of std 1/sqrt(R_n), core of the target std.
        self.core = weight_parameter(self._rank, init_std, real)
        self.factors = nn.ParameterList(weight_parameter((d, r), r**-0.5, real) for d, r in zip(self.shape, self._rank))

    @property
    def rank(self) -> tuple[int, ...]:
        return self._rank

    def operands(self) -> list[Operand]:
        rank_labels = tuple(("tucker_rank", n) for n in range(len(self.shape)))
        operands = [(self.value(self.core), rank_labels)]
        operands += [
            (self.value(f), (name, label)) for f, name, label in zip(self.factors, self.axis_names, rank_labels)
        ]
        return operands

    def load_decomposition(self, core: torch.Tensor, factors: Sequence[torch.Tensor]) -> None:
        load_value(self.core, core, self.real)
        for param, value in zip(self.factors, factors):
            load_value(param, value, self.real)


class TTFactorization(TensorFactorization):
    """Tensor-train factorization: cores ``G_n: (r_{n-1}, d_n, r_n)`` with ``r_0 = r_N = 1``."""

    kind = "tt"

    def __init__(self, shape, axis_names, rank, init_std: float, real: bool = False):
        super().__init__(shape, axis_names, real)
        _check_fraction_or_rank(rank)
        n = len(self.shape)
        if isinstance(rank, (list, tuple)):
            ranks = [int(r) for r in rank]
            if len(ranks) != n + 1 or ranks[0] != 1 or ranks[-1] != 1:
                raise ConfigError(f"a TT rank list needs {n + 1} entries starting and ending with 1, got {list(rank)}")
        elif isinstance(rank, float):
            ranks = [int(r) for r in validate_tt_rank(self.shape, rank)]
        else:
            ranks = [1] + [int(rank)] * (n - 1) + [1]
        if any(r < 1 for r in ranks):
            raise ConfigError(f"TT ranks must be >= 1, got {ranks}")
        self._rank = tuple(ranks)
        # Var(W) = Π_n s² · Π (internal ranks) for N cores of entry std s.
        std = (init_std**2 / math.prod(ranks[1:-1])) ** (1.0 / (2 * n))
        self.cores = nn.ParameterList(
            weight_parameter((ranks[k], d, ranks[k + 1]), std, real) for k, d in enumerate(self.shape)
        )

    @property
    def rank(self) -> tuple[int, ...]:
        return self._rank

    def operands(self) -> list[Operand]:
        n = len(self.shape)
        operands = []
        for k, (core, name) in enumerate(zip(self.cores, self.axis_names)):
            tensor = self.value(core)
            labels: tuple[Hashable, ...] = (("tt_rank", k), name, ("tt_rank", k + 1))
            if k == n - 1:  # boundary ranks are 1: drop them
                tensor, labels = tensor.squeeze(-1), labels[:2]
            if k == 0:
                tensor, labels = tensor.squeeze(0), labels[1:]
            operands.append((tensor, labels))
        return operands

    def load_decomposition(self, cores: Sequence[torch.Tensor]) -> None:
        for param, value in zip(self.cores, cores):
            load_value(param, value, self.real)


FACTORIZATIONS: dict[str, type[TensorFactorization]] = {
    "cp": CPFactorization,
    "tucker": TuckerFactorization,
    "tt": TTFactorization,
}


def decompose(kind: str, tensor: torch.Tensor, axis_names: Sequence[Hashable], rank) -> TensorFactorization:
    """Factorize a given complex tensor with tensorly (pytorch backend, set locally).

    CP uses ALS (``parafac``), Tucker HOOI from an SVD start, TT the TT-SVD. At full rank the
    Tucker and TT decompositions reproduce the tensor up to round-off.
    """
    cls = FACTORIZATIONS[kind]
    real = not tensor.is_complex()
    result = cls(tensor.shape, axis_names, rank, init_std=1.0, real=real).to(tensor.real.dtype)
    source = tensor.detach().to(torch.float64 if real else torch.complex128)
    with tensorly.backend_context("pytorch"):
        if kind == "cp":
            weights, factors = parafac(source, rank=result.rank, init="random", n_iter_max=500, tol=1e-12)
            result.load_decomposition(weights, factors)
        elif kind == "tucker":
            core, factors = tucker(source, rank=list(result.rank), init="svd", n_iter_max=100, tol=1e-12)
            result.load_decomposition(core, factors)
        else:
            result.load_decomposition(tensor_train(source, rank=list(result.rank)).factors)
    return result


class FactorizedSpectralWeight(SpectralWeight):
    """A spectral weight held by a :class:`TensorFactorization` (possibly shared by several layers).

    Args:
        factorization: the factorized tensor. Its axes are named ``"in"``, ``"out"``, ``("k", j)``
            for each non-shared coefficient axis ``j``, and optionally ``"layer"`` first.
        layer: the index along the ``"layer"`` axis this weight reads (joint factorizations),
            else ``None``.
        owns_factorization: register the factorization as a submodule of this weight. In a
            joint factorization exactly one layer owns it, so its parameters appear once in
            ``parameters()`` and ``state_dict()``; the other layers hold a plain reference.
        implementation: ``"auto"``, ``"factorized"`` or ``"reconstructed"`` (module docstring).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        factorization: TensorFactorization,
        layer: int | None = None,
        owns_factorization: bool = True,
        implementation: str = "auto",
        mode_axes: Sequence[str] | None = None,
    ):
        super().__init__(in_channels, out_channels, n_modes, mode_axes, factorization.real)
        if implementation not in IMPLEMENTATIONS:
            raise ConfigError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        expected = ((factorization.shape[0],) if layer is not None else ()) + self.full_shape
        if factorization.shape != expected or (layer is not None and factorization.axis_names[0] != "layer"):
            raise ConfigError(f"factorized tensor of shape {list(factorization.shape)} does not fit weight shape {list(self.full_shape)}")
        self.implementation = implementation
        self.layer = layer
        self._factorization_ref = (factorization,)
        if owns_factorization:
            self.factorization = factorization
        # Keys: (path, operand shapes); values: ContractionPlan, or the chosen path for "auto".
        self._plans: dict[tuple, ContractionPlan | str] = {}

    @property
    def tensor_factorization(self) -> TensorFactorization:
        """The (possibly shared) factorized tensor this weight reads."""
        return self._factorization_ref[0]

    @staticmethod
    def axis_names(n_modes: Sequence[int], mode_axes: Sequence[str], joint: bool) -> tuple[Hashable, ...]:
        """Axis names of the factorized tensor for a layer of this layout."""
        modes = tuple(("k", j) for j, kind in enumerate(mode_axes) if kind != SHARED)
        return (("layer",) if joint else ()) + ("in", "out") + modes

    def _operands(self, modes: Sequence[AxisModes] | None) -> list[Operand]:
        """Factors with the layer fixed and every mode factor sliced to the kept ``modes``."""
        operands = []
        for tensor, labels in self.tensor_factorization.operands():
            kept_labels = []
            for label in labels:
                dim = len(kept_labels)
                if label == "layer":
                    tensor = tensor.select(dim, self.layer)
                    continue
                if modes is not None and isinstance(label, tuple) and label[0] == "k":
                    j = label[1]
                    tensor = select_axis(tensor, dim, modes[j], self.n_modes[j], self.mode_axes[j])
                kept_labels.append(label)
            operands.append((tensor, tuple(kept_labels)))
        return operands

    def _plan(self, path: str, operands: list[Operand], x_shape: tuple[int, ...] | None) -> ContractionPlan:
        key = (path, x_shape, tuple(tuple(t.shape) for t, _ in operands))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(path, operands, x_shape)
            self._plans[key] = plan
        return plan

    def _make_plan(self, path: str, operands: list[Operand], x_shape: tuple[int, ...] | None) -> ContractionPlan:
        sizes: dict[Hashable, int] = {}
        for tensor, labels in operands:
            sizes.update(zip(labels, tensor.shape))
        labels = [lab for _, lab in operands]
        weight_axes = tuple(("k", j) for j, kind in enumerate(self.mode_axes) if kind != SHARED)
        if path == "reconstruct":
            return plan_contraction(labels, ("in", "out") + weight_axes, sizes)
        modes = tuple(("k", j) for j in range(len(self.n_modes)))
        sizes.update(zip(("batch", "in") + modes, x_shape))
        sizes["out"] = self.out_channels

        def never_dense(subset: frozenset[int], result: tuple) -> bool:
            return 0 in subset or not ("in" in result and "out" in result)

        return plan_contraction(
            [("batch", "in") + modes] + labels, ("batch", "out") + modes, sizes, allow_intermediate=never_dense
        )

    def choose_implementation(self, x_shape: tuple[int, ...], modes: Sequence[AxisModes]) -> str:
        """The path ``forward`` takes for input coefficients of shape ``x_shape``."""
        if self.implementation != "auto":
            return self.implementation
        operands = self._operands(modes)
        key = ("auto", x_shape, tuple(tuple(t.shape) for t, _ in operands))
        choice = self._plans.get(key)
        if choice is None:
            factorized = self._plan("factorize", operands, x_shape)
            rebuild = self._plan("reconstruct", operands, None)
            dense_elements = rebuild.written
            contraction_macs = math.prod(x_shape) * self.out_channels
            output_elements = x_shape[0] * self.out_channels * math.prod(x_shape[2:])
            cost_factorized = factorized.macs + MEMORY_COST_PER_ELEMENT * factorized.written
            cost_reconstructed = rebuild.macs + contraction_macs + MEMORY_COST_PER_ELEMENT * (dense_elements + output_elements)
            choice = "factorized" if cost_factorized < cost_reconstructed else "reconstructed"
            self._plans[key] = choice
        return choice

    def dense(self, modes: Sequence[AxisModes] | None = None) -> torch.Tensor:
        operands = self._operands(modes)
        return self._plan("reconstruct", operands, None)(*[t for t, _ in operands])

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        x_shape = tuple(x.shape)
        if self.choose_implementation(x_shape, modes) == "reconstructed":
            return contract_modes(x, self.dense(modes), self.mode_axes)
        operands = self._operands(modes)
        plan = self._plan("factorize", operands, x_shape)
        return plan(x, *[t for t, _ in operands])

    def stacked(self, x_shape: tuple[int, ...], modes: Sequence[AxisModes]) -> torch.Tensor | None:
        if self.choose_implementation(x_shape, modes) == "factorized":
            return None
        return super().stacked(x_shape, modes)

    def extra_repr(self) -> str:
        layer = f", layer={self.layer}" if self.layer is not None else ""
        return f"{self.tensor_factorization.kind}, implementation={self.implementation!r}{layer}"


class _PerLayerFactorizedWeight(FactorizedSpectralWeight):
    """A factorized weight owning its own factorization; subclasses fix the factorization kind."""

    kind: ClassVar[str]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        rank: int | float | Sequence[int] = 0.1,
        implementation: str = "auto",
        init_std: float | None = None,
        mode_axes: Sequence[str] | None = None,
        real: bool = False,
    ):
        modes, axes, shape = weight_layout(in_channels, out_channels, n_modes, mode_axes)
        std = default_init_std(in_channels, out_channels) if init_std is None else float(init_std)
        factorization = FACTORIZATIONS[self.kind](shape, self.axis_names(modes, axes, joint=False), rank, std, real)
        super().__init__(
            in_channels, out_channels, n_modes, factorization, implementation=implementation, mode_axes=mode_axes
        )

    @classmethod
    def from_dense(
        cls,
        dense: torch.Tensor,
        rank: int | float | Sequence[int],
        implementation: str = "auto",
        mode_axes: Sequence[str] | None = None,
    ) -> FactorizedSpectralWeight:
        """A weight whose factorization is tensorly's decomposition of ``dense: (Cin, Cout, *mode_shape)``.

        ``mode_axes`` must not contain shared axes (``None``: Fourier layout). The parameters
        take the real dtype of ``dense``.
        """
        c_in, c_out = dense.shape[:2]
        axes = check_mode_axes(mode_axes, dense.ndim - 2)
        if SHARED in axes:
            raise ConfigError("from_dense needs mode_axes without shared axes")
        n_modes = tuple(s // 2 if kind == SIGNED else s for s, kind in zip(dense.shape[2:], axes))
        factorization = decompose(cls.kind, dense, cls.axis_names(n_modes, axes, joint=False), rank)
        return FactorizedSpectralWeight(c_in, c_out, n_modes, factorization, implementation=implementation, mode_axes=axes)

    @classmethod
    def joint(
        cls,
        n_layers: int,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        rank: int | float | Sequence[int] = 0.05,
        implementation: str = "auto",
        init_std: float | None = None,
        mode_axes: Sequence[str] | None = None,
        real: bool = False,
    ) -> list[FactorizedSpectralWeight]:
        """Weights of ``n_layers`` layers as views of one factorized ``(n_layers, Cin, Cout, *mode_shape)`` tensor.

        Layer 0 owns the factorization (it appears once among the model's parameters).
        """
        if n_layers < 1:
            raise ConfigError(f"joint factorization needs n_layers >= 1, got {n_layers}")
        modes, axes, shape = weight_layout(in_channels, out_channels, n_modes, mode_axes)
        std = default_init_std(in_channels, out_channels) if init_std is None else float(init_std)
        names = cls.axis_names(modes, axes, joint=True)
        factorization = FACTORIZATIONS[cls.kind]((n_layers,) + shape, names, rank, std, real)
        return [
            FactorizedSpectralWeight(
                in_channels,
                out_channels,
                n_modes,
                factorization,
                layer=layer,
                owns_factorization=layer == 0,
                implementation=implementation,
                mode_axes=mode_axes,
            )
            for layer in range(n_layers)
        ]


@register_weight("cp")
class CPSpectralWeight(_PerLayerFactorizedWeight):
    """CP-factorized spectral weight. Options: ``rank`` (int, or float fraction), ``implementation``, ``init_std``."""

    kind = "cp"


@register_weight("tucker")
class TuckerSpectralWeight(_PerLayerFactorizedWeight):
    """Tucker-factorized spectral weight. Options: ``rank`` (int, list, or float fraction), ``implementation``, ``init_std``."""

    kind = "tucker"


@register_weight("tt")
class TTSpectralWeight(_PerLayerFactorizedWeight):
    """Tensor-train spectral weight. Options: ``rank`` (int, list ``[1, r1, .., 1]``, or float fraction), ``implementation``, ``init_std``."""

    kind = "tt"
