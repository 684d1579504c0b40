"""Tensorized FNO (Kossaifi et al., TMLR 2024): an FNO whose spectral weights are factorized.

``TFNO`` is :class:`~neuralops.models.fno.FNO` with one different default:
``spectral_weight={"factorization": "tucker", "rank": 0.1}`` — a Tucker factorization of every
layer's complex weight holding about 10% of the dense weight's parameters (a float ``rank``
is a fraction of the dense parameter count; see :mod:`neuralops.spectral.factorized`). Any
other ``spectral_weight`` (``"cp"``, ``"tt"``, an explicit rank, ``"joint": true``) works too.
"""

from __future__ import annotations

import inspect

from neuralops.models.fno import FNO

TFNO_SPECTRAL_WEIGHT = {"factorization": "tucker", "rank": 0.1}

_FNO_SIGNATURE = inspect.signature(FNO.__init__)
_TFNO_SIGNATURE = _FNO_SIGNATURE.replace(
    parameters=[
        p.replace(default=TFNO_SPECTRAL_WEIGHT) if p.name == "spectral_weight" else p
        for p in _FNO_SIGNATURE.parameters.values()
    ]
)


class TFNO(FNO, name="tfno"):
    """FNO with Tucker-factorized spectral weights by default (rank 0.1 = 10% of the dense parameters).

    Takes exactly :class:`FNO`'s options (same meaning, same defaults) except that
    ``spectral_weight`` defaults to ``{"factorization": "tucker", "rank": 0.1}``.
    """

    def __init__(self, *args, **kwargs):
        bound = _TFNO_SIGNATURE.bind(self, *args, **kwargs)
        bound.apply_defaults()
        options = dict(bound.arguments)
        options.pop("self")
        options["spectral_weight"] = dict(options["spectral_weight"])  # never share the default dict
        super().__init__(**options)


TFNO.__init__.__signature__ = _TFNO_SIGNATURE
