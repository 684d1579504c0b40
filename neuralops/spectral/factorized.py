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

**Rank.** One convention for all three:

* a ``float`` in ``(0, 1)`` is a *fraction of the dense parameter count*: tensorly's
  ``validate_*_rank`` picks ranks holding about that fraction of ``Π_n d_n`` complex entries,
  clipped to the largest ranks below (with tensorly's fraction raised until the clipped ranks
  hold about the requested fraction; at least rank 1 everywhere);
* ``1.0`` is *full rank*: the largest ranks the decomposition can use, with which it reproduces
  every tensor exactly (this may hold more parameters than the dense tensor);
* an ``int`` (the same rank for every mode / bond) or a list is an *explicit* rank; an entry
  above the largest rank is refused with a :class:`ConfigError` naming the bound.

The largest ranks, for ``N`` modes of sizes ``d_n``: CP ``Π_n d_n / max_n d_n`` (one term per
fiber along the longest mode, so every tensor has a CP decomposition of that rank); Tucker
``R_n ≤ d_n`` and ``R_n ≤ Π_{m≠n} R_m`` (the rank of the mode-``n`` unfolding of the core);
TT ``r_n ≤ r_{n-1} d_n`` and ``r_{n-1} ≤ d_n r_n``, i.e. at most
``min(d_1···d_n, d_{n+1}···d_N)`` (the rank of the ``n``-th unfolding; Oseledets 2011, TT-SVD).
Ranks are resolved before any parameter is allocated.

**Storage.** Every factor is a real ``nn.Parameter`` with a trailing ``(real, imag)`` axis, like
the dense weight. **Initialization**: entries are complex Gaussians whose scales are chosen so
the reconstructed weight's entries have the dense weight's standard deviation
(``sqrt(2/(Cin+Cout))`` unless ``init_std`` is given).

**Contraction paths** (``implementation``):

* ``"factorized"``: contract the kept coefficients ``x: (B, Cin, *K)`` with the factors directly
  (mode factors sliced to the kept modes by the same rule as ``select_modes``); no intermediate
  without the batch axis may hold both channel axes, so the dense weight is never formed.
* ``"reconstructed"``: rebuild the dense weight of the kept modes, then the dense contraction.
  The rebuild is ordered modes first, so the real stacked form ``(*K, 2, Cin, Cout)`` the
  Fourier GEMM chain reads is one rearrangement of it (fwd+bwd of the benchmark's Tucker
  weight, 32 channels, 16 × 9 modes, rank 0.1: 2.9 ms instead of 4.2 on one CPU thread). When
  a model runs a batch in slices (:mod:`neuralops.models.slicing`), the rebuilt weight is
  built once and shared by the slices (:meth:`FactorizedSpectralWeight.shared_by_slices`).
* ``"auto"`` (default): per input shape, the path with the lower estimated cost
  ``MACs + MEMORY_COST_PER_ELEMENT · (elements written)``, both taken from the contraction plans;
  for a batch in ``n`` slices, ``n`` factorized contractions against one rebuild and ``n``
  dense contractions. Measured on one CPU thread, the benchmark FNO's Tucker spectral layer
  (fwd+bwd, batch 16 at 128² in 8 slices of 2): 108 ms rebuilt once, 117 ms contracted
  through the factors per slice, 103 ms with a dense weight.

While ``torch.compile`` traces, the planner (not traceable) is replaced by one ``torch.einsum``
ordered by ``opt_einsum``: ``"factorized"`` contracts the coefficients with the factors in it,
``"auto"`` and ``"reconstructed"`` rebuild the weight with it and contract densely.

Contraction orders are found once per operand shapes by
:func:`neuralops.spectral.einsum_plan.plan_contraction` and cached on the weight; tensorly is
used only to validate ranks and to decompose a given dense tensor (``from_dense``), each time
inside a local ``tensorly.backend_context("pytorch")``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

import tensorly
import torch
from tensorly.cp_tensor import validate_cp_rank
from tensorly.decomposition import parafac, tensor_train, tucker
from tensorly.tt_tensor import validate_tt_rank
from tensorly.tucker_tensor import validate_tucker_rank
from torch import nn

from neuralops.errors import ConfigError
from neuralops.spectral.einsum_plan import ContractionPlan, einsum_in_one_call, plan_contraction
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

# This thread's open FactorizedSpectralWeight.shared_by_slices scopes, by id of the weight.
_SHARING = threading.local()

Operand = tuple[torch.Tensor, tuple[Hashable, ...]]


def load_value(param: nn.Parameter, value: torch.Tensor, real: bool) -> None:
    """Copy a tensor into a :func:`weight_parameter` (complex values as a trailing (re, im) axis)."""
    with torch.no_grad():
        stored = value.real if real else torch.view_as_real(value.to(torch.complex128).resolve_conj())
        param.copy_(stored.to(param.dtype))


def _check_fraction_or_rank(rank) -> None:
    entries = rank if isinstance(rank, (list, tuple)) else [rank]
    if isinstance(rank, float):
        if not 0.0 < rank <= 1.0:
            raise ConfigError(f"a float rank is a fraction of the dense parameter count and must lie in (0, 1] (1.0 = full rank), got {rank}")
    elif not entries or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in entries):
        raise ConfigError(f"rank must be an int >= 1, a list of ints >= 1 or a float fraction in (0, 1], got {rank!r}")


def cp_rank_bound(shape: Sequence[int]) -> int:
    """The largest useful CP rank of a tensor of ``shape``: ``Π d_n / max d_n``."""
    return math.prod(shape) // max(shape)


def tucker_rank_bound(shape: Sequence[int], ranks: Sequence[int] | None = None) -> list[int]:
    """``ranks`` (default: the mode sizes) clipped to ``R_n ≤ d_n`` and ``R_n ≤ Π_{m≠n} R_m``."""
    bound = [min(r, d) for r, d in zip(shape if ranks is None else ranks, shape)]
    while True:  # clipping one rank lowers the others' products: repeat until stable
        clipped = [min(r, math.prod(bound[:n] + bound[n + 1 :])) for n, r in enumerate(bound)]
        if clipped == bound:
            return bound
        bound = clipped


def tt_rank_bound(shape: Sequence[int], ranks: Sequence[int] | None = None) -> list[int]:
    """TT ``ranks`` ``(1, r_1, .., r_{N-1}, 1)`` (default: unbounded) clipped to
    ``r_n ≤ r_{n-1} d_n`` (left to right) and ``r_{n-1} ≤ d_n r_n`` (right to left).

    One pass each way suffices: the right-to-left pass lowers ``r_{n-2}`` to no less than
    ``r_{n-1} / d_{n-1}``, so the left-to-right bounds still hold.
    """
    n = len(shape)
    bound = [1] + [math.prod(shape)] * (n - 1) + [1] if ranks is None else list(ranks)
    for k in range(1, n):
        bound[k] = min(bound[k], bound[k - 1] * shape[k - 1])
    for k in range(n - 1, 0, -1):
        bound[k] = min(bound[k], shape[k] * bound[k + 1])
    return bound


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

    def resolve_rank(self, rank) -> list[int]:
        """The ranks to allocate for a user ``rank`` (module docstring, "Rank").

        Raises :class:`ConfigError` for a rank of the wrong type or an explicit rank above
        what the decomposition can use.
        """
        _check_fraction_or_rank(rank)
        if isinstance(rank, float):
            return self.rank_bound(None) if rank == 1.0 else self.fraction_ranks(rank)
        requested = self.explicit_ranks(rank)
        allowed = self.rank_bound(requested)
        if allowed != requested:
            raise ConfigError(
                f"{self.kind} rank {rank!r} is more than a {self.kind} decomposition of a tensor of shape "
                f"{list(self.shape)} can use: at most {allowed} with these ranks, full rank is "
                f"{self.rank_bound(None)}; give smaller ranks, or rank=1.0 for full rank"
            )
        return requested

    def fraction_ranks(self, fraction: float) -> list[int]:
        """Ranks within the bounds holding about ``fraction`` of the dense parameter count.

        These are tensorly's ranks for ``fraction``, clipped; when clipping removes parameters
        (tensorly's ranks ignore the bounds), tensorly's fraction is raised by bisection until
        the clipped ranks hold about ``fraction`` again.
        """
        target = fraction * math.prod(self.shape)
        full = self.rank_bound(None)

        def clipped(f: float) -> list[int]:
            return self.rank_bound([max(r, 1) for r in self.tensorly_ranks(f)])

        low = high = fraction
        while self.parameter_count(clipped(high)) < target and clipped(high) != full:
            low, high = high, 2 * high
        for _ in range(30 if low < high else 0):
            mid = (low + high) / 2
            low, high = (mid, high) if self.parameter_count(clipped(mid)) < target else (low, mid)
        return min(clipped(low), clipped(high), key=lambda ranks: abs(self.parameter_count(ranks) - target))

    def rank_bound(self, ranks: list[int] | None) -> list[int]:
        """``ranks`` clipped to the largest the decomposition can use (``None``: full rank)."""
        raise NotImplementedError

    def tensorly_ranks(self, fraction: float) -> list[int]:
        """tensorly's ``validate_*_rank`` ranks for ``fraction`` of the dense parameter count (may exceed the bounds)."""
        raise NotImplementedError

    def parameter_count(self, ranks: Sequence[int]) -> int:
        """Complex entries held by the factors at ``ranks`` (module docstring formulas)."""
        raise NotImplementedError

    def explicit_ranks(self, rank: int | Sequence[int]) -> list[int]:
        """The rank list an int or list ``rank`` stands for; :class:`ConfigError` for a list of the wrong length."""
        raise NotImplementedError

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
        (self._rank,) = self.resolve_rank(rank)
        # Var(W) = R · Π_n s² for N factors of entry std s.
        std = (init_std**2 / self._rank) ** (1.0 / (2 * len(self.shape)))
        self.factors = nn.ParameterList(weight_parameter((d, self._rank), std, real) for d in self.shape)

    @property
    def rank(self) -> int:
        return self._rank

    def rank_bound(self, ranks: list[int] | None) -> list[int]:
        full = cp_rank_bound(self.shape)
        return [full if ranks is None else min(ranks[0], full)]

    def tensorly_ranks(self, fraction: float) -> list[int]:
        return [int(validate_cp_rank(self.shape, fraction))]

    def parameter_count(self, ranks: Sequence[int]) -> int:
        return ranks[0] * sum(self.shape)

    def explicit_ranks(self, rank: int | Sequence[int]) -> list[int]:
        if isinstance(rank, (list, tuple)):
            raise ConfigError(f"a CP rank is a single int or a float fraction, got {rank!r}")
        return [rank]

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
        self._rank = tuple(self.resolve_rank(rank))
        # Var(W) = s_core² · Π_n R_n s_n²: factors of std 1/sqrt(R_n), core of the target std.
        self.core = weight_parameter(self._rank, init_std, real)
        self.factors = nn.ParameterList(weight_parameter((d, r), r**-0.5, real) for d, r in zip(self.shape, self._rank))

    @property
    def rank(self) -> tuple[int, ...]:
        return self._rank

    def rank_bound(self, ranks: list[int] | None) -> list[int]:
        return tucker_rank_bound(self.shape, ranks)

    def tensorly_ranks(self, fraction: float) -> list[int]:
        return [int(r) for r in validate_tucker_rank(self.shape, fraction)]

    def parameter_count(self, ranks: Sequence[int]) -> int:
        return math.prod(ranks) + sum(d * r for d, r in zip(self.shape, ranks))

    def explicit_ranks(self, rank: int | Sequence[int]) -> list[int]:
        if isinstance(rank, int):
            return [rank] * len(self.shape)
        if len(rank) != len(self.shape):
            raise ConfigError(f"a Tucker rank list needs {len(self.shape)} entries for shape {list(self.shape)}, got {list(rank)}")
        return list(rank)

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
        ranks = self.resolve_rank(rank)
        self._rank = tuple(ranks)
        # Var(W) = Π_n s² · Π (internal ranks) for N cores of entry std s.
        std = (init_std**2 / math.prod(ranks[1:-1])) ** (1.0 / (2 * len(self.shape)))
        self.cores = nn.ParameterList(
            weight_parameter((ranks[k], d, ranks[k + 1]), std, real) for k, d in enumerate(self.shape)
        )

    @property
    def rank(self) -> tuple[int, ...]:
        return self._rank

    def rank_bound(self, ranks: list[int] | None) -> list[int]:
        return tt_rank_bound(self.shape, ranks)

    def tensorly_ranks(self, fraction: float) -> list[int]:
        return [int(r) for r in validate_tt_rank(self.shape, fraction)]

    def parameter_count(self, ranks: Sequence[int]) -> int:
        return sum(ranks[k] * d * ranks[k + 1] for k, d in enumerate(self.shape))

    def explicit_ranks(self, rank: int | Sequence[int]) -> list[int]:
        n = len(self.shape)
        if isinstance(rank, int):
            return [1] + [rank] * (n - 1) + [1]
        if len(rank) != n + 1 or rank[0] != 1 or rank[-1] != 1:
            raise ConfigError(f"a TT rank list needs {n + 1} entries starting and ending with 1, got {list(rank)}")
        return list(rank)

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


def fiber_cp(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The exact CP factors of ``tensor`` at rank ``Π d_n / max d_n``: one term per fiber along the
    longest mode ``m`` (``U_m``'s columns are the fibers; every other ``U_n`` holds unit vectors
    picking the fiber's index on mode ``n``). Returns ``[U_n: (d_n, R)]``."""
    longest = max(range(tensor.ndim), key=lambda n: tensor.shape[n])
    fibers = tensor.movedim(longest, 0).reshape(tensor.shape[longest], -1)
    others = [n for n in range(tensor.ndim) if n != longest]
    index = torch.unravel_index(torch.arange(fibers.shape[1]), [tensor.shape[n] for n in others])
    factors = {longest: fibers}
    for n, idx in zip(others, index):
        factors[n] = torch.nn.functional.one_hot(idx, tensor.shape[n]).T.to(tensor.dtype)
    return [factors[n] for n in range(tensor.ndim)]


def decompose(kind: str, tensor: torch.Tensor, axis_names: Sequence[Hashable], rank) -> TensorFactorization:
    """Factorize a given complex tensor with tensorly (pytorch backend, set locally).

    CP uses ALS (``parafac``), Tucker HOOI from an SVD start, TT the TT-SVD. At full rank
    (module docstring, "Rank") all three reproduce the tensor up to round-off: CP then takes the
    exact decomposition :func:`fiber_cp` instead of ALS.
    """
    cls = FACTORIZATIONS[kind]
    real = not tensor.is_complex()
    result = cls(tensor.shape, axis_names, rank, init_std=1.0, real=real).to(tensor.real.dtype)
    source = tensor.detach().to(torch.float64 if real else torch.complex128)
    with tensorly.backend_context("pytorch"):
        if kind == "cp" and result.rank == cp_rank_bound(result.shape):
            result.load_decomposition(torch.ones(result.rank, dtype=source.dtype), fiber_cp(source))
        elif kind == "cp":
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
    def weight_mode_labels(mode_axes: Sequence[str]) -> tuple[Hashable, ...]:
        """Labels ``("k", j)`` of the weight's mode axes (shared axes have none)."""
        return tuple(("k", j) for j, kind in enumerate(mode_axes) if kind != SHARED)

    @property
    def coefficient_mode_labels(self) -> tuple[Hashable, ...]:
        """Labels ``("k", j)`` of every mode axis of the coefficients ``(B, Cin, *K)``."""
        return tuple(("k", j) for j in range(len(self.n_modes)))

    @staticmethod
    def axis_names(n_modes: Sequence[int], mode_axes: Sequence[str], joint: bool) -> tuple[Hashable, ...]:
        """Axis names of the factorized tensor for a layer of this layout."""
        return (("layer",) if joint else ()) + ("in", "out") + FactorizedSpectralWeight.weight_mode_labels(mode_axes)

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
        if path == "reconstruct":
            # Modes first: the stacked form (*K, 2, Cin, Cout) is then a cheap rearrangement.
            return plan_contraction(labels, self.weight_mode_labels(self.mode_axes) + ("in", "out"), sizes)
        modes = self.coefficient_mode_labels
        sizes.update(zip(("batch", "in") + modes, x_shape))
        sizes["out"] = self.out_channels

        def never_dense(subset: frozenset[int], result: tuple) -> bool:
            return 0 in subset or not ("in" in result and "out" in result)

        return plan_contraction(
            [("batch", "in") + modes] + labels, ("batch", "out") + modes, sizes, allow_intermediate=never_dense
        )

    def choose_implementation(self, x_shape: tuple[int, ...], modes: Sequence[AxisModes]) -> str:
        """The path ``forward`` takes for input coefficients of shape ``x_shape``. Inside
        :meth:`shared_by_slices` the cost of rebuilding the weight is counted once for all the
        slices and the contractions once per slice."""
        if self.implementation != "auto":
            return self.implementation
        operands = self._operands(modes)
        slices = self._sharing()[0]
        key = ("auto", x_shape, slices, tuple(tuple(t.shape) for t, _ in operands))
        choice = self._plans.get(key)
        if choice is None:
            factorized = self._plan("factorize", operands, x_shape)
            rebuild = self._plan("reconstruct", operands, None)
            contraction_macs = math.prod(x_shape) * self.out_channels
            output_elements = x_shape[0] * self.out_channels * math.prod(x_shape[2:])
            cost_factorized = slices * (factorized.macs + MEMORY_COST_PER_ELEMENT * factorized.written)
            cost_rebuild = rebuild.macs + MEMORY_COST_PER_ELEMENT * rebuild.written
            cost_reconstructed = cost_rebuild + slices * (contraction_macs + MEMORY_COST_PER_ELEMENT * output_elements)
            choice = "factorized" if cost_factorized < cost_reconstructed else "reconstructed"
            self._plans[key] = choice
        return choice

    @contextmanager
    def shared_by_slices(self, n_slices: int) -> Iterator[None]:
        # Per thread (another thread may run the same model, e.g. without gradients), and
        # restored on exit (scopes nest).
        scopes = _SHARING.__dict__.setdefault("scopes", {})
        previous = scopes.get(id(self))
        scopes[id(self)] = (max(int(n_slices), 1), {})
        try:
            yield
        finally:
            if previous is None:
                del scopes[id(self)]
            else:
                scopes[id(self)] = previous

    def _sharing(self) -> tuple[int, dict | None]:
        """This thread's ``(slice count, weights built so far per form and mode set)`` inside
        :meth:`shared_by_slices`, else ``(1, None)``."""
        return _SHARING.__dict__.get("scopes", {}).get(id(self), (1, None))

    def _built_once(self, form: str, modes: Sequence[AxisModes] | None, build) -> torch.Tensor:
        """``build()``, or inside :meth:`shared_by_slices` the tensor it gave for this ``form``
        and mode set."""
        built = self._sharing()[1]
        key = (form, None if modes is None else tuple(modes))
        if built is not None and key in built:
            return built[key]
        value = build()
        if built is not None:
            built[key] = value
        return value

    def _modes_first(self, modes: Sequence[AxisModes] | None) -> torch.Tensor:
        """The reconstructed weight on ``modes`` as ``(*K, Cin, Cout)``; while ``torch.compile``
        traces, as one ``torch.einsum`` (:func:`~neuralops.spectral.einsum_plan.einsum_in_one_call`)."""
        if torch.compiler.is_compiling():
            return einsum_in_one_call(self._operands(modes), self.weight_mode_labels(self.mode_axes) + ("in", "out"))

        def build() -> torch.Tensor:
            operands = self._operands(modes)
            return self._plan("reconstruct", operands, None)(*[t for t, _ in operands])

        return self._built_once("modes_first", modes, build)

    def dense(self, modes: Sequence[AxisModes] | None = None) -> torch.Tensor:
        return self._modes_first(modes).movedim((-2, -1), (0, 1))

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        x_shape = tuple(x.shape)
        if torch.compiler.is_compiling():  # no planner: "factorized" as one einsum, else rebuilt
            if self.implementation != "factorized":
                return contract_modes(x, self.dense(modes), self.mode_axes)
            axes = self.coefficient_mode_labels
            return einsum_in_one_call([(x, ("batch", "in") + axes)] + self._operands(modes), ("batch", "out") + axes)
        if self.choose_implementation(x_shape, modes) == "reconstructed":
            return contract_modes(x, self.dense(modes), self.mode_axes)
        operands = self._operands(modes)
        plan = self._plan("factorize", operands, x_shape)
        return plan(x, *[t for t, _ in operands])

    def stacked(self, x_shape: tuple[int, ...], modes: Sequence[AxisModes]) -> torch.Tensor | None:
        if not self.has_stacked_form or self.choose_implementation(x_shape, modes) == "factorized":
            return None
        # (*K, Cin, Cout, 2) -> (*K, 2, Cin, Cout), contiguous as the contraction reads it; the
        # gradient goes back by one interleaving copy
        return self._built_once(
            "stacked", modes, lambda: torch.view_as_real(self._modes_first(modes)).movedim(-1, -3).contiguous()
        )

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
