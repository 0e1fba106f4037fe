"""The Architectures page through AppTest: the chart from metadata, switching the anatomy, a block form, exercises."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import APP, open_page, plotly_figure
from vizlib import models
from vizlib.architecture import exercises as E

pytestmark = pytest.mark.slow

PAGE = "pages/architecture.py"


def _page() -> AppTest:
    return open_page(PAGE, timeout=120)


def test_page_is_thin() -> None:
    tree = ast.parse((Path(APP).parent / PAGE).read_text(encoding="utf-8"))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m.split(".")[0] in ("torch", "torchvision", "cv2")}


def test_chart_from_metadata_and_anatomy_of_the_default_model() -> None:
    from torchvision.models import get_model_weights

    at = _page()
    assert at.title[0].value == "Architectures and their cost"
    chart = plotly_figure(at, "arch_chart")["data"][0]
    names = [c[0] for c in chart["customdata"]]
    assert names == models.list_models("ImageNet")  # every registry model with published ImageNet figures
    for name, x, y in zip(names, chart["x"], chart["y"], strict=True):
        if name != models.DEFAULT_MODEL:
            meta = get_model_weights(name).DEFAULT.meta
            assert x == pytest.approx(meta["_ops"]) and y == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    # the anatomy opens on the session's model, the offline default
    assert at.selectbox(key="arch_model").value == models.DEFAULT_MODEL
    assert [m.value for m in at.metric] == ["4.65 M", "0.385 G", "160", "3×224×224"]
    stages = plotly_figure(at, "arch_stages")
    assert any("MBConvBlock" in a["text"] for a in stages["layout"]["annotations"])
    table = at.dataframe[0].value
    assert len(table) == 160 and table["layer"].iloc[1] == "_conv_stem" and int(table["MACs"].sum()) == 385_187_552


def test_switching_the_anatomy_to_resnet50() -> None:
    at = _page()
    at.selectbox(key="arch_model").set_value("resnet50").run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["25.56 M", "4.089 G", "174", "3×224×224"]
    texts = [a["text"] for a in plotly_figure(at, "arch_stages")["layout"]["annotations"]]
    assert any(t.startswith("<b>Bottleneck ×5</b> · identity shortcut") for t in texts)
    chart = plotly_figure(at, "arch_chart")["data"][0]
    picked = [
        c[0] for c, colour in zip(chart["customdata"], chart["marker"]["color"], strict=True) if colour == "#D55E00"
    ]
    assert picked == ["resnet50"]
    assert "Dense layers: **8%** of the parameters" in " ".join(m.value for m in at.markdown)


def test_building_block_form() -> None:
    at = _page()
    at.radio(key="arch_section").set_value("Building blocks").run()
    text = " ".join(m.value for m in at.markdown)
    assert "**120,422,400** multiply-accumulates" in text and "**12,443,648** multiply-accumulates" in text
    at.selectbox(key="arch_block").set_value("Flatten + dense vs global average pooling").run()
    assert "2,560 weights instead of 25,600,000" in at.info[0].value
    slug = 5
    at.number_input(key=f"arch_b{slug}_0").set_value(512)
    at.number_input(key=f"arch_b{slug}_1").set_value(7)
    at.number_input(key=f"arch_b{slug}_2").set_value(1000)
    at.button[0].click().run()  # the form's "Work it out"
    assert not at.exception
    # 512 maps of 7x7 into 1000 classes: 25,088,000 weights vs 512,000
    assert "512,000 weights instead of 25,088,000" in at.info[0].value
    at.number_input(key=f"arch_b{slug}_1").set_value(1)
    at.button[0].click().run()
    assert "512,000 weights instead of 512,000" in at.info[0].value


def test_block_form_bad_sizes_say_why() -> None:
    at = _page()
    at.radio(key="arch_section").set_value("Building blocks").run()
    at.selectbox(key="arch_block").set_value("One 5×5 or 7×7 vs stacked 3×3").run()
    at.number_input(key="arch_b1_2").set_value(4)
    at.button[0].click().run()
    assert not at.exception and "odd" in at.error[0].value


def test_exercises_answered_right_and_wrong_and_downloads() -> None:
    at = _page()
    at.radio(key="arch_section").set_value("Exercises").run()
    at.number_input(key="arch_seed").set_value(7).run()
    questions = E.make_exercises(7, 12)
    shown = [m.value for m in at.markdown if m.value.startswith("**")]
    assert [s.split(" — ", 1)[1] for s in shown[:12]] == [q.prompt for q in questions]
    at.text_input(key="arch_answer_7_1").input("6 x 6 x 1").run()
    assert at.success[0].value.startswith("Right.")
    q3 = questions[2]
    at.text_input(key="arch_answer_7_3").input(str(q3.answer[-1] + 1)).run()
    assert at.error[0].value.startswith(f"Not quite: the answer is {q3.answer_text}.")
    assert q3.explanation in at.error[0].value
    buttons = at.get("download_button")
    assert len(buttons) == 2
