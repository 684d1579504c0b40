"""Mode contractions: ``y[b, o, k] = Σ_i x[b, i, k] · w[i, o, k]`` for every kept mode ``k``.

``contract_dense_reference`` is the plain einsum every fast path is tested against.
``contract_dense`` gathers all kept modes into one batched matrix product (one BLAS call
for every mode of every corner block at once).
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
