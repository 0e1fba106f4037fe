"""End to end in a real headless Chromium: click a unit on the Receptive fields page's feature map and the
row/column inputs, the box description and the box on the picture follow."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import nav_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IDLE = """() => !document.querySelector("[data-testid='stStatusWidget']")"""


def test_clicking_a_unit_on_the_feature_map_picks_it(app_server, browser_factory, tmp_path):
    from vizlib import models
    from vizlib import receptive_field as R

    fields = R.architecture_fields(models.DEFAULT_MODEL)
    layer = list(fields)[len(fields) // 2]  # the page opens on the middle layer
    rf = fields[layer]
    h, w = rf.output_hw
    page = browser_factory().new_page(viewport={"width": 1400, "height": 2400})
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    nav_link(page, "Receptive fields").click(timeout=120_000)
    page.get_by_role("heading", name="Receptive fields").first.wait_for(timeout=120_000)
    centre = f"Unit ({h // 2}, {w // 2}) of {layer}"
    page.get_by_text(centre).wait_for(timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)

    picker = page.locator(".js-plotly-plot").first
    area = picker.locator(".nsewdrag").first.bounding_box()
    fx, fy = 0.2, 0.7  # a point in the plot area: the unit whose cell holds it
    row, col = int(fy * h), int(fx * w)
    picked = page.get_by_text(f"Unit ({row}, {col}) of {layer}")
    # plotly wires its click handlers a moment after drawing; on a loaded machine a first click can land
    # before that, so click again (the same point) until the page reports the unit, within a bound
    for _attempt in range(6):
        page.mouse.move(area["x"] + area["width"] * fx, area["y"] + area["height"] * fy)
        page.mouse.click(area["x"] + area["width"] * fx, area["y"] + area["height"] * fy)
        try:
            picked.wait_for(timeout=30_000)
            break
        except PlaywrightTimeout:
            page.wait_for_function(IDLE, timeout=120_000)
    picked.wait_for(timeout=30_000)
    page.wait_for_function(IDLE, timeout=120_000)
    (top, bottom), (left, right) = rf.box(row, col)
    text = page.get_by_text(re.compile(rf"Unit \({row}, {col}\) of ")).inner_text()
    assert f"sees input rows {top} to {bottom} and columns {left} to {right}" in text
    inputs = page.locator("[data-testid='stNumberInput'] input")
    assert [inputs.nth(0).input_value(), inputs.nth(1).input_value()] == [str(row), str(col)]
    page.screenshot(path=str(tmp_path / "receptive_fields_clicked.png"), full_page=True)
