"""End to end in headless Chromium: bring your own model both ways and use it on every page that runs the model.

One browser, one server, one session. A seeded ResNet-18 with ten classes arrives as ``.safetensors`` with a file
of class names; a pickle that carries code is refused (never run) and changes nothing; then EfficientNet-Lite0's
architecture with four classes arrives as a ``torch.save``-d state dict with a class count (a wrong count first: one
sentence, nothing changes). After each load every page that uses the session's model is visited through the app's
page list, and each shows something only that model has: its class names (on the Welcome page in the order and
with the probabilities of the model's own forward pass), its layer names, its first filters. (Architectures and
cost lists the registry's architectures only; Draw a digit and the training lab have models of their own.)
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.app_process import nav_link
from tests.test_user_models import as_pt, as_safetensors, seeded_lite0, seeded_resnet
from ui.shared import SESSION_IMAGE_SIDE
from vizlib import images, models
from vizlib.user_models import load_user_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT = 60_000
#: The lecturer's ten classes (ResNet-18, .safetensors, names from a text file).
CLASSES = ["tabby", "terrier", "teapot", "tulip", "tractor", "trombone", "toucan", "tent", "tiger", "tram"]
COUNT = 4  # EfficientNet-Lite0 architecture, .pt, "class 0" .. "class 3"

#: Main-area text plus the values shown by inputs (a selectbox draws its choice in one).
_MAIN_TEXT = """() => {
  const main = document.querySelector("[data-testid='stMain']");
  if (!main) return "";
  return main.innerText + " " + [...main.querySelectorAll("input")].map(i => i.value).join(" ");
}"""


def _idle(page) -> None:
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=WAIT)


def _shows(page, *needles: str) -> str:
    """Wait until the main area shows every one of ``needles`` and the script is idle; its text."""
    try:
        page.wait_for_function(
            f"""(needles) => !document.querySelector("[data-testid='stStatusWidget']")
                  && needles.every(n => ({_MAIN_TEXT})().includes(n))""",
            arg=list(needles), timeout=WAIT,
        )
    except PlaywrightTimeout:
        text = page.evaluate(_MAIN_TEXT)
        missing = [n for n in needles if n not in text]
        raise AssertionError(f"{page.url} does not show {missing}; it shows:\n{text[:3000]}") from None
    return page.evaluate(_MAIN_TEXT)


def _no_errors(page, where: str) -> None:
    errors = page.locator("[data-testid='stMain'] [data-testid='stAlertContentError']").all_inner_texts()
    exceptions = page.locator("[data-testid='stException']").all_inner_texts()
    assert not errors and not exceptions, (where, errors, exceptions)


def _shown(selectbox) -> str:
    """A selectbox's text, with the chosen value (drawn in an input's value or placeholder)."""
    return selectbox.evaluate(
        "el => el.innerText + ' ' + [...el.querySelectorAll('input')].map(i => i.value + ' ' + i.placeholder).join(' ')"
    )


def _bars(page, key: str) -> list[tuple[str, float]]:
    """A top-k chart's (class, probability) pairs, highest first, from the plotly figure in the page."""
    trace = page.evaluate(
        """(key) => { const g = document.querySelector(`.st-key-${key} .js-plotly-plot`);
                      return g && g.data ? {x: g.data[0].x, y: g.data[0].y} : null; }""",
        key,
    )
    assert trace is not None, key
    return list(zip(trace["y"], trace["x"], strict=True))[::-1]


def _visit(page, title: str) -> None:
    nav_link(page, title).click(timeout=WAIT)
    page.get_by_role("heading", name={"Welcome": "CNN Lens"}.get(title, title)).first.wait_for(timeout=WAIT)


def _set_count(page, count: int) -> None:
    box = page.locator("section[data-testid='stSidebar'] .st-key-own_count input")
    box.fill(str(count))
    box.press("Enter")
    _idle(page)


def _upload(page, weights, *, names=None, count: int = 0, architecture: str | None = None) -> None:
    """Fill the "Your own model" section (opened already) and press Load my model."""
    own = page.locator("section[data-testid='stSidebar']")
    own.locator(".st-key-own_load").wait_for(timeout=WAIT)
    own.locator("[data-testid='stFileUploader']").filter(has_text="Weights").locator("input[type='file']") \
        .set_input_files(str(weights))
    own.get_by_text(weights.name).first.wait_for(timeout=WAIT)
    if names is not None:
        own.locator("[data-testid='stFileUploader']").filter(has_text="Class names").locator("input[type='file']") \
            .set_input_files(str(names))
        own.get_by_text(names.name).first.wait_for(timeout=WAIT)
    if count:
        _set_count(page, count)
    if architecture is not None:
        own.locator(".st-key-own_arch").click()
        page.get_by_role("option", name=models.get_spec(architecture).title).click()
    _idle(page)
    own.get_by_role("button", name="Load my model").click()


def _expected_top(net: torch.nn.Module, loaded: models.LoadedModel) -> list[tuple[str, float]]:
    """The original network's own forward pass on the session's first image (the gallery's first photo)."""
    first = images.gallery()[0]
    image = images.fit_image(images.load_gallery_image(first.key), SESSION_IMAGE_SIDE)
    with torch.no_grad():
        probs = torch.softmax(net(loaded.preprocess(image).cpu()), 1)[0].numpy()
    order = np.argsort(-probs, kind="stable")[:5]
    return [(loaded.categories[i], float(probs[i])) for i in order]


def _check_welcome(page, title: str, expected: list[tuple[str, float]]) -> None:
    _shows(page, f"{title} · pretrained", expected[0][0])
    shown = _bars(page, "top5")
    assert [name for name, _ in shown] == [name for name, _ in expected], (shown, expected)
    np.testing.assert_allclose([p for _, p in shown], [p for _, p in expected], atol=1e-5)
    metric = page.locator("[data-testid='stMetricValue']").first.inner_text()
    assert metric == expected[0][0]


def _every_page(page, model: dict) -> None:
    """The lesson pages that run the session's model, each showing something that only this model has."""
    best, p = model["top"][0]
    title, classes = model["title"], model["classes"]
    picker = page.locator("section[data-testid='stSidebar'] .st-key-model_choice")
    for lesson, needles in (
        ("Feature maps", [f"channels of {model['fm_layer']} ("]),
        ("Learned filters", [f"{model['first_conv']} of {title}: {model['filters']}"]),
        ("Receptive fields", [f"of {model['rf_layer']} sees input rows"]),
        ("Class activation maps", [f"{best} — {p:.1%}", f"Evidence for {best} at layer {model['cam_layer']}"]),
        ("Look closer", [f"{best} — {p:.1%}", "Top 5 with the patch"]),
        ("What a channel wants", [f"The channels of {model['channel_layer']} (the last block)", f"of {best}'s score"]),
        ("Edge detectors", [f"The first convolution layer of {title} has {model['edges']}"]),
    ):
        _visit(page, lesson)
        text = _shows(page, *needles)
        _no_errors(page, lesson)
        assert "Your model: " + model["file"] in _shown(picker), lesson
        others = [c for c in (CLASSES + [f"class {i}" for i in range(COUNT)]) if c not in classes]
        if lesson == "Look closer":
            bars = _bars(page, "lc_patch_top5")
            assert len(bars) == min(5, len(classes)) and {name for name, _ in bars} <= set(classes), bars
        if lesson in ("Class activation maps", "Look closer", "What a channel wants"):
            assert not any(f"{c} — " in text for c in others), (lesson, "another model's class names")


def test_both_formats_on_every_page_and_a_refused_file(app_server, browser_factory, tmp_path):
    resnet, lite = seeded_resnet(num_classes=len(CLASSES)), seeded_lite0(num_classes=COUNT)
    files = {
        "course.safetensors": as_safetensors(resnet.state_dict()),
        "classes.txt": ("\n".join(CLASSES) + "\n").encode(),
        "lite4.pt": as_pt(lite.state_dict()),
    }
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    files["evil.pt"] = pickle.dumps(Payload(), protocol=2)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    a = load_user_model(files["course.safetensors"], "resnet18", CLASSES, filename="course.safetensors")
    b = load_user_model(files["lite4.pt"], models.DEFAULT_MODEL, COUNT, filename="lite4.pt")
    # what each page shows of each model: its layer names and first filters (the app's defaults for them)
    first = {
        "file": "course.safetensors", "title": "course.safetensors (ResNet-18, 10 classes)", "classes": CLASSES,
        "top": _expected_top(resnet, a), "fm_layer": "relu", "first_conv": "conv1", "filters": "64 filters of 3×7×7",
        "edges": "64 filters of 3x7x7", "rf_layer": "layer3.0.conv1", "cam_layer": "layer4", "channel_layer": "layer4",
    }
    second = {
        "file": "lite4.pt", "title": "lite4.pt (EfficientNet-Lite0, 4 classes)", "classes": b.categories,
        "top": _expected_top(lite, b), "fm_layer": "_swish", "first_conv": "_conv_stem",
        "filters": "32 filters of 3×3×3", "edges": "32 filters of 3x3x3", "rf_layer": "_blocks.8._depthwise_conv",
        "cam_layer": "_swish_1", "channel_layer": "_bn1",
    }
    assert b.categories == [f"class {i}" for i in range(COUNT)]

    page = browser_factory().new_page(viewport={"width": 1500, "height": 1100})
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=WAIT)
    page.locator("[data-testid='stMetricValue']").wait_for(timeout=WAIT)
    sidebar = page.locator("section[data-testid='stSidebar']")
    sidebar.locator(".st-key-own_open").get_by_text("Your own model").click()
    picker = sidebar.locator(".st-key-model_choice")

    # 1. .safetensors and a file of class names, on the Welcome page
    _upload(page, tmp_path / "course.safetensors", names=tmp_path / "classes.txt")
    _check_welcome(page, first["title"], first["top"])
    # a pickle that carries code: one sentence in the sidebar, never run, the model stays
    _upload(page, tmp_path / "evil.pt")
    sidebar.get_by_text("evil.pt was refused and nothing in it was run").wait_for(timeout=WAIT)
    _idle(page)
    (sentence,) = sidebar.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert sentence.startswith("evil.pt was refused") and sentence.endswith("Nothing changed."), sentence
    assert not marker.exists()
    _check_welcome(page, first["title"], first["top"])
    _every_page(page, first)

    # 2. a state dict (.pt) with a class count, loaded from the page the student is on; a wrong count first
    _upload(page, tmp_path / "lite4.pt", count=COUNT + 1, architecture=models.DEFAULT_MODEL)
    sidebar.get_by_text(f"head has {COUNT} outputs but {COUNT + 1} class names").wait_for(timeout=WAIT)
    _idle(page)
    assert "Your model: course.safetensors" in _shown(picker)
    _set_count(page, COUNT)
    sidebar.get_by_role("button", name="Load my model").click()
    _shows(page, f"The first convolution layer of {second['title']} has {second['edges']}")
    assert not sidebar.locator("[data-testid='stAlertContentError']").count()  # the refusal is gone
    _every_page(page, second)
    _visit(page, "Welcome")
    _check_welcome(page, second["title"], second["top"])
    assert not marker.exists()
