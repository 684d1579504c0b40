"""A resampling wrapper that makes any registered model discretization-agnostic.

Following the input/output interpolation recipe of "principled approaches for extending
neural architectures to function spaces" (NNs-to-NOs): the wrapped model only ever sees its
``native_grid``; the input is resampled onto it, the model runs, and its output is resampled
onto the requested grid. The wrapper is itself a registered :class:`NeuralOperator` built from
a plain config whose ``model`` entry is the inner model's config (with its ``name``), so it
saves and loads like any model (``train.py`` fills ``native_grid`` and ``grid`` from the
training data's :class:`~neuralops.grid.Grid`; built by hand, give them)::

    build("resampled", model={"name": "lsm", "in_channels": 1, "out_channels": 1},
          native_grid=list(train_grid.shape), method="bilinear", grid="cell")

Both resamplings move between grids of the kinds ``grid`` (:mod:`neuralops.grid`) on the same
domain, so a cell-centred field stays cell-centred (:func:`neuralops.layers.resample.resample`).
``train.py`` fills an unset ``native_grid`` with the training grid's shape, an unset ``grid``
with its kinds, and the inner model's own grid options for the native grid
(:meth:`Resampled.options_from_grid`).

What it guarantees: predictions on any grid are (interpolations of) one function, the
native-grid prediction, so they converge as the output grid is refined; the model's own
grid-dependent parts (3×3 stencils, pixel patches) always see the grid they were trained on.
What it cannot do: resolve input detail finer than ``native_grid`` (it is filtered or
point-sampled away) or output detail finer than the model's native prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from neuralops.errors import ConfigError
from neuralops.grid import Grid, expand_kinds
from neuralops.layers.config_checks import check_grid_shape
from neuralops.layers.grid import GridKinds
from neuralops.layers.resample import check_resample_method, required_option, resample
from neuralops.models.base import NeuralOperator, build, grid_kinds_from_data, model_class, to_plain


def _inner_config(model: Any) -> dict[str, Any]:
    """The inner model's config as a plain dict; :class:`ConfigError` naming ``model`` unless it
    is a mapping holding ``name``."""
    if not isinstance(model, Mapping) or "name" not in model:
        raise ConfigError(f"model={model!r} must be a dict holding the inner model's 'name' and options")
    return to_plain(model, "model")


class Resampled(NeuralOperator, name="resampled"):
    """Run ``model`` on ``native_grid``: ``(B, C_in, *grid) -> (B, C_out, *grid | *output_shape)``.

    Options:
        model: config of the inner model, a dict with ``name`` and its options.
        native_grid: grid the inner model runs on, points per axis (``None``: filled with the
            training grid by ``train.py``; required when built directly).
        method: ``"bilinear"`` or ``"fourier"`` (see :mod:`neuralops.layers.resample`), used
            for both the input and the output.
        in_channels, out_channels: optional; when given (as the training script does for
            every model) they are passed to the inner model, and must agree with ``model``.
        grid: kind of every axis, or one per axis (``vertex``, ``cell``, ``periodic``, sphere
            kinds): where the samples of the input, native and output grids sit.

    Raises:
        ConfigError: one line naming the option (``model``, ``native_grid``, ``method``,
            ``grid``, a channel count) or the inner model's own.
    """

    min_grid_size = 2

    def __init__(
        self,
        model: Mapping[str, Any],
        native_grid: Sequence[int] | None = None,
        method: str = "bilinear",
        in_channels: int | None = None,
        out_channels: int | None = None,
        grid: GridKinds | None = "vertex",
    ) -> None:
        super().__init__()
        inner_config = _inner_config(model)
        for option, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value is None:
                continue
            if inner_config.get(option, value) != value:
                raise ConfigError(f"{option}={value} disagrees with model.{option}={inner_config[option]}")
            inner_config[option] = value
        self.native_grid = check_grid_shape("native_grid", required_option("native_grid", native_grid))
        self.method = check_resample_method(method, "method")
        self.n_dims = len(self.native_grid)
        self.kinds = expand_kinds(required_option("grid", grid), self.n_dims)
        self.model = build(**inner_config)
        self.in_channels = self.model.in_channels
        self.out_channels = self.model.out_channels
        inner_dims = getattr(self.model, "n_dims", None)
        if inner_dims is not None and inner_dims != self.n_dims:
            raise ConfigError(f"native_grid={list(native_grid)} is {self.n_dims}-D but the model is {inner_dims}-D")
        if min(self.native_grid) < self.model.min_grid_size:
            raise ConfigError(
                f"native_grid={list(native_grid)} is smaller than the {self.model.min_grid_size} points per axis "
                f"that model {inner_config['name']!r} needs"
            )

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """Fill an unset ``grid`` with the data's kinds and an unset ``native_grid`` with the
        training grid's shape, and the inner model's options with what its own
        ``options_from_grid`` takes from the data resampled to the native grid
        (``grid.resized(native_grid)``); returned as the whole ``model`` dict when anything
        was filled there. User values are kept; :class:`ConfigError` when ``grid`` contradicts
        the data's kinds or ``model`` has no ``name``."""
        filled = grid_kinds_from_data(options.get("grid"), grid)
        native = options.get("native_grid")
        if native is None:
            native = filled["native_grid"] = list(grid.shape)
        inner = _inner_config(options.get("model"))
        inner_options = {key: value for key, value in inner.items() if key != "name"}
        inner_filled = model_class(inner["name"]).options_from_grid(inner_options, grid.resized(native))
        if inner_filled:
            filled["model"] = {**inner, **inner_filled}
        return filled

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """``x: (B, C_in, *grid)`` -> ``(B, C_out, *output_shape)`` (default: the input grid),
        both grids of the kinds ``grid``."""
        self.check_input(x, output_shape)
        target = tuple(x.shape[2:]) if output_shape is None else tuple(output_shape)
        native = self.model(resample(x, self.native_grid, self.method, self.kinds))
        return resample(native, target, self.method, self.kinds)
