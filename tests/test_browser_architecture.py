"""End to end in a real headless Chromium: click a model's bubble to open its anatomy, then answer an exercise
right and wrong and see each checked."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import nav_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IDLE = """() => !document.querySelector("[data-testid='stStatusWidget']")"""


def test_click_a_bubble_then_answer_exercises(app_server, browser_factory, tmp_path):
    from vizlib.architecture import catalog as C
    from vizlib.architecture import exercises as E

    names = [p.name for p in C.model_points()]
    page = browser_factory().new_page(viewport={"width": 1400, "height": 1600})
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    nav_link(page, "Architectures and cost").click(timeout=120_000)
    page.get_by_role("heading", name="Architectures and their cost").first.wait_for(timeout=120_000)
    page.get_by_text("4.65 M").first.wait_for(timeout=120_000)  # the default model's anatomy
    page.wait_for_function(IDLE, timeout=120_000)

    # click ResNet-50's bubble: plotly reports the selection, the page reruns and opens its anatomy
    bubble = (
        page.locator(".js-plotly-plot").first.locator(".scatterlayer .trace .points path").nth(names.index("resnet50"))
    )
    opened = page.get_by_text("25.56 M").first
    for _attempt in range(5):  # plotly wires its click handlers a moment after drawing
        box = bubble.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        try:
            opened.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:
            page.wait_for_function(IDLE, timeout=120_000)
    opened.wait_for(timeout=20_000)
    page.get_by_text("Dense layers: 8% of the parameters").wait_for(timeout=60_000)  # the anatomy is drawn
    colours = page.evaluate("() => document.querySelector('.js-plotly-plot').data[0].marker.color")
    assert [n for n, c in zip(names, colours, strict=True) if c == "#D55E00"] == ["resnet50"]  # the chart follows
    page.wait_for_function(IDLE, timeout=120_000)
    page.screenshot(path=str(tmp_path / "architecture_resnet50.png"), full_page=True)

    page.get_by_text("Exercises", exact=True).click()
    questions = E.make_exercises(1, 12)  # the page's default set
    first = page.get_by_label("Your answer to 1", exact=True)
    first.wait_for(timeout=60_000)
    first.fill("6x6")
    first.press("Enter")
    page.get_by_text("Right. ⌊(10 + 2·0 − (5−1) − 1) / 1⌋ + 1 = 6").wait_for(timeout=60_000)
    second = page.get_by_label("Your answer to 2", exact=True)
    second.fill("6x6")
    second.press("Enter")
    page.get_by_text(f"Not quite: the answer is {questions[1].answer_text}.").wait_for(timeout=60_000)
    page.screenshot(path=str(tmp_path / "architecture_exercises.png"), full_page=True)
