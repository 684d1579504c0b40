"""Mode contractions: ``y[b, o, k] = Σ_i x[b, i, k] · w[i, o, k]`` for every kept mode ``k``.

``contract_dense_reference`` is the plain einsum every fast path is tested against.
``contract_dense`` gathers all kept modes into one batched matrix product.
``contract_stacked`` does the complex product as **one real** batched matrix product on a
weight stored modes-first as ``(*K, 2, Cin, Cout)`` = ``[Re W; Im W]``:

    [Re y]   [Re x, -Im x]   [Re W]
    [Im y] = [Im x,  Re x] · [Im W]      (rows of the left matrix stacked along the batch)

It needs no copy of the weight per call (the stored layout is the matmul layout), runs as a
single real GEMM batch (complex ``bmm`` on CPU runs one small GEMM per mode), and works in
half precision, where torch has no complex matmul.
"""

from __future__ import annotations

import torch


def contract_dense_reference(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Reference contraction. ``x: (B, Cin, *K)``, ``weight: (Cin, Cout, *K)`` -> ``(B, Cout, *K)``."""
    return torch.einsum("bi...,io...->bo...", x, weight)


def contract_dense(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Same as :func:`contract_dense_reference`, as one batched matmul over the flattened modes."""
    batch, c_in = x.shape[:2]
    c_out = weight.shape[1]
    modes = x.shape[2:]
    # Contiguous operands: complex bmm on permuted strides falls back to one GEMM per mode.
    x_k = x.reshape(batch, c_in, -1).permute(2, 0, 1).contiguous()  # (K, B, Cin)
    w_k = weight.reshape(c_in, c_out, -1).permute(2, 0, 1).contiguous()  # (K, Cin, Cout)
    y_k = torch.bmm(x_k, w_k)  # (K, B, Cout)
    return y_k.permute(1, 2, 0).reshape(batch, c_out, *modes)


def stack_complex_weight(weight: torch.Tensor) -> torch.Tensor:
    """``(Cin, Cout, *K)`` complex -> ``(*K, 2, Cin, Cout)`` real, the layout of :func:`contract_stacked`.

    A permuted view of the real and imaginary parts (no copy here; the contraction's reshape
    makes the one copy). Its gradient is one permuted copy back to complex, where stacking the
    ``real`` and ``imag`` views would zero-fill a gradient per part and add them."""
    modes = range(2, weight.ndim)
    return torch.view_as_real(weight).permute(*modes, weight.ndim, 0, 1)


def contract_stacked(x: torch.Tensor, stacked: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Complex contraction with a real modes-first weight.

    ``x: (B, Cin, *K)`` complex, ``stacked: (*K, 2, Cin, Cout)`` real holding ``[Re W; Im W]``
    -> ``(B, Cout, *K)`` complex. ``dtype`` runs the matmul in that real dtype (e.g. bfloat16)
    and returns complex64.
    """
    batch, c_in = x.shape[:2]
    modes = x.shape[2:]
    c_out = stacked.shape[-1]
    x_k = x.reshape(batch, c_in, -1).permute(2, 0, 1)  # (K, B, Cin) complex view
    real, imag = x_k.real, x_k.imag
    left = torch.cat([torch.cat([real, -imag], dim=-1), torch.cat([imag, real], dim=-1)], dim=1)  # (K, 2B, 2Cin)
    right = stacked.reshape(-1, 2 * c_in, c_out)  # (K, 2Cin, Cout)
    if dtype is not None:
        left, right = left.to(dtype), right.to(dtype)
    y = torch.bmm(left, right)  # (K, 2B, Cout)
    if dtype is not None:
        y = y.float()
    y_k = torch.complex(y[:, :batch], y[:, batch:])  # (K, B, Cout)
    return y_k.permute(1, 2, 0).reshape(batch, c_out, *modes)
