"""Occlusion: cover part of the image and watch the prediction change (Zeiler & Fergus, 2014).

:func:`sensitivity` slides a patch over the whole image (in batches, through Captum's ``Occlusion``) and maps
how much each covered place lowers a class's probability; :func:`cover` and :func:`covered_prediction` put
one patch where the student points, for the interactive view.
"""

from vizlib.occlusion.patch import FILLS, OcclusionError, cover, covered_prediction, fill_value
from vizlib.occlusion.sensitivity import BATCH, sensitivity, window_count

__all__ = [
    "BATCH",
    "FILLS",
    "OcclusionError",
    "cover",
    "covered_prediction",
    "fill_value",
    "sensitivity",
    "window_count",
]
