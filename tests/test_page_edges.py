"""The Edge detectors page through Streamlit's AppTest: kernel grid, presets, results, designed vs learned, fallback.

The live stream itself needs a browser (tests/test_browser_edges.py); here the page runs without one, so it
filters the chosen image instead and says why. The holder the stream reads (vizlib.kernels.live.LiveFilter) is
checked to follow every kernel change without being replaced.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page
from tests.conftest import plotly_array as _array
from vizlib import kernels as K

pytestmark = pytest.mark.slow

PAGE = "pages/edges.py"


def _page() -> AppTest:
    return open_page(PAGE, timeout=120)


def _figures(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures by element key."""
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def _sampled(values: np.ndarray, max_side: int) -> np.ndarray:
    stride = max(1, math.ceil(max(values.shape[:2]) / max_side))
    return values[::stride, ::stride]


def _editor(at: AppTest):
    (editor,) = [d for d in at.dataframe if d.editing_mode != "read_only"]
    return editor


def _assert_result(at: AppTest, kernel: np.ndarray, **options) -> None:
    expected = K.apply(at.session_state["image"], kernel, **options)
    z = _array(_figures(at)["edges_result"]["data"][0]["z"])
    np.testing.assert_allclose(z, _sampled(expected, 320), rtol=1e-6, atol=1e-4)


def test_default_kernel_its_result_and_the_gradient_panels():
    at = _page()
    assert at.title[0].value == "Edge detectors"
    np.testing.assert_array_equal(_editor(at).value.to_numpy(), K.PRESETS["sobel_x"])
    figures = _figures(at)
    np.testing.assert_array_equal(_array(figures["edges_grid_chart"]["data"][0]["z"]), K.PRESETS["sobel_x"])
    assert figures["edges_grid_chart"]["data"][0]["text"] == [["1", "0", "-1"], ["2", "0", "-2"], ["1", "0", "-1"]]
    _assert_result(at, K.PRESETS["sobel_x"])
    assert "value=%{z" in figures["edges_result"]["data"][0]["hovertemplate"]  # the value under the cursor

    image = at.session_state["image"]
    grad = K.gradient(image, K.PRESETS["sobel_x"], K.PRESETS["sobel_y"])
    panels = figures["edges_gradient"]["data"]
    assert [a["text"] for a in figures["edges_gradient"]["layout"]["annotations"]] == ["|Gx|", "|Gy|", "Magnitude"]
    for trace, expected in zip(panels, (np.abs(grad.gx), np.abs(grad.gy), grad.magnitude), strict=True):
        np.testing.assert_allclose(_array(trace["z"]), _sampled(expected, 240), rtol=1e-5, atol=1e-3)
    captions = " ".join(c.value for c in at.caption)
    assert "Separable: column [1.0, 2.0, 1.0] times row [1.0, 0.0, -1.0]" in captions
    assert "6 multiplications per pixel instead of 9" in captions


def test_switching_presets_changes_the_grid_the_result_and_the_live_kernel():
    at = _page()
    holder = at.session_state["edges_live"]
    np.testing.assert_array_equal(holder.settings.kernel, K.PRESETS["sobel_x"])
    before = _array(_figures(at)["edges_result"]["data"][0]["z"])
    version = holder.version

    at.selectbox(key="edges_preset").set_value("laplacian_4").run()
    assert not at.exception
    np.testing.assert_array_equal(_editor(at).value.to_numpy(), K.PRESETS["laplacian_4"])
    after = _array(_figures(at)["edges_result"]["data"][0]["z"])
    assert after.shape == before.shape and not np.allclose(after, before)
    _assert_result(at, K.PRESETS["laplacian_4"])
    # The same holder object, now with the new kernel: a running stream picks it up on its next frame.
    assert at.session_state["edges_live"] is holder
    np.testing.assert_array_equal(holder.settings.kernel, K.PRESETS["laplacian_4"])
    assert holder.version == version + 1
    assert "Not separable (rank 2)" in " ".join(c.value for c in at.caption)

    at.selectbox(key="edges_preset").set_value("gaussian_5x5").run()
    assert at.radio(key="edges_size").value == "5x5"
    np.testing.assert_allclose(_editor(at).value.to_numpy(), K.PRESETS["gaussian_5x5"])
    _assert_result(at, K.PRESETS["gaussian_5x5"])


def test_cell_edits_size_scale_bias_and_options_reach_the_result():
    at = _page()
    at.session_state[_editor(at).key] = {"edited_rows": {1: {"1": 7.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    edited = K.PRESETS["sobel_x"].astype(np.float64)
    edited[1, 1] = 7.0
    np.testing.assert_array_equal(_array(_figures(at)["edges_grid_chart"]["data"][0]["z"]), edited)
    _assert_result(at, edited)

    at.number_input(key="edges_scale").set_value(0.5)
    at.number_input(key="edges_bias").set_value(10.0).run()
    np.testing.assert_array_equal(_array(_figures(at)["edges_grid_chart"]["data"][0]["z"]), edited * 0.5)
    _assert_result(at, edited, scale=0.5, bias=10.0)

    at.radio(key="edges_size").set_value("5x5").run()  # the edited kernel, zero-padded, stays centred
    padded = np.pad(edited, 1)
    np.testing.assert_array_equal(_editor(at).value.to_numpy(), padded)
    _assert_result(at, padded, scale=0.5, bias=10.0)

    at.radio(key="edges_mode").set_value("convolve")
    at.selectbox(key="edges_border").set_value("replicate")
    at.selectbox(key="edges_color").set_value("per_channel").run()
    result = _figures(at)["edges_result"]["data"][0]
    assert result["type"] == "image"  # an RGB result, with the unclipped R, G, B responses on hover
    expected = K.apply(
        at.session_state["image"], padded, mode="convolve", border="replicate", color="per_channel", scale=0.5, bias=10
    )
    np.testing.assert_allclose(_array(result["customdata"]).reshape(-1), _sampled(expected, 320).reshape(-1), atol=1e-3)
    settings = at.session_state["edges_live"].settings
    assert (settings.mode, settings.border, settings.color, settings.scale, settings.bias) == (
        "convolve", "replicate", "per_channel", 0.5, 10.0
    )


def test_an_empty_cell_is_explained_and_the_live_stream_keeps_its_kernel():
    at = _page()
    at.session_state[_editor(at).key] = {"edited_rows": {0: {"2": None}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    assert at.error and "replace those cells with numbers" in at.error[0].value
    assert "edges_result" not in _figures(at)
    np.testing.assert_array_equal(at.session_state["edges_live"].settings.kernel, K.PRESETS["sobel_x"])


def test_most_similar_learned_filters_of_the_current_model(lite0):
    at = _page()
    weight = K.first_conv_weight(lite0.model)
    expected = K.match_filters(weight, K.PRESETS["sobel_x"], top_k=8)
    (table,) = [d for d in at.dataframe if d.editing_mode == "read_only"]
    assert table.value["Filter"].tolist() == expected.indices.tolist()
    np.testing.assert_allclose(table.value["Cosine similarity"], np.round(expected.similarities, 3))
    titles = [a["text"] for a in _figures(at)["edges_matches"]["layout"]["annotations"]]
    assert titles[0] == "Designed"
    assert titles[1:] == [f"#{i}  cos {s:+.2f}" for i, s in zip(expected.indices, expected.similarities, strict=True)]
    text = " ".join(m.value for m in at.markdown)
    assert lite0.spec.title in text and f"{weight.shape[0]} filters of 3x3x3" in text

    # As a convolution the page applies Sobel x flipped, i.e. -Sobel x: same filters, opposite signs.
    at.radio(key="edges_mode").set_value("convolve").run()
    (table,) = [d for d in at.dataframe if d.editing_mode == "read_only"]
    assert table.value["Filter"].tolist() == expected.indices.tolist()
    np.testing.assert_allclose(table.value["Cosine similarity"], -np.round(expected.similarities, 3))


def test_without_a_browser_the_chosen_image_is_filtered_instead_and_says_why():
    at = _page()
    (info,) = [i.value for i in at.info]
    assert "isn't open in a web browser" in info and "chosen image is filtered" in info
    assert len(at.main.get("image")) == 1  # the filtered frame (the other image is in the sidebar)
    at.button(key="edges_snapshot").click().run()
    assert not at.exception
    assert at.sidebar.radio(key="image_source").value == "Camera"


def test_an_image_smaller_than_the_kernel_gets_a_sentence_not_a_traceback():
    """A 1x1 upload is a valid image, smaller than the 3x3 kernel: the page (and its still frame) explains it."""
    from PIL import Image

    from tests.conftest import APP, encode

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.radio(key="image_source").set_value("Upload").run()
    at.sidebar.get("file_uploader")[0].set_value(("dot.png", encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"),
                                                  "image/png"))
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.session_state["image"].shape == (1, 1, 3)
    assert at.error and "smaller than the 3x3 kernel" in at.error[0].value
    assert any("smaller than the 3x3 kernel" in w.value for w in at.warning)  # where the filtered frame would be
