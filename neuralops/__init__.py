"""neuralops: neural operators for learning PDE solution operators."""

__version__ = "0.1.0"
