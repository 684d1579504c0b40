"""The shared spectral core. Every spectral model reaches its transforms through here."""

from neuralops.spectral.conv import SpectralConv
from neuralops.spectral.modes import AxisModes, kept_modes
from neuralops.spectral.transforms import FourierTransform, fourier_resample
from neuralops.spectral.weights import DenseSpectralWeight, SpectralWeight, build_layer_weights, build_spectral_weight

__all__ = [
    "AxisModes",
    "DenseSpectralWeight",
    "FourierTransform",
    "SpectralConv",
    "SpectralWeight",
    "build_layer_weights",
    "build_spectral_weight",
    "fourier_resample",
    "kept_modes",
]
