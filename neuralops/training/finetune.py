"""Spectral-Refiner fine-tuning: refine a trained operator's last spectral layer on a finer grid.

Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier Neural Operator
for Turbulent Flows" (ICLR 2025): after end-to-end training, every parameter is frozen except
those of the last spectral convolution, and the model is fine-tuned on finer-grid data with a
loss in a negative Sobolev norm (H⁻¹, computed in the frequency domain) or an equation
residual. With the nonlinear layers frozen the fine-tuning problem is much smaller (and, for the
spectral weights alone up to the projection, close to a linear least-squares problem), so it
converges in few epochs.

``python train.py +finetune=refine finetune.from_run=<run dir> data.train_resolution=65
trainer.loss=h_minus1`` loads ``<run dir>/model`` (its architecture and normalizers; the
``model`` group is ignored), freezes it as above, trains with the usual trainer and writes a new
run directory and pretrained directory. ``finetune.trainable=last_spectral_and_projection``
also trains the projection. (The paper's name for the option would be ``finetune.from``;
``from`` is a Python keyword, so the option is ``from_run``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from neuralops.errors import ConfigError
from neuralops.spectral.conv import SpectralConv

TRAINABLE = ("last_spectral", "last_spectral_and_projection")


@dataclass
class RefineConfig:
    """The ``finetune`` group: ``from_run`` is a run directory (its ``model/`` is used) or a
    pretrained directory; ``trainable`` chooses what is fine-tuned."""

    from_run: str = "???"
    trainable: str = "last_spectral"

    def __post_init__(self) -> None:
        if self.trainable not in TRAINABLE:
            raise ConfigError(f"finetune.trainable={self.trainable!r} is not one of {list(TRAINABLE)}")


def pretrained_directory(from_run: str | Path) -> Path:
    """The pretrained directory of ``from_run`` (a run directory holding ``model/``, or a
    pretrained directory itself). Raises :class:`ConfigError` naming the path."""
    path = Path(from_run).expanduser()
    for candidate in (path / "model", path):
        if (candidate / "config.json").is_file():
            return candidate
    raise ConfigError(f"finetune.from_run={str(path)!r} is neither a run directory with model/ nor a pretrained directory (no config.json)")


def freeze_for_refinement(model: torch.nn.Module, trainable: str) -> list[torch.nn.Parameter]:
    """Freeze every parameter of ``model`` except the last :class:`SpectralConv`'s (and the
    ``projection``'s with ``trainable="last_spectral_and_projection"``); return the trainable
    parameters. Raises :class:`ConfigError` for a model without spectral layers."""
    spectral = [m for m in model.modules() if isinstance(m, SpectralConv)]
    if not spectral:
        raise ConfigError(f"finetune: model {getattr(model, 'name', type(model).__name__)!r} has no spectral convolution to refine")
    model.requires_grad_(False)
    spectral[-1].requires_grad_(True)
    if trainable == "last_spectral_and_projection":
        projection = getattr(model, "projection", None)
        if projection is None:
            raise ConfigError(f"finetune.trainable={trainable}: model {model.name!r} has no projection")
        projection.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]
