"""Evaluation metrics on a :class:`~neuralops.grid.Grid`: raw per-sample (and per-channel)
errors first, reductions explicit.

Every metric takes ``pred, target: (B, C, *grid.shape)`` and the :class:`Grid` they sit on,
and returns one value per sample, ``(B,)``; its per-channel form (:data:`CHANNEL_METRICS`)
returns ``(B, C)``. Means over a test set are taken by the caller (:class:`MetricAccumulator`),
weighting every sample equally.

Spatial means and norms are quadrature-weighted with ``grid.weights()`` (normalized to sum 1):
trapezoid weights on vertex axes, uniform on cell and periodic axes, and area weights on the
sphere (colatitude weights include ``sin θ``), so every metric is a discretisation of the same
continuous quantity at every resolution and kind. Below, ``⟨f⟩ = Σ_x w(x) f(x)`` is that
weighted spatial mean, ``e = p − y``, and ``c`` runs over the ``C`` channels.

Sources: PDEBench (Takamoto et al., NeurIPS 2022, ``pdebench/models/metrics.py``; re-implemented
from its specification, no code copied) for ``nrmse``, ``max_error``, ``brmse`` and the
``frmse_*`` bands; The Well (Ohana et al., NeurIPS 2024, ``benchmark/metrics/spatial.py``) for
``vrmse``; the neural-operator literature (Li et al., ICLR 2021) for ``rel_l2`` and ``rel_h1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from neuralops.errors import ConfigError, InputShapeError
from neuralops.grid import COLATITUDE_KINDS, Grid
from neuralops.spectral.transforms import fourier_power
from neuralops.tensor_cache import cached_tensors

EPS = 1e-12
"""Added to the denominator of the relative errors (``rel_l2``, ``rel_h1``, ``nrmse``), so a
zero target gives a finite value."""
VRMSE_EPS = 1e-7
"""The Well's ``eps`` in ``sqrt(MSE / (Var(y) + eps))``."""
FRMSE_BANDS = {"frmse_low": (0, 4), "frmse_mid": (4, 12), "frmse_high": (12, math.inf)}
"""PDEBench's fRMSE bands of the integer radial wavenumber shell ``k`` (``iLow=4``, ``iHigh=12``)."""

Metric = Callable[[torch.Tensor, torch.Tensor, Grid], torch.Tensor]


# -- helpers ----------------------------------------------------------------------------------
def batch_grid(grid: Grid | None, shape: Sequence[int]) -> Grid:
    """The grid of a batch whose spatial shape is ``shape``: ``grid``'s domain resized to it
    (a loader may mix resolutions of one domain), or for ``grid=None`` a uniform vertex grid
    on the unit domain ``[0, 1]^d``."""
    shape = tuple(int(n) for n in shape)
    return Grid.uniform(shape, "vertex") if grid is None else grid.resized(shape)


def _check(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> None:
    if pred.shape != target.shape or pred.ndim != grid.n_dims + 2 or tuple(pred.shape[2:]) != grid.shape:
        raise InputShapeError(
            f"metric inputs: pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be "
            f"(B, C, *grid) for the grid {grid.shape}"
        )


@cached_tensors(maxsize=32)
def _weights(grid: Grid, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return grid.weights(dtype, device).flatten()


def _mean(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Quadrature-weighted spatial mean ``⟨x⟩``: ``(B, C, *grid) → (B, C)``."""
    return x.flatten(2) @ _weights(grid, x.dtype, x.device)


def _boundary_axes(grid: Grid) -> list[int]:
    """Indices of the axes with boundary points: not periodic and not a colatitude."""
    return [d for d, axis in enumerate(grid.axes) if not axis.periodic and axis.kind not in COLATITUDE_KINDS]


@cached_tensors(maxsize=32)
def _boundary_mask(grid: Grid) -> torch.Tensor:
    axes = _boundary_axes(grid)
    if not axes:
        raise ConfigError(f"metric 'brmse': the grid {grid} has no boundary (every axis is periodic or on the sphere)")
    mask = torch.zeros(grid.shape, dtype=torch.bool)
    for d in axes:
        mask.select(d, 0).fill_(True)
        mask.select(d, -1).fill_(True)
    return mask.flatten()


def _derivatives(u: torch.Tensor, grid: Grid) -> list[torch.Tensor]:
    """``∂_d u`` along every axis ``d`` of ``u: (B, C, *grid)`` in physical units (per unit
    length; per radian on the sphere)."""
    out = []
    for d, axis in enumerate(grid.axes):
        dim = d + 2
        if axis.size < 3:
            raise InputShapeError(f"metric 'rel_h1' needs at least 3 points along axis {axis.name!r}, got {axis.size}")
        if axis.periodic:
            out.append((u.roll(-1, dim) - u.roll(1, dim)) / (2 * axis.spacing))
        else:
            spacing = axis.spacing if axis.uniform else torch.as_tensor(axis.coords, dtype=u.dtype, device=u.device)
            out.append(torch.gradient(u, spacing=[spacing], dim=dim, edge_order=2)[0])
    return out


def _h1_squared(u: torch.Tensor, grid: Grid) -> torch.Tensor:
    """``⟨u²⟩ + Σ_d ⟨(∂_d u)²⟩`` per sample and channel: ``(B, C)``."""
    total = _mean(u**2, grid)
    for derivative in _derivatives(u, grid):
        total = total + _mean(derivative**2, grid)
    return total


def _shell_energy(e: torch.Tensor, grid: Grid) -> torch.Tensor:
    """``S_k = Σ |ê_i|²`` over the multi-indices ``i ≥ 0`` with ``i_d < n_d/2`` and
    ``⌊|i|⌋ = k``, for the shells ``k < min(n)/2``: ``(B, C, K)``."""
    dims = tuple(range(2, e.ndim))
    keep = [(n + 1) // 2 for n in grid.shape]  # i_d < n_d / 2
    power = fourier_power(e, len(dims))
    power = power[(..., *(slice(0, k) for k in keep))].flatten(2)
    index = torch.meshgrid(*(torch.arange(k, dtype=torch.float64) for k in keep), indexing="ij")
    shell = torch.sqrt(sum(i**2 for i in index)).floor().long().flatten().to(e.device)
    n_shells = min(keep)
    inside = shell < n_shells
    out = power.new_zeros(*power.shape[:2], n_shells)
    return out.index_add_(2, shell[inside], power[..., inside])


# -- per-channel forms (B, C) ------------------------------------------------------------------
def channel_mse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Mean squared error per channel ``⟨e_c²⟩``: ``(B, C)``, data units squared."""
    _check(pred, target, grid)
    return _mean((pred - target) ** 2, grid)


def channel_rmse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Root mean squared error per channel ``sqrt⟨e_c²⟩``: ``(B, C)``, data units."""
    return torch.sqrt(channel_mse(pred, target, grid))


def channel_relative_l2(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Relative L2 error per channel ``sqrt⟨e_c²⟩ / (sqrt⟨y_c²⟩ + EPS)``: ``(B, C)``,
    dimensionless (PDEBench's per-channel nRMSE, quadrature-weighted)."""
    return channel_rmse(pred, target, grid) / (torch.sqrt(_mean(target**2, grid)) + EPS)


def channel_relative_h1(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Relative H1 error per channel ``‖e_c‖_H1 / (‖y_c‖_H1 + EPS)``: ``(B, C)``
    (see :func:`relative_h1`)."""
    _check(pred, target, grid)
    return torch.sqrt(_h1_squared(pred - target, grid)) / (torch.sqrt(_h1_squared(target, grid)) + EPS)


def channel_max_error(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Largest ``|e_c|`` over the grid points per channel: ``(B, C)``, data units."""
    _check(pred, target, grid)
    return (pred - target).abs().flatten(2).amax(dim=2)


def channel_vrmse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Variance-scaled RMSE per channel ``sqrt(⟨e_c²⟩ / (⟨(y_c − ⟨y_c⟩)²⟩ + 1e-7))``:
    ``(B, C)``, dimensionless (see :func:`vrmse`)."""
    centred = target - _mean(target, grid)[(..., *([None] * grid.n_dims))]
    return torch.sqrt(channel_mse(pred, target, grid) / (_mean(centred**2, grid) + VRMSE_EPS))


def channel_brmse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """RMSE over the boundary points per channel: ``(B, C)``, data units (see :func:`brmse`)."""
    _check(pred, target, grid)
    mask = _boundary_mask(grid).to(pred.device)
    return torch.sqrt(((pred - target).flatten(2)[..., mask] ** 2).mean(dim=2))


def _channel_frmse(band: str) -> Metric:
    low, high = FRMSE_BANDS[band]

    def per_channel(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
        _check(pred, target, grid)
        shells = _shell_energy(pred - target, grid)[..., low : None if math.isinf(high) else high]
        scale = math.prod(grid.lengths) / math.prod(grid.shape)
        if shells.shape[-1] == 0:
            return shells.new_full(shells.shape[:2], math.nan)
        return torch.sqrt(shells.mean(dim=2)) * scale

    per_channel.__name__ = f"channel_{band}"
    per_channel.__doc__ = f"``{band}`` per channel: ``(B, C)`` (see :func:`{band}`)."
    return per_channel


channel_frmse_low = _channel_frmse("frmse_low")
channel_frmse_mid = _channel_frmse("frmse_mid")
channel_frmse_high = _channel_frmse("frmse_high")


# -- per-sample metrics (B,) -------------------------------------------------------------------
def mse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Mean squared error ``(1/C) Σ_c ⟨e_c²⟩`` per sample: ``(B,)``, data units squared.

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
    """
    return channel_mse(pred, target, grid).mean(dim=1)


def rmse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Root mean squared error ``sqrt((1/C) Σ_c ⟨e_c²⟩)`` over channels and space, per sample:
    ``(B,)``, data units (PDEBench's RMSE with quadrature weights; it averages the per-channel
    values instead — our per-channel form is that value).

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
    """
    return torch.sqrt(mse(pred, target, grid))


def relative_l2(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Relative L2 error ``‖e‖ / ‖y‖`` over channels and space, per sample: ``(B,)``,
    dimensionless.

    ``‖u‖² = Σ_c ⟨u_c²⟩``, the grid's quadrature L2 norm (area-weighted on the sphere); ``EPS``
    is added to the denominator. The per-channel form is :func:`channel_relative_l2`.

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
    """
    _check(pred, target, grid)
    error = _mean((pred - target) ** 2, grid).sum(dim=1)
    norm = _mean(target**2, grid).sum(dim=1)
    return torch.sqrt(error) / (torch.sqrt(norm) + EPS)


def relative_h1(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Relative H1 error ``‖e‖_H1 / ‖y‖_H1`` over channels and space, per sample: ``(B,)``,
    dimensionless.

    ``‖u‖²_H1 = Σ_c (⟨u_c²⟩ + Σ_d ⟨(∂_d u_c)²⟩)``: the grid's quadrature of ``u²`` plus the
    squared derivatives along every axis, taken by finite differences with the true physical
    spacing of each axis (so the balance of the two terms depends on the domain lengths):
    second-order central differences inside; on non-periodic axes second-order one-sided
    differences at the two ends (``torch.gradient(edge_order=2)``), on periodic axes central
    differences that wrap around. Colatitude axes use their node coordinates (non-uniform for
    ``legendre_gauss``). On the sphere the derivatives are the coordinate derivatives
    ``∂_θ, ∂_φ`` (per radian), not the covariant surface gradient (whose ``1/sin θ`` is
    singular at the poles of an equiangular grid); the quadrature is area-weighted.
    ``EPS`` is added to the denominator.

    This differs from neuraloperator's ``H1Loss``, which assumes every axis periodic (central
    differences that wrap around, so the first and last points of a Dirichlet grid are
    differenced against each other) and weights all points equally: here periodicity is used
    only on periodic axes, so the metric is meaningful for Dirichlet problems such as Darcy
    flow, and the norm is the grid's quadrature.

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``, or an
            axis has fewer than 3 points.
    """
    _check(pred, target, grid)
    error = _h1_squared(pred - target, grid).sum(dim=1)
    norm = _h1_squared(target, grid).sum(dim=1)
    return torch.sqrt(error) / (torch.sqrt(norm) + EPS)


def nrmse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """PDEBench's normalized RMSE ``(1/C) Σ_c sqrt⟨e_c²⟩ / (sqrt⟨y_c²⟩ + EPS)`` per sample:
    ``(B,)``, dimensionless.

    PDEBench takes unweighted means over the grid points; here they are quadrature-weighted
    (identical on cell and periodic grids). The per-channel form is
    :func:`channel_relative_l2`.

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
    """
    return channel_relative_l2(pred, target, grid).mean(dim=1)


def max_error(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Largest absolute error ``max_{c,x} |e_c(x)|`` per sample: ``(B,)``, data units.

    A true L∞ over channels and grid points (PDEBench's ``Max`` instead averages the per-channel
    maxima of the batch over channels). No quadrature weights are involved.

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
    """
    return channel_max_error(pred, target, grid).amax(dim=1)


def vrmse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The Well's variance-scaled RMSE ``(1/C) Σ_c sqrt(⟨e_c²⟩ / (Var(y_c) + 1e-7))`` per
    sample: ``(B,)``, dimensionless; predicting the spatial mean of the target scores ~1.

    ``Var(y_c) = ⟨(y_c − ⟨y_c⟩)²⟩`` is the quadrature-weighted variance over space (The Well
    uses unweighted means).

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
    """
    return channel_vrmse(pred, target, grid).mean(dim=1)


def brmse(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
    """RMSE over the boundary points ``sqrt(mean_{c, x ∈ ∂} e_c(x)²)`` per sample: ``(B,)``,
    data units.

    The boundary points are the first and last point of every axis that is neither periodic
    nor a colatitude (for a cell axis: the cell centres next to the walls), each point counted
    once and weighted equally (PDEBench's 2-D bRMSE counts the corners twice; we do not).

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
        ConfigError: the grid has no boundary (fully periodic, or a sphere): the metric is
            undefined on that domain at every resolution, so choose another.
    """
    return torch.sqrt((channel_brmse(pred, target, grid) ** 2).mean(dim=1))


def _frmse(band: str, channel: Metric) -> Metric:
    low, high = FRMSE_BANDS[band]

    def per_sample(pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> torch.Tensor:
        return channel(pred, target, grid).mean(dim=1)

    per_sample.__name__ = band
    per_sample.__doc__ = f"""PDEBench's fRMSE in the band ``{low} ≤ k < {high}`` per sample: ``(B,)``, data units.

    Per channel: ``Ê = FFT(e_c)`` over space (unnormalized forward transform, index-based,
    no quadrature weights); ``S_k = Σ |Ê_i|²`` over the non-negative multi-indices with
    ``i_d < n_d/2`` on every axis and integer radial shell ``⌊sqrt(Σ_d i_d²)⌋ = k``, for the
    shells ``k < min(n)/2``; the value is ``sqrt(mean_{{k in band}} S_k) / Π n_d · Π L_d``
    with ``L_d`` the physical axis lengths of the grid. The sample's value is the mean over
    channels. In 1-D this is PDEBench's rfft bins without the Nyquist bin of an even ``n``.

    PDEBench takes the square root after a mean over the batch; we report each sample, so the
    test-set mean is a mean of square roots. The bands are fixed wavenumber *indices*, so values
    at different resolutions are not comparable. A band with no shell at this resolution
    (``frmse_mid`` needs ``min(n) ≥ 9``, ``frmse_high`` ``min(n) ≥ 25``) gives NaN, so a
    resolution sweep carries on.

    Raises:
        InputShapeError: ``pred`` and ``target`` are not both ``(B, C, *grid.shape)``.
    """
    return per_sample


frmse_low = _frmse("frmse_low", channel_frmse_low)
frmse_mid = _frmse("frmse_mid", channel_frmse_mid)
frmse_high = _frmse("frmse_high", channel_frmse_high)


# -- registry ----------------------------------------------------------------------------------
METRICS: dict[str, Metric] = {
    "rel_l2": relative_l2,
    "rel_h1": relative_h1,
    "mse": mse,
    "rmse": rmse,
    "nrmse": nrmse,
    "max_error": max_error,
    "vrmse": vrmse,
    "frmse_low": frmse_low,
    "frmse_mid": frmse_mid,
    "frmse_high": frmse_high,
    "brmse": brmse,
}
"""Per-sample metrics by name: ``fn(pred, target, grid) -> (B,)``."""

CHANNEL_METRICS: dict[str, Metric] = {
    "rel_l2": channel_relative_l2,
    "rel_h1": channel_relative_h1,
    "mse": channel_mse,
    "rmse": channel_rmse,
    "nrmse": channel_relative_l2,
    "max_error": channel_max_error,
    "vrmse": channel_vrmse,
    "frmse_low": channel_frmse_low,
    "frmse_mid": channel_frmse_mid,
    "frmse_high": channel_frmse_high,
    "brmse": channel_brmse,
}
"""Per-channel forms by metric name: ``fn(pred, target, grid) -> (B, C)``."""


def metric(name: str) -> Metric:
    """The per-sample metric registered as ``name``.

    Raises:
        ConfigError: ``name`` is not registered (the message lists the available names).
    """
    check_metrics([name])
    return METRICS[name]


def check_metrics(names: Sequence[str], grid: Grid | None = None, option: str = "metric") -> list[str]:
    """Return ``names`` as a list if every one is a registered metric (and, with ``grid``,
    defined on that grid's domain: ``brmse`` needs a boundary).

    Raises:
        ConfigError: one line naming ``option`` and the unknown metric(s) with the available
            names, or the metric the grid does not support.
    """
    names = list(names)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ConfigError(f"{option}: unknown metric(s) {unknown}; available: {', '.join(sorted(METRICS))}")
    if grid is not None and "brmse" in names and not _boundary_axes(grid):
        raise ConfigError(f"{option}: 'brmse' is undefined on the grid {grid}, which has no boundary")
    return names


class MetricAccumulator:
    """Sums per-sample and per-channel metric values over batches, in float64.

    Args:
        names: registered metric names (:data:`METRICS`).

    Raises:
        ConfigError: an unknown metric name.
    """

    def __init__(self, names: Sequence[str]):
        self.names = check_metrics(names)
        self.sums = {name: 0.0 for name in self.names}
        self.channel_sums: dict[str, torch.Tensor] = {}
        self.channels: int | None = None
        self.count = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, grid: Grid) -> None:
        """Add the samples of one batch, ``pred, target: (B, C, *grid.shape)`` (computed in float64).

        Raises:
            InputShapeError: wrong shapes, or a channel count other than earlier batches'.
            ConfigError: a metric undefined on ``grid`` (``brmse`` without a boundary).
        """
        pred, target = pred.double(), target.double()
        if self.channels is not None and pred.shape[1] != self.channels:
            raise InputShapeError(f"MetricAccumulator: a batch of {pred.shape[1]} channels after batches of {self.channels}")
        for name in self.names:
            self.sums[name] += float(METRICS[name](pred, target, grid).sum())
            per_channel = CHANNEL_METRICS[name](pred, target, grid).sum(dim=0).cpu()
            self.channel_sums[name] = self.channel_sums[name] + per_channel if name in self.channel_sums else per_channel
        self.channels = pred.shape[1]
        self.count += pred.shape[0]

    def _require_samples(self) -> None:
        if self.count == 0:
            raise ConfigError("no samples were evaluated (the evaluation split is empty)")

    def means(self) -> dict[str, float]:
        """``{name: mean over samples}`` (samples weighted equally).

        Raises:
            ConfigError: nothing was accumulated (the evaluation split is empty).
        """
        self._require_samples()
        return {name: total / self.count for name, total in self.sums.items()}

    def channel_means(self, channel_names: Sequence[str]) -> dict[str, dict[str, float]]:
        """``{name: {channel: mean over samples}}`` of the per-channel forms.

        Raises:
            ConfigError: nothing was accumulated (the evaluation split is empty).
            InputShapeError: ``channel_names`` does not give one name per channel.
        """
        self._require_samples()
        if len(channel_names) != self.channels:
            raise InputShapeError(f"MetricAccumulator: {len(channel_names)} channel names {list(channel_names)} for {self.channels} channels")
        return {name: {channel: float(total) / self.count for channel, total in zip(channel_names, sums)}
                for name, sums in self.channel_sums.items()}
