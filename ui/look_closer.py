"""What the Look closer pages (and the CAM page's sanity check) share: the work queue and small cached steps.

The queue lives here, in an imported module, so one instance serves the whole process (a page script is
re-executed on every rerun). Feature visualizations have their own queue, :data:`vizlib.featurevis.QUEUE`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from vizlib import cam, models
from vizlib.jobs import JobQueue

__all__ = ["WORK_QUEUE", "class_picker", "gradcam"]

#: Occlusion maps, sweeps, layer shifts, dataset-example banks and sanity checks: one at a time, in order.
WORK_QUEUE = JobQueue("look-closer", workers=1, max_waiting=200)


def class_picker(loaded: models.LoadedModel, ranking: models.Prediction, key: str, label: str = "Class") -> int:
    """One of the image's top 5 classes."""
    probs = dict(zip(ranking.indices, (p for _, p in ranking.top), strict=True))
    return int(st.selectbox(label, list(ranking.indices[:5]), key=key,
                            format_func=lambda i: f"{loaded.categories[i]} — {probs[i]:.1%}"))


@st.cache_data(max_entries=16, show_spinner="Grad-CAM of the same class…")
def _gradcam(model_name: str, pretrained: bool, image_key: str, target: int, _loaded, _image) -> np.ndarray:
    return cam.compute(_loaded, _image, target, ("gradcam",))["gradcam"]


def gradcam(loaded: models.LoadedModel, image_key: str, image: np.ndarray, target: int) -> np.ndarray:
    """Grad-CAM of ``target`` at the last block (cached per model, image and class)."""
    return _gradcam(loaded.name, loaded.pretrained, image_key, target, loaded, image)
