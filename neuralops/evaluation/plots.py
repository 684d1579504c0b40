"""Figures of a run: prediction panels per resolution and the loss curve (headless, Agg).

The prediction figure follows one convention everywhere (files in ``plots/`` and TensorBoard):
truth and prediction on a shared diverging colour scale, the absolute error on its own, each
with a colorbar, the figure titled with the relative L2 error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


def prediction_figure(truth: torch.Tensor, pred: torch.Tensor, title: str) -> Figure:
    """The figure of one channel of one sample, titled with its relative L2 error.

    ``truth, pred``: ``(*grid)`` for a 1-D or 2-D grid. 2-D: one row of three panels, each with
    a colorbar: truth and prediction on one shared colour scale (a diverging colormap), and
    ``|prediction - truth|`` on its own. 1-D: truth and prediction as curves above the error.
    The caller owns the figure (``plt.close`` it, or hand it to TensorBoard's ``add_figure``).
    """
    truth, pred = truth.detach().cpu().float(), pred.detach().cpu().float()
    error = (pred - truth).abs()
    rel = float(torch.linalg.vector_norm(pred - truth) / torch.linalg.vector_norm(truth).clamp_min(1e-12))
    if truth.ndim == 1:
        fig, (ax, ax_err) = plt.subplots(2, 1, figsize=(6, 4.5), sharex=True, height_ratios=(2, 1))
        ax.plot(truth.numpy(), label="truth")
        ax.plot(pred.numpy(), "--", label="prediction")
        ax.legend()
        ax_err.plot(error.numpy(), color="tab:red")
        ax_err.set_ylabel("|error|")
    else:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        vmin, vmax = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
        for ax, data, name, cmap, limits in (
            (axes[0], truth, "truth", "RdBu_r", (vmin, vmax)),
            (axes[1], pred, "prediction", "RdBu_r", (vmin, vmax)),
            (axes[2], error, "|error|", "magma", (None, None)),
        ):
            image = ax.imshow(data.numpy(), cmap=cmap, vmin=limits[0], vmax=limits[1], origin="lower")
            ax.set_title(name)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"{title}  (relative L2 {rel:.3g})")
    fig.tight_layout()
    return fig


def plot_prediction(
    truth: torch.Tensor,
    pred: torch.Tensor,
    path: str | os.PathLike,
    title: str,
    writer: Optional[SummaryWriter] = None,
    tag: str = "prediction",
    step: int = 0,
) -> None:
    """Save :func:`prediction_figure` of ``truth, pred: (*grid)`` (1-D or 2-D) to ``path`` and,
    given a TensorBoard ``writer``, log it there as image ``tag`` at ``step``."""
    fig = prediction_figure(truth, pred, title)
    fig.savefig(path, dpi=100)
    if writer is not None:
        writer.add_figure(tag, fig, step, close=True)
    else:
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
