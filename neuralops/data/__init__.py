"""Data: the neuralops HDF5 schema, lazy datasets, normalizers and generators.

``OperatorDataset(path, split, resolution)`` reads one split at one grid, one sample per
``__getitem__``; ``resolutions(path, split)`` and ``describe(path)`` inspect a file without
reading sample arrays; ``fit_normalizers(dataset)`` fits per-channel input/output normalizers in
one streaming pass. The on-disk layout is documented in ``docs/data_format.md``.
"""

from neuralops.data.dataset import OperatorDataset, describe, resolutions
from neuralops.data.normalize import ChannelNormalizer, fit_normalizers
from neuralops.data.schema import DatasetMetadata, DatasetWriter, validate

__all__ = [
    "ChannelNormalizer",
    "DatasetMetadata",
    "DatasetWriter",
    "OperatorDataset",
    "describe",
    "fit_normalizers",
    "resolutions",
    "validate",
]
