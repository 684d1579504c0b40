"""Weight parameterizations of a spectral convolution: the seam for factorized weights.

A :class:`SpectralWeight` owns the parameters of one spectral convolution and applies them
to the kept block of coefficients. ``SpectralConv`` only calls ``weight(x_modes, modes)``,
so dense, CP, Tucker or tensor-train weights slot in without touching it.

Full weight shape (complex): ``(Cin, Cout, *mode_shape)``. With the default (Fourier) layout
``mode_shape = (2·m_1, ..., 2·m_{d-1}, m_d)``, each non-last mode axis ordered ``[0..m-1, -m..-1]``;
other transforms use other per-axis layouts (``mode_axes``, see :mod:`neuralops.spectral.modes`).
Axes of kind ``"shared"`` are absent from the weight, which is then broadcast along them.

Registered factorizations (:data:`WEIGHTS`): ``"dense"`` here; ``"cp"``, ``"tucker"`` and ``"tt"``
in :mod:`neuralops.spectral.factorized`. ``build_layer_weights`` also builds *joint*
factorizations (one factorized tensor shared by all layers).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from neuralops.errors import ConfigError
from neuralops.spectral.contract import contract_dense, contract_stacked, stack_complex_weight
from neuralops.spectral.modes import SHARED, SIGNED, AxisModes, check_mode_axes, is_full, weight_mode_shape
from neuralops.spectral.precision import half_to_float32


def select_axis(tensor: torch.Tensor, dim: int, sel: AxisModes, m: int, kind: str) -> torch.Tensor:
    """Slice one full mode axis ``dim`` (``m`` modes of kind ``kind``) down to the kept ``sel``.

    Signed axes hold ``[0..m-1, -m..-1]`` and keep the first ``n_pos`` and the last ``n_neg``
    entries; non-negative axes keep the first ``n_pos``.
    """
    if kind == SIGNED:
        if sel.n_pos == m and sel.n_neg == m:
            return tensor
        parts = [tensor.narrow(dim, 0, sel.n_pos)]
        if sel.n_neg:
            parts.append(tensor.narrow(dim, 2 * m - sel.n_neg, sel.n_neg))
        return torch.cat(parts, dim=dim) if len(parts) > 1 else parts[0]
    return tensor if sel.n_pos == m else tensor.narrow(dim, 0, sel.n_pos)


def select_modes(
    tensor: torch.Tensor,
    modes: Sequence[AxisModes],
    n_modes: Sequence[int],
    first_mode_dim: int,
    mode_axes: Sequence[str] | None = None,
) -> torch.Tensor:
    """Slice a tensor whose dims ``first_mode_dim...`` are full mode axes down to ``modes``.

    Shared axes (absent from the tensor) are skipped.
    """
    axes = check_mode_axes(mode_axes, len(n_modes))
    if is_full(modes, n_modes, axes):
        return tensor
    dim = first_mode_dim
    for sel, m, kind in zip(modes, n_modes, axes):
        if kind == SHARED:
            continue
        tensor = select_axis(tensor, dim, sel, m, kind)
        dim += 1
    return tensor


def embed_modes(
    block: torch.Tensor,
    modes: Sequence[AxisModes],
    n_modes: Sequence[int],
    first_mode_dim: int,
    mode_axes: Sequence[str] | None = None,
) -> torch.Tensor:
    """Inverse of :func:`select_modes`: place kept coefficients into the full mode layout, zeros elsewhere.

    ``block`` has the kept counts on dims ``first_mode_dim...``; the result has the full sizes
    (``2m`` on signed axes, ``m`` on non-negative ones). Shared axes are not allowed here.
    """
    axes = check_mode_axes(mode_axes, len(n_modes))
    if SHARED in axes:
        raise ConfigError("embed_modes needs a layout without shared axes")
    for axis, (sel, m, kind) in enumerate(zip(modes, n_modes, axes)):
        dim = first_mode_dim + axis
        full = 2 * m if kind == SIGNED else m
        if sel.count == full:
            continue
        gap_shape = list(block.shape)
        gap_shape[dim] = full - sel.count
        gap = block.new_zeros(gap_shape)
        parts = [block.narrow(dim, 0, sel.n_pos), gap]
        if sel.n_neg:
            parts.append(block.narrow(dim, sel.n_pos, sel.n_neg))
        block = torch.cat(parts, dim=dim)
    return block


def contract_modes(x: torch.Tensor, weight: torch.Tensor, mode_axes: Sequence[str], contract=contract_dense) -> torch.Tensor:
    """``y[b, o, k] = Σ_i x[b, i, k] · w[i, o, k']`` where ``k'`` drops the shared axes of ``k``.

    ``x: (B, Cin, *K)``, ``weight: (Cin, Cout, *K_weight)`` -> ``(B, Cout, *K)``. Shared axes are
    folded into the batch so ``contract`` (a dense contraction) sees matching mode shapes.
    """
    shared = [2 + j for j, kind in enumerate(mode_axes) if kind == SHARED]
    if not shared:
        return contract(x, weight)
    batch_dims = [0] + shared
    kept = [d for d in range(1, x.ndim) if d not in shared]
    moved = x.permute(batch_dims + kept)
    folded_shape = moved.shape
    y = contract(moved.reshape(-1, *folded_shape[len(batch_dims):]), weight)
    y = y.reshape(*folded_shape[: len(batch_dims)], *y.shape[1:])
    return y.permute([batch_dims.index(d) if d in batch_dims else len(batch_dims) + kept.index(d) for d in range(x.ndim)])


def default_init_std(in_channels: int, out_channels: int) -> float:
    """Standard deviation of the complex entries of a freshly initialized weight: ``sqrt(2/(Cin+Cout))``."""
    return (2.0 / (in_channels + out_channels)) ** 0.5


def weight_parameter(shape: Sequence[int], std: float, real: bool = False) -> nn.Parameter:
    """A Gaussian parameter whose (complex or real) entries have ``E|w|² = std²``.

    Complex values are stored as a real ``(*shape, 2)`` tensor (real, imag), each part with
    standard deviation ``std/sqrt(2)``; this keeps optimizers, weight decay, DDP and
    safetensors on their real-tensor paths.
    """
    if real:
        return nn.Parameter(torch.randn(*shape) * std)
    return nn.Parameter(torch.randn(*shape, 2) * (std / 2**0.5))


def parameter_value(param: torch.Tensor, real: bool = False) -> torch.Tensor:
    """The value a :func:`weight_parameter` stands for (a complex view unless ``real``), in
    float32 when it is stored in half precision (a model converted with ``.half()`` or
    ``.to(torch.bfloat16)``; :mod:`neuralops.spectral.precision`): gradients flow back to the
    half parameter."""
    param = half_to_float32(param)
    return param if real else torch.view_as_complex(param)


def weight_layout(
    in_channels: int, out_channels: int, n_modes: Sequence[int], mode_axes: Sequence[str] | None = None
) -> tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...]]:
    """``(n_modes, mode_axes, full weight shape)`` of a weight, validated."""
    if in_channels < 1 or out_channels < 1:
        raise ConfigError(f"spectral weight channels must be positive, got in={in_channels}, out={out_channels}")
    modes = tuple(int(m) for m in n_modes)
    axes = check_mode_axes(mode_axes, len(modes))
    return modes, axes, (int(in_channels), int(out_channels)) + weight_mode_shape(modes, axes)


class SpectralWeight(nn.Module):
    """Base class: owns the parameters, applies them to kept modes.

    Weights are complex unless ``real`` (for transforms with real coefficients, e.g. the DCT).

    Subclasses implement :meth:`dense` (the full complex weight, for the reconstructed path
    and for tests) and may override :meth:`forward` with a cheaper contraction.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        mode_axes: Sequence[str] | None = None,
        real: bool = False,
    ):
        super().__init__()
        self.n_modes, self.mode_axes, self.full_shape = weight_layout(in_channels, out_channels, n_modes, mode_axes)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.real = bool(real)


    def dense(self, modes: Sequence[AxisModes] | None = None) -> torch.Tensor:
        """The weight ``(Cin, Cout, *K_weight)`` (complex, or real if ``real``) restricted to ``modes`` (all when None).

        ``K_weight`` are the kept counts of the non-shared axes.
        """
        raise NotImplementedError

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        """``x: (B, Cin, *K)`` kept coefficients (complex, or real if ``real``) -> ``(B, Cout, *K)``."""
        return contract_modes(x, self.dense(modes), self.mode_axes)

    @property
    def has_stacked_form(self) -> bool:
        """Whether the weight can be written as :meth:`stacked`'s real ``(*K, 2, Cin, Cout)``
        tensor: complex, with no shared (broadcast) mode axis."""
        return not self.real and SHARED not in self.mode_axes

    def stacked(self, x_shape: tuple[int, ...], modes: Sequence[AxisModes]) -> torch.Tensor | None:
        """The weight on ``modes`` as a real modes-first ``(*K, 2, Cin, Cout)`` tensor (``[Re W; Im W]``
        per mode) for input coefficients of shape ``x_shape``, or None when this weight has no
        such form (:attr:`has_stacked_form`) or contracts more cheaply without forming it."""
        if not self.has_stacked_form:
            return None
        return stack_complex_weight(self.dense(modes))

    @contextmanager
    def shared_by_slices(self, n_slices: int) -> Iterator[None]:
        """Context of one batch run in ``n_slices`` slices (:mod:`neuralops.models.slicing`): a
        weight whose dense form costs work to build (a factorized one) builds it at most once
        per kept-mode set and shares it with every slice; autograd sums the slices' gradients
        through the one copy. A dense weight is a view already, so here nothing changes."""
        yield


class DenseSpectralWeight(SpectralWeight):
    """A dense weight stored modes-first as real values.

    Complex weights are stored as ``(*K_weight, 2, Cin, Cout)`` = ``[Re W; Im W]`` per mode —
    the layout of :func:`~neuralops.spectral.contract.contract_stacked`, so the Fourier
    contraction is one real batched matmul with no per-call copy of the weight (and its
    gradient arrives in the same layout). Real weights (``real=True``) are ``(*K_weight, Cin,
    Cout)``. Real storage keeps optimizers, weight decay, gradient clipping, DDP and
    safetensors on their well-trodden real-tensor paths. :meth:`dense` returns the usual
    ``(Cin, Cout, *K)`` view of either.

    Args:
        init_std: standard deviation of the complex entries; ``None`` uses ``sqrt(2/(Cin+Cout))``.
        mode_axes: per-axis layout (``None``: Fourier), see :mod:`neuralops.spectral.modes`.
        real: real weight (set by ``SpectralConv`` for real-coefficient transforms).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        init_std: float | None = None,
        mode_axes: Sequence[str] | None = None,
        real: bool = False,
    ):
        super().__init__(in_channels, out_channels, n_modes, mode_axes, real)
        std = default_init_std(in_channels, out_channels) if init_std is None else float(init_std)
        mode_shape = self.full_shape[2:]
        channels = (self.in_channels, self.out_channels)
        if self.real:
            self.weight = nn.Parameter(torch.randn(*mode_shape, *channels) * std)
        else:
            # Real and imaginary parts each get std/sqrt(2), so E|w|^2 = std^2.
            self.weight = nn.Parameter(torch.randn(*mode_shape, 2, *channels) * (std / 2**0.5))

    def _stored(self, modes: Sequence[AxisModes] | None) -> torch.Tensor:
        weight = half_to_float32(self.weight)
        if modes is None:
            return weight
        return select_modes(weight, modes, self.n_modes, first_mode_dim=0, mode_axes=self.mode_axes)

    def dense(self, modes: Sequence[AxisModes] | None = None) -> torch.Tensor:
        stored = self._stored(modes)
        if not self.real:
            stored = torch.complex(stored.select(-3, 0), stored.select(-3, 1))
        return stored.movedim((-2, -1), (0, 1))

    def forward(self, x: torch.Tensor, modes: Sequence[AxisModes]) -> torch.Tensor:
        if not self.has_stacked_form:
            return super().forward(x, modes)
        return contract_stacked(x, self._stored(modes))

    def stacked(self, x_shape: tuple[int, ...], modes: Sequence[AxisModes]) -> torch.Tensor | None:
        return self._stored(modes) if self.has_stacked_form else None


WEIGHTS: dict[str, type[SpectralWeight]] = {"dense": DenseSpectralWeight}


def register_weight(name: str):
    """Class decorator adding a :class:`SpectralWeight` subclass to :data:`WEIGHTS` as ``name``."""

    def register(cls: type[SpectralWeight]) -> type[SpectralWeight]:
        key = name.lower()
        if key in WEIGHTS and WEIGHTS[key] is not cls:
            raise ConfigError(f"spectral weight {key!r} is already registered by {WEIGHTS[key].__name__}")
        WEIGHTS[key] = cls
        return cls

    return register


def weight_class(factorization: str) -> type[SpectralWeight]:
    """The weight class registered as ``factorization`` (case-insensitive)."""
    key = str(factorization).lower()
    if key not in WEIGHTS:
        raise ConfigError(f"unknown spectral weight factorization {factorization!r}; available: {', '.join(sorted(WEIGHTS))}")
    return WEIGHTS[key]


def check_options(label: str, function, options: dict, fixed: Sequence[str]) -> None:
    """Raise :class:`ConfigError` naming every key of ``options`` that ``function`` does not accept.

    ``fixed`` are parameters the caller fills itself (they may not come from a config).
    """
    params = [p for p in inspect.signature(function).parameters if p != "self"]
    accepted = [p for p in params if p not in fixed]
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise ConfigError(f"{label}: unknown option(s) {', '.join(map(repr, unknown))}; valid options: {', '.join(accepted)}")


_FIXED_WEIGHT_ARGS = ("in_channels", "out_channels", "n_modes")


def build_spectral_weight(
    in_channels: int, out_channels: int, n_modes: Sequence[int], factorization: str = "dense", **options
) -> SpectralWeight:
    """Build the weight registered as ``factorization`` with its own ``options``.

    Unknown options raise :class:`ConfigError` naming them (they are never silently dropped).
    """
    cls = weight_class(factorization)
    check_options(f"spectral weight {factorization!r}", cls.__init__, options, _FIXED_WEIGHT_ARGS)
    return cls(in_channels, out_channels, n_modes, **options)


def build_layer_weights(
    n_layers: int,
    in_channels: int,
    out_channels: int,
    n_modes: Sequence[int],
    spec: dict | None = None,
    mode_axes: Sequence[str] | None = None,
    real: bool = False,
) -> list[SpectralWeight]:
    """The spectral weights of ``n_layers`` layers of a model, from a plain spec such as
    ``{"factorization": "dense"}`` or ``{"factorization": "tucker", "rank": 0.05, "joint": True}``.

    This is the one place models get their weights from. With ``"joint": True`` (factorized
    weights only) all layers are views of **one** factorized tensor of shape
    ``(n_layers, Cin, Cout, *mode_shape)`` whose first mode indexes the layer; ``rank`` then
    refers to that joint tensor (a float is a fraction of ``n_layers`` dense weights).
    ``mode_axes`` is the coefficient layout of the model's transform (``None``: Fourier) and
    ``real`` whether its coefficients are real (DCT); both come from the model, not the spec.
    """
    spec = dict(spec or {})
    factorization = spec.pop("factorization", "dense")
    joint = spec.pop("joint", False)
    if not isinstance(joint, bool):
        raise ConfigError(f"spectral weight option 'joint' must be true or false, got {joint!r}")
    for fixed in ("mode_axes", "real"):
        if fixed in spec:
            raise ConfigError(f"spectral weight option {fixed!r} is set by the model's transform, not by the config")
    if joint:
        cls = weight_class(factorization)
        joint_builder = getattr(cls, "joint", None)
        if joint_builder is None:
            raise ConfigError(f"joint factorization needs a factorized weight (cp, tucker, tt), got {factorization!r}")
        check_options(f"joint spectral weight {factorization!r}", joint_builder, spec, ("n_layers",) + _FIXED_WEIGHT_ARGS)
        return joint_builder(n_layers, in_channels, out_channels, n_modes, mode_axes=mode_axes, real=real, **spec)
    spec.update(mode_axes=mode_axes, real=real)
    return [build_spectral_weight(in_channels, out_channels, n_modes, factorization, **spec) for _ in range(n_layers)]
