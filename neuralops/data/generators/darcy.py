"""2-D Darcy flow, the FNO benchmark problem: coefficient ``a`` → pressure ``u``.

    -∇·(a(x, y) ∇u(x, y)) = f   on (0, 1)²,   f = 1,   u = 0 on the boundary.

The coefficient is piecewise constant, ``a = A_HIGH (12)`` where a Gaussian random field ψ is
>= 0 and ``A_LOW (3)`` elsewhere (Li et al., "Fourier Neural Operator", ICLR 2021, §5.2: ψ ~
N(0, (-Δ + 9I)^-2) with homogeneous Neumann boundary conditions, i.e. τ = 3, α = 2).

ψ is a truncated Karhunen–Loève series in the Neumann eigenfunctions of -Δ on the unit square,
``ψ(x, y) = Σ_{k,l < K} c_kl ξ_kl φ_k(x) φ_l(y)`` with ``φ_0 = 1``, ``φ_k = √2 cos(πkx)``,
``ξ_kl ~ N(0, 1)`` and ``c_kl = τ^(α-1) (π²(k² + l²) + τ²)^(-α/2)``. The constant mode is
dropped (ψ has zero spatial mean), as in the FNO authors' data generation, so about half the
domain has each value. The coefficients ``ξ`` are drawn once per sample and the *continuous* ψ is
evaluated on every requested grid, so a sample has the same coefficient field at every
resolution: nested vertex grids (``(n - 1)`` dividing ``(m - 1)``, e.g. 17, 33, 65) agree
exactly at their shared points.

Two grid kinds (:data:`GRIDS`, the file attribute ``grid``), ``n`` points per axis, arrays
indexed ``[i, j]`` ↔ point ``(x_i, y_j)``:

* ``vertex``: ``x_i = i/(n - 1)``, both boundaries included, ``h = 1/(n - 1)``; the unknowns are
  the ``(n - 2)²`` interior nodes and ``u = 0`` is stored on the boundary nodes.
* ``cell``: the centres ``x_i = (i + 1/2)/n`` of ``n`` cells, ``h = 1/n``; every point is an
  unknown and ``u = 0`` is imposed on the boundary faces, half a cell from the nearest centre.

Both use the two-point-flux finite-volume scheme (Eymard, Gallouët & Herbin, "Finite Volume
Methods", Handbook of Numerical Analysis VII, 2000, ch. III; harmonic-mean face conductivities
as in Patankar, "Numerical Heat Transfer and Fluid Flow", 1980, ch. 4): the flux across the face
between neighbours ``p`` and ``q`` is ``2 a_p a_q / (a_p + a_q) · (u_q - u_p) / h`` (two
half-cells in series); on a cell grid a boundary face carries ``a_p · (0 - u_p) / (h/2)``. The
5-point system is symmetric positive definite and second order for smooth ``a``
(``tests/test_data_darcy.py`` measures it on manufactured solutions).

Two solvers of the same discretisation: :func:`solve_darcy` (one sample, sparse LU) and
:func:`solve_darcy_batch` (many samples at once, conjugate gradients preconditioned by the
constant-coefficient operator, inverted exactly with fast sine transforms, see
:func:`laplacian_preconditioner`). Every face conductivity of ``a`` is ``c`` times that of
``a = 1`` with ``c`` in ``[A_LOW, A_HIGH]``, so the preconditioned operator's condition number is
at most ``A_HIGH / A_LOW = 4`` on either grid kind and any grid size: CG gains a factor
``(√4 - 1)/(√4 + 1) = 1/3`` per iteration and reaches a relative residual of 1e-10 in about 22
iterations, each costing two sine transforms and one stencil application on the whole batch. The
command line uses the batch solver (``--solver pcg``, the default); ``benchmarks/bench_darcy.py``
compares it with the per-sample LU and the alternatives we measured.

How the grids of a file relate (:class:`DarcyOptions`):

* By default every requested grid is solved on its own from the same ψ (file attribute
  ``coarsening = "solved_per_grid"``): a coarse grid then holds the coarse *discretisation*,
  which differs from the fine one by the discretisation error (2.4% at the shared nodes between
  17² and 65² vertex grids), so a model trained at one resolution is judged against another
  grid's numerical error.
* ``--reference-resolution N`` solves every sample once on the ``N``-point reference grid of
  the chosen kind and stores on each requested grid the restriction of that solution
  (:func:`restrict`), as in the FNO data (Li et al. 2021, §5.2: solved on 421² and subsampled to
  85², 141², 211²). Vertex grids (``N - 1`` a multiple of ``n - 1``) hold the reference ``u`` at
  their nodes, which are reference nodes (``coarsening = "subsampled"``). Cell grids (``N`` a
  multiple of ``n``) hold the mean of the reference cell values in each coarse cell: a
  finite-volume cell value approximates the cell average, and the average over a coarse cell is
  the mean of its fine cell averages, so this is the cell-average restriction (for a factor 2,
  the four-point average restriction of cell-centred multigrid: Trottenberg, Oosterlee &
  Schüller, "Multigrid", Academic Press 2001). It is a box filter followed by decimation, a (first-order) anti-aliasing filter, hence
  ``coarsening = "filtered"``. The coarse cells' boundary faces are reference boundary faces,
  so the Dirichlet data ``u = 0`` is the same.
* ``--coefficient average`` (with a reference resolution) stores as input on each grid the
  mean of the thresholded field over each point's control volume (:func:`control_volumes`,
  :func:`average_coefficient`) instead of its point value. The thresholded field jumps between
  ``A_LOW`` and ``A_HIGH``: a point value on a coarse grid samples it without a low-pass filter
  and aliases (whether a cell reads 3 or 12 depends on which side of an interface its centre
  falls), while the control-volume average is the resolution-consistent coarse-graining: the
  average over a coarse volume is the mean of the averages over the fine volumes that tile it.
  The reference solve keeps the point values at the reference grid (the PDE's coefficient);
  only the stored input is averaged.

Sample ``i`` depends only on ``(seed, i)`` in every mode: its ψ comes from
``sample_rng(seed, i)``, and its stored arrays on a grid do not depend on which other grids or
samples are requested.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import scipy.fft
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve
from tqdm import tqdm

from neuralops.data.generators import GenerationRequest, sample_rng
from neuralops.data.generators.parallel import batches, map_batches, report_progress, reporting_to
from neuralops.data.schema import DatasetMetadata, DatasetWriter
from neuralops.errors import ConfigError
from neuralops.grid import intervals, unit_coordinates

TAU = 3.0
ALPHA = 2.0
A_HIGH = 12.0
A_LOW = 3.0
FORCING = 1.0
GRF_MODES = 64
"""Cosine modes per axis kept in ψ: at k = 64, c_kl is below 1/2000 of c_01, and the dropped
tail carries under 0.02% of ψ's variance."""


GRIDS = ("vertex", "cell")
"""Grid kinds of the generator (file attribute ``grid``), see the module docstring."""
_BOUNDARY_POINTS = {"vertex": 2, "cell": 0}
"""Points per axis that are not unknowns: the two boundary nodes of a vertex grid."""


def check_grid(grid: str, option: str = "grid") -> str:
    """Return ``grid`` if it is one of :data:`GRIDS`; :class:`ConfigError` naming ``option`` otherwise."""
    if grid not in GRIDS:
        raise ConfigError(f"{option}={grid!r} is not a Darcy grid kind; expected one of {list(GRIDS)}")
    return grid


def _unknowns_per_axis(n: int, grid: str) -> int:
    """Unknowns per axis of an ``n``-point grid: ``n - 2`` (vertex) or ``n`` (cell).

    Raises:
        ConfigError: ``grid`` not in :data:`GRIDS`, or no unknown (vertex ``n < 3``, cell ``n < 1``).
    """
    check_grid(grid)
    if n - _BOUNDARY_POINTS[grid] < 1:
        raise ConfigError(f"a Darcy {grid} grid needs at least {_BOUNDARY_POINTS[grid] + 1} points per axis (one unknown), got {n}")
    return n - _BOUNDARY_POINTS[grid]


def grid_points(n: int, grid: str = "vertex") -> np.ndarray:
    """The ``n`` points per axis of a Darcy grid on [0, 1], float64 ``(n,)``: ``i/(n-1)``, both
    ends included (``vertex``), or the cell centres ``(i + 1/2)/n`` (``cell``).

    Raises:
        ConfigError: ``grid`` not in :data:`GRIDS`, or no unknown on the grid (vertex ``n < 3``,
            cell ``n < 1``).
    """
    _unknowns_per_axis(n, grid)
    return np.linspace(0.0, 1.0, n) if grid == "vertex" else unit_coordinates(n, "cell")


def vertex_grid(n: int) -> np.ndarray:
    """``n`` points on [0, 1] including both ends, float64 ``(n,)``: ``grid_points(n, "vertex")``."""
    return grid_points(n, "vertex")


def grf_coefficients(rng: np.random.Generator, n_modes: int = GRF_MODES, tau: float = TAU, alpha: float = ALPHA) -> np.ndarray:
    """Draw the KL coefficients ``c_kl ξ_kl`` of ψ, float64 ``(n_modes, n_modes)``; entry [0, 0] is 0."""
    k = np.arange(n_modes)
    eig = np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2
    coeffs = tau ** (alpha - 1) * eig ** (-alpha / 2) * rng.standard_normal((n_modes, n_modes))
    coeffs[0, 0] = 0.0
    return coeffs


def cosine_basis(points: np.ndarray, n_modes: int) -> np.ndarray:
    """Orthonormal Neumann cosine basis on [0, 1] at ``points``: ``(len(points), n_modes)``."""
    basis = np.sqrt(2.0) * np.cos(np.pi * points[:, None] * np.arange(n_modes)[None, :])
    basis[:, 0] = 1.0
    return basis


def evaluate_grf(coeffs: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ψ at the points ``(x_i, y_j)``: float64 ``(len(x), len(y))``."""
    n_modes = coeffs.shape[0]
    return cosine_basis(x, n_modes) @ coeffs @ cosine_basis(y, n_modes).T


def threshold(psi: np.ndarray, a_high: float = A_HIGH, a_low: float = A_LOW) -> np.ndarray:
    """Piecewise-constant coefficient: ``a_high`` where ``psi >= 0``, ``a_low`` elsewhere."""
    return np.where(psi >= 0.0, a_high, a_low)


def _harmonic_mean(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 2.0 * p * q / (p + q)


def _face_conductances(a: np.ndarray, grid: str) -> tuple[np.ndarray, np.ndarray]:
    """Conductivities over h² of the faces around the unknowns, for coefficients ``(..., n, n)``.

    Returns ``(face_x (..., m+1, m), face_y (..., m, m+1))`` with ``m`` unknowns per axis: face
    ``i`` along an axis is the lower face of unknown ``i`` and face ``i + 1`` its upper one.
    Between two points the harmonic mean of their coefficients; on a cell grid the boundary faces
    lie half a cell from the centre, ``a / (h/2) / h = 2a/h²``; on a vertex grid the faces to the
    boundary nodes are ordinary faces (the nodes hold ``u = 0``).
    """
    inv_h2 = float(intervals(a.shape[-1], grid)) ** 2
    face_x = _harmonic_mean(a[..., :-1, :], a[..., 1:, :]) * inv_h2
    face_y = _harmonic_mean(a[..., :, :-1], a[..., :, 1:]) * inv_h2
    if grid == "vertex":
        return face_x[..., :, 1:-1], face_y[..., 1:-1, :]
    wall = 2.0 * inv_h2 * a
    return (
        np.concatenate([wall[..., :1, :], face_x, wall[..., -1:, :]], axis=-2),
        np.concatenate([wall[..., :, :1], face_y, wall[..., :, -1:]], axis=-1),
    )


class _Stencil:
    """The 5-point operator on the ``m x m`` unknowns of a grid, for coefficients ``(..., n, n)``.

    Holds the diagonal and the four face conductivities ``(..., m, m)`` of each unknown
    (couplings to boundary values are dropped since ``u = 0`` there).
    """

    def __init__(self, a: np.ndarray, grid: str):
        face_x, face_y = _face_conductances(a, grid)
        self.west, self.east = face_x[..., :-1, :], face_x[..., 1:, :]
        self.south, self.north = face_y[..., :, :-1], face_y[..., :, 1:]
        self.diagonal = self.west + self.east + self.south + self.north

    def apply(self, u: np.ndarray) -> np.ndarray:
        """``A u`` for ``u`` of shape ``(..., m, m)``."""
        out = self.diagonal * u
        out[..., 1:, :] -= self.west[..., 1:, :] * u[..., :-1, :]
        out[..., :-1, :] -= self.east[..., :-1, :] * u[..., 1:, :]
        out[..., :, 1:] -= self.south[..., :, 1:] * u[..., :, :-1]
        out[..., :, :-1] -= self.north[..., :, :-1] * u[..., :, 1:]
        return out

    def matrix(self) -> sp.csc_matrix:
        """The ``m² x m²`` sparse matrix (row-major ``[i, j]`` order) of one sample's operator."""
        m = self.diagonal.shape[-1]
        node = np.arange(m * m).reshape(m, m)
        east = -self.east[:-1, :]
        north = -self.north[:, :-1]
        rows = np.concatenate([node.ravel(), node[:-1, :].ravel(), node[1:, :].ravel(), node[:, :-1].ravel(), node[:, 1:].ravel()])
        cols = np.concatenate([node.ravel(), node[1:, :].ravel(), node[:-1, :].ravel(), node[:, 1:].ravel(), node[:, :-1].ravel()])
        vals = np.concatenate([self.diagonal.ravel(), east.ravel(), east.ravel(), north.ravel(), north.ravel()])
        return sp.csc_matrix((vals, (rows, cols)), shape=(m * m, m * m))


def assemble_darcy_matrix(a: np.ndarray, grid: str = "vertex") -> sp.csc_matrix:
    """The symmetric positive definite ``m² × m²`` matrix of :func:`solve_darcy` on the unknowns
    (row-major ``[i, j]`` order) for ``a: (n, n)`` at the points of the grid: the ``m = n - 2``
    interior nodes of a vertex grid, the ``m = n`` cells of a cell grid."""
    return _Stencil(np.asarray(a, dtype=np.float64), check_grid(grid)).matrix()


def _checked_coefficients(a: np.ndarray, batched: bool, caller: str, grid: str) -> np.ndarray:
    """``a`` as float64 after checking ``grid``, its shape ``([B,] n, n)`` and its values."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 + batched or a.shape[-1] != a.shape[-2]:
        raise ConfigError(f"{caller} expects square coefficients {'(B, n, n)' if batched else '(n, n)'}, got shape {a.shape}")
    _unknowns_per_axis(a.shape[-1], grid)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ConfigError(f"{caller} expects finite, strictly positive coefficients")
    return a


def _rhs(f: float | np.ndarray, a: np.ndarray, caller: str, grid: str) -> np.ndarray:
    """The forcing ``f`` (a scalar or an array broadcasting to ``a``'s shape) on the unknowns."""
    try:
        f = np.broadcast_to(np.asarray(f, dtype=np.float64), a.shape)
    except ValueError:
        raise ConfigError(f"{caller}: forcing f of shape {np.shape(f)} does not match the coefficients {a.shape}") from None
    return f[..., 1:-1, 1:-1] if grid == "vertex" else f


def _with_boundary(u: np.ndarray, grid: str) -> np.ndarray:
    """Values on the unknowns ``(..., m, m)`` → on the grid ``(..., n, n)`` (zero boundary nodes)."""
    return np.pad(u, [(0, 0)] * (u.ndim - 2) + [(1, 1), (1, 1)]) if grid == "vertex" else u


def solve_darcy(a: np.ndarray, f: float | np.ndarray = FORCING, grid: str = "vertex") -> np.ndarray:
    """Solve ``-∇·(a∇u) = f`` on the unit square with ``u = 0`` on the boundary.

    Discretisation: the 5-point two-point-flux finite-volume scheme of the module docstring on
    the ``grid`` (``vertex``: ``n`` points per axis including the boundary, ``h = 1/(n-1)``;
    ``cell``: ``n`` cell centres, ``h = 1/n``, Dirichlet on the boundary faces at distance
    ``h/2``). The flux across the face between two neighbours uses the harmonic mean of their
    ``a``: that is the exact conductivity of two half-cells in series, so fluxes stay continuous
    across the jumps of a piecewise-constant ``a`` (the arithmetic mean overestimates flux
    through a low-conductivity layer), and for a smooth ``a`` it equals the face value up to
    O(h²), keeping the scheme second order. The symmetric positive definite system on the
    unknowns is assembled in vectorised form and solved with SuperLU.

    Args:
        a: coefficient at the grid points, ``(n, n)``, positive and finite (index ``[i, j]`` ↔ ``(x_i, y_j)``).
        f: forcing, a scalar or point values ``(n, n)`` (on a vertex grid only interior values are used).
        grid: ``"vertex"`` or ``"cell"`` (:data:`GRIDS`).

    Returns:
        ``u``: float64 ``(n, n)`` at the grid points (vertex: zero on the boundary nodes).

    Raises:
        ConfigError: unknown ``grid``, a non-square or too small ``a``, non-positive or
            non-finite values, or an ``f`` of another shape.
    """
    a = _checked_coefficients(a, False, "solve_darcy", grid)
    rhs = _rhs(f, a, "solve_darcy", grid)
    m = rhs.shape[-1]
    return _with_boundary(spsolve(assemble_darcy_matrix(a, grid), rhs.ravel()).reshape(m, m), grid)


PCG_RTOL = 1e-10
"""Default relative residual of :func:`solve_darcy_batch`: with condition number <= 4 the
relative error of ``u`` is below 4e-10, far under float32 storage precision."""
PCG_MAX_ITERATIONS = 200


def laplacian_preconditioner(n: int, grid: str = "vertex", workers: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """The exact inverse of the 5-point operator of ``a = 1`` on an ``n``-point grid, as a
    function of residuals ``(..., m, m)`` on the unknowns.

    In one dimension the operator is ``(-u_{i-1} + 2u_i - u_{i+1})/h²`` on the ``m`` unknowns,
    with the boundary values its grid implies. Vertex grid (``m = n - 2``, ``h = 1/(m + 1)``):
    ``u = 0`` at the boundary nodes ``i = -1, m``, which the DST-I vectors ``sin(πk(i+1)h)``
    satisfy. Cell grid (``m = n``, ``h = 1/m``): a boundary face flux ``(0 - u_0)/(h/2)`` makes
    the first row ``(3u_0 - u_1)/h²``, i.e. the ghost value ``u_{-1} = -u_0`` (and
    ``u_m = -u_{m-1}``), which the DST-II vectors ``sin(πk(i + 1/2)h)`` satisfy: they are odd about
    both boundary faces (cf. Strang, "The discrete cosine transform", SIAM Review 41, 1999, on the
    boundary conditions behind each transform type). Either way they are exact eigenvectors with
    eigenvalues ``4/h² sin²(πkh/2)``, ``k = 1 … m``, so the 2-D operator is diagonal in the
    orthonormal (``norm="ortho"``) DST-I / DST-II basis with eigenvalues ``λ_k + λ_l``; the inverse
    is a forward transform, a division and the inverse transform (DST-I / DST-III), symmetric.

    Args:
        n: points per axis of the grid.
        grid: ``"vertex"`` or ``"cell"``.
        workers: threads for the sine transforms (``scipy.fft`` ``workers``).

    Returns:
        ``r (..., m, m) -> z`` with ``A z = r`` for the ``a = 1`` matrix ``A`` of
        :func:`assemble_darcy_matrix` (to rounding; ``tests/test_data_darcy.py`` checks it).

    Raises:
        ConfigError: ``grid`` not in :data:`GRIDS`, or no unknown on the grid.
    """
    m = _unknowns_per_axis(n, grid)
    steps = intervals(n, grid)
    k = np.arange(1, m + 1)
    eig = 4.0 * np.sin(np.pi * k / (2.0 * steps)) ** 2
    inverse = 1.0 / (eig[:, None] + eig[None, :]) / float(steps) ** 2
    kind = 1 if grid == "vertex" else 2

    def precondition(r: np.ndarray) -> np.ndarray:
        spectral = scipy.fft.dstn(r, type=kind, axes=(-2, -1), norm="ortho", workers=workers)
        return scipy.fft.idstn(spectral * inverse, type=kind, axes=(-2, -1), norm="ortho", workers=workers)

    return precondition


def solve_darcy_batch(
    a: np.ndarray, f: float | np.ndarray = FORCING, rtol: float = PCG_RTOL, workers: int = 1, grid: str = "vertex"
) -> np.ndarray:
    """Solve ``-∇·(a∇u) = f`` with ``u = 0`` on the boundary for a batch, by preconditioned CG.

    Same discretisation as :func:`solve_darcy` (5-point finite volume, harmonic-mean faces, on a
    vertex or cell grid); the preconditioner is the constant-coefficient operator, inverted with
    orthonormal sine transforms (:func:`laplacian_preconditioner`). Iterates until every
    sample's residual is below ``rtol`` times its right-hand side (2-norm); a sample that got
    there stops changing (its step length is zero), so each sample's result is the one it gets
    when solved alone, whatever the other samples of the batch.

    Args:
        a: coefficients ``(B, n, n)``, positive and finite.
        f: forcing, a scalar or point values broadcasting to ``(B, n, n)``.
        rtol: relative residual to reach.
        workers: threads for the sine transforms (``scipy.fft`` ``workers``).
        grid: ``"vertex"`` or ``"cell"`` (:data:`GRIDS`).

    Returns:
        ``u``: float64 ``(B, n, n)`` at the grid points (vertex: zero on the boundary nodes).

    Raises:
        ConfigError: bad coefficients, forcing or grid, or no convergence within ``PCG_MAX_ITERATIONS``.
    """
    a = _checked_coefficients(a, True, "solve_darcy_batch", grid)
    n = a.shape[-1]
    operator = _Stencil(a, grid)
    precondition = laplacian_preconditioner(n, grid, workers)
    rhs = np.array(_rhs(f, a, "solve_darcy_batch", grid))

    u = np.zeros_like(rhs)
    residual = rhs.copy()
    z = precondition(residual)
    direction = z.copy()
    rz = np.einsum("bij,bij->b", residual, z)
    target = rtol * np.sqrt(np.einsum("bij,bij->b", rhs, rhs))
    for _ in range(PCG_MAX_ITERATIONS):
        active = np.sqrt(np.einsum("bij,bij->b", residual, residual)) > target
        if not active.any():
            break
        image = operator.apply(direction)
        alpha = np.divide(rz, np.einsum("bij,bij->b", direction, image), out=np.zeros_like(rz), where=active)
        u += alpha[:, None, None] * direction
        residual -= alpha[:, None, None] * image
        z = precondition(residual)
        rz_next = np.einsum("bij,bij->b", residual, z)
        beta = np.divide(rz_next, rz, out=np.zeros_like(rz), where=active)
        direction = np.where(active[:, None, None], z + beta[:, None, None] * direction, direction)
        rz = rz_next
    else:
        raise ConfigError(f"Darcy PCG did not reach rtol={rtol} in {PCG_MAX_ITERATIONS} iterations ({grid} grid {n}x{n})")
    return _with_boundary(u, grid)


def evaluate_grf_batch(coeffs: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ψ of a batch of KL coefficients ``(B, K, K)`` at the points ``(x_i, y_j)``: ``(B, len(x), len(y))``."""
    n_modes = coeffs.shape[-1]
    return cosine_basis(x, n_modes) @ coeffs @ cosine_basis(y, n_modes).T


COEFFICIENTS = ("point", "average")
"""Stored input ``a`` on a grid (``--coefficient``): ``point``, the thresholded field at the grid
points; ``average``, its mean over each point's control volume (:func:`average_coefficient`)."""
AVERAGE_QUADRATURE = 32
"""Midpoints per axis and control volume of :func:`average_coefficient` (32² per volume). The
rule estimates the area fraction of ``{ψ >= 0}`` in each volume; its error comes from the
sub-cells that the interface cuts, about ``1/AVERAGE_QUADRATURE`` of a volume's sub-cells, each
off by at most ``A_HIGH - A_LOW``. Measured on 8 fields (seed 0) against 256² midpoints per volume
(vertex 17², 33², cell 16²) or 128² (vertex 65², cell 64²): mean |error| 0.0007–0.0026, max 0.14,
for values in [3, 12] (16² per volume: mean up to 0.008, max 0.26). Cost, one thread: 2 ms per
sample at 17², 7 ms at 33², 29 ms at 65²."""


@dataclass(frozen=True)
class DarcyOptions:
    """Options of ``darcy``."""

    solver: str = field(default="pcg", metadata={
        "help": "pcg: batched conjugate gradients with a fast-sine-transform Laplacian preconditioner; "
                "direct: one sparse LU (scipy spsolve) per sample", "choices": ("pcg", "direct")})
    batch_size: int = field(default=64, metadata={"help": "samples solved together (vectorized)"})
    grid: str = field(default="vertex", metadata={
        "help": "vertex: N points per axis including the boundary (h = 1/(N-1)); cell: N cell centres (i+1/2)/N, "
                "u = 0 on the boundary faces half a cell away (h = 1/N)", "choices": GRIDS})
    reference_resolution: int | None = field(default=None, metadata={
        "help": "solve every sample once on this N-point reference grid and store on each requested grid n its "
                "restriction: the reference u at the shared nodes (vertex, N-1 a multiple of n-1) or its block "
                "average over each coarse cell (cell, N a multiple of n); default: solve each grid on its own"})
    coefficient: str = field(default="point", metadata={
        "help": "stored input a: point: the thresholded field at the grid points; average: its mean over each "
                "point's control volume (needs --reference-resolution; the solve keeps point values)",
        "choices": COEFFICIENTS})


def check_options(options: DarcyOptions) -> None:
    """Refuse bad :class:`DarcyOptions` with one :class:`ConfigError` line naming the option:
    ``batch_size < 1``, an unknown ``grid`` or ``coefficient``, or ``coefficient="average"``
    without a ``reference_resolution`` (the per-grid solve uses point values, so the stored pair
    would not be the input that was solved)."""
    if options.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {options.batch_size}")
    check_grid(options.grid, "--grid")
    if options.coefficient not in COEFFICIENTS:
        raise ConfigError(f"--coefficient={options.coefficient!r} is not a Darcy coefficient; expected one of {list(COEFFICIENTS)}")
    if options.coefficient == "average" and options.reference_resolution is None:
        raise ConfigError("--coefficient average needs --reference-resolution: each grid's own solve uses point values of a")


def reference_strides(reference: int, sizes: list[int], grid: str) -> dict[int, int]:
    """Refinement factor of the ``reference``-point grid over each requested grid: ``(N-1)/(n-1)``
    on vertex grids, ``N/n`` on cell grids (the reference spacing divides the coarse one).

    Raises:
        ConfigError: one line naming ``--reference-resolution`` and the grids it does not refine
            (``n > N``, or the divisibility above fails), or an unknown ``grid``.
    """
    steps = intervals(reference, check_grid(grid, "--grid"))
    bad = sorted(n for n in sizes if n > reference or steps % intervals(n, grid))
    if bad:
        rule = "N - 1 a multiple of n - 1" if grid == "vertex" else "N a multiple of n"
        raise ConfigError(f"--reference-resolution {reference} does not refine the {grid} grid(s) {bad}: it needs N >= n and {rule}")
    return {n: steps // intervals(n, grid) for n in sizes}


def restrict(u: np.ndarray, factor: int, grid: str) -> np.ndarray:
    """Restriction of a reference solution ``(..., N, N)`` to the grid ``factor`` times coarser,
    ``(..., n, n)``: the values at the shared nodes ``u[..., ::factor, ::factor]`` (vertex), or the
    mean of the ``factor × factor`` reference cells in each coarse cell (cell; ``N = n·factor``)."""
    if grid == "vertex":
        return u[..., ::factor, ::factor]
    n = u.shape[-1] // factor
    return u.reshape(*u.shape[:-2], n, factor, n, factor).mean(axis=(-3, -1))


def control_volumes(n: int, grid: str = "vertex") -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends, float64 ``(n,)`` each, of the control volumes of the ``n`` points per
    axis of a Darcy grid: the dual cells ``[x_i - h/2, x_i + h/2] ∩ [0, 1]`` of a vertex grid (half
    cells at the two boundary nodes) or the cells ``[i h, (i + 1) h]`` of a cell grid. They tile
    [0, 1]; a 2-D control volume is the product of the two axes' intervals.

    Raises:
        ConfigError: as :func:`grid_points`.
    """
    points = grid_points(n, grid)
    half = 0.5 / intervals(n, grid)
    return np.clip(points - half, 0.0, 1.0), np.clip(points + half, 0.0, 1.0)


def average_coefficient(coeffs: np.ndarray, n: int, grid: str = "vertex", quadrature: int = AVERAGE_QUADRATURE) -> np.ndarray:
    """Mean of the thresholded field ``threshold(ψ)`` over each control volume of an ``n``-point
    grid (:func:`control_volumes`), float64 ``(B, n, n)`` in ``[A_LOW, A_HIGH]``, for KL
    coefficients ``(B, K, K)``.

    Each volume's mean is the ``quadrature × quadrature`` midpoint rule on it (accuracy: see
    :data:`AVERAGE_QUADRATURE`), so a grid's averages depend only on ψ and that grid, never on the
    other grids of a file. ψ is evaluated one sample at a time on ``(n·quadrature)²`` points.

    Raises:
        ConfigError: as :func:`grid_points`.
    """
    lower, upper = control_volumes(n, grid)
    offsets = (np.arange(quadrature) + 0.5) / quadrature
    nodes = (lower[:, None] + offsets[None, :] * (upper - lower)[:, None]).ravel()
    fine = (n, quadrature, n, quadrature)
    return np.stack([threshold(evaluate_grf(c, nodes, nodes)).reshape(fine).mean(axis=(1, 3)) for c in coeffs])


def stored_coefficient(coeffs: np.ndarray, n: int, grid: str, coefficient: str) -> np.ndarray:
    """The input ``a`` stored on an ``n``-point grid, float64 ``(B, n, n)``, for KL coefficients
    ``(B, K, K)``: the thresholded field at the grid points (``point``) or its control-volume
    averages (``average``, :func:`average_coefficient`)."""
    if coefficient == "average":
        return average_coefficient(coeffs, n, grid)
    points = grid_points(n, grid)
    return threshold(evaluate_grf_batch(coeffs, points, points))


def darcy_metadata(
    seed: int, solver: str = "pcg", grid: str = "vertex", reference_resolution: int | None = None, coefficient: str = "point"
) -> DatasetMetadata:
    """Schema metadata of a Darcy file, PDE and generator parameters included.

    Without a reference resolution the coarsening is ``"solved_per_grid"`` and the parameters are
    those of files written before the option existed. With one, the coarsening is
    ``"subsampled"`` (vertex) or ``"filtered"`` (cell block averages), and ``reference_resolution``
    and ``coefficient`` are added to the parameters and described.
    """
    scheme = "5-point finite volume" if grid == "vertex" else "cell-centred 5-point finite volume (u = 0 on the boundary faces, h/2 away)"
    description = (
        "2-D Darcy flow -div(a grad u) = f on (0,1)^2, f = 1, u = 0 on the boundary. "
        "Input a: piecewise constant, a_high where a Gaussian random field psi ~ "
        "N(0, (-Laplacian + tau^2)^-alpha) (Neumann) is >= 0, a_low elsewhere. Output u."
    )
    params: dict[str, float | int | str] = {
        "forcing": FORCING,
        "tau": TAU,
        "alpha": ALPHA,
        "a_high": A_HIGH,
        "a_low": A_LOW,
        "grf_modes": GRF_MODES,
        "seed": int(seed),
        "solver": f"{scheme}, harmonic-mean face coefficients, " + (
            "scipy.sparse spsolve (SuperLU)" if solver == "direct" else f"batched PCG (Laplacian/DST preconditioner), rtol {PCG_RTOL}"
        ),
    }
    coarsening = "solved_per_grid"
    if reference_resolution is not None:
        coarsening = "subsampled" if grid == "vertex" else "filtered"
        restriction = "taken at the shared nodes" if grid == "vertex" else "averaged over each coarse cell"
        stored = (
            "the point values of a at each grid's points" if coefficient == "point"
            else f"the mean of a over each point's control volume ({AVERAGE_QUADRATURE}^2-point midpoint rule)"
        )
        description += (
            f" u is solved once on the {reference_resolution}-point reference grid (point values of a) and {restriction}; "
            f"the stored input is {stored}."
        )
        params |= {"reference_resolution": int(reference_resolution), "coefficient": coefficient}
    return DatasetMetadata(
        name="darcy",
        description=description,
        input_channels=("a",),
        output_channels=("u",),
        axes=("x", "y"),
        boundary="dirichlet",
        grid=grid,
        coarsening=coarsening,
        pde_params=params,
    )


def _solve_batch(
    seed: int, options: DarcyOptions, solved_n: int, outputs: Mapping[int, tuple[int, np.ndarray]], ids: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Solve the samples ``ids`` on the ``solved_n``-point grid and derive what each output grid stores.

    ``outputs`` maps an output grid ``n`` to ``(factor, held)``: the :func:`restrict` factor from
    the solved grid and the ids that grid holds. Returns, for each output grid holding some of
    ``ids``, ``(ids held, a, u)`` with ``a`` and ``u`` float32 ``(B_n, 1, n, n)``: the
    :func:`stored_coefficient` and the restricted solution. Sample ``i`` depends only on
    ``(seed, i)`` (its ψ comes from ``sample_rng(seed, i)``; the batched solvers give each
    sample the result it gets alone).
    """
    grid, coefficient = options.grid, options.coefficient
    coeffs = np.stack([grf_coefficients(sample_rng(seed, i)) for i in ids])
    points = grid_points(solved_n, grid)
    a = threshold(evaluate_grf_batch(coeffs, points, points))
    if options.solver == "pcg":
        u = solve_darcy_batch(a, grid=grid)
    else:
        u = np.stack([solve_darcy(sample, grid=grid) for sample in a])
    report_progress(len(ids))
    stored = {}
    for n, (factor, held_ids) in outputs.items():
        held = np.isin(ids, held_ids)
        if not held.any():
            continue
        same_input = n == solved_n and coefficient == "point"
        a_n = a[held] if same_input else stored_coefficient(coeffs[held], n, grid, coefficient)
        stored[n] = (ids[held], a_n[:, None].astype(np.float32), restrict(u[held], factor, grid)[:, None].astype(np.float32))
    return stored


def darcy_samples(seed: int, ids: Sequence[int] | np.ndarray, options: DarcyOptions, resolution: int) -> dict[str, np.ndarray]:
    """Darcy samples ``ids`` on the ``resolution``-point grid, as :func:`write_darcy` stores them.

    Solved on that grid, or once on ``options.reference_resolution`` and restricted; the input
    is :func:`stored_coefficient` with ``options.coefficient``. Each sample depends only on
    ``(seed, id)``: bitwise the same whatever the other ids.

    Returns:
        ``{"x": a, "y": u}``, float32 ``(B, 1, n, n)`` each (``n = resolution``).

    Raises:
        ConfigError: bad options (:func:`check_options`), a grid too small for its kind, or a
            reference resolution that does not refine ``resolution``.
    """
    check_options(options)
    ids = np.asarray(ids, dtype=np.int64).ravel()
    solved, factor = resolution, 1
    if options.reference_resolution is not None:
        solved = options.reference_resolution
        factor = reference_strides(solved, [resolution], options.grid)[resolution]
    grid_points(resolution, options.grid)
    _, a, u = _solve_batch(seed, options, solved, {resolution: (factor, ids)}, ids)[resolution]
    return {"x": a, "y": u}


def write_darcy(request: GenerationRequest, options: DarcyOptions | None = None) -> None:
    """Generate Darcy samples on every requested grid and write them atomically to ``request.out``.

    Sample ``i`` draws its ψ from ``sample_rng(request.seed, i)``. Without
    ``options.reference_resolution`` it is solved separately on each grid that holds it
    (coarsening ``"solved_per_grid"``); with one, it is solved once on the reference grid and
    each grid holding it gets the :func:`restrict`-ion of that solution (see the module
    docstring). Solves run in batches of the ids with equal ``id // options.batch_size``
    (:func:`~neuralops.data.generators.parallel.batches`) with ``options.solver`` on
    ``options.grid`` points (``n`` vertices or ``n`` cell centres per axis, stored as the
    coordinates), in ``request.pool``'s workers when given; the stored input is
    :func:`stored_coefficient` with ``options.coefficient``. Stored as float32 ``a`` and ``u`` of
    shape ``(1, n, n)`` per sample; ``request.shard`` writes one shard of a folder dataset.

    Raises:
        ConfigError: bad options (:func:`check_options`), a grid too small for its kind, or a
            reference resolution that does not refine every requested grid
            (:func:`reference_strides`), all before any file is written.
    """
    options = DarcyOptions() if options is None else options
    check_options(options)
    grid = options.grid
    grids = {n: grid_points(n, grid) for n in request.samples_at}
    if options.reference_resolution is None:
        plans = [(n, ids, {n: (1, ids)}) for n, ids in sorted(request.samples_at.items())]
    else:
        strides = reference_strides(options.reference_resolution, sorted(request.samples_at), grid)
        all_ids = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in request.samples_at.values()]))
        plans = [(options.reference_resolution, all_ids, {n: (strides[n], ids) for n, ids in request.samples_at.items()})]
    work = [(solved_n, outputs, batches(ids, options.batch_size)) for solved_n, ids, outputs in plans]
    metadata = darcy_metadata(request.seed, options.solver, grid, options.reference_resolution, options.coefficient)
    total = sum(len(ids) for _, ids, _ in plans)
    with (
        DatasetWriter(request.out, metadata, request.n_samples, request.splits, overwrite=request.overwrite, shard=request.shard) as writer,
        tqdm(total=total, desc=request.label("darcy"), unit="solve", disable=not request.progress) as bar,
        reporting_to(bar),
    ):
        targets = {n: writer.add_resolution({"x": grids[n], "y": grids[n]}, ids) for n, ids in sorted(request.samples_at.items())}
        for solved_n, outputs, tasks in work:
            solve = partial(_solve_batch, request.seed, options, solved_n, outputs)
            for stored in map_batches(solve, tasks, request.pool):
                for n, (held_ids, a_n, u_n) in stored.items():
                    for sample_id, a_i, u_i in zip(held_ids.tolist(), a_n, u_n):
                        targets[n].write(sample_id, a_i, u_i)
