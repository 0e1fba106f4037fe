"""One student at a time, step by step: the server's and the browser's CPU and the wall time of every step.

Where ``bench_load.py`` measures a class at once, this measures what one student costs, on a quiet server, step
by step: the figures behind the issue's "server CPU per student" and "one student: every page fully drawn
within 1 s of the click". It starts ``streamlit run app.py`` (models on the CPU), optionally behind HAProxy with
exactly ``deploy/haproxy.cfg`` (``--proxy``), warms it with one student on a gallery photo, then drives
``--students`` students one after the other, each in a fresh headless Chromium context with a new image of its
own, through the path of ``bench_load``:

* ``open``: the app's URL opened (Streamlit's frontend files, the Welcome page on the gallery photo);
* ``upload mode``: the sidebar switched to "Upload";
* ``upload``: the file chosen -> the Welcome page's top-5 for it is drawn;
* ``feature maps``: the sidebar link clicked -> the Feature maps page is fully drawn;
* ``cam``: the sidebar link clicked -> the Class activation maps page is fully drawn;

and then, outside the path's total, ``feature maps again`` and ``cam again``: the two pages visited a second time
(a student going back: the browser has already loaded their code, the server has their results).

After each step it reads the CPU seconds of the app process (and HAProxy's) and of the browser from /proc, and
the wall time of the step; medians over the students are printed, with the CPU of the model passes the path
needs (as in ``bench_load``) and the ratio of the two. ``--profile FILE`` records the app with py-spy while the
students run (one at a time on a quiet machine, so its samples are the CPU the steps cost).

Run: ``.venv/bin/python benchmarks/bench_student_steps.py [--students 5] [--proxy] [--profile prof.txt]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._util import machine  # noqa: E402
from benchmarks.bench_load import _needed_cpu, _start_profile, _start_proxy  # noqa: E402
from tests.app_process import cpu_seconds, start_app, stop_app  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.load_sessions import (  # noqa: E402
    _CAM_DONE,
    _FM_DONE,
    _HEADING,
    _HOME_DONE,
    LOAD_CHROMIUM_ARGS,
    _switch,
    _until,
    make_uploads,
)
from vizlib import models  # noqa: E402

STEPS = ("open", "upload mode", "upload", "feature maps", "cam")
#: Steps timed after the path: the same two pages again (the browser has their code and the server its results).
AGAIN = ("feature maps again", "cam again")
_TIMEOUT_MS = 120_000
_HOME_GALLERY = """() => document.querySelectorAll("[data-testid='stMain'] .st-key-top5 .ytick text").length === 5
    && document.querySelector("[data-stale='true']") === null"""


def _cpu(pids: tuple[int, ...]) -> tuple[float, float]:
    """CPU seconds so far of (the app and the proxy, everything else this process started: the browser)."""
    server, others = cpu_seconds(pids[0])
    rest = sum(cpu_seconds(pid)[0] for pid in pids[1:])
    return server + rest, others - rest


def _faults(pid: int) -> int:
    """Minor page faults of the app process so far (memory it touched for the first time, or again after malloc
    gave it back: each costs a zero-filled page)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


async def _student(browser, url: str, upload: Path, pids: tuple[int, ...]) -> dict[str, tuple[float, ...]]:
    """Drive one student through the path; per step (server CPU s, browser CPU s, wall s, server page faults)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(_TIMEOUT_MS)
    page = await context.new_page()
    out: dict[str, tuple[float, ...]] = {}
    mark = [_cpu(pids), time.perf_counter(), _faults(pids[0])]

    def step(name: str) -> None:
        (server, browser_cpu), now, faults = _cpu(pids), time.perf_counter(), _faults(pids[0])
        out[name] = (server - mark[0][0], browser_cpu - mark[0][1], now - mark[1], faults - mark[2])
        mark[0], mark[1], mark[2] = _cpu(pids), time.perf_counter(), _faults(pids[0])

    try:
        await page.goto(url, wait_until="domcontentloaded")
        await _until(page, _HEADING, "CNN Lens", _TIMEOUT_MS)
        await _until(page, _HOME_GALLERY, None, _TIMEOUT_MS)
        step("open")
        sidebar = page.locator("section[data-testid='stSidebar']")
        await sidebar.get_by_text("Upload", exact=True).click()
        chooser = sidebar.locator("input[type='file']")
        await chooser.wait_for(state="attached")
        await _until(page, "() => document.querySelector(\"[data-stale='true']\") === null", None, _TIMEOUT_MS)
        step("upload mode")
        await chooser.set_input_files(str(upload))
        await _until(page, _HOME_DONE, upload.name, _TIMEOUT_MS)
        step("upload")
        await _switch(page, "Feature maps", _TIMEOUT_MS)
        await _until(page, _FM_DONE, None, _TIMEOUT_MS)
        step("feature maps")
        await _switch(page, "Class activation maps", _TIMEOUT_MS)
        await _until(page, _CAM_DONE, None, _TIMEOUT_MS)
        step("cam")
        for title, done, name in (("Feature maps", _FM_DONE, AGAIN[0]), ("Class activation maps", _CAM_DONE, AGAIN[1])):
            await asyncio.sleep(0.5)
            step("pause")
            await _switch(page, title, _TIMEOUT_MS)
            await _until(page, done, None, _TIMEOUT_MS)
            step(name)
        await asyncio.sleep(0.5)  # let the last websocket messages settle before the next student
    finally:
        await context.close()
    return out


async def _run(url: str, uploads: list[Path], pids: tuple[int, ...]) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_ARGS + LOAD_CHROMIUM_ARGS)
        # A teacher's page stays open throughout: Streamlit forgets its compiled page scripts whenever no
        # session is connected, which in a classroom does not happen between two students.
        teacher = await browser.new_context()
        try:
            page = await teacher.new_page()
            await page.goto(url, wait_until="domcontentloaded", timeout=_TIMEOUT_MS)
            await _until(page, _HEADING, "CNN Lens", _TIMEOUT_MS)
            return [await _student(browser, url, up, pids) for up in uploads]
        finally:
            await browser.close()


def _idle_cpu_per_s(pids: tuple[int, ...], seconds: float) -> float:
    """CPU seconds a second of ``pids`` together while no browser is connected (after a settling pause)."""
    if seconds <= 0:
        return 0.0
    time.sleep(5)
    before, start = sum(cpu_seconds(pid)[0] for pid in pids), time.monotonic()
    time.sleep(seconds)
    return (sum(cpu_seconds(pid)[0] for pid in pids) - before) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=5, help="students measured, one after the other")
    parser.add_argument("--proxy", action="store_true", help="HAProxy with deploy/haproxy.cfg in front of the app")
    parser.add_argument("--profile", type=Path, help="py-spy the app while the measured students run")
    parser.add_argument("--profile-rate", type=int, default=50, help="py-spy's samples a second")
    parser.add_argument("--profile-gil", action="store_true",
                        help="profile only the thread holding the interpreter lock (Python's work, not torch's)")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the app's folder (another checkout)")
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds the warmed server (and HAProxy) is watched with nobody on it, before the students")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cnn-lens-steps-") as tmp:
        folder = Path(tmp)
        proc, url = start_app(folder / "app.log", cwd=args.app_dir)
        proxy = None
        try:
            pids: tuple[int, ...] = (proc.pid,)
            if args.proxy:
                proxy, url = _start_proxy(folder, [url, url])  # both of the config's server lines name the app
                pids = (proc.pid, proxy.pid)
            warm = make_uploads(folder / "warm", 1, salt=99)
            asyncio.run(_run(url, warm, pids))
            idle = _idle_cpu_per_s(pids, args.idle)
            uploads = make_uploads(folder / "students", args.students, salt=7)
            spy = _start_profile(proc.pid, args.profile, args.profile_rate, args.profile_gil) if args.profile else None
            proxy_before = sum(cpu_seconds(pid)[0] for pid in pids[1:])
            try:
                rows = asyncio.run(_run(url, uploads, pids))
            finally:
                proxy_cpu = (sum(cpu_seconds(pid)[0] for pid in pids[1:]) - proxy_before) / len(uploads)
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(30)
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait(10)
            stop_app(proc)
        needed = _needed_cpu(models.load_model(models.DEFAULT_MODEL, device="cpu"), uploads, True)
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · "
          f"{'behind HAProxy (deploy/haproxy.cfg)' if args.proxy else 'direct'} · {args.students} students")
    print("| step | server CPU s (median) | browser CPU s (median) | wall s (median / max) | server page faults, "
          "thousands (median) |")
    print("|---|---:|---:|---:|---:|")
    for s in STEPS:
        server = statistics.median(r[s][0] for r in rows)
        browser = statistics.median(r[s][1] for r in rows)
        walls = [r[s][2] for r in rows]
        faults = statistics.median(r[s][3] for r in rows) / 1000
        print(f"| {s} | {server:.3f} | {browser:.3f} | {statistics.median(walls):.2f} / {max(walls):.2f} | "
              f"{faults:.1f} |")
    total = statistics.median(sum(r[s][0] for s in STEPS) for r in rows)
    browser_total = statistics.median(sum(r[s][1] for s in STEPS) for r in rows)
    faults_total = statistics.median(sum(r[s][3] for s in STEPS) for r in rows) / 1000
    print(f"| **whole path** | **{total:.3f}** | {browser_total:.3f} | | {faults_total:.1f} |")
    if args.proxy:
        print(f"of the server's CPU, HAProxy's: {proxy_cpu:.3f} s per student (mean, its pauses and re-visits too)")
    print(f"needed model passes per student: {needed:.3f} s CPU; server / needed = {total / needed:.1f}")
    path_wall = statistics.median(sum(r[s][2] for s in STEPS) for r in rows)
    print(f"with nobody on it the server (and HAProxy) used {1e3 * idle:.1f} ms of CPU a second (health checks, "
          f"polling, housekeeping): {idle * path_wall:.3f} s of the path's total over its {path_wall:.1f} s (median)")
    print("| visited again (not in the path's total) | server CPU s | browser CPU s | wall s (median / max) |")
    print("|---|---:|---:|---:|")
    for s in AGAIN:
        walls = [r[s][2] for r in rows]
        server, browser = (statistics.median(r[s][i] for r in rows) for i in (0, 1))
        print(f"| {s} | {server:.3f} | {browser:.3f} | {statistics.median(walls):.2f} / {max(walls):.2f} |")


if __name__ == "__main__":
    main()
