"""The "Draw a digit" page through AppTest: the empty-canvas prompt, test-split examples (including the
ones the model gets wrong), the model's probabilities, the preprocessing steps and the unit picker."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page
from vizlib import models
from vizlib.digits import Unit, classify_heldout, digit_flow, load_heldout, unit_sources

pytestmark = pytest.mark.slow
PAGE = "pages/digits.py"


@pytest.fixture(scope="module")
def digits() -> models.LoadedModel:
    return models.load_model(models.DIGITS_MODEL, device="cpu")


@pytest.fixture(scope="module")
def heldout():
    return load_heldout()


@pytest.fixture(scope="module")
def expected(digits, heldout) -> np.ndarray:
    """The model's probabilities for every held-out digit, one digit at a time through the registry."""
    return np.stack([_probabilities(digits, heldout.image(i)) for i in range(len(heldout))])


def _probabilities(loaded: models.LoadedModel, image: np.ndarray) -> np.ndarray:
    prediction = models.classify(loaded, image, 10)
    probs = np.zeros(10)
    probs[list(prediction.indices)] = [p for _, p in prediction.top]
    return probs


def _page() -> AppTest:
    return open_page(PAGE, timeout=120)


def _chart(at: AppTest, key: str) -> dict:
    found = [el for el in at.get("plotly_chart") if el.proto.id.endswith(key)]
    assert len(found) == 1, [el.proto.id for el in at.get("plotly_chart")]
    return json.loads(found[0].proto.spec)


def _examples(at: AppTest) -> AppTest:
    at.radio(key="digits_source").set_value("Test-split example").run()
    assert not at.exception, at.exception
    return at


def test_empty_canvas_shows_a_prompt_not_an_error():
    at = _page()
    assert at.title[0].value == "Draw a digit"
    assert at.radio(key="digits_source").value == "Draw"
    assert not at.error and not at.warning
    assert any("Draw a digit" in el.value for el in at.info)
    assert not at.get("plotly_chart") and not at.metric  # nothing to show until there is ink


def test_an_example_shows_the_models_probabilities_and_steps(expected, heldout):
    at = _examples(_page())
    i = at.selectbox(key="digits_example_all").value
    assert i == 0
    probs = _chart(at, "digits_probs")["data"][0]
    assert probs["x"] == [str(d) for d in range(10)]
    np.testing.assert_allclose(probs["y"], expected[i], atol=1e-6)
    assert at.metric[0].value == str(int(np.argmax(expected[i])))
    assert at.metric[0].delta == f"{expected[i].max():.1%} sure"
    steps = _chart(at, "digits_steps")
    titles = [a["text"] for a in steps["layout"]["annotations"]]
    assert [t.split(" · ")[0] for t in titles] == ["1", "2", "3", "4"]
    assert "ink" in titles[0] and "cropped" in titles[1] and "scaled" in titles[2] and "28×28" in titles[3]
    captions = " ".join(c.value for c in at.caption)
    for word in ("**Crop**", "**scale**", "**centre of mass**", "**pad**"):
        assert word in captions
    # the whole network is drawn, its output bars equal to the same probabilities
    network = _chart(at, "digits_network")
    bars = [t for t in network["data"] if t["type"] == "bar"]
    np.testing.assert_allclose(bars[0]["y"], expected[i], atol=1e-6)
    assert len([t for t in network["data"] if t["type"] == "heatmap"]) == 7


def test_the_wrong_examples_picker(expected, heldout):
    at = _examples(_page())
    at.radio(key="digits_examples").set_value("wrong").run()
    assert not at.exception, at.exception
    box = at.selectbox(key="digits_example_wrong")
    wrong = np.flatnonzero(expected.argmax(1) != heldout.labels)
    assert 1 <= len(wrong) <= 15
    assert box.options == [box.format_func(int(i)) for i in wrong]
    for i in wrong[:2]:
        box.set_value(int(i)).run()
        assert not at.exception
        shown = at.metric[0].value
        assert shown == str(int(np.argmax(expected[i]))) and shown != str(heldout.labels[i])
        np.testing.assert_allclose(_chart(at, "digits_probs")["data"][0]["y"], expected[i], atol=1e-6)
        box = at.selectbox(key="digits_example_wrong")


def test_pick_a_unit_and_see_what_feeds_it(digits, heldout):
    at = _examples(_page())
    at.selectbox(key="digits_example_all").set_value(7).run()
    flow = digit_flow(digits, heldout.image(7))
    # at first the chosen unit is the predicted class's output
    text = " ".join(m.value for m in at.markdown)
    assert f"the logit of digit **{flow.predicted}**" in text
    at.selectbox(key="digits_stage_pick").set_value("conv1").run()
    at.number_input(key="digits_unit_c").set_value(3).run()
    at.number_input(key="digits_unit_y").set_value(10).run()
    at.number_input(key="digits_unit_x").set_value(12).run()
    assert not at.exception, at.exception
    want = unit_sources(digits, flow, Unit("conv1", (3, 10, 12)), k=10)
    text = " ".join(m.value for m in at.markdown)
    assert "**conv1 map 3, row 10, col 12** = ReLU(" in text
    assert f"= {want.value:.3f}." in text
    assert "It sees input rows 8–12, cols 10–14 (5×5 pixels)." in text
    patch = _chart(at, "digits_patch")
    assert patch["layout"]["annotations"][0]["text"] == "input: rows 8–12, cols 10–14"
    sources = _chart(at, "digits_sources")["data"][0]
    np.testing.assert_allclose(sources["x"], [s.contribution for s in want.sources][::-1], atol=1e-6)
    # a dense unit: the whole input, and its strongest inputs from pool2
    at.selectbox(key="digits_stage_pick").set_value("fc1").run()
    at.number_input(key="digits_unit_i").set_value(17).run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "**fc1 unit 17** = ReLU(" in text and "over its 800 inputs" in text
    labels = _chart(at, "digits_sources")["data"][0]["y"]
    assert len(labels) == 10 and all(label.startswith("pool2 map") for label in labels)


def test_the_page_uses_the_digits_model_whatever_the_sidebar_says(expected):
    at = _page()
    assert at.session_state["model_name"] == models.DEFAULT_MODEL
    assert any("always uses LeNet-5" in c.value for c in at.caption)
    _examples(at)
    assert at.metric[0].value == str(int(np.argmax(expected[0])))


def test_heldout_probabilities_on_the_page_path_match(digits, heldout, expected):
    # The page lists misclassified digits from classify_heldout: the same numbers as one at a time.
    np.testing.assert_allclose(classify_heldout(digits, heldout), expected, atol=1e-5)
