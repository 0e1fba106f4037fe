"""ui.layer_cache: the class activation maps are computed once per (model, image, class, layer, methods) and shared
read-only, without a copy per rerun."""

from __future__ import annotations

import numpy as np
import pytest

from ui import layer_cache
from vizlib import cam, images, models


@pytest.fixture(scope="module")
def lite0() -> models.LoadedModel:
    return models.load_model(models.DEFAULT_MODEL, device="cpu")


def test_cam_maps_are_computed_once_and_shared_read_only(lite0, monkeypatch):
    layer_cache.clear()
    calls = []
    real = cam.compute

    def counting(*args, **kwargs):
        calls.append(args[2:])
        return real(*args, **kwargs)

    monkeypatch.setattr(cam, "compute", counting)
    image = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 256)
    layer = cam.default_layer(lite0)
    first = layer_cache.cam_maps(lite0, "k1", image, 1, layer, ("gradcam", "saliency"))
    again = layer_cache.cam_maps(lite0, "k1", image, 1, layer, ("gradcam", "saliency"))
    assert len(calls) == 1 and again is first  # the same object: no pickled copy per rerun
    np.testing.assert_array_equal(first["gradcam"], real(lite0, image, 1, ("gradcam",), layer)["gradcam"])
    for values in first.values():
        with pytest.raises(ValueError, match="read-only"):
            values[0, 0] = 1.0
    with pytest.raises(TypeError):
        first["gradcam"] = np.zeros(1)  # the mapping itself can't be changed either
    layer_cache.cam_maps(lite0, "k1", image, 2, layer, ("gradcam", "saliency"))  # another class: computed
    assert len(calls) == 2
    layer_cache.clear()


def test_figures_are_frozen_so_each_rerun_reuses_their_dict(monkeypatch):
    """What ``st.plotly_chart`` serializes (the figure's ``to_dict``: a deep copy, arrays base64-encoded) is made
    once per cached figure, not on every rerun of every session."""
    from plotly.basedatatypes import BaseFigure

    from vizlib.figures import feature_maps as ffm

    layer_cache.clear()
    made = []
    real = BaseFigure.to_dict
    monkeypatch.setattr(BaseFigure, "to_dict", lambda self: made.append(1) or real(self))
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    fig = layer_cache.figure(("test_heat", 1), lambda: ffm.channel_heatmap(values))
    assert layer_cache.figure(("test_heat", 1), lambda: pytest.fail("built again")) is fig
    first, again = fig.to_dict(), fig.to_dict()
    assert again is first and len(made) == 1
    assert first == real(ffm.channel_heatmap(values))  # the same as an ordinary figure's
    png = layer_cache.figure(("test_png", 1), lambda: b"\x89PNG")
    assert png == b"\x89PNG"  # anything else is kept as it is
    layer_cache.clear()


def test_class_labels_have_a_cache_of_their_own(tiny_loaded):
    """The CAM page's class labels are kept per (model, image) apart from the figures, and bounded."""
    layer_cache.clear()
    built = []

    def build(tag: str):
        return lambda: built.append(tag) or (f"label {tag}",)

    labels = layer_cache.class_labels(tiny_loaded, "img-a", build("a"))
    assert labels == ("label a",) and built == ["a"]
    assert layer_cache.class_labels(tiny_loaded, "img-a", build("again")) is labels and built == ["a"]
    assert layer_cache.class_labels(tiny_loaded, "img-b", build("b")) == ("label b",)  # another image: its own
    assert len(layer_cache._FIGURES) == 0 and len(layer_cache._CLASS_LABELS) == 2  # not in the figures' LRU
    for i in range(layer_cache.CLASS_LABELS + 5):
        layer_cache.class_labels(tiny_loaded, f"img-{i}", build(str(i)))
    assert len(layer_cache._CLASS_LABELS) == layer_cache.CLASS_LABELS
    layer_cache.clear()
    assert len(layer_cache._CLASS_LABELS) == 0
