"""Model registry: ``build(name, **config)``, ``available()``, and the model families.

Importing this package registers every family. Each family lives in its own module.
"""

from neuralops.models.base import NeuralOperator, available, build, model_class
from neuralops.models import fno  # noqa: F401  (registers "fno")
from neuralops.models import tfno  # noqa: F401  (registers "tfno")
from neuralops.models import mgtfno  # noqa: F401  (registers "mgtfno")
from neuralops.models import sfno  # noqa: F401  (registers "sfno")
from neuralops.models import t1  # noqa: F401  (registers "t1")
from neuralops.models import mgno  # noqa: F401  (registers "mgno")
from neuralops.models import deeponet  # noqa: F401  (registers "deeponet", "pod_deeponet", "mionet")
from neuralops.models import lsm  # noqa: F401  (registers "lsm")
from neuralops.models import resolution  # noqa: F401  (registers "resampled")

__all__ = ["NeuralOperator", "available", "build", "model_class"]
