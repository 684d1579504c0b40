"""Mixed precision in the spectral core.

Policy (applied by :class:`~neuralops.spectral.conv.SpectralConv`):

* **Transforms always run in float32.** Autocast is disabled around the forward and inverse
  transforms and half inputs (``float16``/``bfloat16``) are cast to ``float32`` first. This
  avoids cuFFT's half-precision restrictions (power-of-two sizes only, neuraloperator #322),
  the missing half FFTs on CPU, and autocast casting the SHT's Legendre einsums to half. So no
  grid size can fail in mixed precision: every grid runs the fp32 transform.
* **The mode contraction runs in the autocast dtype on CUDA** (:func:`contraction_dtype`):
  complex values are split into real and imaginary parts and contracted with a single real
  half-precision batched matmul (:func:`contract_dense_low_precision`), which works for both
  ``float16`` and ``bfloat16`` (torch has no complex bfloat16 dtype, and complex32 matmul
  support is partial). Factorized weights are first reconstructed in float32 for this path.
  Accumulation is in float32 inside cuBLAS; the result is returned as complex64.
* **On CPU the contraction stays in float32**: CPU BLAS has no fast half complex product, and
  the spectral layer's output then equals the float32 output exactly; only the surrounding
  pointwise layers run in bfloat16.
* The layer returns float32 under autocast (downstream autocast ops cast as they need), and
  the input dtype for explicitly half inputs.
"""

from __future__ import annotations

import torch

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
    products use the real block form ``[x_re, x_im] · [[w_re, w_im], [-w_im, w_re]]`` so one
    real batched matmul over the modes does the whole contraction. Returns complex64 (or
    float32 for real inputs), shape ``(B, Cout, *K)``.
    """
    batch, c_in = x.shape[:2]
    c_out = weight.shape[1]
    modes = x.shape[2:]
    x_k = x.reshape(batch, c_in, -1).permute(2, 0, 1)  # (K, B, Cin)
    w_k = weight.reshape(c_in, c_out, -1).permute(2, 0, 1)  # (K, Cin, Cout)
    if not x.is_complex():
        y_k = torch.bmm(x_k.to(dtype), w_k.to(dtype)).float()
        return y_k.permute(1, 2, 0).reshape(batch, c_out, *modes)
    x_real = torch.cat([x_k.real, x_k.imag], dim=-1).to(dtype)  # (K, B, 2Cin)
    w_real = torch.cat(
        [torch.cat([w_k.real, w_k.imag], dim=-1), torch.cat([-w_k.imag, w_k.real], dim=-1)], dim=-2
    ).to(dtype)  # (K, 2Cin, 2Cout)
    y_real = torch.bmm(x_real, w_real).float()  # (K, B, 2Cout)
    y_k = torch.complex(y_real[..., :c_out], y_real[..., c_out:])
    return y_k.permute(1, 2, 0).reshape(batch, c_out, *modes)


def float32_transform_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` cast to float32 when it is half precision (transforms never run in half)."""
    return x.float() if x.dtype in HALF_DTYPES else x


def transform_precision(device: torch.device):
    """Context in which transforms run: autocast disabled on ``device``'s type (so everything is float32)."""
    return torch.autocast(device_type=device.type, enabled=False)
