"""Class activation maps, the CAM lesson: which parts of the image made the network choose a class.

Modules: :mod:`~vizlib.cam.methods` (the maps, :func:`compute`), :mod:`~vizlib.cam.graph` (the traced
network: layers, the CAM head, graph splits), :mod:`~vizlib.cam.faithfulness` (does blurring what a map
highlights hurt the class more than chance?). Figures: :mod:`vizlib.figures.cam`.
"""

from __future__ import annotations

from vizlib.cam.graph import unguided_activations
from vizlib.cam.methods import (
    GRADIENT_CAMS,
    IG_STEPS,
    METHODS,
    SCORECAM_BATCH,
    TITLES,
    CAMError,
    CAMHeadError,
    Evidence,
    Explainer,
    Faithfulness,
    LayerError,
    cam_unsupported_reason,
    compute,
    default_layer,
    faithfulness,
)

__all__ = [
    "GRADIENT_CAMS",
    "IG_STEPS",
    "METHODS",
    "SCORECAM_BATCH",
    "TITLES",
    "CAMError",
    "CAMHeadError",
    "Evidence",
    "Explainer",
    "Faithfulness",
    "LayerError",
    "cam_unsupported_reason",
    "compute",
    "default_layer",
    "faithfulness",
    "unguided_activations",
]
