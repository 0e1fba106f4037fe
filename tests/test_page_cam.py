"""The Class activation maps page through AppTest: the maps shown are vizlib's, options don't recompute them."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page, picture_pixels
from tests.conftest import plotly_array as _array
from tests.conftest import plotly_figure as _figure
from ui import layer_cache
from vizlib import cam, images, models, overlay

pytestmark = pytest.mark.slow

PAGE = "pages/cam.py"
SHOWN = ("gradcam", "gradcam++", "layercam", "saliency")  # the page's default methods
LAYER_KEY = f"cam_layer::{models.DEFAULT_MODEL}"


def _page() -> AppTest:
    return open_page(PAGE, timeout=300)


def _panels(fig: dict) -> tuple[list[str], list[np.ndarray]]:
    """Panel titles and the maps' values on hover (each heatmap's z, on a grid of the image's pixels)."""
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    pictures = [t for t in fig["data"] if t["type"] == "image"]
    heats = [t for t in fig["data"] if t["type"] == "heatmap"]
    assert len(pictures) == len(heats) == len(titles)
    for picture, heat in zip(pictures, heats, strict=True):
        step = _array(heat["x"])[1] - _array(heat["x"])[0]
        assert step % picture["dx"] == 0 and "%{z" in heat["hovertemplate"]
    return titles, [_array(h["z"]) for h in heats]


def _heats(fig: dict) -> list[dict]:
    return [t for t in fig["data"] if t["type"] == "heatmap"]


def _sampled(values: np.ndarray, fig: dict, panel: int = 0) -> np.ndarray:
    """``values`` at the pixels whose values hover shows in ``panel`` (the figure's own sample grid)."""
    heat = _heats(fig)[panel]
    return values[np.ix_(_array(heat["y"]).astype(int), _array(heat["x"]).astype(int))]


def _drawn(values: np.ndarray, image: np.ndarray, fig: dict, colormap: str = "jet", opacity: float = 0.5) -> np.ndarray:
    """What the page should draw in a panel: the image with ``values`` blended over it, at the drawn stride."""
    stride = fig["data"][0]["dx"]
    return overlay.overlay(image[::stride, ::stride], values[::stride, ::stride], colormap, opacity)


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    """The session's default photo (the gallery's first), as the page gets it."""
    return images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)


@pytest.fixture(scope="module")
def bee() -> np.ndarray:
    return images.fit_image(images.load_gallery_image("two_objects"), 1024)


def test_opens_on_the_top_class_and_last_block_with_vizlib_maps_and_scores(lite0, cat):
    at = _page()
    assert at.title[0].value == "Class activation maps"
    ranking = models.classify(lite0, cat, 5)
    target = ranking.indices[0]
    radio = at.radio(key=f"cam_top5::{models.DEFAULT_MODEL}::{at.session_state['image_key']}")
    assert radio.value == target
    assert list(radio.options)[:5] == [f"{name} — {p:.1%}" for name, p in ranking.top]
    layer = at.selectbox(key=LAYER_KEY)
    assert layer.value == cam.default_layer(lite0) == "_swish_1"
    assert layer.options[0] == "last block (default) · _swish_1" and "_conv_stem" in layer.options
    assert at.multiselect(key="cam_methods").value == list(SHOWN)
    # the maps drawn are exactly vizlib's, for the top class at the default layer
    expected = cam.compute(lite0, cat, target, SHOWN)
    fig = _figure(at, "cam_methods_figure")
    titles, drawn = _panels(fig)
    pictures = [t for t in fig["data"] if t["type"] == "image"]
    for i, (method, z) in enumerate(zip(SHOWN, drawn, strict=True)):
        np.testing.assert_allclose(z, _sampled(expected[method], fig, i), atol=1e-5, err_msg=method)
        drawn_pixels = picture_pixels(pictures[i]).astype(int)
        assert np.abs(drawn_pixels - _drawn(expected[method], cat, fig)).max() <= 4, method  # maps within 1e-5
    # the smooth maps' hover is sparser than what is drawn; Saliency's is every drawn pixel
    steps = [int(_array(h["x"])[1] - _array(h["x"])[0]) for h in _heats(fig)]
    assert steps[:3] == [fig["data"][0]["dx"] * 4] * 3 and steps[3] == fig["data"][0]["dx"]
    # the maps come first, titled by method; one faithfulness score per map, the library's numbers, in the table
    assert titles == [cam.TITLES[m] for m in SHOWN]
    # the scores are computed when asked for (the page says so), in the shared queue, then shown
    assert not at.dataframe
    assert "Not computed yet" in " ".join(c.value for c in at.main.caption)
    at.button(key="job:cam_faithfulness:start").click().run()
    assert not at.exception, at.exception
    at.session_state["job:cam_faithfulness"]["job"].wait(60)
    at.run()
    scores = cam.faithfulness(lite0, cat, target, expected)
    table = at.dataframe[0].value
    assert list(table["Method"]) == [cam.TITLES[m] for m in SHOWN]
    np.testing.assert_allclose(table["Faithfulness"], [scores[m].score for m in SHOWN], atol=1e-4)
    np.testing.assert_allclose(table["Drop, random 20%"], [scores[m].drop_random for m in SHOWN], atol=1e-4)
    captions = " ".join(c.value for c in at.main.caption)
    assert "minus the drop for a random 20%" in captions
    assert f"Evidence for **{lite0.categories[target]}** at layer **_swish_1**" in captions
    # the close-up: the first method over the image, and its downloads
    assert at.selectbox(key="cam_closeup").value == SHOWN[0]
    close = _figure(at, "cam_overlay")
    np.testing.assert_allclose(_array(close["data"][1]["z"]), _sampled(expected[SHOWN[0]], close), atol=1e-5)
    buttons = at.get("download_button")
    assert [b.label for b in buttons] == ["Overlay (PNG)", "Map (.npy)", "All maps (.npy)"]
    # every file is made when its button is clicked, not on every rerun
    assert all(b.proto.HasField("deferred_file_id") for b in buttons)


def test_another_target_class_changes_the_maps(lite0, cat):
    at = _page()
    before = _panels(_figure(at, "cam_methods_figure"))[1]
    second = models.classify(lite0, cat, 5).indices[1]
    at.radio(key=f"cam_top5::{models.DEFAULT_MODEL}::{at.session_state['image_key']}").set_value(second).run()
    assert not at.exception, at.exception
    fig = _figure(at, "cam_methods_figure")
    after = _panels(fig)[1]
    expected = cam.compute(lite0, cat, second, SHOWN)
    for method, old, new in zip(SHOWN, before, after, strict=True):
        np.testing.assert_allclose(new, _sampled(expected[method], fig, SHOWN.index(method)), atol=1e-5,
                                   err_msg=method)
        assert not np.allclose(old, new), method
    # any class by name: the searchable picker
    at.radio(key=f"cam_top5::{models.DEFAULT_MODEL}::{at.session_state['image_key']}").set_value(-1).run()
    daisy = lite0.categories.index("daisy")
    at.selectbox(key=f"cam_any::{models.DEFAULT_MODEL}").set_value(daisy).run()
    assert not at.exception, at.exception
    fig = _figure(at, "cam_methods_figure")
    np.testing.assert_allclose(
        _panels(fig)[1][0], _sampled(cam.compute(lite0, cat, daisy, ("gradcam",))["gradcam"], fig), atol=1e-5
    )


def test_opacity_colormap_and_close_up_reuse_the_maps(monkeypatch, lite0, cat):
    st.cache_data.clear()
    layer_cache.clear()  # the shared maps, activations, rankings and figures
    calls = []
    real = cam.compute

    def counting(loaded, image, target, methods=("gradcam",), layer=None):
        calls.append((target, tuple(methods), layer))
        return real(loaded, image, target, methods, layer)

    monkeypatch.setattr(cam, "compute", counting)
    at = _page()
    assert len(calls) == 3  # the methods side by side, then class A and class B of the two-object photo
    at.slider(key="cam_opacity").set_value(0.25).run()
    at.selectbox(key="cam_colormap").set_value("viridis").run()
    at.selectbox(key="cam_closeup").set_value("saliency").run()
    assert not at.exception, at.exception
    assert len(calls) == 3
    fig = _figure(at, "cam_methods_figure")
    from vizlib.figures.cam import colorscale

    assert _heats(fig)[0]["colorscale"] == colorscale("viridis")  # the colour bar and the hover label's colour
    target = models.classify(lite0, cat, 1).indices[0]
    gradcam = real(lite0, cat, target, ("gradcam",))["gradcam"]
    drawn = picture_pixels(fig["data"][0]).astype(int)
    assert np.abs(drawn - _drawn(gradcam, cat, fig, "viridis", 0.25)).max() <= 4
    assert _figure(at, "cam_overlay")["layout"]["title"]["text"] == "Saliency"
    at.multiselect(key="cam_methods").set_value(["gradcam", "xgradcam"]).run()
    assert len(calls) == 4 and calls[-1][1] == ("gradcam", "xgradcam")


def test_cam_is_offered_only_where_the_head_allows_it_with_the_reason(lite0):
    at = _page()
    assert "CAM" in at.multiselect(key="cam_methods").options and not at.info
    at.multiselect(key="cam_methods").set_value(["cam", "gradcam"]).run()
    titles = _panels(_figure(at, "cam_methods_figure"))[0]
    assert [t.split("<br>")[0] for t in titles] == ["CAM", "Grad-CAM"]
    at.selectbox(key=LAYER_KEY).set_value("_conv_head").run()
    assert not at.exception, at.exception
    reason = cam.cam_unsupported_reason(lite0, "_conv_head")
    assert reason and reason in at.info[0].value
    methods = at.multiselect(key="cam_methods")
    assert "CAM" not in methods.options and methods.value == ["gradcam"]


def test_score_cam_runs_only_when_asked():
    at = _page()
    at.multiselect(key="cam_methods").set_value(["gradcam", "scorecam"]).run()
    assert not at.exception, at.exception
    assert "Score-CAM runs one masked forward pass per channel" in at.warning[0].value
    assert at.button(key="job:cam_heavy:start").label == "Compute Score-CAM"
    assert "job:cam_heavy" not in at.session_state  # nothing started
    titles = _panels(_figure(at, "cam_methods_figure"))[0]
    assert [t.split("<br>")[0] for t in titles] == ["Grad-CAM"]


def test_why_a_and_not_b_shows_one_map_per_class(lite0, bee, cat):
    at = _page()
    bee_class, daisy = lite0.categories.index("bee"), lite0.categories.index("daisy")
    fig = _figure(at, "cam_ab")
    titles, drawn = _panels(fig)
    assert titles[0].startswith("A: bee (") and titles[1].startswith("B: daisy (")
    for panel, (index, z) in enumerate(zip((bee_class, daisy), drawn, strict=True)):
        expected = cam.compute(lite0, bee, index, ("gradcam",))["gradcam"]
        np.testing.assert_allclose(z, _sampled(expected, fig, panel), atol=1e-5)
    assert not np.allclose(drawn[0], drawn[1])
    # the current image instead: its two most probable classes
    at.radio(key="cam_ab_sample").set_value(False).run()
    assert not at.exception, at.exception
    first, second = models.classify(lite0, cat, 2).indices
    titles, drawn = _panels(_figure(at, "cam_ab"))
    assert titles[0].startswith(f"A: {lite0.categories[first]} (")
    assert titles[1].startswith(f"B: {lite0.categories[second]} (")
    at.selectbox(key="cam_ab_method").set_value("layercam").run()
    fig = _figure(at, "cam_ab")
    expected = cam.compute(lite0, cat, second, ("layercam",))["layercam"]
    np.testing.assert_allclose(_panels(fig)[1][1], _sampled(expected, fig, 1), atol=1e-5)


def test_a_library_error_is_a_sentence_not_a_traceback(monkeypatch):
    st.cache_data.clear()
    layer_cache.clear()  # the shared maps, activations, rankings and figures

    def refuse(*args, **kwargs):
        raise cam.LayerError("The output of the model does not depend on the chosen layer (test).")

    monkeypatch.setattr(cam, "compute", refuse)
    at = _page()
    assert "does not depend on the chosen layer (test)." in at.error[0].value
    assert not at.get("plotly_chart")
    st.cache_data.clear()
    layer_cache.clear()  # the shared maps, activations, rankings and figures


def test_score_cam_runs_in_the_shared_queue_when_asked_and_joins_the_figure(lite0, cat):
    at = _page()
    target = models.classify(lite0, cat, 1).indices[0]
    at.selectbox(key=LAYER_KEY).set_value("_conv_stem").run()  # 32 channels: a short job
    at.multiselect(key="cam_methods").set_value(["gradcam", "scorecam"]).run()
    at.button(key="job:cam_heavy:start").click().run()
    assert not at.exception, at.exception
    job = at.session_state["job:cam_heavy"]["job"]
    assert job.label == f"Score-CAM of {lite0.categories[target]}"
    assert job.wait(120)
    at.run()
    fig = _figure(at, "cam_methods_figure")
    titles, drawn = _panels(fig)
    assert [t.split("<br>")[0] for t in titles] == ["Grad-CAM", "Score-CAM"]
    expected = cam.compute(lite0, cat, target, ("scorecam",), "_conv_stem")["scorecam"]
    np.testing.assert_allclose(drawn[1], _sampled(expected, fig, 1), atol=1e-5)


def test_guided_methods_say_when_the_network_is_not_made_of_rectifiers(monkeypatch):
    at = _page()
    at.multiselect(key="cam_methods").set_value(["gradcam", "guided_backprop"]).run()
    assert not at.exception, at.exception
    assert not [i for i in at.info if "Guided" in i.value]  # EfficientNet-Lite0 is all ReLU6: the rule applies
    monkeypatch.setattr(cam, "unguided_activations", lambda loaded: {"SiLU": 49})
    at.run()
    (note,) = [i.value for i in at.info if "Guided Backprop" in i.value]
    assert "49 SiLU" in note and "close to a plain gradient" in note


def test_the_page_keeps_no_maps_alive_once_the_shared_cache_lets_them_go(lite0):
    """Streamlit keeps a session's widget functions (and the download buttons' file makers) while the tab is open:
    they must not hold the maps, or every student would keep megabytes of evicted maps alive."""
    import gc
    import weakref

    st.cache_data.clear()
    layer_cache.clear()
    at = _page()
    assert not at.exception, at.exception
    image = at.session_state["image"]
    target = models.classify(lite0, image, 1).indices[0]
    shared = layer_cache.cam_maps(lite0, at.session_state["image_key"], image, target, cam.default_layer(lite0),
                                  SHOWN)  # the page's own set: already cached by its run
    assert set(shared) == set(SHOWN)
    alive = [weakref.ref(values) for values in shared.values()]
    del shared
    layer_cache.clear()
    gc.collect()
    assert all(ref() is None for ref in alive)
    assert at.get("download_button")  # the session and its buttons still exist
