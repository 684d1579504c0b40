"""Readers of foreign layouts, in place: no conversion step, no copy.

Each adapter module offers ``inspect_<format>(path)``, which checks the layout (reading only
attributes, shapes and coordinates) and returns a small description implementing
:class:`ForeignFile`; its ``open(sample_ids, view, rdcc_nbytes)`` builds the lazy reader of
those samples (a :class:`~neuralops.data.sources.PairSource` or a
:class:`~neuralops.data.sources.TrajectorySource`), which the tasks and the training pipeline use
exactly like our own files. :mod:`neuralops.data.adapters.folders` reads a folder of such files
as one dataset. Layouts and quirks are documented in ``docs/foreign_data.md``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from neuralops.data.sources import PairSource, TrajectorySource
from neuralops.data.views import ResolutionView


class ForeignFile(Protocol):
    """What the data factory needs from an inspected foreign file.

    Attributes:
        path: the file.
        n_samples: number of samples (trajectories, or pairs) in the file.
        test_last: where PDEBench's rule puts the test split (``True``: last 10%, ``False``:
            first 10%); ``None`` where that rule does not apply.
        attrs: file-level metadata (name, boundary, parameters), plain Python values.
    """

    path: str
    n_samples: int
    test_last: bool | None
    attrs: dict[str, Any]

    def open(self, sample_ids: np.ndarray, view: ResolutionView, rdcc_nbytes: int | None) -> PairSource | TrajectorySource:
        """The lazy reader of the samples at positions ``sample_ids`` (sorted int64)."""
        ...
