"""The Receptive fields page through AppTest: the numbers it shows against vizlib.receptive_field."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page
from tests.conftest import plotly_array as _array
from tests.conftest import plotly_figure as _figure
from ui import layer_cache as _layer_cache
from vizlib import images, models
from vizlib import receptive_field as R

pytestmark = pytest.mark.slow

PAGE = "pages/receptive_fields.py"
MODEL = models.DEFAULT_MODEL
LAYER = "_blocks.4._depthwise_conv"  # stage _blocks.4 of EfficientNet-Lite0


def _page() -> AppTest:
    return open_page(PAGE, timeout=180)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def _pick(at: AppTest, layer: str, unit: tuple[int, int]) -> None:
    stage = ".".join(layer.split(".")[:2])
    at.selectbox(key=f"rf_stage::{MODEL}").set_value(stage).run()
    at.selectbox(key=f"rf_layer::{MODEL}::{stage}").set_value(layer).run()
    at.number_input(key=f"rf_row::{MODEL}::{layer}").set_value(unit[0]).run()
    at.number_input(key=f"rf_col::{MODEL}::{layer}").set_value(unit[1]).run()
    assert not at.exception, at.exception


@pytest.fixture(scope="module")
def loaded() -> models.LoadedModel:
    return models.load_model(MODEL, device="cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The session's default photo (the gallery's first), as the page gets it."""
    return images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    _layer_cache.clear()
    yield
    st.cache_data.clear()
    _layer_cache.clear()


def test_layer_numbers_and_the_units_box_are_the_models_own(loaded):
    at = _page()
    assert at.title[0].value == "Receptive fields"
    fields = R.receptive_fields(loaded)
    middle = list(fields)[len(fields) // 2]
    assert at.selectbox(key=f"rf_stage::{MODEL}").value == ".".join(middle.split(".")[:2])
    layer_box = at.selectbox(key=f"rf_layer::{MODEL}::{'.'.join(middle.split('.')[:2])}")
    assert layer_box.value == middle
    rf = fields[middle]
    assert f"RF {rf.size} px · stride {rf.stride}" in layer_box.format_func(middle)
    # the centre unit is picked first
    h, w = rf.output_hw
    assert at.number_input(key=f"rf_row::{MODEL}::{middle}").value == h // 2
    assert at.number_input(key=f"rf_col::{MODEL}::{middle}").value == w // 2

    _pick(at, LAYER, (0, 1))
    rf = R.receptive_field(loaded, LAYER)
    shown = _metrics(at)
    assert (shown["Receptive field"], shown["Stride"], shown["Padding"], shown["Feature map"]) == (
        f"{rf.size} px", f"{rf.stride} px", f"{rf.padding} px", f"{rf.output_size} units")
    (top, bottom), (left, right) = rf.box(0, 1)
    assert top < 0 and left < 0  # this unit's field reaches into the padding above and to the left
    text = _markdown(at)
    assert f"Unit **(0, 1)** of **{LAYER}** sees input rows **{top} to {bottom}**" in text
    assert f"and columns **{left} to {right}**: {rf.size} × {rf.size} pixels of the 224 × 224 picture" in text
    on_image = (bottom + 1) * (right + 1)
    assert f"**{rf.size ** 2 - on_image:,} of those {rf.size ** 2:,} pixels are padding**" in text
    assert f"On the picture itself: rows 0 to {bottom}, columns 0 to {right}." in text
    # the box on the 224x224 picture: the part on the image outlined, the rest hatched as padding
    box = {t.get("name"): t for t in _figure(at, "rf_box")["data"]}
    inside, padding = box["receptive field on the image"], box["padding (zeros)"]
    assert (min(inside["x"]), max(inside["x"]), min(inside["y"]), max(inside["y"])) == (
        -0.5, right + 0.5, -0.5, bottom + 0.5)
    assert min(v for v in padding["x"] if v is not None) == left - 0.5 and padding["fillpattern"]["shape"] == "/"
    # the feature map to click on: the layer's mean map with the unit framed
    picker = _figure(at, "rf_picker")
    assert picker["data"][0]["type"] == "heatmap" and _array(picker["data"][0]["z"]).shape == rf.output_hw
    frame = picker["layout"]["shapes"][0]
    assert (frame["x0"], frame["y0"]) == (0.5, -0.5)


def test_nothing_is_recomputed_per_rerun_and_no_weights_are_fetched(monkeypatch):
    built = []
    real = R.architecture_fields

    def counting(name, *args, **kwargs):
        built.append(name)
        return real(name, *args, **kwargs)

    def offline(*args, **kwargs):
        raise AssertionError("the comparison must not download weights")

    monkeypatch.setattr(R, "architecture_fields", counting)
    monkeypatch.setattr(models, "fetch_weights", offline)
    at = _page()
    assert sorted(built) == sorted({MODEL, "alexnet", "vgg16", "resnet50"})  # the model and the default comparison
    _pick(at, LAYER, (3, 3))
    at.slider(key="rf_n_random").set_value(2).run()
    at.multiselect(key="rf_compare").set_value(["vgg16", "resnet18"]).run()
    assert not at.exception, at.exception
    assert sorted(built) == sorted({MODEL, "alexnet", "vgg16", "resnet50", "resnet18"})  # only the new model


def test_growth_and_comparison_charts_carry_each_models_fields(loaded):
    at = _page()
    growth = {t["name"]: t for t in _figure(at, "rf_growth")["data"]}
    fields = R.receptive_fields(loaded)
    assert list(_array(growth["size"]["y"])) == [rf.size for rf in fields.values()]
    assert list(_array(growth["stride"]["y"])) == [rf.stride for rf in fields.values()]
    at.multiselect(key="rf_compare").set_value(["vgg16", "resnet18"]).run()
    assert not at.exception, at.exception
    from torchvision.models import resnet18, vgg16

    with torch.device("meta"):
        expected = {"VGG-16 (2014)": R.receptive_fields(vgg16()), "ResNet-18 (2015)": R.receptive_fields(resnet18())}
    sizes = [t for t in _figure(at, "rf_comparison")["data"] if t.get("showlegend") is not False]
    assert [t["name"] for t in sizes] == list(expected)
    for trace, table in zip(sizes, expected.values(), strict=True):
        assert list(_array(trace["y"])) == [rf.size for rf in table.values()]
        np.testing.assert_allclose(_array(trace["x"]), np.arange(1, len(table) + 1) / len(table))
    summary = at.dataframe[0].value
    assert list(summary["Model"]) == list(expected)
    assert list(summary["Conv and pooling layers"]) == [len(t) for t in expected.values()]
    assert list(summary["Widest local field (px)"]) == ["212", "435"]  # VGG-16's pool5; ResNet-18's layer4


def test_dilation_demo_lecture_wavenet_and_custom_stacks():
    at = _page()
    assert at.selectbox(key="rf_dil_preset").value.startswith("Lecture: kernel 2, stride 2")
    shown = _metrics(at)
    assert (shown["Stack's receptive field"], shown["Without dilation"]) == ("4 inputs", "4 inputs")
    text = _markdown(at)
    assert "two layers: **4** inputs" in text and "gives **6**" in text and "The lecture's **8**" in text
    assert "Dilation 2 in both layers gives 7" in text
    assert "dilations 1, 2, 4, 8): 2, 4, 8, 16" in text and "grows by one: 2, 3, 4, 5" in text

    at.selectbox(key="rf_dil_preset").set_value("Lecture, dilation 2 in layer 2").run()
    shown = _metrics(at)
    assert (shown["Stack's receptive field"], shown["Inputs connected"], shown["Without dilation"]) == (
        "6 inputs", "4", "4 inputs")
    ticks = _figure(at, "rf_dilation")["layout"]["yaxis"]["ticktext"]
    assert ticks[2] == "layer 2: k=2, s=2, d=2 → RF 6"
    grid = _array(_figure(at, "rf_dilation_grid")["data"][0]["z"])
    assert np.count_nonzero(grid) == 16  # 4 connected inputs per axis

    at.selectbox(key="rf_dil_preset").set_value("WaveNet: kernel 2, stride 1, dilations 1, 2, 4, 8").run()
    assert [n.value for n in at.number_input if n.key.startswith("rf_dil_d")] == [1, 2, 4, 8]
    assert _metrics(at)["Stack's receptive field"] == "16 inputs"
    assert "After each layer: **2, 4, 8, 16** (without dilation: 2, 3, 4, 5)." in _markdown(at)

    at.number_input(key="rf_dil_d3").set_value(16).run()  # editing a layer makes it a custom stack
    assert at.selectbox(key="rf_dil_preset").value == "Custom"
    expected = R.receptive_field_growth([2] * 4, None, [1, 2, 4, 16])[-1]
    assert _metrics(at)["Stack's receptive field"] == f"{expected} inputs"
    at.slider(key="rf_dil_layers").set_value(1).run()
    at.slider(key="rf_dil_layers").set_value(3).run()  # layers shown again start as kernel 2, stride 1, dilation 1
    assert [n.value for n in at.number_input if n.key.startswith("rf_dil_")] == [2, 1, 1, 2, 1, 1, 2, 1, 1]
    assert _metrics(at)["Stack's receptive field"] == "4 inputs"
    assert not at.exception, at.exception


def test_effective_field_on_demand_cached_and_equal_to_vizlib(loaded, photo, monkeypatch):
    calls = []
    real = R.effective_receptive_field

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(R, "effective_receptive_field", counting)
    at = _page()
    _pick(at, LAYER, (5, 6))
    at.slider(key="rf_n_random").set_value(1).run()
    assert not calls and "Press the button" in at.info[0].value
    at.button(key="rf_erf_go").click().run()
    assert not at.exception, at.exception
    at.session_state["job:rf_erf"]["job"].wait(120)  # computed in the shared job queue
    at.run()
    assert calls == [LAYER]
    expected = real(loaded, LAYER, loaded.preprocess(photo), (5, 6), None, n_random=1)
    heats = [t for t in _figure(at, "rf_erf")["data"] if t["type"] == "heatmap"]
    np.testing.assert_allclose(_array(heats[0]["z"]).astype(np.float32), expected.image_map, atol=1e-6)
    np.testing.assert_allclose(_array(heats[1]["z"]).astype(np.float32), expected.random_map, atol=1e-6)
    shown = _metrics(at)
    assert shown["Theoretical"] == f"{expected.theoretical.size} px"
    assert shown["Effective, on your image"] == f"{R.effective_size(expected.image_map):.0f} px"
    at.selectbox(key="rf_dil_preset").set_value("WaveNet: kernel 2, stride 1, dilations 1, 2, 4, 8").run()
    assert calls == [LAYER] and len([t for t in _figure(at, "rf_erf")["data"] if t["type"] == "heatmap"]) == 2
    at.number_input(key=f"rf_row::{MODEL}::{LAYER}").set_value(4).run()  # another unit: asked for again
    assert calls == [LAYER] and "Press the button" in at.info[0].value


def test_a_model_that_cannot_be_traced_gets_a_message(monkeypatch):
    def refuse(name, *args, **kwargs):
        raise R.UntraceableModelError("This network can't be traced with torch.fx (test).")

    monkeypatch.setattr(R, "architecture_fields", refuse)
    at = _page()
    assert "can't be traced" in at.error[0].value and "Pick another model" in at.error[0].value
    assert _metrics(at)["Stack's receptive field"] == "4 inputs"  # the dilation demo still works
    assert "Receptive field" not in _metrics(at)


def test_any_error_of_the_effective_field_is_a_sentence_and_the_page_stays(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the gradient could not be computed (test)")

    monkeypatch.setattr(R, "effective_receptive_field", broken)
    at = _page()
    _pick(at, LAYER, (5, 6))
    at.button(key="rf_erf_go").click().run()
    at.session_state["job:rf_erf"]["job"].wait(60)
    at.run()
    assert not at.exception, at.exception
    assert any("the gradient could not be computed (test)" in e.value for e in at.error)
    assert "Receptive field" in _metrics(at)  # the rest of the page is still there
