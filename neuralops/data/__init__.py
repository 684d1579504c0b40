"""Data: the neuralops HDF5 schema, lazy readers, tasks, foreign-file adapters and generators.

``OperatorDataset(path, split, resolution)`` reads one split of a pair file (or folder of its
shards) at one grid, one sample per ``__getitem__``; ``TrajectoryFileSource`` does the same for
trajectory files, and the tasks (``OneShotTask``, ``WindowTask``, ``RolloutTask``) turn any
trajectory source into a dataset. ``resolutions(path, split)`` and ``describe(path)`` inspect a
dataset without reading sample arrays; ``fit_normalizers(dataset)`` fits per-channel
input/output normalizers in one streaming pass. The data factory (``DataConfig``,
``open_split``, ``open_rollout``, ``available_resolutions``) serves neuralops, PDEBench and Well
files and folders through one interface, and ``require_samples`` / ``check_finite`` check the
data before training. The on-disk layout is documented in ``docs/data_format.md``, the foreign
layouts in ``docs/foreign_data.md``.
"""

from neuralops.data.checks import check_finite, require_samples
from neuralops.data.dataset import OperatorDataset, TrajectoryFileSource, describe, resolutions
from neuralops.data.factory import DataConfig, available_resolutions, open_rollout, open_split
from neuralops.data.normalize import ChannelNormalizer, fit_normalizers
from neuralops.data.schema import DatasetMetadata, DatasetWriter, validate
from neuralops.data.tasks import OneShotTask, RolloutTask, WindowTask
from neuralops.data.views import ResolutionView

__all__ = [
    "ChannelNormalizer",
    "DataConfig",
    "DatasetMetadata",
    "DatasetWriter",
    "OneShotTask",
    "OperatorDataset",
    "ResolutionView",
    "RolloutTask",
    "TrajectoryFileSource",
    "WindowTask",
    "available_resolutions",
    "check_finite",
    "describe",
    "fit_normalizers",
    "open_rollout",
    "open_split",
    "require_samples",
    "resolutions",
    "validate",
]
