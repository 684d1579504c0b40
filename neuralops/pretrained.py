"""Pretrained-model directories: ``config.json`` + ``model.safetensors``, no pickle anywhere.

Layout of a directory written by :func:`save_pretrained`::

    config.json        {"format": "neuralops-pretrained", "format_version": 2,
                        "neuralops_version": ..., "model": {"name": ..., "config": {...}},
                        "normalizers": {"input": {"mean": [...], "std": [...], "eps": ...},
                                        "output": {...}},
                        "metadata": {...}}          # free-form: channels, data, metrics
    model.safetensors  the model's weights (tensors only)

:func:`load_pretrained` rebuilds the model from its registered name and config and returns a
:class:`PretrainedOperator`, which takes physical inputs and returns physical outputs.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_model
from torch import nn

import neuralops
from neuralops.data.normalize import ChannelNormalizer
from neuralops.errors import ConfigError, InputShapeError, PretrainedFormatError
from neuralops.io import atomic_directory, load_safetensors_weights
from neuralops.models import NeuralOperator, build
from neuralops.models.base import to_plain
from neuralops.models.fno import FourierBlock

FORMAT = "neuralops-pretrained"
FORMAT_VERSION = 2
"""Version of the directories :func:`save_pretrained` writes. 2: the last block of an FNO-type
model (FNO, TFNO, MG-TFNO, SFNO) has no activation before its channel MLP, as neuraloperator's;
version-1 weights of such a model computed the function with that activation, and
:func:`load_pretrained` refuses them instead of computing another function."""
LAST_FOURIER_BLOCK_CHANGED = 2
"""The first format version whose FNO-type weights compute the current function."""
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class PretrainedOperator(nn.Module):
    """A model with its data normalizers: ``forward`` maps physical inputs to physical outputs.

    ``forward(x: (B, C_in, *grid), output_shape=None) -> (B, C_out, *grid | *output_shape)``,
    computing ``decode(model(encode(x)))``. Normalizers are per channel, so they apply on any grid.
    ``x`` may be a torch tensor or a numpy array of any real dtype (float64, int, ...): it is cast
    to the model's dtype and moved to its device, and the output is a tensor of that dtype there.
    Complex and boolean inputs are refused by the model (:class:`InputShapeError`).
    """

    def __init__(
        self,
        model: NeuralOperator,
        input_normalizer: ChannelNormalizer | None = None,
        output_normalizer: ChannelNormalizer | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.model = model
        self.input_normalizer = input_normalizer
        self.output_normalizer = output_normalizer
        self.metadata = to_plain(metadata or {}, where="pretrained metadata")

    def forward(self, x: torch.Tensor | np.ndarray, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        x = self.as_model_input(x, output_shape)
        if self.input_normalizer is not None:
            x = self.input_normalizer.encode(x)
        y = self.model(x, output_shape=output_shape)
        if self.output_normalizer is not None:
            y = self.output_normalizer.decode(y)
        return y

    def as_model_input(self, x: torch.Tensor | np.ndarray, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """``x`` as a tensor on the model's device, real numbers cast to the model's floating dtype,
        checked by the model (:class:`InputShapeError`) before it is normalized."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise InputShapeError(f"a pretrained {type(self.model).__name__} expects a torch.Tensor or numpy array, got {type(x).__name__}")
        reference = next((t for t in itertools.chain(self.model.parameters(), self.model.buffers()) if t.is_floating_point()), None)
        if reference is not None and not x.is_complex() and x.dtype != torch.bool:
            x = x.to(device=reference.device, dtype=reference.dtype)
        self.model.check_input(x, output_shape)
        return x

    def save_pretrained(self, path: str | os.PathLike) -> None:
        save_pretrained(path, self.model, self.input_normalizer, self.output_normalizer, self.metadata)


def save_pretrained(
    path: str | os.PathLike,
    model: NeuralOperator,
    input_normalizer: ChannelNormalizer | None = None,
    output_normalizer: ChannelNormalizer | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a pretrained directory at ``path`` (atomically: complete or absent; see
    :func:`neuralops.io.atomic_directory`), created with the user's umask.

    Raises:
        ConfigError: ``model`` is not a neuralops model, or the metadata is not plain JSON.
        StorageError: the disk filled up; an existing ``path`` is then unchanged.
    """
    if not isinstance(model, NeuralOperator):
        raise ConfigError(f"save_pretrained needs a neuralops model, got {type(model).__name__}")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neuralops_version": neuralops.__version__,
        "model": {"name": model.name, "config": model.config},
        "normalizers": {
            "input": input_normalizer.to_dict() if input_normalizer is not None else None,
            "output": output_normalizer.to_dict() if output_normalizer is not None else None,
        },
        "metadata": to_plain(metadata or {}, where="pretrained metadata"),
    }
    with atomic_directory(path) as staging:
        save_model(model, str(staging / WEIGHTS_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return Path(path)


def read_pretrained_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``config.json`` of a pretrained directory."""
    directory = Path(path)
    config_path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise PretrainedFormatError(f"pretrained model directory {str(directory)!r} does not exist")
    if not config_path.is_file():
        raise PretrainedFormatError(f"{str(config_path)!r} is missing; a pretrained directory holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise PretrainedFormatError(f"{str(config_path)!r} is not valid JSON: {err}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise PretrainedFormatError(f"{str(config_path)!r}: key 'format' must be {FORMAT!r}")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise PretrainedFormatError(
            f"{str(config_path)!r} has format_version {config.get('format_version')}, newer than this "
            f"neuralops ({neuralops.__version__}) reads ({FORMAT_VERSION}); upgrade neuralops"
        )
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(model.get("config"), dict):
        raise PretrainedFormatError(f"{str(config_path)!r}: key 'model' must hold 'name' (string) and 'config' (object)")
    return config


def load_pretrained(path: str | os.PathLike, device: str | torch.device = "cpu") -> PretrainedOperator:
    """Load a pretrained directory as a :class:`PretrainedOperator` in eval mode on ``device``.

    Only JSON and safetensors are read: nothing is unpickled.

    Raises:
        PretrainedFormatError: one line naming the file: the directory, ``config.json`` or
            ``model.safetensors`` is missing, unreadable (truncated, corrupt) or inconsistent,
            or a version-1 directory holds an FNO-type model (see :data:`FORMAT_VERSION`).
    """
    config = read_pretrained_config(path)
    try:
        model = build(config["model"]["name"], **config["model"]["config"])
    except ConfigError as err:
        raise PretrainedFormatError(f"{str(Path(path) / CONFIG_FILE)!r}: cannot build the model: {err}") from None
    if config.get("format_version", 0) < LAST_FOURIER_BLOCK_CHANGED and any(isinstance(m, FourierBlock) and m.channel_mlp is not None for m in model.modules()):
        raise PretrainedFormatError(
            f"{str(Path(path) / CONFIG_FILE)!r} has format_version {config.get('format_version', 'missing')}: its "
            f"{config['model']['name']!r} model applied an activation before the last block's channel MLP, which "
            f"neuralops no longer does (format_version {FORMAT_VERSION}, as neuraloperator's FNO), so its weights "
            "would compute another function here; retrain the model"
        )
    load_safetensors_weights(model, Path(path) / WEIGHTS_FILE, device)
    normalizers = config.get("normalizers") or {}
    stats_in, stats_out = normalizers.get("input"), normalizers.get("output")
    operator = PretrainedOperator(
        model,
        ChannelNormalizer.from_dict(stats_in) if stats_in else None,
        ChannelNormalizer.from_dict(stats_out) if stats_out else None,
        config.get("metadata") or {},
    )
    return operator.to(device).eval()
