"""End to end in headless Chromium: upload your own model in the sidebar and see it on two pages.

EfficientNet-Lite0's architecture with three classes keeps the file small (14 MB; the AppTests run a ResNet-18).
"""

from __future__ import annotations

import pytest
from safetensors.torch import save_file

from tests.test_user_models import seeded_lite0
from vizlib import models

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLASSES = ["tabby", "terrier", "teapot"]


def _wait_idle(page) -> None:
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=120_000)


def _shown(selectbox) -> str:
    """A selectbox's text, with the chosen value (drawn in an input's value or placeholder)."""
    return selectbox.evaluate(
        "el => el.innerText + ' ' + [...el.querySelectorAll('input')].map(i => i.value + ' ' + i.placeholder).join(' ')"
    )


def test_upload_own_model_and_use_it_on_home_and_feature_maps(app_server, browser_factory, tmp_path):
    weights, names = tmp_path / "course.safetensors", tmp_path / "classes.txt"
    save_file({k: v.contiguous() for k, v in seeded_lite0().state_dict().items()}, str(weights))
    names.write_text("\n".join(CLASSES) + "\n")
    page = browser_factory().new_page(viewport={"width": 1500, "height": 1100})
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    page.locator("[data-testid='stMetricValue']").wait_for(timeout=120_000)
    sidebar = page.locator("section[data-testid='stSidebar']")
    sidebar.get_by_text("Your own model").click()  # the toggle
    own = sidebar  # with the gallery as image source, the section's uploaders are the sidebar's only ones
    own.get_by_role("button", name="Load my model").wait_for(timeout=60_000)
    files = own.locator("input[type='file']")
    files.nth(0).set_input_files(str(weights))
    own.get_by_text("course.safetensors").first.wait_for(timeout=60_000)
    files.nth(1).set_input_files(str(names))
    own.get_by_text("classes.txt").first.wait_for(timeout=60_000)
    own.locator("[data-testid='stSelectbox']").filter(has_text="Architecture").click()
    page.get_by_role("option", name=models.get_spec(models.DEFAULT_MODEL).title).click()
    _wait_idle(page)
    own.get_by_role("button", name="Load my model").click()
    # home: the picker shows the session's model and the top classes are its class names
    page.get_by_text("course.safetensors (EfficientNet-Lite0, 3 classes) · pretrained").wait_for(timeout=120_000)
    picker = sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Model").first
    assert "Your model: course.safetensors" in _shown(picker)
    page.wait_for_function(
        """(names) => !document.querySelector("[data-testid='stStatusWidget']")
              && names.includes(document.querySelector("[data-testid='stMetricValue']")?.innerText)
              && document.querySelectorAll('.js-plotly-plot .ytick text').length === 3""",
        arg=CLASSES,
        timeout=120_000,
    )
    bars = sorted(t.text_content().strip() for t in page.locator(".js-plotly-plot .ytick text").all())
    assert bars == sorted(CLASSES)
    page.screenshot(path=str(tmp_path / "home.png"))
    # Feature maps (same session: the sidebar's navigation): the montage of the model's layers
    sidebar.get_by_role("link", name="Feature maps").click()
    page.get_by_role("heading", name="Feature maps").wait_for(timeout=120_000)
    page.get_by_text("One channel up close").wait_for(timeout=120_000)
    _wait_idle(page)
    assert "Your model: course.safetensors" in _shown(picker)
    assert page.locator("[data-testid='stMain'] img").count() >= 1
    assert page.get_by_text("Pick another model").count() == 0
    page.screenshot(path=str(tmp_path / "feature_maps.png"), full_page=True)
