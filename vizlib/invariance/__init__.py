"""Invariance: does the network still see the same thing when the image is shifted, turned, scaled or dimmed?

:mod:`~vizlib.invariance.transforms` moves the picture the network sees, :mod:`~vizlib.invariance.sweep`
runs a whole range of one transform through the network in batched passes, and
:mod:`~vizlib.invariance.equivariance` measures, layer by layer, how the feature maps follow a small shift.
"""

from vizlib.invariance.equivariance import LayerShift, layer_equivariance
from vizlib.invariance.sweep import SWEEP_BATCH, Sweep, sweep
from vizlib.invariance.transforms import KINDS, RANGES, Transform, apply

__all__ = [
    "KINDS",
    "RANGES",
    "SWEEP_BATCH",
    "LayerShift",
    "Sweep",
    "Transform",
    "apply",
    "layer_equivariance",
    "sweep",
]
