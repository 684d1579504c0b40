"""The Fourier spectral convolution as one chain of real matrix products (the fast path).

When every axis of a Fourier layer is transformed with a truncated DFT matrix (see
:class:`~neuralops.spectral.transforms.FourierTransform`), the whole layer

    y = T⁻¹( W · T(x) on the kept modes ) + b

is a sequence of real GEMMs: the transform of each axis, the per-mode channel contraction and
the inverse of each axis, with the bias added to the zero-frequency coefficient. The layouts
are chosen so that no grid-sized tensor is ever permuted or copied: every product reads its
operands where they lie (transposed operands are passed to BLAS as such), and only mode-sized tensors are
rearranged, by :class:`_ComplexRepack`, between the products.

Layouts (``s`` = real/imaginary part, ``K_a`` = kept frequencies of axis ``a``, ``R`` = the
remaining axes). The forward transform starts with the last axis, ``(2, K_d, B, C, N_1..N_{d-1})``,
then moves each transformed axis to the front (``(2, K_a, .., K_d, B, C, N_1..N_{a-1})``), so the
next axis to transform is always the innermost one. A complex product along an axis is one real
GEMM against ``[Re F; Im F]`` giving the four partial products, combined afterwards. The last
forward step writes the contraction layout directly; the inverse mirrors the forward, with the
complex product done by one GEMM on a ``[[Re, -Im], [Im, Re]]`` expansion of the (small)
coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from neuralops.spectral.modes import AxisModes
from neuralops.spectral.transforms import dft_matrix


def _pair(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    return t.select(dim, 0), t.select(dim, 1)


class _Split:
    """Source: a complex tensor stored as real and imaginary blocks along ``dim``."""

    def __init__(self, dim: int):
        self.dim = dim

    def value_views(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _pair(t, self.dim)

    def read(self, src: torch.Tensor, real: torch.Tensor, imag: torch.Tensor) -> None:
        src_real, src_imag = self.value_views(src)
        real.copy_(src_real)
        imag.copy_(src_imag)

    def complete_adjoint(self, grad_src: torch.Tensor) -> None:
        """Nothing to add: the gradients of both blocks were written into ``value_views``."""


class _Products:
    """Source: the four partial products ``P[t, :, s] = part_t(F) · part_s(z)`` of a complex
    product ``F·z``, stored ``(2, K, 2, *R)``. Their value is ``(P00 - P11) + i (P01 + P10)``."""

    def value_views(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return t[0, :, 0], t[0, :, 1]

    def read(self, src: torch.Tensor, real: torch.Tensor, imag: torch.Tensor) -> None:
        torch.sub(src[0, :, 0], src[1, :, 1], out=real)
        torch.add(src[0, :, 1], src[1, :, 0], out=imag)

    def complete_adjoint(self, grad_src: torch.Tensor) -> None:
        torch.neg(grad_src[0, :, 0], out=grad_src[1, :, 1])
        grad_src[1, :, 0].copy_(grad_src[0, :, 1])


class _Plain:
    """Target: real and imaginary blocks along ``dim`` of a new tensor of ``shape``."""

    def __init__(self, shape: Sequence[int], dim: int):
        self.shape, self.dim = tuple(shape), dim

    def value_views(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _pair(out, self.dim)

    def complete(self, out: torch.Tensor) -> None:
        """Nothing to add: both blocks were written by the source."""

    def adjoint(self, grad: torch.Tensor, grad_real: torch.Tensor, grad_imag: torch.Tensor) -> None:
        g_real, g_imag = _pair(grad, self.dim)
        grad_real.copy_(g_real)
        grad_imag.copy_(g_imag)


class _Expanded:
    """Target: the real 2×2 form ``[[Re, -Im], [Im, Re]]`` of each complex value, in a new tensor
    of ``shape`` whose axis ``out_dim`` indexes the rows (real/imaginary part of a product) and
    ``in_dim`` the columns (part of the other factor it multiplies)."""

    def __init__(self, shape: Sequence[int], in_dim: int, out_dim: int):
        self.shape, self.in_dim, self.out_dim = tuple(shape), in_dim, out_dim

    def block(self, t: torch.Tensor, column: int, row: int) -> torch.Tensor:
        first, second = sorted([(self.in_dim, column), (self.out_dim, row)], reverse=True)
        return t.select(*first).select(*second)

    def value_views(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.block(out, 0, 0), self.block(out, 0, 1)

    def complete(self, out: torch.Tensor) -> None:
        self.block(out, 1, 1).copy_(self.block(out, 0, 0))
        torch.neg(self.block(out, 0, 1), out=self.block(out, 1, 0))

    def adjoint(self, grad: torch.Tensor, grad_real: torch.Tensor, grad_imag: torch.Tensor) -> None:
        torch.add(self.block(grad, 0, 0), self.block(grad, 1, 1), out=grad_real)
        torch.sub(self.block(grad, 0, 1), self.block(grad, 1, 0), out=grad_imag)


class _ComplexRepack(torch.autograd.Function):
    """Rewrite complex values from one real block layout (source) into another (target).

    A linear map on mode-sized tensors; its backward is the exact adjoint, written into one
    new tensor (no zero-filled per-block gradients as indexing ops would produce).
    """

    @staticmethod
    def forward(ctx, src: torch.Tensor, source, target) -> torch.Tensor:
        ctx.source, ctx.target, ctx.src_shape = source, target, src.shape
        out = src.new_empty(target.shape)
        source.read(src, *target.value_views(out))
        target.complete(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_src = grad.new_empty(ctx.src_shape)
        ctx.target.adjoint(grad, *ctx.source.value_views(grad_src))
        ctx.source.complete_adjoint(grad_src)
        return grad_src, None, None


def _repack(src: torch.Tensor, source, target) -> torch.Tensor:
    return _ComplexRepack.apply(src, source, target)


def fourier_gemm_conv(
    x: torch.Tensor,
    modes: Sequence[AxisModes],
    grid_out: Sequence[int],
    stacked_weight: torch.Tensor | None = None,
    contract: Callable[[torch.Tensor], torch.Tensor] | None = None,
    bias: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Spectral convolution with the Fourier transform, every axis by truncated DFT matrices.

    Args:
        x: ``(B, Cin, *grid_in)`` real input.
        modes: the kept frequencies per axis (:func:`~neuralops.spectral.modes.kept_modes`).
        grid_out: output grid.
        stacked_weight: ``(*K, 2, Cin, Cout)`` real, ``[Re W; Im W]`` per kept mode (the layout
            of :func:`~neuralops.spectral.contract.contract_stacked`), ``K`` the kept counts.
            The contraction is then one real batched GEMM.
        contract: used instead of ``stacked_weight`` (give exactly one): maps the complex kept
            coefficients ``(B, Cin, *K)`` to ``(B, Cout, *K)``, e.g. a factorized weight's own
            contraction.
        bias: ``(Cout,)`` added to every output point, or None.
        dtype: real dtype of the stacked contraction (e.g. ``torch.bfloat16`` under autocast);
            the transforms, and ``contract``, run in the dtype of ``x``.

    Returns ``(B, Cout, *grid_out)``, the same values as the FFT path (the unit-period
    coefficients of :mod:`neuralops.spectral.transforms`).
    """
    if (stacked_weight is None) == (contract is None):
        raise ValueError("fourier_gemm_conv needs exactly one of stacked_weight and contract")
    d = len(modes)
    batch, c_in = x.shape[:2]
    grid_in = tuple(x.shape[2:])
    counts = [sel.count for sel in modes[:-1]] + [modes[-1].n_pos]
    n_kept = math.prod(counts)
    real_dtype, device = x.dtype, x.device

    # Forward transform, last axis first: (2, K_d, B, C, N_1..N_{d-1}). Each intermediate is
    # rebound to one name so it is freed as soon as the next one exists. The last step writes
    # the layout of the contraction: expanded for the stacked weight, plain for ``contract``.
    n_last, k_last = grid_in[-1], counts[-1]
    forward_last = dft_matrix("forward_last", n_last, k_last, 0, real_dtype, device).t()
    z = torch.mm(forward_last, x.reshape(-1, n_last).t())
    rest = (batch, c_in) + grid_in[:-1]
    if stacked_weight is not None:
        final = _Expanded(tuple(counts) + (2, batch, 2, c_in), in_dim=d + 2, out_dim=d)
    else:
        final = _Plain((2, *counts, batch, c_in), 0)
    if d == 1:
        z = z.view(2, k_last, batch, c_in)
        if stacked_weight is not None:
            z = _repack(z, _Split(0), final)
    for axis in range(d - 2, -1, -1):
        sel, n = modes[axis], grid_in[axis]
        rest = rest[:-1]
        matrix = dft_matrix("forward_split", n, sel.n_pos, sel.n_neg, real_dtype, device)
        z = torch.mm(matrix, z.view(-1, n).t()).view(2, sel.count, 2, *counts[axis + 1 :], *rest)
        target = final if axis == 0 else _Plain((2, sel.count, *counts[axis + 1 :], *rest), 0)
        z = _repack(z, _Products(), target)

    # Channel contraction -> (K, 2·B, Cout), rows [Re; Im] per mode.
    if stacked_weight is not None:
        c_out = stacked_weight.shape[-1]
        left = z.view(n_kept, 2 * batch, 2 * c_in)
        weight = stacked_weight.reshape(n_kept, 2 * c_in, c_out)
        if dtype is None:
            y = torch.bmm(left, weight)
        else:
            y = torch.bmm(left.to(dtype), weight.to(dtype)).to(real_dtype)
    else:
        y = contract(torch.complex(z[0], z[1]).movedim((-2, -1), (0, 1)))  # (B, Cout, *K)
        c_out = y.shape[1]
        y = y.movedim((0, 1), (-2, -1))
        y = torch.stack([y.real, y.imag], dim=d).view(n_kept, 2 * batch, c_out)  # a new tensor
    if bias is not None:
        # The inverse maps the real part of the zero-frequency coefficient (mode 0 of every
        # axis, the first of the flattened modes) to a constant: adding b there adds b everywhere.
        y[0, :batch] += bias.to(real_dtype)

    # Inverse transform, first axis first; each step appends its output axis innermost.
    y = y.view(*counts, 2, batch, c_out)
    source = _Split(d)
    rest = (batch, c_out)
    for axis in range(d - 1):
        sel, n = modes[axis], int(grid_out[axis])
        y = _repack(y, source, _Expanded((2, sel.count, 2, *counts[axis + 1 :], *rest), in_dim=0, out_dim=2))
        matrix = dft_matrix("inverse_split", n, sel.n_pos, sel.n_neg, real_dtype, device)
        rest = rest + (n,)
        y = torch.mm(y.view(2 * sel.count, -1).t(), matrix).view(2, *counts[axis + 1 :], *rest)
        source = _Split(0)
    if d == 1:
        y = _repack(y, source, _Plain((2, k_last, batch, c_out), 0))
    n_out = int(grid_out[-1])
    coefficients = y.view(2 * k_last, -1).t()  # rows (B, Cout, N_1..N_{d-1})
    out = torch.mm(coefficients, dft_matrix("inverse_last", n_out, k_last, 0, real_dtype, device))
    return out.view(batch, c_out, *grid_out)
