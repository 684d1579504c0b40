"""Model registry: ``build(name, **config)``, ``available()``, and the model families.

Importing this package registers every family. Each family lives in its own module.
"""

from neuralops.models.base import NeuralOperator, available, build, model_class
from neuralops.models import fno  # noqa: F401  (registers "fno")

__all__ = ["NeuralOperator", "available", "build", "model_class"]
