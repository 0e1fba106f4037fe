"""End to end in headless Chromium: the Feature maps page shows the montage vizlib computes for a sample photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vizlib import activations, images, models
from vizlib import feature_maps as fm

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHOTO = "goldfish"


def _expected_montage() -> tuple[str, np.ndarray]:
    """The default layer's name and its montage (channel order, shared scale, viridis) for the photo."""
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    layer = fm.default_layer(activations.layer_table(loaded))
    photo = images.fit_image(images.load_gallery_image(PHOTO), 1024)  # what the sidebar keeps per session
    values = activations.extract(loaded, photo, [layer])[layer]
    return layer, fm.montage(values).image


def _montage_src(page, width: int, height: int, not_src: str | None) -> str:
    """The src of the first main-area <img> with the montage's natural size (and not ``not_src``)."""
    return page.wait_for_function(
        """([w, h, old]) => {
            const hits = [...document.querySelectorAll("[data-testid='stMain'] img")]
                .filter(img => img.complete && img.naturalWidth === w && img.naturalHeight === h && img.src !== old);
            return hits.length ? hits[0].src : null;
        }""",
        arg=[width, height, not_src],
        timeout=120_000,
    ).json_value()


def test_feature_maps_page_shows_the_montage_of_a_sample_photo(app_server, browser_factory, tmp_path):
    layer, expected = _expected_montage()
    height, width = expected.shape[:2]
    page = browser_factory().new_page(viewport={"width": 1500, "height": 1100})
    # The home page first: on a server's very first run a deep link can race st.navigation's page
    # registration and show "Page not found" (an app-shell matter, reported to the lead).
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    page.goto(app_server + "/feature-maps", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Feature maps").wait_for(timeout=120_000)
    first_src = _montage_src(page, width, height, None)  # the photo the page opened with
    sidebar = page.locator("section[data-testid='stSidebar']")
    title = next(g.title for g in images.gallery() if g.key == PHOTO)
    sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Sample photo").click()
    page.get_by_role("option", name=title).click()
    found = _montage_src(page, width, height, first_src)
    caption = page.get_by_text(f"{width}×{height} px", exact=False).first
    caption.wait_for(timeout=30_000)
    assert layer in caption.inner_text()
    # the image is the montage of this photo, not of the cat the page opened with
    body = page.request.get(found).body()
    shown = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert shown.shape == expected.shape
    assert np.mean(np.all(shown == expected, axis=-1)) > 0.99
    assert page.get_by_text("Page not found").count() == 0
    page.screenshot(path=str(tmp_path / "feature_maps.png"), full_page=True)
