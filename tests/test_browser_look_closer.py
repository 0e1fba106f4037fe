"""End to end in headless Chromium on the default model: the moving patch and the occlusion map, the channel
page's photo patches, and the CAM page's sanity check each work through the real server and its queue."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT = 300_000


def _open(page, app_server: str, path: str, heading: str) -> None:
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    page.goto(f"{app_server}/{path}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)


def _slider_key(page, label: str, key: str) -> None:
    thumb = page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")
    thumb.focus()
    thumb.press(key)


def test_moving_patch_and_occlusion_map(app_server, browser_factory):
    page = browser_factory().new_page(viewport={"width": 1500, "height": 1100})
    _open(page, app_server, "look-closer", "Look closer")
    page.get_by_text("Top 5 with the patch").first.wait_for(timeout=WAIT)
    _slider_key(page, "Patch left edge (x)", "Home")
    _slider_key(page, "Patch top edge (y)", "Home")
    page.get_by_text("at (0, 0)").first.wait_for(timeout=WAIT)  # the caption follows the patch
    _slider_key(page, "Patch (px)", "End")  # 96 px patches, 32 px apart: a short map
    _slider_key(page, "Stride (px)", "End")
    page.get_by_text("25 patch positions").first.wait_for(timeout=WAIT)
    page.get_by_role("button", name="Compute the occlusion map").click()
    page.get_by_text("Largest drop").first.wait_for(timeout=WAIT)
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 3


def test_channel_page_shows_photo_patches(app_server, browser_factory):
    page = browser_factory().new_page(viewport={"width": 1500, "height": 1100})
    _open(page, app_server, "what-a-channel-wants", "What a channel wants")
    box = page.locator("[data-testid='stSelectbox']").filter(has_text="Layer (type to search)")
    box.click()
    page.keyboard.type("_conv_stem")
    page.get_by_role("option").filter(has_text="_conv_stem ·").first.click()
    page.get_by_role("button", name="Search the photos").click()
    page.get_by_text("gallery:").first.wait_for(timeout=WAIT)  # captions of the photo patches
    assert page.get_by_text("·").count() >= 6


def test_cam_sanity_check(app_server, browser_factory):
    page = browser_factory().new_page(viewport={"width": 1500, "height": 1100})
    _open(page, app_server, "class-activation-maps", "Class activation maps")
    button = page.get_by_role("button", name="Randomise the layers, top down")
    button.wait_for(timeout=WAIT)
    button.click()
    page.get_by_text("rank correlation").last.wait_for(timeout=WAIT)
    verdicts = page.get_by_text("barely changes").count() + page.get_by_text("changes with the weights").count()
    assert verdicts >= 1
