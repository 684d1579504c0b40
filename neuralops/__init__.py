"""neuralops: neural operators for learning PDE solution operators.

``neuralops.models.build(name, **config)`` builds any registered model;
``neuralops.load_pretrained(path)`` loads a trained model directory (physical inputs in,
physical outputs out). Submodules: ``spectral`` (the shared spectral core), ``models``,
``data``, ``training``, ``evaluation``.
"""

__version__ = "0.1.0"


def load_pretrained(path, device="cpu"):
    """Load a pretrained directory (``config.json`` + ``model.safetensors``); see :mod:`neuralops.pretrained`."""
    from neuralops.pretrained import load_pretrained as _load

    return _load(path, device)


def save_pretrained(path, model, input_normalizer=None, output_normalizer=None, metadata=None):
    """Write a pretrained directory; see :mod:`neuralops.pretrained`."""
    from neuralops.pretrained import save_pretrained as _save

    return _save(path, model, input_normalizer, output_normalizer, metadata)
