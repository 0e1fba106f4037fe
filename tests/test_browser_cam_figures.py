"""The CAM figures in headless Chromium with plotly.js: over the blended picture, hover shows each map's own value
from its transparent layer (a smooth map's at its sparser samples, Saliency's at every drawn pixel)."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from vizlib.figures.cam import methods_figure, overlay_figure

pytestmark = [pytest.mark.browser]

HOVER = re.compile(r"x=(\d+), y=(\d+)\s*(\S+)=([0-9.]+)")
DRAW = """async (spec) => {
  const f = JSON.parse(spec); const gd = document.getElementById('d');
  Plotly.purge(gd); await Plotly.newPlot(gd, f.data, f.layout); }"""


def _maps(h: int = 300, w: int = 451) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    coarse = rng.random((7, 7), dtype=np.float32)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    smooth = ((smooth - smooth.min()) / (smooth.max() - smooth.min())).astype(np.float32)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return image, {"gradcam": smooth, "saliency": rng.random((h, w), dtype=np.float32)}


@pytest.fixture
def page(browser_factory):
    page = browser_factory().new_page(viewport={"width": 1100, "height": 800})
    page.set_content("<div id=d style='width:1000px'></div><script>" + get_plotlyjs() + "</script>")
    return page


def _hover(page, fig, panel: int, fx: float, fy: float) -> tuple[int, int, str, float]:
    """Move the mouse to (fx, fy) of ``panel``'s plot area; the hover label's x, y, name and value."""
    spec = fig.to_json()
    page.evaluate(DRAW, spec)
    box = page.locator(".nsewdrag").nth(panel).bounding_box()
    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    label = page.locator(".hoverlayer .hovertext")
    label.wait_for(timeout=10_000)
    x, y, name, value = HOVER.search(label.text_content()).groups()
    page.mouse.move(0, 0)
    return int(x), int(y), name, float(value)


def test_hover_shows_each_maps_own_value_over_the_blended_picture(page):
    image, maps = _maps()
    fig = methods_figure(image, maps, titles={"gradcam": "Grad-CAM", "saliency": "Saliency"}, columns=2)
    for panel, key in enumerate(maps):
        for fx, fy in ((0.31, 0.42), (0.77, 0.66)):
            x, y, name, value = _hover(page, fig, panel, fx, fy)
            assert name == "value"
            assert value == pytest.approx(float(maps[key][y, x]), abs=5e-4), (key, x, y)
            stride = fig.data[2 * panel].dx
            step = stride * (4 if key == "gradcam" else 1)  # a smooth map's hover samples are sparser
            assert x % step == 0 and y % step == 0, (key, x, y)
            assert abs(x - fx * image.shape[1]) <= step and abs(y - fy * image.shape[0]) <= step


def test_the_close_up_names_its_method_on_hover(page):
    image, maps = _maps()
    _, _, name, _ = _hover(page, overlay_figure(image, maps["saliency"], label="Saliency"), 0, 0.5, 0.5)
    assert name == "Saliency"
