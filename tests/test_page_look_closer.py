"""The Look closer and What a channel wants pages, and the CAM page's sanity check, through AppTest: what they
draw is vizlib's numbers; queued work arrives through ui.jobs; a channel opens in Feature maps."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.conftest import open_page
from tests.conftest import plotly_array as _array
from tests.conftest import plotly_figure as _figure
from ui.queues import heavy_queue
from vizlib import channels, featurevis, images, models, occlusion

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning:captum")]


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)


def _wait(queue, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while queue.counts() != (0, 0):
        assert time.monotonic() < end, "the queued work did not finish"
        time.sleep(0.2)


def _in_worker(fn):
    """``fn()`` run in the heavy queue's worker thread, where the page's queued work ran.

    torch's intra-op thread count belongs to each thread: a new thread takes the process-wide count of its first
    call (one, from app.py's ``configure_process``) while the test's main thread keeps the count it started with.
    A convolution summed with another number of threads differs in the last bits, so a reference at 1e-6 must be
    computed with the worker's count: in the worker itself.
    """
    return heavy_queue().submit("test-reference", lambda progress: fn()).result(600)


def _bars(at, key: str) -> list[tuple[str, float]]:
    bar = _figure(at, key)["data"][0]
    return list(zip(list(bar["y"])[::-1], _array(bar["x"])[::-1].tolist(), strict=True))


def test_moving_patch_and_occlusion_map_are_vizlibs(lite0, cat):
    at = open_page("pages/look_closer.py", timeout=600)
    assert at.title[0].value == "Look closer"
    _, expected = occlusion.covered_prediction(lite0, cat, 88, 88, 48, "grey")
    np.testing.assert_allclose([p for _, p in _bars(at, "lc_patch_top5")], [p for _, p in expected.top], atol=1e-5)
    at.slider(key="lc_x").set_value(0).run()
    at.slider(key="lc_y").set_value(10).run()
    _, moved = occlusion.covered_prediction(lite0, cat, 0, 10, 48, "grey")
    assert [n for n, _ in _bars(at, "lc_patch_top5")] == [n for n, _ in moved.top]
    np.testing.assert_allclose([p for _, p in _bars(at, "lc_patch_top5")], [p for _, p in moved.top], atol=1e-5)
    # the occlusion map: a coarse patch so the test stays short, computed in the queue
    at.select_slider(key="lc_map_patch").set_value(96).run()
    at.select_slider(key="lc_map_stride").set_value(32).run()
    target = models.classify(lite0, cat).indices[0]
    at.button(key="job:occlusion:start").click().run()
    _wait(heavy_queue())
    at.run()
    assert not at.exception, at.exception
    fig = _figure(at, "lc_sensitivity_figure")
    heats = [t for t in fig["data"] if t["type"] == "heatmap"]
    stride = fig["data"][0]["dx"]
    drop = occlusion.sensitivity(lite0, cat, target, patch=96, stride=32)
    np.testing.assert_allclose(_array(heats[0]["z"]), drop[::stride, ::stride], atol=1e-5)


def test_channel_page_finds_photos_and_opens_a_channel_in_feature_maps(lite0, cat):
    at = open_page("pages/channels.py", timeout=600)
    layer_box = at.selectbox(key=f"ch_layer::{models.DEFAULT_MODEL}")
    layer_box.set_value("_conv_stem").run()
    at.select_slider(key="ch_steps").set_value(64).run()
    at.button(key="job:bank:start").click().run()
    _wait(heavy_queue())
    at.run()
    expected = channels.dataset_examples(lite0, "_conv_stem", 0, extra=("your image", cat))
    shown = [img for img in at.get("image") if any("·" in (i.caption or "") for i in img.proto.imgs)]
    captions = [i.caption for i in shown[0].proto.imgs]
    assert captions == [f"{e.name} · {e.score:.3g}" for e in expected]
    at.button(key="job:featurevis:start").click().run()
    _wait(featurevis.QUEUE)
    at.run()
    assert featurevis.cached(lite0, "_conv_stem", 0, size=128, steps=64) is not None
    assert not at.exception, at.exception
    # the top channel of the prediction opens in Feature maps on its layer and channel
    layer, top = channels.rank_channels(lite0, cat, models.classify(lite0, cat).indices[0])
    at.button(key=f"ch_goto_{top[0].channel}").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Feature maps"
    assert at.selectbox(key=f"fm_channel::{layer}").value == top[0].channel
    stage = at.selectbox(key=f"fm_stage::{models.DEFAULT_MODEL}").value
    assert at.selectbox(key=f"fm_layer::{models.DEFAULT_MODEL}::{stage}").value == layer


def test_cam_page_sanity_check_flags_by_the_librarys_numbers(lite0, cat):
    from vizlib import cam
    from vizlib.cam import sanity as cam_sanity

    at = open_page("pages/cam.py", timeout=600)
    at.multiselect(key="cam_methods").set_value(["gradcam", "guided_backprop"]).run()
    at.button(key="job:cam_sanity:start").click().run()
    _wait(heavy_queue())
    at.run()
    assert not at.exception, at.exception
    target = models.classify(lite0, cat).indices[0]
    untrained = models.load_model(models.DEFAULT_MODEL, pretrained=False, device="cpu")
    check = _in_worker(lambda: cam_sanity.sanity_check(lite0, untrained, cat, target, ("gradcam", "guided_backprop"),
                                                       "_swish_1"))
    lines = _figure(at, "cam_sanity_correlation")["data"]
    np.testing.assert_allclose(_array(lines[0]["y"]), [s.correlation["gradcam"] for s in check.steps], atol=1e-6)
    flagged = " ".join(w.value for w in at.warning)
    for method in check.flagged:
        assert f"**{cam.TITLES[method]}** barely changes" in flagged


def test_a_resnets_last_block_opens_in_feature_maps_on_a_layer_it_lists():
    """ResNet-18 (untrained, seeded) as the session's own model: its last block ``layer4`` is a container the
    Feature maps page does not list; a channel opens on ``layer4.1.bn2``, the block's last layer with 512 channels."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP
    from tests.test_page_user_model import CLASSES, _load
    from tests.test_user_models import as_safetensors, seeded_resnet

    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    _load(at, "resnet.safetensors", as_safetensors(seeded_resnet().state_dict()), classes=CLASSES)
    own = at.session_state["own_model"]
    photo = images.gallery()[1]
    at.sidebar.selectbox(key="gallery_key").set_value(photo.key).run()  # not the first (default) photo
    at.switch_page("pages/channels.py").run()
    assert not at.exception, at.exception
    image = at.session_state["image"]
    layer, top = channels.rank_channels(own, image, models.classify(own, image).indices[0])
    assert layer == "layer4"
    assert any("**layer4.1.bn2**" in c.value for c in at.caption)
    assert "Optimise pictures and find photos for these 6" in [b.label for b in at.main.button] and not at.main.info
    at.button(key=f"ch_goto_{top[0].channel}").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Feature maps"
    assert at.session_state["model_name"] == own.name  # the switch kept the sidebar's choices: the model
    assert at.session_state["gallery_key"] == photo.key and at.session_state["image_label"] == photo.title  # photo
    assert at.selectbox(key=f"fm_stage::{own.name}").value == "layer4"
    assert at.selectbox(key=f"fm_layer::{own.name}::layer4").value == "layer4.1.bn2"
    assert at.selectbox(key="fm_channel::layer4.1.bn2").value == top[0].channel


def test_a_model_of_your_own_at_16_pixels_gets_only_the_sizes_that_fit():
    """A model that sees 16x16 pictures (the smallest a model of your own may): one patch size and no slider
    (a slider needs two), occlusion patches and shifts no larger than the input, each default one that works."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP
    from tests.test_page_user_model import _load
    from tests.test_user_models import as_safetensors, seeded_resnet

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.sidebar.toggle(key="own_open").set_value(True).run()
    at.sidebar.number_input(key="own_size").set_value(16)
    _load(at, "small.safetensors", as_safetensors(seeded_resnet().state_dict()), count=3)
    assert at.session_state["own_model"].input_size == (16, 16)
    at.switch_page("pages/look_closer.py").run()
    assert not at.exception, at.exception
    assert "lc_patch" not in [s.key for s in at.main.slider]
    assert any("Patch size: 8 px" in c.value for c in at.main.caption)
    assert at.select_slider(key="lc_map_patch").options == ["16"]
    assert at.select_slider(key="lc_equi_shift").options == ["8"]
    for label in ("Compute the occlusion map", "Measure every layer"):
        (button,) = [b for b in at.main.button if b.label == label]
        button.click().run()
    _wait(heavy_queue())
    at.run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]


def test_a_32_pixel_model_of_your_own_is_offered_no_photo_search_for_its_pooled_last_block(monkeypatch):
    """At 32 px a ResNet-18's last block is its ``avgpool``, whose units see the whole image: the top channels'
    button offers only the optimised pictures (and says why there are no photo patches), and that work succeeds."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP
    from tests.test_page_user_model import _load
    from tests.test_user_models import as_safetensors, seeded_resnet
    from vizlib.featurevis import service

    real = service.visualize
    pictures, banks = [], []
    monkeypatch.setattr(service, "visualize", lambda loaded, layer, channel, *, size, steps, seed, progress: (
        pictures.append((layer, channel)) or real(loaded, layer, channel, size=32, steps=1, seed=seed)))  # light
    monkeypatch.setattr(channels, "channel_bank", lambda *a, **k: banks.append(a) or pytest.fail("photo search"))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.sidebar.toggle(key="own_open").set_value(True).run()
    at.sidebar.number_input(key="own_size").set_value(32)
    _load(at, "small32.safetensors", as_safetensors(seeded_resnet().state_dict()), count=3)
    at.switch_page("pages/channels.py").run()
    assert not at.exception, at.exception
    assert any("**avgpool**" in c.value for c in at.caption)
    assert [i.value for i in at.main.info] == [
        "avgpool pools the whole image: its units have no place to cut a patch from."]
    labels = [b.label for b in at.main.button]
    assert "Optimise pictures for these 6" in labels and not any("find photos" in b for b in labels)
    (start,) = [b for b in at.main.button if b.label == "Optimise pictures for these 6"]
    start.click().run()
    _wait(featurevis.QUEUE)
    at.run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]
    assert len(pictures) == 6 and {layer for layer, _ in pictures} == {"avgpool"} and banks == []
    assert "Optimise pictures for these 6" not in [b.label for b in at.main.button]  # done: the pictures are shown
