"""Pseudo-spectral machinery of the data generators (Burgers, Navier-Stokes, shallow water).

It lives in the spectral core with the other transforms: the solvers in
``neuralops.data.generators`` reach every FFT through this module, never ``torch.fft`` itself.

What lives here, so that no solver duplicates it:

* periodic cell grids ``x_j = j L / N`` (``j = 0..N-1``). Stride subsampling ``x[::2]`` of the
  grid with ``N`` points is exactly the grid with ``N/2`` points;
* angular wavenumbers ``k = 2 pi m / L`` of the ``rfftn`` layout and the 2/3-rule mask;
* the ETDRK4 integrator of Cox & Matthews (2002) for ``dv/dt = L v + N(v)`` with a diagonal,
  real, non-positive ``L``, with the phi-functions evaluated by the contour integrals of
  Kassam & Trefethen (2005, SIAM J. Sci. Comput. 26(4)) to avoid cancellation;
* the output-time driver shared by every solver, and the argument checks that turn bad input
  into one :class:`~neuralops.errors.ConfigError` naming the argument.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch

from neuralops.errors import ConfigError

# Number of points on the upper half of the Kassam-Trefethen contour (a circle of radius 1
# around each h*L). 32 gives the phi-functions to double-precision round-off for real h*L <= 0.
CONTOUR_POINTS = 32


# ----------------------------------------------------------------------------- argument checks
def require_positive(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and > 0, else raise ConfigError naming ``name``."""
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def require_non_negative(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and >= 0, else raise ConfigError naming ``name``."""
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def require_real_floating(name: str, tensor: torch.Tensor) -> None:
    """Raise ConfigError unless ``tensor`` is a real floating-point torch tensor of finite values."""
    if not isinstance(tensor, torch.Tensor):
        raise ConfigError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise ConfigError(f"{name} must be a real floating-point tensor, got dtype {tensor.dtype}")
    if not bool(torch.isfinite(tensor).all()):
        raise ConfigError(f"{name} contains NaN or infinite values")


def check_output_times(t_out: Sequence[float]) -> list[float]:
    """Validate requested output times: non-empty, finite, >= 0 and strictly increasing."""
    times = [float(t) for t in t_out]
    if not times:
        raise ConfigError("t_out must contain at least one output time")
    if any(not math.isfinite(t) or t < 0.0 for t in times):
        raise ConfigError(f"t_out must hold finite times >= 0, got {times}")
    if any(later <= earlier for earlier, later in zip(times, times[1:])):
        raise ConfigError(f"t_out must be strictly increasing, got {times}")
    return times


def check_periodic_size(name: str, size: int, minimum: int = 8) -> None:
    """Raise ConfigError unless a periodic grid size is even and at least ``minimum``."""
    if size < minimum or size % 2:
        raise ConfigError(f"{name} must be an even number of grid points >= {minimum}, got {size}")


# ----------------------------------------------------------------------------- grids
def periodic_cell_grid(n: int, domain_length: float, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Cell grid ``x_j = j * domain_length / n`` for ``j = 0..n-1``, shape ``(n,)``."""
    return torch.arange(n, dtype=dtype, device=device) * (domain_length / n)


def angular_wavenumbers(n: int, domain_length: float, *, half: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Angular wavenumbers ``2 pi m / L`` in FFT order, shape ``(n,)``, or ``(n//2+1,)`` if ``half``.

    ``half=True`` gives the last axis of ``torch.fft.rfftn``; ``half=False`` every other axis.
    """
    index = torch.fft.rfftfreq(n, d=1.0 / n) if half else torch.fft.fftfreq(n, d=1.0 / n)
    return (2.0 * math.pi / domain_length) * index.to(dtype=dtype, device=device)


def dealias_mask(shape: Sequence[int], *, device: torch.device) -> torch.Tensor:
    """2/3-rule mask in ``rfftn`` layout for a periodic grid of ``shape``.

    Keeps the integer wavenumbers with ``3 |m_i| < n_i`` on every axis, which makes the product of
    two fields with retained modes alias-free on the retained modes (Orszag 1971). Boolean tensor
    of shape ``(*shape[:-1], shape[-1]//2+1)``.
    """
    mask = None
    for axis, n in enumerate(shape):
        last = axis == len(shape) - 1
        index = (torch.fft.rfftfreq(n, d=1.0 / n) if last else torch.fft.fftfreq(n, d=1.0 / n)).to(device)
        keep = 3 * index.abs() < n
        view = [1] * len(shape)
        view[axis] = keep.numel()
        keep = keep.reshape(view)
        mask = keep if mask is None else mask & keep
    return mask


def spectral_wavevectors(shape: Sequence[int], domain_length: float, *, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    """Angular wavenumber of each axis in ``rfftn`` layout, each shaped to broadcast over the grid."""
    wavevectors = []
    for axis, n in enumerate(shape):
        k = angular_wavenumbers(n, domain_length, half=axis == len(shape) - 1, dtype=dtype, device=device)
        view = [1] * len(shape)
        view[axis] = k.numel()
        wavevectors.append(k.reshape(view))
    return wavevectors


def to_spectral(field: torch.Tensor, ndim: int) -> torch.Tensor:
    """``rfftn`` over the last ``ndim`` axes (unnormalised forward transform)."""
    return torch.fft.rfftn(field, dim=tuple(range(-ndim, 0)))


def to_physical(coefficients: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`to_spectral` onto a grid of ``shape`` (the last ``len(shape)`` axes)."""
    return torch.fft.irfftn(coefficients, s=tuple(shape), dim=tuple(range(-len(shape), 0)))


# ----------------------------------------------------------------------------- ETDRK4
class ETDRK4Coefficients(NamedTuple):
    """Per-mode ETDRK4 coefficients for one step ``h``; each broadcasts against the state."""

    exp_full: torch.Tensor  # exp(hL)
    exp_half: torch.Tensor  # exp(hL/2)
    half_step: torch.Tensor  # h * phi_1(hL/2) / 2 ("Q" of Kassam-Trefethen)
    weight_first: torch.Tensor  # f1
    weight_middle: torch.Tensor  # f2 (multiplies both midpoint stages)
    weight_last: torch.Tensor  # f3


def etdrk4_coefficients(linear: torch.Tensor, dt: float, state_dtype: torch.dtype) -> ETDRK4Coefficients:
    """ETDRK4 coefficients for the diagonal linear operator ``linear`` (real, <= 0) and step ``dt``.

    The phi-function combinations are averaged over ``CONTOUR_POINTS`` points of the upper half
    of a unit circle centred on each ``z = dt * linear`` (Kassam & Trefethen 2005, eq. (2.5)
    evaluated by the Cauchy integral of their Section 5); for real ``z`` the real part of the
    half-circle mean equals the full-circle mean. Computed in complex128 and cast to
    ``state_dtype`` (complex64 or complex128).
    """
    z = (dt * linear.to(torch.float64)).unsqueeze(-1)
    angles = math.pi * (torch.arange(1, CONTOUR_POINTS + 1, dtype=torch.float64, device=linear.device) - 0.5) / CONTOUR_POINTS
    roots = torch.polar(torch.ones_like(angles), angles)
    points = z.to(torch.complex128) + roots
    exp_points = torch.exp(points)
    cube = points**3
    half_step = dt * torch.mean((torch.exp(points / 2) - 1.0) / points, dim=-1).real
    weight_first = dt * torch.mean((-4.0 - points + exp_points * (4.0 - 3.0 * points + points**2)) / cube, dim=-1).real
    weight_middle = dt * torch.mean((2.0 + points + exp_points * (points - 2.0)) / cube, dim=-1).real
    weight_last = dt * torch.mean((-4.0 - 3.0 * points - points**2 + exp_points * (4.0 - points)) / cube, dim=-1).real
    real_dtype = torch.float64 if state_dtype == torch.complex128 else torch.float32
    z = z.squeeze(-1)
    return ETDRK4Coefficients(
        *(value.to(real_dtype) for value in (torch.exp(z), torch.exp(z / 2), half_step, weight_first, weight_middle, weight_last))
    )


def etdrk4_step(state: torch.Tensor, nonlinear: Callable[[torch.Tensor], torch.Tensor], coefficients: ETDRK4Coefficients) -> torch.Tensor:
    """One ETDRK4 step (Cox & Matthews 2002, as written by Kassam & Trefethen 2005, eq. (2.1)-(2.4))."""
    c = coefficients
    n_state = nonlinear(state)
    stage_a = c.exp_half * state + c.half_step * n_state
    n_a = nonlinear(stage_a)
    stage_b = c.exp_half * state + c.half_step * n_a
    n_b = nonlinear(stage_b)
    stage_c = c.exp_half * stage_a + c.half_step * (2.0 * n_b - n_state)
    n_c = nonlinear(stage_c)
    return c.exp_full * state + c.weight_first * n_state + 2.0 * c.weight_middle * (n_a + n_b) + c.weight_last * n_c


def integrate_etdrk4(
    state: torch.Tensor,
    linear: torch.Tensor,
    nonlinear: Callable[[torch.Tensor], torch.Tensor],
    times: list[float],
    dt: float,
    to_output: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """March ``dv/dt = linear * v + nonlinear(v)`` from t=0 and record ``to_output(v)`` at ``times``.

    Each interval between consecutive output times (the first starts at 0) is split into
    ``ceil(interval / dt)`` equal steps, so no step exceeds ``dt`` and every output lands exactly
    on its requested time. Coefficients are cached per distinct step length.

    Returns the stacked outputs, shape ``(B, len(times), *to_output(v).shape[1:])``.
    Raises ConfigError (naming ``dt``) if the solution becomes non-finite.
    """
    cache: dict[float, ETDRK4Coefficients] = {}
    frames = []
    previous_time = 0.0
    for time in times:
        interval = time - previous_time
        if interval > 0.0:
            n_steps = max(1, math.ceil(interval / dt - 1e-9))
            step = float(f"{interval / n_steps:.12e}")
            if step not in cache:
                cache[step] = etdrk4_coefficients(linear, step, state.dtype)
            for _ in range(n_steps):
                state = etdrk4_step(state, nonlinear, cache[step])
            if not bool(torch.isfinite(torch.view_as_real(state)).all()):
                raise ConfigError(f"the solution became non-finite before t={time}; reduce dt (got dt={dt})")
        frames.append(to_output(state))
        previous_time = time
    return torch.stack(frames, dim=1)
