"""Exception types raised for bad user input.

Every error names the file, key or option at fault and what was expected, so a user never has
to read a traceback from deep inside torch or h5py.
"""


class NeuralopsError(Exception):
    """Base class of every error neuralops raises on purpose."""


class ConfigError(NeuralopsError, ValueError):
    """An option, model name or configuration value is unknown or invalid."""


class DataFormatError(NeuralopsError, ValueError):
    """A data file is missing, unreadable, or does not follow the expected layout."""


class InputShapeError(NeuralopsError, ValueError):
    """A tensor given to a model has the wrong rank, channel count, grid size or dtype."""


class PretrainedFormatError(NeuralopsError, ValueError):
    """A pretrained-model directory is missing files or holds an unexpected configuration."""


class StorageError(NeuralopsError, OSError):
    """A file could not be written because the disk (or the user's quota) is full."""
