"""A resampling wrapper that makes any registered model discretization-agnostic.

Following the input/output interpolation recipe of "principled approaches for extending
neural architectures to function spaces" (NNs-to-NOs): the wrapped model only ever sees its
``native_grid``; the input is resampled onto it, the model runs, and its output is resampled
onto the requested grid. The wrapper is itself a registered :class:`NeuralOperator` built from
a plain config whose ``model`` entry is the inner model's config (with its ``name``), so it
saves and loads like any model::

    build("resampled", model={"name": "lsm", "in_channels": 1, "out_channels": 1},
          native_grid=[32, 32], method="bilinear")

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
from neuralops.layers.config_checks import check_grid_shape
from neuralops.layers.resample import check_resample_method, resample
from neuralops.models.base import NeuralOperator, build


class Resampled(NeuralOperator, name="resampled"):
    """Run ``model`` on ``native_grid``: ``(B, C_in, *grid) -> (B, C_out, *grid | *output_shape)``.

    Options:
        model: config of the inner model, a dict with ``name`` and its options.
        native_grid: vertex grid the inner model runs on.
        method: ``"bilinear"`` or ``"fourier"`` (see :mod:`neuralops.layers.resample`), used
            for both the input and the output.
        in_channels, out_channels: optional; when given (as the training script does for
            every model) they are passed to the inner model, and must agree with ``model``.
    """

    min_grid_size = 2

    def __init__(
        self,
        model: Mapping[str, Any],
        native_grid: Sequence[int],
        method: str = "bilinear",
        in_channels: int | None = None,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, Mapping) or "name" not in model:
            raise ConfigError(f"model={model!r} must be a dict holding the inner model's 'name' and options")
        inner_config = dict(model)
        for option, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value is None:
                continue
            if inner_config.get(option, value) != value:
                raise ConfigError(f"{option}={value} disagrees with model.{option}={inner_config[option]}")
            inner_config[option] = value
        self.native_grid = check_grid_shape("native_grid", native_grid)
        self.method = check_resample_method(method, "method")
        self.model = build(**inner_config)
        self.in_channels = self.model.in_channels
        self.out_channels = self.model.out_channels
        self.n_dims = len(self.native_grid)
        inner_dims = getattr(self.model, "n_dims", None)
        if inner_dims is not None and inner_dims != self.n_dims:
            raise ConfigError(f"native_grid={list(native_grid)} is {self.n_dims}-D but the model is {inner_dims}-D")
        if min(self.native_grid) < self.model.min_grid_size:
            raise ConfigError(
                f"native_grid={list(native_grid)} is smaller than the {self.model.min_grid_size} points per axis "
                f"that model {inner_config['name']!r} needs"
            )

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """``x: (B, C_in, *grid)`` -> ``(B, C_out, *output_shape)`` (default: the input grid)."""
        self.check_input(x, output_shape)
        target = tuple(x.shape[2:]) if output_shape is None else tuple(output_shape)
        native = self.model(resample(x, self.native_grid, self.method))
        return resample(native, target, self.method)
