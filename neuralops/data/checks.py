"""Checks of the data a training run makes before its first epoch.

Training reads the train split (the normalizers see every training sample first) and the
validation split after each epoch, but the test split only after training: an empty test split,
or a NaN or Inf in a test sample, would surface after minutes or hours of training. The run
calls, once, before its first epoch::

    require_samples(cfg)            # train and test non-empty (and held at some grid)
    check_finite(cfg, "test")       # every test sample at every stored grid it is evaluated at

Both raise one :class:`~neuralops.errors.DataFormatError` line naming the data file (or folder),
the split and, for values, the resolution and the sample's index in the split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuralops.data.dataset import resolutions
from neuralops.data.factory import DataConfig, available_resolutions, open_source
from neuralops.data.sources import PairSource, TrajectorySource
from neuralops.data.views import ResolutionView
from neuralops.errors import DataFormatError

SCAN_BYTES = 64 * 2**20
"""Largest block :func:`check_finite` reads at once (time steps of one trajectory)."""

def require_samples(cfg: DataConfig, splits: Sequence[str] = ("train", "test")) -> None:
    """Raise if a split the run needs has no sample, or (neuralops data) no grid holding all of it.

    Args:
        cfg: the data config.
        splits: the splits the run reads (``train`` and ``test``; validation is optional).

    Raises:
        DataFormatError: one line naming ``cfg.path``, the split and why it is empty (stored
            empty, a missing split folder, or a fraction that rounds to no sample).
        ConfigError: from the split policy, as :attr:`DataConfig.splits`.
    """
    stored = cfg.splits
    for split in splits:
        if len(stored.get(split, ())) == 0:
            policy = cfg.split_policy
            if cfg.file_format == "neuralops":
                why = f"key '/splits/{split}' holds no sample id"
            elif policy == "file":
                why = f"there is no {'valid' if split == 'val' else split}/ folder with data files"
            else:
                why = f"data.split={policy} with data.{split}_fraction={getattr(cfg, f'{split}_fraction', None)} gives it none"
            raise DataFormatError(f"{cfg.path}: split {split!r} is empty ({why}); the run needs {split} samples")
        if cfg.file_format == "neuralops" and not resolutions(cfg.path, split):
            raise DataFormatError(f"{cfg.path}: no resolution holds every sample of split {split!r}; the run needs one")


def _stored_views(cfg: DataConfig, split: str) -> list[ResolutionView]:
    """One stride-1 view of every stored grid the split is evaluated at (every strided or filtered
    view reads only values of one of them)."""
    shapes = dict.fromkeys(view.file_shape for view in available_resolutions(cfg, split))
    return [ResolutionView("file", 1, shape) for shape in shapes]


def _scan(source: PairSource | TrajectorySource, i: int) -> None:
    """Read sample ``i`` whole (trajectories: in blocks of at most :data:`SCAN_BYTES`); the readers
    raise on NaN or Inf."""
    if isinstance(source, PairSource):
        source[i]
        return
    step_bytes = 4 * len(source.channels) * int(np.prod(source.grid_shape))
    block = max(1, SCAN_BYTES // max(step_bytes, 1))
    for start in range(0, source.n_times, block):
        source.read_steps(i, slice(start, min(start + block, source.n_times)))
    source.read_static(i)


def check_finite(cfg: DataConfig, split: str = "test") -> int:
    """Read every sample of ``split`` at every stored grid it is evaluated at and raise at the
    first NaN or Inf.

    A cheap pass (one read of the split per stored grid, memory bounded by a sample or a
    :data:`SCAN_BYTES` block) to call before training, so that bad test data stops the run
    before its first epoch instead of after training.

    Returns:
        The number of sample reads checked (samples × stored grids).

    Raises:
        DataFormatError: one line naming the file (and key, for our files), the split, the
            resolution (points per axis, e.g. ``33x33``) and the sample's index in the split.
    """
    checked = 0
    for view in _stored_views(cfg, split):
        source = open_source(cfg, split, view)
        label = "x".join(str(n) for n in source.grid_shape)
        try:
            for i in range(len(source)):
                try:
                    _scan(source, i)
                except DataFormatError as err:
                    raise DataFormatError(f"{err} (split {split!r}, resolution {label}, index {i} of the split; found before training)") from None
            checked += len(source)
        finally:
            source.close()
    return checked
