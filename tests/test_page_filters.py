"""The Learned filters page through AppTest: filter grids before/after training, deeper kernels, depthwise and 1x1."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page
from tests.conftest import plotly_array as _array
from tests.conftest import plotly_figure as _figure
from vizlib import activations, filters, images, models

pytestmark = pytest.mark.slow

PAGE = "pages/filters.py"
LAYER_KEY = f"filters_layer::{models.DEFAULT_MODEL}"


def _page() -> AppTest:
    return open_page(PAGE, timeout=180)


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    """The first-layer weights of the pretrained and the untrained default model, read here."""
    trained = models.load_model(models.DEFAULT_MODEL, device="cpu")
    untrained = models.load_model(models.DEFAULT_MODEL, pretrained=False, device="cpu")
    return {
        "trained": filters.conv_weight(trained.model, "_conv_stem"),
        "untrained": filters.conv_weight(untrained.model, "_conv_stem"),
    }


def test_first_layer_before_and_after_training(weights):
    at = _page()
    assert at.title[0].value == "Learned filters"
    for key, which in (("filters_trained", "trained"), ("filters_untrained", "untrained")):
        fig = _figure(at, key)
        expected = filters.filter_grid(weights[which], normalisation="filter")
        trace = fig["data"][0]
        assert trace["type"] == "image"
        np.testing.assert_array_equal(_array(trace["z"]), expected.image)
        r, g, b = weights[which][5, :, 2, 1]
        top, left, _, _ = expected.layout.tile_box(5)
        assert trace["hovertext"][top + 2][left + 1] == f"filter 5 · (y=2, x=1)<br>R {r:.4f}<br>G {g:.4f}<br>B {b:.4f}"
    assert not np.array_equal(weights["trained"], weights["untrained"])
    caption = at.caption[0].value
    assert "**_conv_stem** of EfficientNet-Lite0" in caption and "32 filters of 3×3×3" in caption
    at.radio(key="filters_norm").set_value("The whole layer together").run()
    shared = filters.filter_grid(weights["trained"], normalisation="global")
    np.testing.assert_array_equal(_array(_figure(at, "filters_trained")["data"][0]["z"]), shared.image)


def test_deeper_filter_slices_and_its_response_without_a_new_forward_pass(monkeypatch):
    at = _page()  # computes (or finds cached) every layer's activations
    passes = []
    real = activations.run_extractor
    monkeypatch.setattr(activations, "run_extractor", lambda *a: passes.append(1) or real(*a))
    at.selectbox(key=LAYER_KEY).set_value("_blocks.1._project_conv").run()
    at.number_input(key="filters_index::_blocks.1._project_conv").set_value(7).run()
    assert not at.exception, at.exception
    assert passes == []  # the response comes from the cached activations
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    conv = dict(loaded.model.named_modules())["_blocks.1._project_conv"]
    slices = _figure(at, "filters_slices")["data"][0]
    z = _array(slices["z"]).astype(np.float64)
    np.testing.assert_allclose(np.sort(z[np.isfinite(z)]), np.sort(conv.weight[7].detach().numpy().ravel()), rtol=1e-6)
    assert z[np.isfinite(z)].size == 96  # 96 input channels, one 1x1 slice each
    photo = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    expected = filters.filter_response(loaded, photo, "_blocks.1._project_conv", 7)
    np.testing.assert_array_equal(_array(_figure(at, "filters_response")["data"][0]["z"]), expected)
    assert "96 slice(s) of 1×1 reading input channels 0 to 95" in " ".join(c.value for c in at.caption)


def test_depthwise_and_pointwise_explained_with_the_models_own_layers():
    at = _page()
    counts = {m.label: m.value for m in at.metric}
    assert counts == {"Standard": "1", "1x1 (pointwise)": "32", "Depthwise": "16", "Grouped": "0"}
    text = " ".join(m.value for m in at.markdown)
    assert "`_blocks.0._depthwise_conv`: groups = in_channels = 32" in text
    assert "288 parameters, against 9,216" in text
    assert "`_blocks.0._project_conv`: 16 filters of 1×1×32" in text
    assert "800 parameters" in text and "17.4% of it (1/16 + 1/9)" in text
    table = at.dataframe[0].value
    assert table["Parameters"].tolist() == [4608, 288, 512, 800]
    assert table["Multiplications per image"].tolist() == [
        112 * 112 * 32 * 16 * 9, 112 * 112 * 32 * 9, 112 * 112 * 32 * 16, 112 * 112 * (32 * 9 + 32 * 16)
    ]
    at.selectbox(key=f"filters_pair::{models.DEFAULT_MODEL}").set_value("_blocks.4._depthwise_conv").run()
    assert not at.exception
    assert "`_blocks.4._depthwise_conv`: groups = in_channels = 240" in " ".join(m.value for m in at.markdown)
