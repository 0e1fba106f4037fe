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
