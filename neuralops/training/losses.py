"""Training losses: data losses, spectral Sobolev losses and equation-residual (physics) losses,
alone or as a weighted sum.

Every loss is a batch mean of per-sample values ``(B,)``. Unlike neuraloperator's losses, the
reduction is a mean over samples (not a sum over batch and channels), so the loss value does not
change with batch size or channel count. Every loss is computed on the batch's
:class:`~neuralops.grid.Grid` (physical spacings and lengths, quadrature weights).

Losses by name (:data:`LOSSES`):

* ``rel_l2``, ``rel_h1``, ``mse``: the metrics of the same name in
  :mod:`neuralops.evaluation.metrics`.
* ``sobolev``: ``‖(α−Δ)^{s/2}(u−v)‖`` (absolute) and ``rel_sobolev``:
  ``‖(α−Δ)^{s/2}(u−v)‖ / ‖(α−Δ)^{s/2} v‖`` (relative), computed spectrally
  (:func:`sobolev_norm`); ``s`` and ``α`` from :class:`LossOptions`.
* ``h_minus1`` and ``rel_h_minus1``: the same with ``s = −1``, the H⁻¹ loss of Spectral-Refiner
  (Cao et al., "Spectral-Refiner: Accurate fine-tuning of spatiotemporal neural operator for
  turbulent flows", ICLR 2025).
* ``darcy_residual``: ``‖f − A_h u‖ / |f|``, the discrete residual of ``−∇·(a∇u) = f``
  (:func:`darcy_residual`); needs the input coefficient ``a``.
* ``burgers_residual``: the residual of ``u_t + (u²/2)_x = ν u_xx`` over the predicted time
  levels (:func:`burgers_residual`).

The residual losses are the physics losses of PINO (Li et al., "Physics-informed neural operator
for learning partial differential equations", 2021) and DeepXDE (Lu et al., SIAM Review 2021),
which take the mean square of the residual; here its root, like ``rel_l2``.

:class:`Loss` takes a list of names and weights (``trainer.loss=[rel_l2, darcy_residual]``,
``trainer.loss_weights=[1, 0.1]``) and is called as ``loss(pred, target, grid, inputs)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import torch

from neuralops.errors import ConfigError, InputShapeError
from neuralops.evaluation.metrics import EPS, metric
from neuralops.grid import Grid
from neuralops.spectral.pseudospectral import angular_wavenumbers, dealias_mask, spectral_wavevectors, to_physical, to_spectral
from neuralops.spectral.transforms import fourier_power
from neuralops.tensor_cache import cached_tensors

METRIC_LOSSES = ("mse", "rel_h1", "rel_l2")
"""Losses that are the per-sample metric of the same name (also usable as validation metrics)."""
SOBOLEV_LOSSES = ("sobolev", "rel_sobolev", "h_minus1", "rel_h_minus1")
RESIDUAL_LOSSES = ("darcy_residual", "burgers_residual")
"""Losses that need the model input ``inputs`` (the Darcy coefficient, the last input state)."""
LOSSES = METRIC_LOSSES + SOBOLEV_LOSSES + RESIDUAL_LOSSES
"""Every loss name :class:`Loss` accepts."""
SOBOLEV_ORDERS = (-1, 0, 1, 2)
DIRICHLET_BOUNDARIES = ("dirichlet", "none", "unknown")
"""Boundary attributes of a non-periodic axis that the Darcy residual accepts (it imposes
``u = 0``, the generator's condition; ``none``/``unknown``: a grid that does not say)."""

PerSample = Callable[[torch.Tensor, torch.Tensor, Grid, "torch.Tensor | None"], torch.Tensor]


def check_loss(name: str, option: str = "trainer.loss") -> str:
    """Return ``name`` if it is one of :data:`LOSSES`; :class:`ConfigError` naming ``option`` otherwise."""
    if name not in LOSSES:
        raise ConfigError(f"{option}: unknown loss {name!r}; available: {', '.join(LOSSES)}")
    return name


# -- options ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossOptions:
    """Options of the losses that have any (config group ``trainer.loss_options``).

    Attributes:
        sobolev_order: ``s`` of ``sobolev``/``rel_sobolev``, one of ``-1, 0, 1, 2``.
        sobolev_alpha: ``α > 0`` of every Sobolev loss (``h_minus1`` too), in 1/length² of
            the grid's physical units. ``α = 1`` makes ``s = 1`` the usual H¹ norm
            ``‖u‖² + ‖∇u‖²``; Spectral-Refiner uses ``α = 0.1``.
        forcing: ``f`` of the Darcy equation (a nonzero constant; the generator's ``f = 1``,
            file attribute ``pde_params.forcing``).
        coefficient_channel: the input channel holding the Darcy coefficient ``a``.
        viscosity: ``ν ≥ 0`` of the Burgers equation in length²/time (the file attribute
            ``pde_params.viscosity``); required by ``burgers_residual``.
        dt: time between consecutive predicted states (the spacing of the file's stored
            ``times`` times the task's ``time_stride``; *not* ``pde_params.dt``, the solver's
            internal step); required by ``burgers_residual``.
        input_state: the input channel holding the state one ``dt`` before the first predicted
            one (for a ``window`` task of one state channel without static channels:
            ``steps_in - 1``), so that ``burgers_residual`` also covers the first step;
            ``None``: only the predicted levels are used (then at least 2 are needed).

    Raises:
        ConfigError: one line naming ``trainer.loss_options.<option>`` for a value out of range.
    """

    sobolev_order: int = 1
    sobolev_alpha: float = 1.0
    forcing: float = 1.0
    coefficient_channel: int = 0
    viscosity: float | None = None
    dt: float | None = None
    input_state: int | None = None

    def __post_init__(self) -> None:
        prefix = "trainer.loss_options"
        if isinstance(self.sobolev_order, bool) or self.sobolev_order not in SOBOLEV_ORDERS:
            raise ConfigError(f"{prefix}.sobolev_order must be one of {list(SOBOLEV_ORDERS)}, got {self.sobolev_order!r}")
        if not _finite(self.sobolev_alpha) or self.sobolev_alpha <= 0:
            raise ConfigError(f"{prefix}.sobolev_alpha must be a finite number > 0, got {self.sobolev_alpha!r}")
        if not _finite(self.forcing) or self.forcing == 0:
            raise ConfigError(f"{prefix}.forcing must be a finite nonzero number, got {self.forcing!r}")
        if self.viscosity is not None and (not _finite(self.viscosity) or self.viscosity < 0):
            raise ConfigError(f"{prefix}.viscosity must be a finite number >= 0 or null, got {self.viscosity!r}")
        if self.dt is not None and (not _finite(self.dt) or self.dt <= 0):
            raise ConfigError(f"{prefix}.dt must be a finite number > 0 or null, got {self.dt!r}")
        channels = {"coefficient_channel": self.coefficient_channel}
        if self.input_state is not None:
            channels["input_state"] = self.input_state
        for name, value in channels.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{prefix}.{name} must be a channel index >= 0, got {value!r}")

    @classmethod
    def from_mapping(cls, options: Mapping[str, object] | None) -> "LossOptions":
        """Options from a config mapping (``None``: the defaults).

        Raises:
            ConfigError: an unknown key (the message lists the known ones) or a bad value.
        """
        options = dict(options or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"trainer.loss_options: unknown option(s) {unknown}; available: {', '.join(known)}")
        return cls(**options)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_pair(name: str, pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> None:
    if pred.shape != target.shape or pred.ndim != grid.n_dims + 2 or tuple(pred.shape[2:]) != grid.shape:
        raise InputShapeError(f"loss {name!r}: pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be (B, C, *grid) for the grid {grid.shape}")


def _quadrature_norm(r: torch.Tensor, grid: Grid) -> torch.Tensor:
    """``sqrt(Σ_c ⟨r_c²⟩)`` per sample with the grid's normalized quadrature: ``(B, C, *grid) → (B,)``."""
    w = grid.weights(r.dtype, r.device)
    return torch.sqrt((r**2 * w).flatten(1).sum(dim=1))


# -- Sobolev norms ----------------------------------------------------------------------------
def _even_extension(u: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Extend every non-periodic axis of ``u: (B, C, *grid)`` evenly to a period of twice its
    length: whole-sample symmetric on vertex axes (``2(n−1)`` points), half-sample symmetric on
    cell axes (``2n`` points)."""
    for d, axis in enumerate(grid.axes):
        dim = d + 2
        if axis.kind == "vertex":
            u = torch.cat([u, u.flip(dim).narrow(dim, 1, axis.size - 2)], dim=dim)
        elif axis.kind == "cell":
            u = torch.cat([u, u.flip(dim)], dim=dim)
    return u


@cached_tensors(maxsize=64)
def _sobolev_weights(grid: Grid, order: int, alpha: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``m_k (α + |κ_k|²)^s / N²`` in the ``rfftn`` layout of the even extension (``N`` its
    point count, ``m_k`` = 2 for the last-axis frequencies that stand for a conjugate pair)."""
    sizes, periods = [], []
    for axis in grid.axes:
        if axis.kind not in ("periodic", "vertex", "cell"):
            raise ConfigError(f"the Sobolev losses need periodic, vertex or cell axes; axis {axis.name!r} is {axis.kind}")
        if axis.kind == "vertex" and axis.size < 2:
            raise InputShapeError(f"the Sobolev losses need at least 2 points on the vertex axis {axis.name!r}")
        extended = not axis.periodic
        sizes.append(2 * axis.intervals if extended else axis.size)
        periods.append(2 * axis.length if extended else axis.length)
    wavenumber_sq = sum(k**2 for k in _wavevectors(sizes, periods))
    weights = (alpha + wavenumber_sq) ** order / math.prod(sizes) ** 2
    n_last = sizes[-1]
    pair = torch.full((n_last // 2 + 1,), 2.0, dtype=torch.float64)
    pair[0] = 1.0
    if n_last % 2 == 0:
        pair[-1] = 1.0
    return (weights * pair).to(dtype=dtype, device=device)


def _wavevectors(sizes: Sequence[int], periods: Sequence[float]) -> list[torch.Tensor]:
    """Angular wavenumbers ``2π m / P_d`` of each axis in ``rfftn`` layout (float64), shaped to
    broadcast over the spectrum (:func:`~neuralops.spectral.pseudospectral.spectral_wavevectors`
    with one period per axis)."""
    out = []
    for d, (n, period) in enumerate(zip(sizes, periods)):
        k = angular_wavenumbers(n, period, half=d == len(sizes) - 1, dtype=torch.float64, device=torch.device("cpu"))
        view = [1] * len(sizes)
        view[d] = k.numel()
        out.append(k.reshape(view))
    return out


def sobolev_norm(u: torch.Tensor, grid: Grid, order: int, alpha: float) -> torch.Tensor:
    """The Sobolev norm ``‖(α−Δ)^{s/2} u‖`` per sample, computed spectrally: ``(B,)``.

    ``u: (B, C, *grid.shape)`` real; the channels are summed,
    ``‖u‖² = Σ_c Σ_k (α + |κ_k|²)^s |û_{c,k}|²``, where ``û_k`` are the coefficients of the
    series below normalized so that ``s = 0`` is the grid's quadrature mean of ``u²`` (Parseval):
    the norm is per unit domain measure, like ``rel_l2``, and ``κ`` is in radians per unit of the
    grid's physical length.

    Series per axis (the eigenfunctions of ``−Δ``, so ``(α−Δ)^{s/2}`` is diagonal):

    * ``periodic``: the Fourier series of period ``L``, ``κ = 2πm/L``;
    * ``vertex`` and ``cell``: the cosine series of the even extension about both ends
      (period ``2L``, ``κ = πm/L``, ``m = 0 … intervals``): the eigenfunctions of the Neumann
      Laplacian. The extension is continuous, so a non-periodic field has no jump and its
      coefficients decay like ``m⁻²``. ``s = 0`` is then exactly the trapezoid (vertex) or
      midpoint (cell) quadrature norm of ``rel_l2``, and ``s = 1`` with ``α = 1`` converges to
      the H¹ norm ``sqrt(⟨u²⟩ + ⟨|∇u|²⟩)`` of any smooth field (the form of the Neumann
      Laplacian is all of H¹): spectrally when the extension is smooth, at first order in
      ``h`` when ``∂_n u ≠ 0`` at an end. ``s = 2`` needs ``∂_n u = 0`` at the ends to stay
      bounded under refinement (otherwise it grows like ``n^{1/2}``); ``s = −1`` (the dual
      of H¹) needs nothing.

    Computed as one real FFT of the extension (:func:`~neuralops.spectral.transforms.fourier_power`).

    Args:
        u: ``(B, C, *grid.shape)``.
        grid: the grid of ``u``; axes periodic, vertex or cell.
        order: ``s``, one of :data:`SOBOLEV_ORDERS`.
        alpha: ``α > 0``.

    Raises:
        ConfigError: a colatitude (sphere) axis.
        InputShapeError: ``u`` is not ``(B, C, *grid.shape)``.
    """
    if u.ndim != grid.n_dims + 2 or tuple(u.shape[2:]) != grid.shape:
        raise InputShapeError(f"sobolev_norm: u {tuple(u.shape)} must be (B, C, *grid) for the grid {grid.shape}")
    weights = _sobolev_weights(grid, int(order), float(alpha), u.dtype, u.device)
    power = fourier_power(_even_extension(u, grid), grid.n_dims)
    return torch.sqrt((power * weights).flatten(1).sum(dim=1))


def _sobolev(name: str, options: LossOptions) -> PerSample:
    s = -1 if name.endswith("h_minus1") else options.sobolev_order
    relative = name.startswith("rel_")

    def per_sample(pred: torch.Tensor, target: torch.Tensor, grid: Grid, inputs: torch.Tensor | None) -> torch.Tensor:
        _check_pair(name, pred, target, grid)
        error = sobolev_norm(pred - target, grid, s, options.sobolev_alpha)
        return error / (sobolev_norm(target, grid, s, options.sobolev_alpha) + EPS) if relative else error

    return per_sample


# -- Darcy residual ---------------------------------------------------------------------------
def _harmonic_mean(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return 2.0 * p * q / (p + q)


def darcy_residual(u: torch.Tensor, a: torch.Tensor, grid: Grid, forcing: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Discrete residual ``r = f − A_h u`` of ``−∇·(a∇u) = f`` with ``u = 0`` on the boundary,
    at every grid point: ``(B, 1, *grid.shape)``, in units of ``f``.

    ``A_h`` is the two-point-flux (conservative, 2d+1-point) finite-volume operator of the Darcy
    generator (:mod:`neuralops.data.generators.darcy`; Eymard, Gallouët & Herbin 2000): the flux
    across the face between neighbours ``p, q`` at distance ``h`` (the axis's physical spacing)
    is ``a_pq (u_q − u_p)/h`` with the face coefficient ``a_pq = 2 a_p a_q/(a_p + a_q)``
    (harmonic mean, exact for a piecewise-constant ``a`` jumping at the face), and
    ``(A_h u)_p = −Σ_faces flux / h``. Per axis kind:

    * ``periodic``: faces wrap around;
    * ``cell``: the boundary face half a cell from the first/last centre carries
      ``a_p (0 − u_p)/(h/2)`` (the ghost value ``−u_p`` with coefficient ``a_p``): the Dirichlet
      condition is built into the residual. Its truncation error is ``O(h²)`` when ``u`` is odd
      and ``a`` even about the wall, and ``O(1)`` at the boundary cells otherwise (the usual
      cell-centred closure, whose *solution* is nevertheless second order);
    * ``vertex``: the boundary nodes hold the condition ``u = 0``; their residual is the
      diagonally scaled Dirichlet row ``r_b = −κ_b u_b`` with ``κ_b = a_b Σ_d 2/h_d²`` (the
      diagonal of ``A_h`` for a constant ``a``), so a boundary error counts like an interior
      one; interior nodes next to the boundary use the prediction's boundary values.

    The truncation error on smooth ``u`` and ``a`` is ``O(h²)`` (``tests/test_losses.py``
    measures 2.0), and the residual of the generator's own solutions is at solver tolerance,
    since ``A_h`` is the generator's operator.

    Args:
        u: ``(B, 1, *grid.shape)`` pressure.
        a: ``(B, 1, *grid.shape)`` coefficient (physical values, > 0).
        grid: axes vertex, cell or periodic (any number of axes).
        forcing: ``f``, a number or a tensor broadcasting to ``u``.

    Raises:
        ConfigError: a colatitude axis, or a non-periodic axis whose boundary is not Dirichlet.
        InputShapeError: ``u`` or ``a`` not ``(B, 1, *grid.shape)``, or a ``a ≤ 0`` somewhere
            (normalized instead of physical inputs).
    """
    for x, what in ((u, "u (the prediction)"), (a, "a (the coefficient input)")):
        if x.ndim != grid.n_dims + 2 or x.shape[1] != 1 or tuple(x.shape[2:]) != grid.shape:
            raise InputShapeError(f"darcy_residual: {what} has shape {tuple(x.shape)}, expected (B, 1, *grid) for the grid {grid.shape}")
    if not bool((a > 0).all()):
        raise InputShapeError("darcy_residual: the coefficient a must be positive everywhere; pass the physical (decoded) model input")
    divergence = torch.zeros_like(u)
    boundary = torch.zeros(grid.shape, dtype=torch.bool, device=u.device)
    for d, axis in enumerate(grid.axes):
        dim, h = d + 2, axis.spacing
        if axis.kind not in ("periodic", "vertex", "cell"):
            raise ConfigError(f"darcy_residual needs periodic, vertex or cell axes; axis {axis.name!r} is {axis.kind}")
        if not axis.periodic and axis.boundary not in DIRICHLET_BOUNDARIES:
            raise ConfigError(f"darcy_residual imposes u = 0 on the boundary; axis {axis.name!r} has a {axis.boundary} boundary")
        if axis.periodic:
            flux = _harmonic_mean(a, a.roll(-1, dim)) * (u.roll(-1, dim) - u) / h  # face i + 1/2
            divergence = divergence + (flux - flux.roll(1, dim)) / h
            continue
        n = axis.size
        lo, hi = u.narrow(dim, 0, n - 1), u.narrow(dim, 1, n - 1)
        flux = _harmonic_mean(a.narrow(dim, 0, n - 1), a.narrow(dim, 1, n - 1)) * (hi - lo) / h
        if axis.kind == "cell":
            walls = (a.narrow(dim, 0, 1) * u.narrow(dim, 0, 1) / (h / 2), -a.narrow(dim, n - 1, 1) * u.narrow(dim, n - 1, 1) / (h / 2))
        else:
            walls = (torch.zeros_like(u.narrow(dim, 0, 1)),) * 2
            boundary.select(d, 0).fill_(True)
            boundary.select(d, n - 1).fill_(True)
        flux = torch.cat([walls[0], flux, walls[1]], dim=dim)  # n + 1 faces
        divergence = divergence + flux.diff(dim=dim) / h
    residual = forcing + divergence
    if boundary.any():
        stiffness = a * sum(2.0 / axis.spacing**2 for axis in grid.axes)
        residual = torch.where(boundary, -stiffness * u, residual)
    return residual


def _darcy(options: LossOptions) -> PerSample:
    def per_sample(pred: torch.Tensor, target: torch.Tensor, grid: Grid, inputs: torch.Tensor | None) -> torch.Tensor:
        channel = options.coefficient_channel
        if inputs is None or inputs.ndim < 2 or inputs.shape[1] <= channel:
            shape = None if inputs is None else tuple(inputs.shape)
            raise InputShapeError(f"loss 'darcy_residual' needs the model input with the coefficient a in channel {channel}, got {shape}")
        a = inputs.narrow(1, channel, 1).to(pred.dtype)
        return _quadrature_norm(darcy_residual(pred, a, grid, options.forcing), grid) / abs(options.forcing)

    return per_sample


# -- Burgers residual -------------------------------------------------------------------------
def burgers_residual(u: torch.Tensor, grid: Grid, viscosity: float, dt: float) -> torch.Tensor:
    """Residual of ``u_t + (u²/2)_x = ν u_xx`` between consecutive time levels: ``(B, T−1, N)``.

    ``u: (B, T, N)``: ``T ≥ 2`` states ``dt`` apart on a 1-D periodic grid. At the midpoint
    ``t_{n+1/2}`` of levels ``n, n+1`` (the trapezoidal / Crank–Nicolson form)::

        r_{n+1/2} = (u_{n+1} − u_n)/dt + (F(u_n) + F(u_{n+1}))/2,   F(u) = (u²/2)_x − ν u_xx,

    second order in ``dt`` (truncation ``dt²(u_ttt/24 + F_tt/8)``). ``F`` is pseudo-spectral:
    derivatives by the FFT with ``κ = 2πm/L``, the quadratic term dealiased by the 2/3 rule
    exactly as in the Burgers generator (:mod:`neuralops.data.generators.burgers`), so on a
    smooth periodic solution the spatial error decays spectrally and on the generator's
    (band-limited) solutions it vanishes. Units: those of ``u`` per unit time.

    Args:
        u: ``(B, T, N)``; the channel axis is time.
        grid: one periodic axis of ``N`` points (period ``L = grid.axes[0].length``).
        viscosity: ``ν ≥ 0``.
        dt: time between levels, ``> 0``.

    Raises:
        ConfigError: the grid is not one periodic axis.
        InputShapeError: ``u`` not ``(B, T, N)`` with ``T ≥ 2``.
    """
    if grid.n_dims != 1 or not grid.periodic:
        raise ConfigError(f"burgers_residual needs a 1-D periodic grid, got {grid}")
    if u.ndim != 3 or u.shape[1] < 2 or u.shape[2] != grid.shape[0]:
        raise InputShapeError(f"burgers_residual: u {tuple(u.shape)} must be (B, T >= 2 time levels, N = {grid.shape[0]})")
    n, length = grid.shape[0], grid.axes[0].length
    (k,) = spectral_wavevectors((n,), length, dtype=u.dtype, device=u.device)
    u_hat = to_spectral(u, 1)
    flux_hat = 1j * k * dealias_mask((n,), device=u.device) * to_spectral(u * u / 2, 1)
    rhs = to_physical(flux_hat + viscosity * k**2 * u_hat, (n,))  # F(u)
    return (u[:, 1:] - u[:, :-1]) / dt + (rhs[:, 1:] + rhs[:, :-1]) / 2


def _burgers(options: LossOptions) -> PerSample:
    for name in ("viscosity", "dt"):
        if getattr(options, name) is None:
            raise ConfigError(f"loss 'burgers_residual' needs trainer.loss_options.{name} (see LossOptions)")

    def per_sample(pred: torch.Tensor, target: torch.Tensor, grid: Grid, inputs: torch.Tensor | None) -> torch.Tensor:
        levels = pred
        if options.input_state is not None:
            if inputs is None or inputs.ndim != 3 or inputs.shape[1] <= options.input_state:
                shape = None if inputs is None else tuple(inputs.shape)
                raise InputShapeError(f"loss 'burgers_residual' reads input channel {options.input_state} (input_state), got inputs {shape}")
            levels = torch.cat([inputs.narrow(1, options.input_state, 1).to(pred.dtype), pred], dim=1)
        r = burgers_residual(levels, grid, options.viscosity, options.dt)
        return _quadrature_norm(r, grid) / math.sqrt(r.shape[1])

    return per_sample


# -- the combined loss ------------------------------------------------------------------------
def _per_sample(name: str, options: LossOptions) -> PerSample:
    if name in METRIC_LOSSES:
        fn = metric(name)
        return lambda pred, target, grid, inputs: fn(pred, target, grid)
    if name in SOBOLEV_LOSSES:
        return _sobolev(name, options)
    return _darcy(options) if name == "darcy_residual" else _burgers(options)


class Loss(torch.nn.Module):
    """``loss(pred, target, grid, inputs)`` = ``Σ_i w_i · mean over the batch of loss_i``.

    Args:
        names: one name or a list of :data:`LOSSES`.
        weights: one weight ``> 0`` per name (``None``: all 1).
        options: :class:`LossOptions` (``None``: the defaults).

    Call:
        ``pred, target: (B, C, *grid.shape)`` physical (decoded) outputs; ``grid`` their
        :class:`~neuralops.grid.Grid`; ``inputs: (B, C_in, *grid.shape)`` the physical model
        input, needed by the residual losses (:data:`RESIDUAL_LOSSES`). Returns a scalar;
        :meth:`terms` gives the unweighted batch mean of each loss.

    Raises:
        ConfigError: one line for an unknown or repeated name, weights that do not give one
            finite positive number per name, or options a chosen loss needs (the Burgers
            ``viscosity`` and ``dt``).
    """

    def __init__(self, names: str | Sequence[str] = "rel_l2", weights: Sequence[float] | None = None, options: LossOptions | None = None):
        super().__init__()
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ConfigError(f"trainer.loss: give at least one loss; available: {', '.join(LOSSES)}")
        for name in names:
            check_loss(name)
        if len(set(names)) != len(names):
            raise ConfigError(f"trainer.loss: a loss is listed twice in {names}")
        weights = [1.0] * len(names) if weights is None else list(weights)
        if len(weights) != len(names) or not all(_finite(w) and w > 0 for w in weights):
            raise ConfigError(f"trainer.loss_weights must give one finite number > 0 per loss {names}, got {weights}")
        self.names, self.weights = names, [float(w) for w in weights]
        self.options = LossOptions() if options is None else options
        self.per_sample = {name: _per_sample(name, self.options) for name in names}
        self.needs_inputs = any(name in RESIDUAL_LOSSES for name in names)

    def terms(self, pred: torch.Tensor, target: torch.Tensor, grid: Grid, inputs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{name: batch mean of the per-sample loss}`` (unweighted scalars)."""
        return {name: fn(pred, target, grid, inputs).mean() for name, fn in self.per_sample.items()}

    def forward(self, pred: torch.Tensor, target: torch.Tensor, grid: Grid, inputs: torch.Tensor | None = None) -> torch.Tensor:
        terms = self.terms(pred, target, grid, inputs)
        return sum(w * terms[name] for name, w in zip(self.names, self.weights))
