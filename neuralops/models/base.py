"""The common base of every neural operator: registry, config capture, input checks.

Every model maps ``x: (B, C_in, *grid)`` to ``(B, C_out, *grid)``; ``model(x, output_shape=s)``
returns the prediction on the grid ``s`` when the family can evaluate off the input grid.
A model remembers the plain (JSON-serializable) config it was built from in ``model.config``,
which is what :func:`neuralops.save_pretrained` writes beside the weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from neuralops.errors import ConfigError, InputShapeError
from neuralops.grid import Grid, expand_kinds

_REGISTRY: dict[str, type["NeuralOperator"]] = {}


def to_plain(value: Any, where: str = "config") -> Any:
    """Convert a config value to plain JSON types (tuples become lists, mappings become dicts).

    Raises :class:`ConfigError` naming ``where`` if a value cannot be represented in JSON.
    """
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, Sequence):
        return [to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ConfigError(
        f"{where} = {value!r} (type {type(value).__name__}) is not a plain value; model configs "
        "must hold only numbers, strings, booleans, None, lists and dicts so they can be saved as JSON"
    )


class NeuralOperator(nn.Module):
    """Base class of all neuralops models.

    Subclasses register themselves with ``class FNO(NeuralOperator, name="fno")`` and must
    set ``in_channels``, ``out_channels`` and ``n_dims`` (the grid dimensionality, or ``None``
    when the model accepts any). ``min_grid_size`` is the smallest number of points per axis
    the model accepts.
    """

    name: ClassVar[str | None] = None
    min_grid_size: int = 1
    #: True for models with data-dependent buffers (e.g. a POD basis) that need
    #: :meth:`fit_to_data` before training.
    fits_to_data: ClassVar[bool] = False

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            key = name.lower()
            if key in _REGISTRY and _REGISTRY[key] is not cls:
                raise ConfigError(f"model name {key!r} is already registered by {_REGISTRY[key].__name__}")
            cls.name = key
            _REGISTRY[key] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> "NeuralOperator":
        instance = super().__new__(cls)
        signature = inspect.signature(cls.__init__)
        try:
            bound = signature.bind(instance, *args, **kwargs)
        except TypeError as err:
            raise ConfigError(_unknown_option_message(cls, kwargs, err)) from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop("self", None)
        object.__setattr__(instance, "_config", to_plain(arguments, where=f"{cls.__name__} config"))
        return instance

    def __getnewargs_ex__(self) -> tuple[tuple, dict[str, Any]]:
        """``copy.deepcopy`` and pickle call ``__new__`` with these, so it binds the model's own config."""
        return (), self.config

    @property
    def config(self) -> dict[str, Any]:
        """The plain config this model was built from, defaults included (a copy)."""
        return to_plain(self._config)

    @classmethod
    def options_from_grid(cls, options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
        """The options this family takes from the training data's grid.

        ``options`` is the user's config (without ``name``); the return value holds only the
        options to *set*: those the user left unset (``None`` or absent) that the data decides,
        such as the grid kinds, domain padding, ``n_modes`` given as one number for every axis,
        or the grids a model samples its input on. ``train.py`` applies them before building the
        model, so they are saved in ``config.json``. Raises :class:`ConfigError` when a user
        value contradicts the data. Default: nothing.
        """
        return {}

    def fit_to_data(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Fit data-dependent buffers from training batches ``(x, y)`` in the model's own
        (normalized) units, ``x: (B, C_in, *grid)``, ``y: (B, C_out, *grid)``. No-op by default."""

    def num_parameters(self) -> int:
        """Number of trainable real scalars (a complex parameter counts twice)."""
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in self.parameters() if p.requires_grad)

    def check_input(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> None:
        """Raise :class:`InputShapeError` unless ``x`` is a real floating-point ``(B, in_channels, *grid)``
        tensor on a large enough grid (complex, integer and boolean inputs are refused, naming the dtype)."""
        n_dims = getattr(self, "n_dims", None)
        in_channels = getattr(self, "in_channels", None)
        label = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise InputShapeError(f"{label} expects a torch.Tensor, got {type(x).__name__}")
        if x.is_complex():
            raise InputShapeError(
                f"{label} expects a real floating-point input, got a complex tensor of dtype {x.dtype}; "
                "pass the real and imaginary parts as separate channels"
            )
        if not x.is_floating_point():
            raise InputShapeError(f"{label} expects a real floating-point input, got dtype {x.dtype}; convert it with x.float()")
        if n_dims is not None and x.ndim != n_dims + 2:
            raise InputShapeError(
                f"{label} expects input of shape (batch, {in_channels}, *grid) with a {n_dims}-D grid, "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        if in_channels is not None and x.shape[1] != in_channels:
            raise InputShapeError(
                f"{label} was built with in_channels={in_channels}, got {x.shape[1]} channels "
                f"(input shape {tuple(x.shape)})"
            )
        grids = [tuple(x.shape[2:])] + ([tuple(output_shape)] if output_shape is not None else [])
        for grid in grids:
            if min(grid) < self.min_grid_size:
                raise InputShapeError(
                    f"{label} needs at least {self.min_grid_size} grid points per axis, got grid {grid}"
                )
        if output_shape is not None and n_dims is not None and len(output_shape) != n_dims:
            raise InputShapeError(f"{label}: output_shape {tuple(output_shape)} must have {n_dims} entries")


def n_modes_from_grid(options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
    """``{"n_modes": [m] * grid.n_dims}`` when ``options["n_modes"]`` is one number ``m``; ``{}``
    when it is a list with one entry per axis or unset.

    Raises :class:`ConfigError` for a list with another number of entries than the grid's axes.
    """
    n_modes = options.get("n_modes")
    if isinstance(n_modes, int) and not isinstance(n_modes, bool):
        return {"n_modes": [n_modes] * grid.n_dims}
    if n_modes is not None and len(n_modes) != grid.n_dims:
        raise ConfigError(
            f"model.n_modes={list(n_modes)} has {len(n_modes)} entries but the data is {grid.n_dims}-D ({grid!r}); "
            f"give one number for every axis or {grid.n_dims} numbers"
        )
    return {}


def grid_kinds_from_data(kinds: str | Sequence[str] | None, grid: Grid, option: str = "grid") -> dict[str, Any]:
    """``{option: list(grid.kinds)}`` when the user left the kinds unset (``None``), ``{}`` when
    they name the data grid's kinds. Raises :class:`ConfigError` naming ``option`` when they
    contradict them (e.g. ``grid: vertex`` on periodic data)."""
    if kinds is None:
        return {option: list(grid.kinds)}
    if expand_kinds(kinds, grid.n_dims, option) != grid.kinds:
        raise ConfigError(f"{option}={kinds!r} contradicts the training data's grid kinds {list(grid.kinds)}")
    return {}


def n_dims_from_grid(options: Mapping[str, Any], grid: Grid) -> dict[str, Any]:
    """``{"n_dims": grid.n_dims}`` when ``options["n_dims"]`` is unset; a :class:`ConfigError`
    when it contradicts the data."""
    n_dims = options.get("n_dims")
    if n_dims is None:
        return {"n_dims": grid.n_dims}
    if n_dims != grid.n_dims:
        raise ConfigError(f"model.n_dims={n_dims} but the data is {grid.n_dims}-D ({grid!r})")
    return {}


def _unknown_option_message(cls: type, kwargs: Mapping[str, Any], err: TypeError) -> str:
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(k for k in kwargs if k not in params)
    if unknown:
        return (
            f"model {cls.name or cls.__name__!r} got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid options are: {', '.join(params)}"
        )
    return f"model {cls.name or cls.__name__!r}: {err}"


def model_class(name: str) -> type[NeuralOperator]:
    """Return the model class registered under ``name`` (case-insensitive)."""
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown model name {name!r}; available models: {', '.join(available())}")
    return _REGISTRY[key]


def available() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def build(name: str, **config: Any) -> NeuralOperator:
    """Build the model registered as ``name`` from a plain config.

    Unknown options raise :class:`ConfigError` listing the valid ones, so a typo never
    passes silently.
    """
    cls = model_class(name)
    return cls(**to_plain(config, where=f"model {name!r} config"))
