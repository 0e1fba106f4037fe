"""The "Why convolutions?" page through AppTest: the reference results without training, the lecture's
examples one click away, a short training run with live curves, and a cancel."""

from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page
from vizlib.training_lab import registry
from vizlib.training_lab.nets import NETS

pytestmark = pytest.mark.slow
PAGE = "pages/training_lab.py"


def _chart(at: AppTest, key: str) -> dict:
    found = [el for el in at.get("plotly_chart") if el.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, [el.proto.id for el in at.get("plotly_chart")]
    return json.loads(found[0].proto.spec)


def _settle(at: AppTest, done, seconds: float = 120) -> AppTest:
    deadline = time.monotonic() + seconds
    while not done(at) and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    assert done(at), "the page did not get there in time"
    return at


@pytest.fixture(scope="module")
def at() -> AppTest:
    return open_page(PAGE, timeout=240)


def test_first_in_the_lesson_order():
    from ui.shared import LESSONS

    assert LESSONS[0].path == PAGE


def test_reference_results_without_training(at):
    cards = {name: registry.read_card(name) for name in NETS}
    table = at.dataframe[0].value
    assert list(table["parameters"]) == [f"{cards[n]['parameters']:,}" for n in NETS]
    curves = _chart(at, "lab_curves")["data"]
    assert len(curves) == 3 * len(NETS)
    assert curves[0]["y"] and at.subheader[-1].value.startswith("Reference runs")
    assert [b.label for b in at.button if b.label == "Train"] == ["Train"]
    assert {"lab_filters_anim", "lab_filters_strip", "lab_fcn_fig", "lab_drag_fig"} <= {
        el.proto.id.rsplit("-", 1)[-1] for el in at.get("plotly_chart")}
    assert not at.exception


def test_shift_test_runs_once_and_is_explained(at):
    _settle(at, lambda a: any(el.proto.id.endswith("-lab_shift_fig") for el in a.get("plotly_chart")))
    data = _chart(at, "lab_shift_fig")["data"]
    assert len(data) == len(NETS) and all(len(trace["x"]) == 9 for trace in data)
    assert any("At 8px the nets keep" in m.value for m in at.markdown)


def test_lecture_example_one_click_away(at):
    next(b for b in at.button if b.label.startswith("128x128x3")).click().run()
    values = [m.value for m in at.metric]
    assert values == ["4,026,613,760", "6,225,920", "380"]
    assert at.number_input(key="lab_maps").value == 5


def test_drag_changes_the_moved_image(at):
    at.slider(key="lab_dx").set_value(6).run()
    said = next(m.value for m in at.markdown if m.value.startswith("Moved ("))
    assert said.startswith("Moved (6, 0) px, each net says: MLP: **")
    assert not at.exception


def test_train_on_a_small_subset_then_a_cancel(at):
    at.multiselect(key="lab_nets").set_value(["fashion_mlp", "fashion_cnn"])
    at.slider(key="lab_epochs").set_value(1)
    at.select_slider(key="lab_size").set_value(1_000).run()
    next(b for b in at.button if b.label == "Train").click().run()
    _settle(at, lambda a: a.subheader[-1].value.startswith("Your run"))
    curves = _chart(at, "lab_curves")["data"]
    assert [t["name"] for t in curves if t.get("showlegend") is not False] == ["MLP", "CNN"]
    assert any(m.value.startswith("Test accuracy: MLP") for m in at.markdown)

    at.slider(key="lab_epochs").set_value(5)
    at.select_slider(key="lab_size").set_value(10_000).run()
    next(b for b in at.button if b.label == "Train").click().run()
    assert "Cancel" in [b.label for b in at.button]
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert [b.label for b in at.button if b.label == "Train"] == ["Train"]
    assert at.subheader[-1].value.startswith("Reference runs")
    assert not at.exception


def test_without_fashion_mnist_the_page_says_so_instead_of_a_traceback(monkeypatch, tmp_path):
    """A fresh machine that followed the README's "Run the app" without Debian's dataset-fashion-mnist: the shift
    test and the bigger picture need the test garments; each says why it is missing, the rest of the page stays."""
    from ui import training_lab as lab
    from vizlib.training_lab.data import DATA_ENV

    monkeypatch.setenv(DATA_ENV, str(tmp_path))  # an empty folder
    lab.test_images.clear()
    try:
        page = open_page(PAGE, timeout=240)
        warnings = [w.value for w in page.warning]
        assert len(warnings) == 2 and all(f"Fashion-MNIST is not in {tmp_path}" in w for w in warnings), warnings
        assert not page.exception
        assert page.dataframe and any(el.proto.id.endswith("-lab_curves") for el in page.get("plotly_chart"))
    finally:
        lab.test_images.clear()


def test_a_window_larger_than_the_input_is_said_to_need_more_parameters_not_0x_fewer():
    page = open_page(PAGE, timeout=240)
    for key, value in {"lab_h": 1, "lab_w": 1, "lab_c": 1, "lab_oh": 1, "lab_ow": 1, "lab_maps": 1, "lab_k": 99}.items():
        page.number_input(key=key).set_value(value)
    page.run()
    assert not page.exception
    (text,) = [m.value for m in page.markdown if "**Local windows** (99×99)" in m.value]
    assert "4,901× more parameters than wiring every unit to every input" in text and "0×" not in text
    for key, value in {"lab_h": 100_000, "lab_w": 100_000, "lab_c": 1024, "lab_oh": 100_000, "lab_ow": 100_000,
                       "lab_maps": 4096}.items():  # the largest values: counts past 2**64, still drawn
        page.number_input(key=key).set_value(value)
    page.run()
    assert not page.exception, page.exception
    assert page.metric[0].value == "419,430,400,000,040,960,000,000,000"
