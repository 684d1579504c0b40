"""Mixed precision in the spectral core.

Policy (applied by :class:`~neuralops.spectral.conv.SpectralConv`):

* **Transforms always run in float32.** Autocast is disabled around the forward and inverse
  transforms and half inputs (``float16``/``bfloat16``) are cast to ``float32`` first. This
  avoids cuFFT's half-precision restrictions (power-of-two sizes only, neuraloperator #322),
  the missing half FFTs on CPU, and autocast casting the SHT's Legendre einsums to half. So no
  grid size can fail in mixed precision: every grid runs the fp32 transform.
* **The mode contraction runs in the autocast dtype on CUDA** (:func:`contraction_dtype`):
  complex values are split into real and imaginary parts and contracted with a single real
  half-precision batched matmul (:func:`contract_dense_low_precision`, or the ``dtype`` of
  :func:`~neuralops.spectral.fourier_gemm.fourier_gemm_conv` on the GEMM-chain path), which works for both
  ``float16`` and ``bfloat16`` (torch has no complex bfloat16 dtype, and complex32 matmul
  support is partial). Factorized weights are first reconstructed in float32 for this path.
  cuBLAS accumulates half products in float32 unless torch's
  ``allow_fp16/bf16_reduced_precision_reduction`` (on by default) let it reduce partial sums
  in half; the result is returned as complex64.
* **On CPU the contraction stays in float32**: CPU BLAS has no fast half complex product, and
  the spectral layer's output then equals the float32 output exactly; only the surrounding
  pointwise layers run in bfloat16.
* The layer returns float32 under autocast (downstream autocast ops cast as they need), and
  the input dtype for explicitly half inputs.
* **Half-precision weights** (a model converted with ``.half()`` or ``.to(torch.bfloat16)``)
  are read in float32 (:func:`half_to_float32`), so the layer
  computes as above and returns the input's dtype; the pointwise layers around it run in the
  half dtype. Gradients reach the half parameters in their dtype.
"""

from __future__ import annotations

import torch

from neuralops.spectral.contract import contract_dense, contract_stacked, stack_complex_weight

HALF_DTYPES = (torch.float16, torch.bfloat16)


def contraction_dtype(device: torch.device) -> torch.dtype | None:
    """Real dtype for the mode contraction on ``device`` under the current autocast state.

    ``None`` means float32 (autocast off, or a device without a low-precision contraction).
    """
    if device.type != "cuda" or not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


def contract_dense_low_precision(x: torch.Tensor, weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``y[b, o, k] = Σ_i x[b, i, k] w[i, o, k]`` computed in the real dtype ``dtype``.

    ``x: (B, Cin, *K)`` and ``weight: (Cin, Cout, *K)``, both complex or both real. Complex
    products go through the real block form of
    :func:`~neuralops.spectral.contract.contract_stacked`, one real batched matmul over the
    modes. Returns complex64 (or float32 for real inputs), shape ``(B, Cout, *K)``.
    """
    if not x.is_complex():
        return contract_dense(x.to(dtype), weight.to(dtype)).float()
    return contract_stacked(x, stack_complex_weight(weight), dtype)


def half_to_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` cast to float32 when it is half precision, else ``x``: a transform's input
    (transforms never run in half) or a spectral weight stored in half."""
    return x.float() if x.dtype in HALF_DTYPES else x


def transform_precision(device: torch.device):
    """Context in which transforms run: autocast disabled on ``device``'s type (so everything is float32)."""
    return torch.autocast(device_type=device.type, enabled=False)
