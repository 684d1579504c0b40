"""Figures of a run: prediction panels per resolution and the loss curve (headless, Agg)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def plot_prediction(truth: torch.Tensor, pred: torch.Tensor, path: str | os.PathLike, title: str) -> None:
    """Truth, prediction (shared colour scale) and |error| of one channel.

    ``truth, pred``: ``(*grid)`` for a 1-D or 2-D grid.
    """
    truth, pred = truth.detach().cpu().float(), pred.detach().cpu().float()
    error = (pred - truth).abs()
    rel = float(torch.linalg.vector_norm(pred - truth) / torch.linalg.vector_norm(truth).clamp_min(1e-12))
    if truth.ndim == 1:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(truth.numpy(), label="truth")
        ax.plot(pred.numpy(), "--", label="prediction")
        ax.legend()
        ax.set_title(f"{title}  (relative L2 {rel:.3g})")
    else:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        vmin, vmax = float(truth.min()), float(truth.max())
        for ax, data, name, cmap, limits in (
            (axes[0], truth, "truth", "viridis", (vmin, vmax)),
            (axes[1], pred, "prediction", "viridis", (vmin, vmax)),
            (axes[2], error, "|error|", "magma", (None, None)),
        ):
            image = ax.imshow(data.numpy(), cmap=cmap, vmin=limits[0], vmax=limits[1], origin="lower")
            ax.set_title(name)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(image, ax=ax, fraction=0.046)
        fig.suptitle(f"{title}  (relative L2 {rel:.3g})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history: Sequence[dict[str, Any]], path: str | os.PathLike, loss_name: str) -> None:
    """Training (and validation) loss per epoch, log scale."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(epochs, [h["train_loss"] for h in history], label="train")
    if any("val_loss" in h for h in history):
        ax.semilogy([h["epoch"] for h in history if "val_loss" in h], [h["val_loss"] for h in history if "val_loss" in h], label="val")
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss_name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
