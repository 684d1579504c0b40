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


# Sources and targets of a repack describe one layout each, for a tensor of ``shape`` (after
# ``lead`` leading batch dims, which vmap adds). A source reads the complex value (real and
# imaginary parts) out of its layout; a target writes it into its layout. Both state their
# adjoints, so the repack and its adjoint are exact transposes of each other.


class _Split:
    """Source: a complex tensor of ``shape`` stored as real and imaginary blocks along ``dim``."""

    def __init__(self, shape: Sequence[int], dim: int):
        self.shape, self.dim = tuple(shape), dim

    def value_views(self, t: torch.Tensor, lead: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _pair(t, lead + self.dim)

    def read(self, src: torch.Tensor, real: torch.Tensor, imag: torch.Tensor, lead: int) -> None:
        src_real, src_imag = self.value_views(src, lead)
        real.copy_(src_real)
        imag.copy_(src_imag)

    def complete_adjoint(self, grad_src: torch.Tensor, lead: int) -> None:
        """Nothing to add: the gradients of both blocks were written into ``value_views``."""


class _Products:
    """Source: the four partial products ``P[t, :, s] = part_t(F) · part_s(z)`` of a complex
    product ``F·z``, of ``shape`` ``(2, K, 2, *R)``. Their value is ``(P00 - P11) + i (P01 + P10)``."""

    def __init__(self, shape: Sequence[int]):
        self.shape = tuple(shape)

    @staticmethod
    def part(t: torch.Tensor, lead: int, f_part: int, z_part: int) -> torch.Tensor:
        return t.select(lead, f_part).select(lead + 1, z_part)

    def value_views(self, t: torch.Tensor, lead: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.part(t, lead, 0, 0), self.part(t, lead, 0, 1)

    def read(self, src: torch.Tensor, real: torch.Tensor, imag: torch.Tensor, lead: int) -> None:
        torch.sub(self.part(src, lead, 0, 0), self.part(src, lead, 1, 1), out=real)
        torch.add(self.part(src, lead, 0, 1), self.part(src, lead, 1, 0), out=imag)

    def complete_adjoint(self, grad_src: torch.Tensor, lead: int) -> None:
        torch.neg(self.part(grad_src, lead, 0, 0), out=self.part(grad_src, lead, 1, 1))
        self.part(grad_src, lead, 1, 0).copy_(self.part(grad_src, lead, 0, 1))


class _Plain:
    """Target: real and imaginary blocks along ``dim`` of a new tensor of ``shape``."""

    def __init__(self, shape: Sequence[int], dim: int):
        self.shape, self.dim = tuple(shape), dim

    def value_views(self, out: torch.Tensor, lead: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _pair(out, lead + self.dim)

    def complete(self, out: torch.Tensor, lead: int) -> None:
        """Nothing to add: both blocks were written by the source."""

    def adjoint(self, grad: torch.Tensor, grad_real: torch.Tensor, grad_imag: torch.Tensor, lead: int) -> None:
        g_real, g_imag = self.value_views(grad, lead)
        grad_real.copy_(g_real)
        grad_imag.copy_(g_imag)


class _Expanded:
    """Target: the real 2×2 form ``[[Re, -Im], [Im, Re]]`` of each complex value, in a new tensor
    of ``shape`` whose axis ``out_dim`` indexes the rows (real/imaginary part of a product) and
    ``in_dim`` the columns (part of the other factor it multiplies)."""

    def __init__(self, shape: Sequence[int], in_dim: int, out_dim: int):
        self.shape, self.in_dim, self.out_dim = tuple(shape), in_dim, out_dim

    def block(self, t: torch.Tensor, lead: int, column: int, row: int) -> torch.Tensor:
        first, second = sorted([(lead + self.in_dim, column), (lead + self.out_dim, row)], reverse=True)
        return t.select(*first).select(*second)

    def value_views(self, out: torch.Tensor, lead: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.block(out, lead, 0, 0), self.block(out, lead, 0, 1)

    def complete(self, out: torch.Tensor, lead: int) -> None:
        self.block(out, lead, 1, 1).copy_(self.block(out, lead, 0, 0))
        torch.neg(self.block(out, lead, 0, 1), out=self.block(out, lead, 1, 0))

    def adjoint(self, grad: torch.Tensor, grad_real: torch.Tensor, grad_imag: torch.Tensor, lead: int) -> None:
        torch.add(self.block(grad, lead, 0, 0), self.block(grad, lead, 1, 1), out=grad_real)
        torch.sub(self.block(grad, lead, 0, 1), self.block(grad, lead, 1, 0), out=grad_imag)


def _repack_values(src: torch.Tensor, source, target) -> torch.Tensor:
    lead = src.ndim - len(source.shape)
    out = src.new_empty(src.shape[:lead] + target.shape)
    source.read(src, *target.value_views(out, lead), lead)
    target.complete(out, lead)
    return out


def _repack_adjoint_values(grad: torch.Tensor, source, target) -> torch.Tensor:
    lead = grad.ndim - len(target.shape)
    grad_src = grad.new_empty(grad.shape[:lead] + source.shape)
    target.adjoint(grad, *source.value_views(grad_src, lead), lead)
    source.complete_adjoint(grad_src, lead)
    return grad_src


class _ComplexRepack(torch.autograd.Function):
    """Rewrite complex values from one real block layout (source) into another (target), or
    with ``adjoint`` apply the transpose of that linear map.

    It works on mode-sized tensors. Its backward is the other direction, written into one new
    tensor (indexing ops would build a zero-filled gradient per block), so it differentiates
    to any order; forward-mode AD applies the same map to the tangent, and vmap runs it once
    on the batched tensor.
    """

    generate_vmap_rule = False

    @staticmethod
    def forward(t: torch.Tensor, source, target, adjoint: bool) -> torch.Tensor:
        return (_repack_adjoint_values if adjoint else _repack_values)(t, source, target)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.source, ctx.target, ctx.adjoint = inputs[1:]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _ComplexRepack.apply(grad, ctx.source, ctx.target, not ctx.adjoint), None, None, None

    @staticmethod
    def jvp(ctx, tangent: torch.Tensor, *_):
        return _ComplexRepack.apply(tangent, ctx.source, ctx.target, ctx.adjoint)

    @staticmethod
    def vmap(info, in_dims, t: torch.Tensor, source, target, adjoint: bool):
        if in_dims[0] is None:
            return _ComplexRepack.apply(t, source, target, adjoint), None
        return _ComplexRepack.apply(t.movedim(in_dims[0], 0), source, target, adjoint), 0


def _repack(src: torch.Tensor, source, target) -> torch.Tensor:
    return _ComplexRepack.apply(src, source, target, False)


def fourier_gemm_conv(
    x: torch.Tensor,
    modes: Sequence[AxisModes],
    grid_out: Sequence[int],
    stacked_weight: torch.Tensor | None = None,
    contract: Callable[[torch.Tensor], torch.Tensor] | None = None,
    bias: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    offset: Sequence[float] | None = None,
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
        offset: per axis, evaluate the output at the points ``j + offset[d]`` of ``grid_out`` (in
            units of its spacing; default 0), as :meth:`FourierTransform.inverse`.

    Returns ``(B, Cout, *grid_out)``, the same values as the FFT path (the unit-period
    coefficients of :mod:`neuralops.spectral.transforms`).
    """
    if (stacked_weight is None) == (contract is None):
        raise ValueError("fourier_gemm_conv needs exactly one of stacked_weight and contract")
    d = len(modes)
    offset = tuple(float(o) for o in offset) if offset is not None else (0.0,) * d
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
            z = _repack(z, _Split(z.shape, 0), final)
    for axis in range(d - 2, -1, -1):
        sel, n = modes[axis], grid_in[axis]
        rest = rest[:-1]
        matrix = dft_matrix("forward_split", n, sel.n_pos, sel.n_neg, real_dtype, device)
        z = torch.mm(matrix, z.view(-1, n).t()).view(2, sel.count, 2, *counts[axis + 1 :], *rest)
        target = final if axis == 0 else _Plain((2, sel.count, *counts[axis + 1 :], *rest), 0)
        z = _repack(z, _Products(z.shape), target)

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
    split_dim = d
    rest = (batch, c_out)
    for axis in range(d - 1):
        sel, n = modes[axis], int(grid_out[axis])
        target = _Expanded((2, sel.count, 2, *counts[axis + 1 :], *rest), in_dim=0, out_dim=2)
        y = _repack(y, _Split(y.shape, split_dim), target)
        matrix = dft_matrix("inverse_split", n, sel.n_pos, sel.n_neg, real_dtype, device, offset[axis])
        rest = rest + (n,)
        y = torch.mm(y.view(2 * sel.count, -1).t(), matrix).view(2, *counts[axis + 1 :], *rest)
        split_dim = 0
    if d == 1:
        y = _repack(y, _Split(y.shape, split_dim), _Plain((2, k_last, batch, c_out), 0))
    n_out = int(grid_out[-1])
    coefficients = y.view(2 * k_last, -1).t()  # rows (B, Cout, N_1..N_{d-1})
    out = torch.mm(coefficients, dft_matrix("inverse_last", n_out, k_last, 0, real_dtype, device, offset[-1]))
    return out.view(batch, c_out, *grid_out)
