"""What the Look closer pages share: small cached steps.

Their expensive work (occlusion maps, sweeps, layer shifts, dataset-example banks, the CAM page's sanity check)
runs in the app's one heavy queue, :func:`ui.queues.heavy_queue`; feature visualizations have their own queue,
:data:`vizlib.featurevis.QUEUE`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from vizlib import cam, models

__all__ = ["class_picker", "gradcam"]

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
