"""Fairness: do five students' page switches stay quick while a sixth runs Score-CAM on the CPU?

Starts its own ``streamlit run app.py`` (models on the CPU). Five sessions each choose an image (the gallery
photos, so every page's results are computed once in the warm-up) and then switch pages in a loop (Welcome ->
Feature maps -> Class activation maps -> ...), timing each switch from the click until the page is fully drawn.
The rounds alternate: *quiet* (nobody else is working) and *busy* (a sixth session has pressed "Compute
Score-CAM" on the CAM page's last block, a 1,280-channel job in the server's shared queue, and it is still
running). The figure to read is busy / quiet of the switch times' p50 and p95 (target: at most 1.5), from the
same run, side by side.

Run: ``.venv/bin/python benchmarks/bench_fairness.py [--rounds 2] [--switches 6]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._util import machine  # noqa: E402
from tests.app_process import cpu_seconds, start_app, stop_app  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.load_sessions import _CAM_DONE, _FM_DONE, _HEADING, LOAD_CHROMIUM_ARGS  # noqa: E402

TIMEOUT_MS = 240_000
_HOME_DONE = """() => document.querySelector("[data-stale='true']") === null
    && document.querySelectorAll("[data-testid='stMain'] .st-key-top5 .ytick text").length === 5"""
PAGES = (("Feature maps", _FM_DONE), ("Class activation maps", _CAM_DONE), ("Welcome", _HOME_DONE))
_JOB_RUNNING = """() => [...document.querySelectorAll("[data-testid='stProgress']")]
    .some(p => (p.parentElement?.textContent || "").includes("Score-CAM"))
    || [...document.querySelectorAll("[data-testid='stMain'] p")].some(p => p.textContent.includes("Score-CAM of"))"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)]


async def _until(page, predicate: str, arg=None) -> None:
    await page.wait_for_function(predicate, arg=arg, timeout=TIMEOUT_MS, polling=50)


async def _switch(page, title: str, done: str) -> float:
    start = time.perf_counter()
    await page.locator(".st-key-app_nav").get_by_role("link", name=title, exact=True).click()
    await _until(page, _HEADING, "CNN Lens" if title == "Welcome" else title)
    await _until(page, done)
    return time.perf_counter() - start


async def _student(page, switches: int) -> list[float]:
    times = []
    for i in range(switches):
        title, done = PAGES[i % len(PAGES)]
        times.append(await _switch(page, title, done))
    return times


async def _open(browser, url: str, photo: int):
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(url, wait_until="domcontentloaded")
    await _until(page, _HOME_DONE)
    if photo:  # a different gallery photo per student
        sidebar = page.locator("section[data-testid='stSidebar']")
        await sidebar.locator("[data-testid='stSelectbox']").nth(1).click()
        await page.get_by_role("option").nth(photo).click()
        await _until(page, _HOME_DONE)
    return page


async def _start_score_cam(page) -> None:
    await _switch(page, "Class activation maps", _CAM_DONE)
    methods = page.locator("[data-testid='stMain'] [data-testid='stMultiSelect']").first
    await methods.locator("input").click()  # the box's middle may be a chosen method's chip, which opens nothing
    await page.keyboard.type("Score")
    await page.get_by_role("option", name="Score-CAM (slow)").click()
    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Compute Score-CAM").click()
    await _until(page, _JOB_RUNNING)


async def _run(url: str, rounds: int, switches: int, pid: int) -> list[dict]:
    from playwright.async_api import async_playwright

    out = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_ARGS + LOAD_CHROMIUM_ARGS)
        students = [await _open(browser, url, 0) for _ in range(5)]  # the default photo: computed once
        await asyncio.gather(*(_student(s, len(PAGES)) for s in students))  # warm every page's caches
        for r in range(rounds):
            for busy in (False, True) if r % 2 == 0 else (True, False):
                heavy = None
                if busy:
                    heavy = await _open(browser, url, 0)
                    await _start_score_cam(heavy)
                cpu = cpu_seconds(pid)[0]
                start = time.perf_counter()
                times = await asyncio.gather(*(_student(s, switches) for s in students))
                wall = time.perf_counter() - start
                still = heavy is not None and await heavy.evaluate(_JOB_RUNNING)
                out.append({"busy": busy, "times": [t for ts in times for t in ts], "wall": wall,
                            "server_cpu": cpu_seconds(pid)[0] - cpu, "job_still_running": still,
                            "load": os.getloadavg()[0]})
                if heavy is not None:
                    await heavy.get_by_role("button", name="Cancel").click()
                    await heavy.context.close()
                    await asyncio.sleep(2)
        await browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="pairs of quiet and busy phases")
    parser.add_argument("--switches", type=int, default=6, help="page switches per student per phase")
    args = parser.parse_args()
    print(f"# bench_fairness · {datetime.date.today()} · {machine()}")
    print(f"# load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_app(Path(tmp) / "server.log")
        try:
            rows = asyncio.run(_run(url, args.rounds, args.switches, proc.pid))
        finally:
            stop_app(proc)
    print("| phase | switches | p50 s | p95 s | wall s | server CPU s | Score-CAM still running at the end | load |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        t = row["times"]
        print(f"| {'busy' if row['busy'] else 'quiet'} | {len(t)} | {_percentile(t, 50):.2f} | {_percentile(t, 95):.2f}"
              f" | {row['wall']:.1f} | {row['server_cpu']:.1f} | {row['job_still_running']} | {row['load']:.1f} |")
    quiet = [t for r in rows if not r["busy"] for t in r["times"]]
    busy = [t for r in rows if r["busy"] for t in r["times"]]
    print(f"\nbusy / quiet: p50 {_percentile(busy, 50) / _percentile(quiet, 50):.2f}, "
          f"p95 {_percentile(busy, 95) / _percentile(quiet, 95):.2f} (target <= 1.5)")
    print(f"# load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
