"""End to end in a real headless Chromium: start the app, upload a photo, see the top-5 classes."""

from __future__ import annotations

import re

import pytest

from vizlib import images

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_upload_a_photo_and_see_top5(app_server, browser_factory, tmp_path):
    photo = tmp_path / "my fish.jpg"
    photo.write_bytes(next(g for g in images.gallery() if g.key == "goldfish").path.read_bytes())
    page = browser_factory().new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    metric = page.locator("[data-testid='stMetricValue']")
    metric.wait_for(timeout=120_000)
    before = metric.inner_text()  # the gallery cat's class
    sidebar = page.locator("section[data-testid='stSidebar']")
    sidebar.get_by_text("Upload", exact=True).click()
    sidebar.locator("input[type='file']").set_input_files(str(photo))
    page.get_by_text(re.compile(r"my fish\.jpg")).first.wait_for(timeout=120_000)
    # wait until the rerun for the upload has finished: a new top class and only the new chart on the page
    page.wait_for_function(
        """(before) => !document.querySelector("[data-testid='stStatusWidget']")
              && document.querySelector("[data-testid='stMetricValue']")?.innerText !== before
              && document.querySelectorAll('.js-plotly-plot').length === 1
              && document.querySelectorAll('.js-plotly-plot .ytick text').length === 5""",
        arg=before,
        timeout=120_000,
    )
    bar_labels = [t.text_content() for t in page.locator(".js-plotly-plot .ytick text").all()]
    assert len(bar_labels) == 5
    top = metric.inner_text()
    assert top in bar_labels
    assert top == "goldfish"  # EfficientNet-Lite0 gives the gallery goldfish 0.89
    page.screenshot(path=str(tmp_path / "home.png"))
