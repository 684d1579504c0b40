"""Evaluation: metrics over a loader, resolution sweeps, result tables and plots."""

from neuralops.evaluation.resolution import evaluate_loader, evaluate_resolutions, format_table

__all__ = ["evaluate_loader", "evaluate_resolutions", "format_table"]
