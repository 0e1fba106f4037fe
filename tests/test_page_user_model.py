"""Your own model through the app: the sidebar loads it, every page uses it, bad files get one sentence."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.conftest import APP
from tests.test_user_models import as_pt, as_safetensors, seeded_lenet, seeded_lite0, seeded_resnet
from vizlib import models
from vizlib.user_models import USER_MODEL_MB_ENV, load_user_model

CLASSES = ["tabby", "terrier", "teapot"]


def _uploader(at: AppTest, prefix: str):
    (found,) = [u for u in at.sidebar.get("file_uploader") if str(u.proto.id).split("-")[-1].startswith(prefix)]
    return found


def _load(at: AppTest, name: str, data: bytes, *, classes: list[str] | None = None, count: int = 0,
          architecture: str = "resnet18") -> AppTest:
    if not at.sidebar.toggle(key="own_open").value:
        at.sidebar.toggle(key="own_open").set_value(True).run()
    state = at.session_state
    round_ = state["own_model_round"] if "own_model_round" in state else 0  # noqa: SIM401 (AppTest's has no get)
    _uploader(at, f"own_weights_{round_}").set_value((name, data, "application/octet-stream"))
    if classes is not None:
        _uploader(at, f"own_names_{round_}").set_value(("classes.txt", "\n".join(classes).encode(), "text/plain"))
    at.sidebar.selectbox(key="own_arch").set_value(architecture)
    at.sidebar.number_input(key="own_count").set_value(count)
    at.run()
    at.sidebar.button(key="own_load").click().run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def resnet_safetensors() -> tuple[torch.nn.Module, bytes]:
    net = seeded_resnet()
    return net, as_safetensors(net.state_dict())


@pytest.mark.slow
def test_own_model_on_every_page(resnet_safetensors):
    net, data = resnet_safetensors
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    _load(at, "course.safetensors", data, classes=CLASSES)
    own = at.session_state["own_model"]
    assert at.session_state["model_choice"] == own.name and own.categories == CLASSES
    assert any("course.safetensors" in c.value for c in at.caption)  # the home page's model line
    # the home page's ranking is the original network's forward pass on the same input
    image = at.session_state["image"]
    with torch.no_grad():
        expected = torch.softmax(net(own.preprocess(image).cpu()), 1)[0]
    best = CLASSES[int(expected.argmax())]
    assert at.metric[0].value == best
    assert at.metric[0].delta.strip().startswith(f"{float(expected.max()):.1%}")
    for page in ("pages/feature_maps.py", "pages/filters.py", "pages/receptive_fields.py", "pages/cam.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert at.session_state["model_name"] == own.name
    # a second session never sees the first one's model
    other = AppTest.from_file(APP, default_timeout=240)
    other.run()
    assert own.name not in other.sidebar.selectbox(key="model_choice").options
    assert "own_model" not in other.session_state
    # forgetting it goes back to the default model
    at.switch_page("pages/home.py").run()
    at.sidebar.button(key="own_forget").click().run()
    assert not at.exception and "own_model" not in at.session_state
    assert at.session_state["model_name"] == models.DEFAULT_MODEL


def test_pt_file_loads_through_the_sidebar_like_the_library():
    net = seeded_lite0(num_classes=4)
    data = as_pt(net.state_dict())
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    _load(at, "lite4.pt", data, count=4, architecture=models.DEFAULT_MODEL)
    assert models.DIGITS_MODEL not in at.sidebar.selectbox(key="own_arch").options  # photo architectures only
    own = at.session_state["own_model"]
    direct = load_user_model(data, models.DEFAULT_MODEL, 4, filename="other-name.pt", device=own.device)
    assert own.name == direct.name and own.categories == ["class 0", "class 1", "class 2", "class 3"]
    image = at.session_state["image"]
    x = own.preprocess(image)
    with torch.no_grad():
        torch.testing.assert_close(own.model(x), net.to(x.device)(x), rtol=0, atol=0)
    assert at.metric[0].value in own.categories


def test_bad_files_get_one_sentence_and_nothing_changes(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    lenet, lite = seeded_lenet().state_dict(), seeded_lite0().state_dict()
    cases = {
        "evil.pt": (pickle.dumps(Payload(), protocol=2), "nothing in it was run"),
        "notes.pt": (b"just text\n" * 50, "is not a weights file"),
        "lenet.safetensors": (as_safetensors(lenet), "are not a resnet18"),
        "shape.pt": (as_pt({**lite, "_conv_stem.weight": torch.zeros(32, 3, 5, 5)}), "_conv_stem.weight has shape"),
    }
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    before = at.session_state["model_name"]
    for name, (data, sentence) in cases.items():
        architecture = models.DEFAULT_MODEL if name == "shape.pt" else "resnet18"
        _load(at, name, data, architecture=architecture)
        errors = [e.value for e in at.sidebar.error]
        assert any(sentence in e and e.endswith("Nothing changed.") for e in errors), (name, errors)
        assert "own_model" not in at.session_state and at.session_state["model_name"] == before
    _load(at, "three.pt", as_pt(lite), classes=["a", "b"], architecture=models.DEFAULT_MODEL)
    assert any("head has 3 outputs but 2 class names" in e.value for e in at.sidebar.error)
    assert not marker.exists()
    assert np.asarray(at.session_state["image"]).ndim == 3


def test_file_over_the_limit_gets_its_sentence(monkeypatch):
    """Over ``$CNN_LENS_USER_MODEL_MB`` (5 MB here): the sentence names the file's size and the limit."""
    monkeypatch.setenv(USER_MODEL_MB_ENV, "5")
    data = as_pt(seeded_lite0().state_dict())  # about 13 MB
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    before = at.session_state["model_name"]
    _load(at, "big.pt", data, architecture=models.DEFAULT_MODEL)
    errors = [e.value for e in at.sidebar.error]
    size = f"{len(data) / 2**20:.1f} MB"
    assert any(e.startswith(f"big.pt is {size}, over the 5.0 MB limit") and e.endswith("Nothing changed.")
               for e in errors), errors
    assert "own_model" not in at.session_state and at.session_state["model_name"] == before
