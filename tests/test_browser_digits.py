"""End to end in a real headless Chromium: draw on the digits page's canvas with the mouse and watch the
network's answer appear and change; click a unit of the network figure to see what feeds it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import nav_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IDLE = """() => !document.querySelector("[data-testid='stStatusWidget']")"""


def _stroke(page, canvas, points: list[tuple[float, float]], steps: int = 8) -> None:
    """Drag the mouse through ``points`` (canvas pixels) with the button held, like a pen."""
    box = canvas.bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        for k in range(1, steps + 1):
            page.mouse.move(x0 + ax + (bx - ax) * k / steps, y0 + ay + (by - ay) * k / steps)
    page.mouse.up()


def _bar_texts(page, other_than: list[str] | None = None) -> list[str]:
    """The ten percentages printed on the probability bars (the page's first chart), once drawn."""
    script = """(other) => {
        const plot = document.querySelector('.js-plotly-plot');
        const texts = plot ? [...plot.querySelectorAll('text.bartext')].map(e => e.textContent) : [];
        return texts.length === 10 && (other === null || texts.join('|') !== other.join('|')) ? texts : null;
    }"""
    return page.wait_for_function(script, arg=other_than, timeout=120_000).json_value()


def _answer(page) -> tuple[str, str]:
    metric = page.locator("[data-testid='stMetric']")
    return (metric.locator("[data-testid='stMetricValue']").inner_text().strip(),
            metric.locator("[data-testid='stMetricDelta']").inner_text().strip())


def _wait_for_answer_change(page, before: tuple[str, str] | None) -> tuple[str, str]:
    page.wait_for_function(
        """(before) => {
            if (document.querySelector("[data-testid='stStatusWidget']")) return false;
            const v = document.querySelector("[data-testid='stMetricValue']");
            const d = document.querySelector("[data-testid='stMetricDelta']");
            if (!v || !d) return false;
            return before === null || v.innerText.trim() !== before[0] || d.innerText.trim() !== before[1];
        }""",
        arg=list(before) if before else None,
        timeout=120_000,
    )
    return _answer(page)


def test_drawing_with_the_mouse_updates_the_probabilities(app_server, browser_factory, tmp_path):
    page = browser_factory().new_page(viewport={"width": 1400, "height": 2400})
    # Through the home page and the sidebar: a deep link on a server's first run can race st.navigation.
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    nav_link(page, "Draw a digit").click(timeout=120_000)
    page.get_by_role("heading", name="Draw a digit").wait_for(timeout=120_000)
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)
    assert page.get_by_text(re.compile("Draw a digit.* on the canvas")).count() == 1  # the empty-canvas prompt
    assert page.locator("[data-testid='stMetric']").count() == 0

    _stroke(page, canvas, [(140, 40), (140, 240)])  # a vertical line: a one
    first = _wait_for_answer_change(page, None)
    assert first[0] == "1", first
    assert page.get_by_text(re.compile("Draw a digit.* on the canvas")).count() == 0
    bars_before = _bar_texts(page)

    _stroke(page, canvas, [(60, 40), (140, 40)])  # a bar on top: now a seven
    second = _wait_for_answer_change(page, first)
    assert second[0] == "7", second
    bars_after = _bar_texts(page, other_than=bars_before)  # the probabilities have changed
    top = max(range(10), key=lambda d: float(bars_after[d].rstrip("%")))
    assert str(top) == second[0] and bars_after[top] == second[1].split()[0]
    page.screenshot(path=str(tmp_path / "digits_drawn.png"))

    # click a conv1 unit in the network figure: the "what feeds it" text follows
    network = page.locator(".js-plotly-plot").nth(2)
    conv1 = network.locator(".nsewdrag").nth(1)
    area = conv1.bounding_box()
    page.mouse.click(area["x"] + area["width"] * 0.3, area["y"] + area["height"] * 0.3)
    page.get_by_text(re.compile(r"conv1 map \d+, row \d+, col \d+ = ReLU")).wait_for(timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)
    assert page.get_by_text(re.compile(r"It sees input rows \d+–\d+, cols \d+–\d+ \(5×5 pixels\)")).count() == 1
