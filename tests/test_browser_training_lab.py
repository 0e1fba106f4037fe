"""End to end in a real headless Chromium: open "Why convolutions?", train the four nets for one short epoch on
a small subset (the page's defaults) and see the run's curves drawn."""

from __future__ import annotations

import pytest

from tests.conftest import nav_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IDLE = """() => !document.querySelector("[data-testid='stStatusWidget']")"""

# The curves chart under the "Your run" heading: how many of its line traces have a drawn path.
DRAWN_CURVES = """() => {
    const heading = [...document.querySelectorAll('h3')].find(h => h.innerText.startsWith('Your run'));
    if (!heading) return 0;
    const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(
        p => heading.compareDocumentPosition(p) & Node.DOCUMENT_POSITION_FOLLOWING);
    if (!plots.length) return 0;
    return [...plots[0].querySelectorAll('.scatterlayer .trace path.js-line')]
        .filter(p => (p.getAttribute('d') || '').length > 10).length;
}"""


def test_train_one_short_epoch_and_see_the_curves(app_server, browser_factory, tmp_path):
    page = browser_factory().new_page(viewport={"width": 1400, "height": 2400})
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="CNN Lens").wait_for(timeout=120_000)
    nav_link(page, "Why convolutions").click(timeout=120_000)
    page.get_by_role("heading", name="Why convolutions?").wait_for(timeout=120_000)
    page.get_by_role("heading", name="Reference runs", exact=False).wait_for(timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)

    train = page.get_by_role("button", name="Train", exact=True)
    train.wait_for(timeout=240_000)
    train.click(timeout=240_000)
    page.get_by_text("Training:", exact=False).first.wait_for(timeout=120_000)  # the progress bar's text
    page.get_by_role("heading", name="Your run", exact=False).wait_for(timeout=240_000)
    count = page.wait_for_function(f"() => ({DRAWN_CURVES})() >= 8 ? ({DRAWN_CURVES})() : null",
                                   timeout=60_000).json_value()
    assert count >= 8  # loss and accuracy lines of the four nets
    assert page.get_by_text("Test accuracy: MLP", exact=False).count() == 1
    page.screenshot(path=str(tmp_path / "training_lab.png"))
