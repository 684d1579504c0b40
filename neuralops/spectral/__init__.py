"""The shared spectral core. Every spectral model reaches its transforms through here."""

from neuralops.spectral.conv import SpectralConv
from neuralops.spectral.factorized import (
    CPSpectralWeight,
    FactorizedSpectralWeight,
    TTSpectralWeight,
    TuckerSpectralWeight,
)
from neuralops.spectral.modes import AxisModes, kept_modes
from neuralops.spectral.transforms import FourierTransform, fourier_resample
from neuralops.spectral.weights import DenseSpectralWeight, SpectralWeight, build_layer_weights, build_spectral_weight

__all__ = [
    "AxisModes",
    "CPSpectralWeight",
    "DenseSpectralWeight",
    "FactorizedSpectralWeight",
    "FourierTransform",
    "SpectralConv",
    "SpectralWeight",
    "TTSpectralWeight",
    "TuckerSpectralWeight",
    "build_layer_weights",
    "build_spectral_weight",
    "fourier_resample",
    "kept_modes",
]
