"""Validation of model options, raising :class:`~neuralops.errors.ConfigError` that names the option."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from neuralops.errors import ConfigError


def check_positive(**values: Any) -> None:
    """Raise unless every given option is a positive integer (``check_positive(n_layers=4)``)."""
    for option, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{option}={value!r} must be a positive integer")


def check_choice(option: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise naming ``option`` and the choices."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{option}={value!r} is not supported; expected one of {choices}")
    return value


def check_grid_shape(option: str, shape: Any, minimum: int = 2) -> tuple[int, ...]:
    """Return ``shape`` as a tuple if it is a non-empty list of integers ``>= minimum``."""
    if (
        not isinstance(shape, (list, tuple)) or len(shape) == 0
        or any(isinstance(n, bool) or not isinstance(n, int) or n < minimum for n in shape)
    ):
        raise ConfigError(f"{option}={shape!r} must be a non-empty list of grid sizes, each at least {minimum}")
    return tuple(shape)
