"""A freshly started server's very first page shows the app's own page list, never Streamlit's list of the files
in pages/ (its legacy multipage convention, which a fresh server's first script run still follows)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import nav_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAMPLE = r"""() => {
  const bar = document.querySelector("[data-testid='stSidebar']");
  if (!bar) return {links: [], legacy: false};
  const links = [...bar.querySelectorAll("a")]
    .map(a => a.innerText.trim().split("\n").pop().trim()).filter(t => t.length);
  const legacy = !!document.querySelector("[data-testid='stSidebarNav'], [data-testid='stSidebarNavItems']");
  return {links, legacy};
}"""


def test_first_paint_of_a_fresh_server_shows_only_the_apps_pages(browser_factory, tmp_path):
    from tests.app_process import start_app, stop_app
    from ui.shared import HOME, available_lessons

    expected = [HOME.title] + [lesson.title for lesson in available_lessons()]
    proc, url = start_app(tmp_path / "server.log")  # a new process: nothing has run app.py yet
    try:
        page = browser_factory().new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/feature-maps", wait_until="commit")  # a deep link, as a shared URL would be
        samples = []
        deadline = time.time() + 120
        while time.time() < deadline:
            samples.append(page.evaluate(SAMPLE))
            if samples[-1]["links"] == expected:
                break
            time.sleep(0.03)
        for _ in range(30):  # and it stays so for a while
            samples.append(page.evaluate(SAMPLE))
            time.sleep(0.03)
        assert samples[-1]["links"] == expected, samples[-1]
        assert not any(s["legacy"] for s in samples), "Streamlit's own page menu was painted"
        wrong = [s["links"] for s in samples if s["links"] and s["links"] != expected]
        assert not wrong, f"the sidebar showed another list first: {wrong[0]}"
        page.get_by_role("heading", name="Feature maps").first.wait_for(timeout=120_000)  # the right page
        nav_link(page, "Convolution arithmetic").click()
        page.get_by_role("heading", name="Convolution arithmetic").first.wait_for(timeout=120_000)
        page.screenshot(path=str(tmp_path / "first_paint.png"))
    finally:
        stop_app(proc)
