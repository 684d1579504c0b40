"""``SpectralConv``: transform -> keep modes -> contract -> inverse, for any dimension and grid."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from neuralops.errors import ConfigError, InputShapeError
from neuralops.spectral.contract import stack_complex_weight
from neuralops.spectral.fourier_gemm import fourier_gemm_conv
from neuralops.spectral.modes import SHARED, fourier_mode_axes, kept_modes, normalize_n_modes
from neuralops.spectral.precision import (
    HALF_DTYPES,
    contract_dense_low_precision,
    contraction_dtype,
    half_to_float32,
    transform_precision,
)
from neuralops.spectral.transforms import FourierTransform, build_transform
from neuralops.spectral.weights import SpectralWeight, build_spectral_weight, contract_modes


def transform_layout(transform, n_dims: int) -> tuple[tuple[str, ...], bool]:
    """``(mode_axes, real)`` of a transform's coefficients.

    A transform states them with ``mode_axes(n_dims)`` and ``real_coefficients``; one that
    states neither (the FFT) has the Fourier layout and complex coefficients.
    """
    layout = getattr(transform, "mode_axes", fourier_mode_axes)
    return tuple(layout(n_dims)), bool(getattr(transform, "real_coefficients", False))


def transform_kept_modes(transform):
    """The transform's mode-selection rule ``(n_modes, grid_in, grid_out) -> modes``; the FFT's by default."""
    return getattr(transform, "kept_modes", kept_modes)


class SpectralConv(nn.Module):
    """Spectral convolution on 1-D, 2-D or 3-D grids (dimension = ``len(n_modes)``).

    ``y = T⁻¹( W · T(x) restricted to the kept modes ) + b``, where ``T`` is the transform
    (real FFT by default) and ``W`` a :class:`~neuralops.spectral.weights.SpectralWeight`.
    Which frequencies ``n_modes`` keeps is documented in :mod:`neuralops.spectral.modes`
    (FFT), :mod:`neuralops.spectral.dct` and :mod:`neuralops.spectral.sphere`.

    Args:
        in_channels, out_channels: channel counts.
        n_modes: kept modes per axis (non-negative count), e.g. ``[12, 12]``.
        weight: a :class:`SpectralWeight` instance, or the name of a registered factorization
            (built with its default options and the transform's coefficient layout).
        transform: name of the transform: ``"fft"``, ``"dct"`` or ``"sht"``.
        bias: add a learned per-channel constant after the inverse transform.

    Shapes: ``forward(x: (B, Cin, *grid), output_shape=None, output_offset=None) -> (B, Cout, *grid)``
    or ``(B, Cout, *output_shape)``. Any grid works: a grid finer than the modes keeps them all,
    a coarser one keeps those it represents. ``output_offset`` (Fourier transform only) shifts
    the output points by a fraction of the output spacing per axis, e.g. to the cell centres of
    another grid (:class:`~neuralops.spectral.transforms.FourierTransform.inverse`).

    Precision: see :mod:`neuralops.spectral.precision` (transforms always in float32; the
    contraction in the autocast dtype on CUDA).

    Execution: a Fourier layer whose every axis uses the truncated DFT matrix (the usual case)
    runs as one chain of GEMMs (:mod:`neuralops.spectral.fourier_gemm`); other layers run
    transform, contraction and inverse as separate steps. Both give the same values. While
    ``torch.compile`` traces, every layer takes the separate steps (the transform's DFT
    matrices or ``torch.fft``, and a plain contraction), which Dynamo traces without graph
    breaks; the GEMM chain's custom autograd nodes and ``out=`` writes into strided buffers are
    not traceable.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        weight: SpectralWeight | str = "dense",
        transform: str = "fft",
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.n_modes = normalize_n_modes(n_modes)
        self.n_dims = len(self.n_modes)
        self.transform = build_transform(transform)
        mode_axes, real = transform_layout(self.transform, self.n_dims)
        if isinstance(weight, str):
            weight = build_spectral_weight(in_channels, out_channels, self.n_modes, weight, mode_axes=mode_axes, real=real)
        self._check_weight(weight, mode_axes, real)
        self.weight = weight
        self._kept_modes = transform_kept_modes(self.transform)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def _check_weight(self, weight: SpectralWeight, mode_axes: tuple[str, ...], real: bool) -> None:
        compatible = (
            (weight.in_channels, weight.out_channels, weight.n_modes) == (self.in_channels, self.out_channels, self.n_modes)
            and len(weight.mode_axes) == len(mode_axes)
            and all(w in (t, SHARED) for w, t in zip(weight.mode_axes, mode_axes))
            and weight.real == real
        )
        if not compatible:
            raise ConfigError(
                f"spectral weight ({weight.in_channels}->{weight.out_channels}, n_modes={list(weight.n_modes)}, "
                f"mode_axes={list(weight.mode_axes)}, real={weight.real}) does not fit a {self.in_channels}->"
                f"{self.out_channels} layer with n_modes={list(self.n_modes)} and transform {self.transform.name!r} "
                f"(mode_axes={list(mode_axes)}, real={real}; an axis may also be 'shared')"
            )

    def forward(
        self, x: torch.Tensor, output_shape: Sequence[int] | None = None, output_offset: Sequence[float] | None = None
    ) -> torch.Tensor:
        if x.ndim != self.n_dims + 2 or x.shape[1] != self.in_channels:
            raise InputShapeError(
                f"SpectralConv expects (batch, {self.in_channels}, *grid) with a {self.n_dims}-D grid, "
                f"got shape {tuple(x.shape)}"
            )
        grid_in = tuple(x.shape[2:])
        grid_out = grid_in if output_shape is None else tuple(int(s) for s in output_shape)
        modes = self._kept_modes(self.n_modes, grid_in, grid_out)
        if output_offset is not None and not isinstance(self.transform, FourierTransform):
            raise ConfigError(f"output_offset needs the Fourier transform; this layer uses {self.transform.name!r}")
        input_dtype = x.dtype
        low_precision = contraction_dtype(x.device)
        with transform_precision(x.device):
            x = half_to_float32(x)
            matrix_axes = getattr(self.transform, "all_axes_by_matrix", None)
            if matrix_axes is not None and not torch.compiler.is_compiling() and matrix_axes(modes, grid_in, grid_out):
                y = self._gemm_chain(x, modes, grid_out, low_precision, output_offset)
            else:
                y = self._staged(x, modes, grid_out, low_precision, output_offset)
        return y.to(input_dtype) if input_dtype in HALF_DTYPES else y

    def _gemm_chain(self, x: torch.Tensor, modes, grid_out, low_precision: torch.dtype | None, offset: Sequence[float] | None = None) -> torch.Tensor:
        """The Fourier layer as one chain of GEMMs (:mod:`neuralops.spectral.fourier_gemm`): with
        the weight's stacked form, or with its own contraction when it has none or contracts more
        cheaply without forming it (then in float32 even under a low-precision autocast, unless
        it can be reconstructed)."""
        stacked = self.weight.stacked((x.shape[0], self.in_channels, *(sel.count for sel in modes)), modes)
        if stacked is None and low_precision is not None and SHARED not in self.weight.mode_axes:
            stacked = stack_complex_weight(self.weight.dense(modes))
        contract = None if stacked is not None else partial(self.weight, modes=modes)
        return fourier_gemm_conv(x, modes, grid_out, stacked, contract, self.bias, low_precision, offset)

    def _staged(self, x: torch.Tensor, modes, grid_out, low_precision: torch.dtype | None, offset: Sequence[float] | None = None) -> torch.Tensor:
        """Transform, contraction and inverse as separate steps (any transform and weight)."""
        coefficients = self.transform.forward(x, modes)
        if low_precision is None:
            coefficients = self.weight(coefficients, modes)
        else:
            contract = partial(contract_dense_low_precision, dtype=low_precision)
            coefficients = contract_modes(coefficients, self.weight.dense(modes), self.weight.mode_axes, contract)
        if offset is None:
            y = self.transform.inverse(coefficients, modes, grid_out)
        else:
            y = self.transform.inverse(coefficients, modes, grid_out, offset)
        if self.bias is not None:
            y = y + self.bias.view((1, -1) + (1,) * self.n_dims)
        return y

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, n_modes={list(self.n_modes)}, transform={self.transform.name!r}"
