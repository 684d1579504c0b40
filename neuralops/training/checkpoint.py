"""Training checkpoints: weights in safetensors, optimizer/scheduler/loop state as tensors.

A checkpoint is a directory::

    model.safetensors     model weights
    training_state.pt     optimizer and scheduler state dicts, epoch, best value, RNG state,
                          history — plain containers of tensors and numbers only, loaded with
                          ``torch.load(weights_only=True)``

Directories are written atomically, so an interrupted save never leaves a half checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from neuralops.errors import PretrainedFormatError
from neuralops.io import atomic_directory

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Write ``model`` weights and the loop ``state`` (tensors and plain values only) to ``path``."""
    with atomic_directory(path) as staging:
        save_model(model, str(staging / WEIGHTS_FILE))
        torch.save(state, staging / STATE_FILE)


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load weights into ``model`` and return the loop state; never unpickles arbitrary objects."""
    directory = Path(path)
    weights, state_file = directory / WEIGHTS_FILE, directory / STATE_FILE
    for required in (weights, state_file):
        if not required.is_file():
            raise PretrainedFormatError(f"checkpoint {str(directory)!r} lacks {required.name}")
    try:
        load_model(model, str(weights), strict=True, device=str(device))
    except (RuntimeError, ValueError) as err:
        raise PretrainedFormatError(f"checkpoint weights {str(weights)!r} do not match the model: {err}") from None
    try:
        return torch.load(state_file, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise PretrainedFormatError(f"checkpoint state {str(state_file)!r} cannot be read safely: {err}") from None
