"""DeepONet (Lu et al. 2021), POD-DeepONet and MIONet (Lu et al. 2022) on the grid contract.

All three evaluate ``G(u)(y) = Σ_k b_k(u) · t_k(y) + offset(y)``:

* the **branch** sees the input function at ``m`` fixed sensors — the input ``(B, C_in, *grid)``
  is first resampled onto the grid ``sensor_grid`` of the same kind (``resample_method``), so
  any input size is accepted; it is an MLP on the flattened sensor values or a small strided CNN;
* the **trunk** gives the basis ``t_k(y)`` at output coordinates ``y ∈ [0, 1]^d`` — a trunk MLP
  (``deeponet``, ``mionet``) or a POD basis of the training outputs (``pod_deeponet``);
* ``model(x)`` evaluates on the input's grid, ``model(x, output_shape=s)`` on the grid ``s``,
  and ``model.query(x, points)`` at arbitrary points ``(P, d)``.

Grids: the option ``grid`` gives the kind of every axis (:mod:`neuralops.grid`; one kind or one
per axis), which is where the samples of the input, the sensors and the outputs sit. ``y`` are
*unit coordinates* of the domain, the same at every resolution: on an axis of ``n`` points the
trunk sees ``j/(n-1)`` (vertex, both ends), ``(j + 1/2)/n`` (cell centres), ``j/n`` (periodic,
the right end is the left one) or ``θ_j/π`` (sphere colatitudes; the longitude is periodic), as
:func:`neuralops.layers.resample.grid_points` lists them. ``sensor_grid``, ``pod_grid`` and
``grid`` are filled from the training data by :meth:`BranchTrunkOperator.options_from_grid`
when left unset (``train.py``); a model built directly needs ``sensor_grid`` (and ``pod_grid``).

Several output channels follow Lu et al. 2022 (CMAME) §3.1.6 (``strategy``), with ``K``
output channels and ``p = n_basis``:

``independent``   K separate branch and trunk nets of ``p`` outputs each;
``split_both``    one branch and one trunk net with ``K·p`` outputs, split in K groups;
``split_branch``  one branch net with ``K·p`` outputs, one trunk net with ``p`` shared outputs;
``split_trunk``   one branch net with ``p`` shared outputs, one trunk net with ``K·p`` outputs.

MIONet splits the input channels into groups (one input function each), gives every group
its own branch and merges the branch outputs by elementwise product.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from neuralops.errors import ConfigError, InputShapeError
from neuralops.grid import Grid, expand_kinds
from neuralops.layers.config_checks import check_choice, check_grid_shape, check_positive
from neuralops.layers.grid import GridKinds
from neuralops.layers.mlp import MLP
from neuralops.layers.pointwise import activation as activation_function
from neuralops.layers.resample import (
    check_resample_method,
    grid_points,
    required_option,
    resample,
    sample_at_points,
)
from neuralops.models.base import NeuralOperator, grid_kinds_from_data

STRATEGIES = ("independent", "split_both", "split_branch", "split_trunk")
BRANCH_KINDS = ("mlp", "cnn")
_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class ConvBranch(nn.Module):
    """Strided CNN branch: ``(B, C, *sensor_grid) -> (B, out_features)``.

    One 3×3 convolution of stride 2 (then the activation) per entry of ``channels``, then a
    linear map of the flattened features.
    """

    def __init__(self, in_channels: int, sensor_grid: Sequence[int], channels: Sequence[int], out_features: int,
                 activation_name: str) -> None:
        super().__init__()
        conv = _CONVS[len(sensor_grid)]
        widths = [in_channels, *channels]
        self.convs = nn.ModuleList(conv(a, b, 3, stride=2, padding=1) for a, b in zip(widths[:-1], widths[1:]))
        self.act = activation_function(activation_name)
        grid = list(sensor_grid)
        for _ in channels:
            grid = [(n + 1) // 2 for n in grid]
        self.linear = nn.Linear(widths[-1] * math.prod(grid), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.act(conv(x))
        return self.linear(x.flatten(1))


class MLPBranch(nn.Module):
    """MLP branch on the flattened sensor values: ``(B, C, *sensor_grid) -> (B, out_features)``."""

    def __init__(self, in_channels: int, sensor_grid: Sequence[int], hidden: Sequence[int], out_features: int,
                 activation_name: str) -> None:
        super().__init__()
        self.mlp = MLP(in_channels * math.prod(sensor_grid), hidden, out_features, activation_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.flatten(1))


class Concatenated(nn.Module):
    """Run several nets on the same input and concatenate their outputs on the last axis."""

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(x) for net in self.nets], dim=-1)


class BranchTrunkOperator(NeuralOperator):
    """Shared machinery of the branch–trunk families (not registered itself).

    Subclasses build ``self.branches`` (one per input group, each ``(B, C_g, *sensor_grid) ->
    (B, branch_groups · n_basis)``) through :meth:`_build_branches` and implement
    :meth:`basis_at_points` / :meth:`basis_on_grid` (``(P, trunk_groups, n_basis)``) and
    :meth:`offset_at_points` / :meth:`offset_on_grid` (``(K, P)``). ``self.kinds`` holds the
    grid kind of every axis (option ``grid``).
    """

    min_grid_size = 2
    #: Options holding a grid shape that :meth:`options_from_grid` fills with the training grid's.
    shape_options: ClassVar[tuple[str, ...]] = ("sensor_grid",)

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """Fill the unset (``None`` or absent) ``grid`` with the data's kinds (``list(grid.kinds)``)
        and every unset entry of :attr:`shape_options` with the training grid's shape
        (``list(grid.shape)``); user values are kept. Raises :class:`ConfigError` when a given
        ``grid`` contradicts the data's kinds."""
        filled = grid_kinds_from_data(options.get("grid"), grid)
        filled.update({option: list(grid.shape) for option in cls.shape_options if options.get(option) is None})
        return filled

    def _setup(self, in_channels: int, out_channels: int, sensor_grid: Sequence[int] | None, n_basis: int,
               resample_method: str, grid: GridKinds | None) -> None:
        check_positive(in_channels=in_channels, out_channels=out_channels, n_basis=n_basis)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_basis = n_basis
        self.sensor_grid = check_grid_shape("sensor_grid", required_option("sensor_grid", sensor_grid))
        if len(self.sensor_grid) not in _CONVS:
            raise ConfigError(f"sensor_grid={list(sensor_grid)!r}: 1-, 2- or 3-D grids are supported")
        self.n_dims = len(self.sensor_grid)
        self.kinds = expand_kinds(required_option("grid", grid), self.n_dims)
        self.resample_method = check_resample_method(resample_method, "resample_method")

    def _build_branches(self, groups: Sequence[int], branch: str, branch_hidden: Sequence[int], nets_per_branch: int,
                        outputs_per_net: int, activation_name: str) -> None:
        """One branch per input group; each is ``nets_per_branch`` nets of ``outputs_per_net`` outputs, concatenated."""
        kind = {"mlp": MLPBranch, "cnn": ConvBranch}[check_choice("branch", branch, BRANCH_KINDS)]
        self.groups = [int(g) for g in groups]
        self.branches = nn.ModuleList(
            Concatenated([kind(g, self.sensor_grid, branch_hidden, outputs_per_net, activation_name)
                          for _ in range(nets_per_branch)])
            for g in self.groups
        )
        self.branch_groups = nets_per_branch * outputs_per_net // self.n_basis

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Branch coefficients ``(B, branch_groups, n_basis)`` of input ``x: (B, C_in, *grid)``, merged by product over groups."""
        sensors = resample(x, self.sensor_grid, self.resample_method, self.kinds)
        merged = None
        for branch, part in zip(self.branches, torch.split(sensors, self.groups, dim=1)):
            out = branch(part)
            merged = out if merged is None else merged * out
        return merged.reshape(x.shape[0], self.branch_groups, self.n_basis)

    def basis_at_points(self, points: torch.Tensor) -> torch.Tensor:
        """Trunk basis at ``points: (P, d)``: ``(P, trunk_groups, n_basis)``."""
        raise NotImplementedError

    def basis_on_grid(self, shape: Sequence[int]) -> torch.Tensor:
        """Trunk basis on the grid ``shape`` of the model's kinds (points row-major): ``(P, trunk_groups, n_basis)``."""
        raise NotImplementedError

    def offset_at_points(self, points: torch.Tensor) -> torch.Tensor:
        """Additive term at ``points: (P, d)``: ``(K, P)``."""
        raise NotImplementedError

    def offset_on_grid(self, shape: Sequence[int]) -> torch.Tensor:
        """Additive term on the grid ``shape`` of the model's kinds: ``(K, P)``."""
        raise NotImplementedError

    def _combine(self, coefficients: torch.Tensor, basis: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """``(B, Kb, p)``, ``(P, Kt, p)``, ``(K, P)`` -> ``(B, K, P)`` with ``Kb, Kt ∈ {1, K}``."""
        k = self.out_channels
        coefficients = coefficients.expand(-1, k, -1)
        basis = basis.expand(-1, k, -1)
        return torch.einsum("bkp,nkp->bkn", coefficients, basis) + offset

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """``x: (B, C_in, *grid)`` -> ``(B, C_out, *grid)``, or ``(B, C_out, *output_shape)``."""
        self.check_input(x, output_shape)
        shape = tuple(x.shape[2:]) if output_shape is None else tuple(int(n) for n in output_shape)
        values = self._combine(self.coefficients(x), self.basis_on_grid(shape), self.offset_on_grid(shape))
        return values.reshape(x.shape[0], self.out_channels, *shape)

    def query(self, x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Evaluate at explicit points: ``x: (B, C_in, *grid)``, ``points: (P, d)`` unit coordinates
        of the domain in ``[0, 1]^d`` (as :func:`~neuralops.layers.resample.grid_points` gives a
        grid's) -> ``(B, C_out, P)``."""
        self.check_input(x)
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != self.n_dims:
            shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
            raise InputShapeError(f"{type(self).__name__}.query expects points of shape (P, {self.n_dims}), got {shape}")
        if points.numel() and (points.min() < 0 or points.max() > 1):
            raise InputShapeError(f"{type(self).__name__}.query: points must lie in [0, 1]^{self.n_dims}")
        points = points.to(device=x.device, dtype=x.dtype)
        return self._combine(self.coefficients(x), self.basis_at_points(points), self.offset_at_points(points))


class TrunkNetOperator(BranchTrunkOperator):
    """Branch–trunk operator whose basis is a trunk MLP on coordinates plus one bias per output channel."""

    def _setup_trunk(self, strategy: str, branch: str, branch_hidden: Sequence[int], trunk_hidden: Sequence[int],
                     groups: Sequence[int], activation_name: str) -> None:
        check_choice("strategy", strategy, STRATEGIES)
        k, p = self.out_channels, self.n_basis
        nets = k if strategy == "independent" else 1
        branch_outputs = p if strategy in ("independent", "split_trunk") else k * p
        trunk_outputs = p if strategy in ("independent", "split_branch") else k * p
        self._build_branches(groups, branch, branch_hidden, nets, branch_outputs, activation_name)
        self.trunk = Concatenated([MLP(self.n_dims, trunk_hidden, trunk_outputs, activation_name, last_activation=True)
                                   for _ in range(nets)])
        self.trunk_groups = nets * trunk_outputs // p
        self.bias = nn.Parameter(torch.zeros(k, 1))

    def basis_at_points(self, points: torch.Tensor) -> torch.Tensor:
        return self.trunk(points).reshape(points.shape[0], self.trunk_groups, self.n_basis)

    def basis_on_grid(self, shape: Sequence[int]) -> torch.Tensor:
        return self.basis_at_points(grid_points(shape, self.kinds, device=self.bias.device, dtype=self.bias.dtype))

    def offset_at_points(self, points: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(-1, points.shape[0])

    def offset_on_grid(self, shape: Sequence[int]) -> torch.Tensor:
        return self.bias.expand(-1, math.prod(shape))


class DeepONet(TrunkNetOperator, name="deeponet"):
    """DeepONet: ``(B, in_channels, *grid) -> (B, out_channels, *grid | *output_shape)``.

    Options:
        sensor_grid: grid of the branch sensors, points per axis (its length is the grid
            dimension); ``None`` is filled with the training grid by ``train.py``.
        branch: ``"mlp"`` (flattened sensors) or ``"cnn"`` (strided 3×3 convolutions).
        branch_hidden: hidden widths (``mlp``) or channels of the stride-2 stages (``cnn``).
        trunk_hidden: hidden widths of the trunk MLP (its output is activated, as in DeepXDE).
        n_basis: ``p``, basis functions per output channel.
        strategy: multi-output strategy (module docstring).
        activation: nonlinearity of both nets.
        resample_method: ``"bilinear"`` or ``"fourier"``, input grid -> sensor grid.
        grid: kind of every axis, or one per axis (``vertex``, ``cell``, ``periodic``, sphere
            kinds; :mod:`neuralops.grid`): where the input, sensor and output samples sit,
            and so the unit coordinates the trunk sees (module docstring).

    Raises:
        ConfigError: naming the option, e.g. ``sensor_grid`` or ``grid`` unset (``None``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        sensor_grid: Sequence[int] | None = None,
        branch: str = "mlp",
        branch_hidden: Sequence[int] = (128, 128),
        trunk_hidden: Sequence[int] = (128, 128),
        n_basis: int = 64,
        strategy: str = "split_branch",
        activation: str = "gelu",
        resample_method: str = "bilinear",
        grid: GridKinds | None = "vertex",
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, sensor_grid, n_basis, resample_method, grid)
        self._setup_trunk(strategy, branch, branch_hidden, trunk_hidden, [in_channels], activation)


class MIONet(TrunkNetOperator, name="mionet"):
    """MIONet: several input functions, one branch each, merged by elementwise product.

    Options as :class:`DeepONet`, plus ``input_groups``: channel counts of the input functions,
    in channel order, summing to ``in_channels`` (``None``: one function per channel).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_groups: Sequence[int] | None = None,
        sensor_grid: Sequence[int] | None = None,
        branch: str = "mlp",
        branch_hidden: Sequence[int] = (128, 128),
        trunk_hidden: Sequence[int] = (128, 128),
        n_basis: int = 64,
        strategy: str = "split_branch",
        activation: str = "gelu",
        resample_method: str = "bilinear",
        grid: GridKinds | None = "vertex",
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, sensor_grid, n_basis, resample_method, grid)
        groups = [1] * in_channels if input_groups is None else list(input_groups)
        if any(not isinstance(g, int) or isinstance(g, bool) or g < 1 for g in groups) or sum(groups) != in_channels:
            raise ConfigError(
                f"input_groups={input_groups!r} must be positive channel counts summing to in_channels={in_channels}"
            )
        self._setup_trunk(strategy, branch, branch_hidden, trunk_hidden, groups, activation)


class PODDeepONet(BranchTrunkOperator, name="pod_deeponet"):
    """POD-DeepONet: the trunk is a fixed POD basis of the training outputs.

    ``G(u)(y) = mean_k(y) + Σ_i b_{k,i}(u) φ_{k,i}(y)`` per output channel ``k``, with one branch
    net of ``K · n_basis`` outputs. The basis and mean are registered buffers of shapes
    ``pod_basis: (K, n_basis, *pod_grid)`` and ``pod_mean: (K, *pod_grid)``, known from the
    config, so ``build(**config)`` followed by ``load_state_dict`` restores a fitted model and
    ``.to(device)`` moves them. They are zero until :meth:`fit_pod` is called. The basis is
    orthonormal in the grid-mean inner product ``<a, b> = mean_grid(a · b)`` (a discrete
    ``L²([0,1]^d)`` product), so coefficients do not depend on the grid size. On any other
    grid or at query points the basis and mean are evaluated by multilinear (bilinear in 2-D)
    interpolation of the stored values, each sample placed at its unit coordinate on the
    ``pod_grid`` of the model's kinds (``grid``): cell-centred bases are interpolated between
    cell centres and held over the outer half cells, periodic ones wrap
    (:func:`neuralops.layers.resample.resample`, ``"bilinear"``).

    Options: ``pod_grid`` (grid of the POD basis, points per axis; ``None`` is filled with the
    training grid by ``train.py``), ``n_basis``, ``grid`` and the branch options of
    :class:`DeepONet`.
    """

    shape_options = ("sensor_grid", "pod_grid")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pod_grid: Sequence[int] | None = None,
        n_basis: int = 32,
        sensor_grid: Sequence[int] | None = None,
        branch: str = "mlp",
        branch_hidden: Sequence[int] = (128, 128),
        activation: str = "gelu",
        resample_method: str = "bilinear",
        grid: GridKinds | None = "vertex",
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, sensor_grid, n_basis, resample_method, grid)
        self.pod_grid = check_grid_shape("pod_grid", required_option("pod_grid", pod_grid))
        if len(self.pod_grid) != self.n_dims:
            raise ConfigError(f"pod_grid={list(pod_grid)!r} and sensor_grid={list(sensor_grid)!r} differ in dimension")
        if n_basis > math.prod(self.pod_grid):
            raise ConfigError(f"n_basis={n_basis} exceeds the {math.prod(self.pod_grid)} points of pod_grid")
        self._build_branches([in_channels], branch, branch_hidden, 1, out_channels * n_basis, activation)
        self.register_buffer("pod_basis", torch.zeros(out_channels, n_basis, *self.pod_grid))
        self.register_buffer("pod_mean", torch.zeros(out_channels, *self.pod_grid))

    fits_to_data = True

    def fit_to_data(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Fit the POD basis on the training outputs, resampled (bilinear, by the model's grid
        kinds) to ``pod_grid`` if needed."""
        outputs = [resample(y, self.pod_grid, "bilinear", self.kinds) for _, y in batches]
        self.fit_pod(torch.cat(outputs))

    @torch.no_grad()
    def fit_pod(self, outputs: torch.Tensor) -> torch.Tensor:
        """Compute the POD basis from training outputs ``(N, out_channels, *pod_grid)``.

        Per channel: subtract the sample mean, take the ``n_basis`` leading right singular
        vectors (SVD in float64), scale them to unit grid-mean norm. Returns the captured
        energy fraction ``Σ_{i<p} s_i² / Σ_i s_i²`` per channel, ``(out_channels,)``.
        """
        expected = (self.out_channels, *self.pod_grid)
        if outputs.ndim != self.n_dims + 2 or tuple(outputs.shape[1:]) != expected:
            raise InputShapeError(f"fit_pod expects outputs of shape (N, {', '.join(map(str, expected))}), "
                                  f"got {tuple(outputs.shape)}")
        if outputs.shape[0] < self.n_basis:
            raise InputShapeError(f"fit_pod needs at least n_basis={self.n_basis} samples, got {outputs.shape[0]}")
        data = outputs.detach().to(torch.float64).flatten(2).transpose(0, 1)  # (K, N, P)
        mean = data.mean(dim=1, keepdim=True)
        _, singular, vh = torch.linalg.svd(data - mean, full_matrices=False)
        n_points = data.shape[-1]
        basis = vh[:, : self.n_basis] * math.sqrt(n_points)
        self.pod_basis.copy_(basis.reshape(self.pod_basis.shape))
        self.pod_mean.copy_(mean.reshape(self.pod_mean.shape))
        energy = singular.square()
        return (energy[:, : self.n_basis].sum(-1) / energy.sum(-1)).to(outputs.dtype)

    def basis_at_points(self, points: torch.Tensor) -> torch.Tensor:
        return sample_at_points(self.pod_basis, points, self.kinds).permute(2, 0, 1)

    def basis_on_grid(self, shape: Sequence[int]) -> torch.Tensor:
        return resample(self.pod_basis, shape, "bilinear", self.kinds).flatten(2).permute(2, 0, 1)

    def offset_at_points(self, points: torch.Tensor) -> torch.Tensor:
        return sample_at_points(self.pod_mean.unsqueeze(1), points, self.kinds).squeeze(1)

    def offset_on_grid(self, shape: Sequence[int]) -> torch.Tensor:
        return resample(self.pod_mean.unsqueeze(1), shape, "bilinear", self.kinds).flatten(1)
