"""The app shell through Streamlit's AppTest: router, sidebar, home page, bad uploads, offline models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import APP, encode
from vizlib import images, models

pytestmark = pytest.mark.slow


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def plotly_figures(at: AppTest) -> list[dict]:
    """The plotly figures on the page, as dicts."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_home_shows_the_image_top5_and_the_guide():
    at = _app()
    assert at.title[0].value == "CNN Lens"
    (fig,) = plotly_figures(at)
    bars = fig["data"][0]
    assert len(bars["y"]) == 5
    probs = bars["x"]
    assert probs == sorted(probs)  # drawn bottom-up: the most likely class is on top
    cats = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
    assert bars["y"][-1] in cats
    assert at.metric[0].value == bars["y"][-1]
    caption = " ".join(c.value for c in at.caption)
    assert "EfficientNet-Lite0" in caption and "CPU" in caption and " ms" in caption
    links = [el.proto.label for el in at.get("page_link")]
    assert links and links[0].startswith("1. Convolution arithmetic")
    assert "Running on" in " ".join(c.value for c in at.sidebar.caption)


def test_gallery_choice_changes_the_prediction():
    at = _app()
    first = at.metric[0].value
    at.sidebar.selectbox(key="gallery_key").set_value("coffee").run()
    assert not at.exception
    assert at.metric[0].value != first
    assert at.metric[0].value in {"espresso", "cup", "coffee mug", "eggnog", "chocolate sauce"}


def test_upload_a_photo_then_a_bad_file_keeps_the_photo():
    at = _app()
    at.sidebar.radio(key="image_source").set_value("Upload").run()
    cat = np.asarray(Image.open(images.gallery()[0].path).convert("RGB"))
    at.sidebar.get("file_uploader")[0].set_value(("my cat.png", encode(Image.fromarray(cat), "PNG"), "image/png"))
    at.run()
    assert not at.exception and not at.sidebar.error
    label = at.metric[0].value
    np.testing.assert_array_equal(at.session_state["image"], images.fit_image(cat, 1024))
    broken = ("broken.jpg", b"\xff\xd8\xff\xe0 definitely not a jpeg", "image/jpeg")
    at.sidebar.get("file_uploader")[0].set_value(broken)
    at.run()
    assert not at.exception
    assert at.sidebar.error and "previous image is still in use" in at.sidebar.error[0].value
    assert at.metric[0].value == label  # the earlier image is still the one shown
    np.testing.assert_array_equal(at.session_state["image"], images.fit_image(cat, 1024))


def test_a_tiny_upload_is_classified_with_a_note_that_it_was_enlarged():
    at = _app()
    assert not at.info  # the gallery photo is large enough
    at.sidebar.radio(key="image_source").set_value("Upload").run()
    tiny = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    at.sidebar.get("file_uploader")[0].set_value(("tiny.png", encode(Image.fromarray(tiny), "PNG"), "image/png"))
    at.run()
    assert not at.exception and not at.sidebar.error
    assert at.metric[0].value  # still classified
    (note,) = at.info
    assert "Your image is 5×3 px, smaller than the 224×224 px the network looks at" in note.value


def test_model_without_weights_offline_falls_back_to_default(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CHECKPOINTS_ENV, str(tmp_path))
    import dataclasses

    specs = dict(models._specs())
    specs["resnet50"] = dataclasses.replace(specs["resnet50"], weights_url="http://127.0.0.1:9/resnet50-11ad3fa6.pth")
    monkeypatch.setattr(models, "_SPECS", specs)
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("resnet50").run()
    assert not at.exception
    warning = " ".join(w.value for w in at.sidebar.warning)
    assert "resnet50-11ad3fa6.pth" in warning and "Carrying on with EfficientNet-Lite0" in warning
    assert at.session_state["model_name"] == models.DEFAULT_MODEL
    assert "EfficientNet-Lite0" in " ".join(c.value for c in at.caption)


def test_image_stays_chosen_across_pages():
    at = _app()
    at.sidebar.selectbox(key="gallery_key").set_value("goldfish").run()
    key = at.session_state["image_key"]
    at.switch_page("pages/convolution.py").run()
    assert not at.exception
    at.switch_page("pages/home.py").run()
    assert at.session_state["image_key"] == key
    assert at.sidebar.selectbox(key="gallery_key").value == "goldfish"


def test_the_sidebar_offers_only_models_that_take_photos():
    # The digits LeNet sees a re-centred 28x28 crop: maps over the photo, faithfulness and CAM inputs would be
    # wrong for it, so it lives on the Draw-a-digit page only.
    at = _app()
    offered = at.sidebar.selectbox(key="model_choice").options
    assert models.get_spec(models.DIGITS_MODEL).title not in offered
    assert len(offered) == len(models.list_models("ImageNet")) >= 9
    assert all(models.get_spec(name).dataset == "ImageNet" for name in models.list_models("ImageNet"))
    assert models.DIGITS_MODEL in models.list_models()


def test_a_model_that_fails_to_load_is_said_once_and_not_retried(monkeypatch):
    calls = []
    real = models.load_model

    def broken(name, **kwargs):
        if name == "alexnet":
            calls.append(name)
            raise models.WeightsIntegrityError("alexnet.pth is damaged: delete it and download it again.")
        return real(name, **kwargs)

    monkeypatch.setattr(models, "load_model", broken)
    monkeypatch.setattr(models, "weights_status", lambda name: "bundled")
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("alexnet").run()
    assert not at.exception, at.exception
    assert "alexnet.pth is damaged" in at.sidebar.error[0].value
    assert at.session_state["model_name"] == models.DEFAULT_MODEL
    at.run()
    at.run()
    assert calls == ["alexnet"]  # not retried on every rerun
    assert not at.sidebar.error  # said once
    assert "could not be loaded in this session" in " ".join(c.value for c in at.sidebar.caption)
