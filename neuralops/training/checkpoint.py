"""Training checkpoints: weights in safetensors, the loop state as plain tensors and numbers.

A checkpoint is a directory::

    model.safetensors     model weights (with the normalizers' statistics)
    training_state.pt     everything else that decides the next step: optimizer, scheduler
                          and grad-scaler state dicts; epoch, step within the epoch and global
                          step; the data order (the loader generator's state at the start of
                          the epoch); the random states of every process (torch CPU and CUDA,
                          numpy, python); best validation value, history, training time and
                          the run's identity (data and model) — plain containers of tensors,
                          numbers and strings only, loaded with ``torch.load(weights_only=True)``

Directories are written atomically, so an interrupted save never leaves a half checkpoint.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_model

from neuralops.errors import PretrainedFormatError
from neuralops.io import atomic_directory, load_safetensors_weights

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Write ``model`` weights and the loop ``state`` (tensors and plain values only) to ``path``."""
    with atomic_directory(path) as staging:
        save_model(model, str(staging / WEIGHTS_FILE))
        torch.save(state, staging / STATE_FILE)


def read_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """The loop state of the checkpoint directory ``path`` (tensors on the CPU), loaded with
    ``torch.load(weights_only=True)``.

    Raises:
        PretrainedFormatError: the directory lacks a file, or the state file is not a
            plain-tensor pickle.
    """
    directory = Path(path)
    for required in (directory / WEIGHTS_FILE, directory / STATE_FILE):
        if not required.is_file():
            raise PretrainedFormatError(f"checkpoint {str(directory)!r} lacks {required.name}")
    try:
        return torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise PretrainedFormatError(f"checkpoint state {str(directory / STATE_FILE)!r} cannot be read safely: {err}") from None


def load_weights(path: str | os.PathLike, model: torch.nn.Module, device: str | torch.device = "cpu") -> None:
    """Load the checkpoint's weights into ``model`` (on ``device``).

    Raises:
        PretrainedFormatError: one line naming the weights file: missing, unreadable, or not
            fitting ``model``.
    """
    load_safetensors_weights(model, Path(path) / WEIGHTS_FILE, device)


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random states (torch CPU, CUDA of ``device``, numpy, python) as tensors
    and plain values that ``torch.load(weights_only=True)`` reads back."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64), "gauss": python_gauss},
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore random states written by :func:`rng_state` (the CUDA one only on a CUDA device)."""
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"], numpy["gauss"]))
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()), python["gauss"]))
