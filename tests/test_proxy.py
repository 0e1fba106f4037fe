"""Scale-out through a real proxy: HAProxy with exactly ``deploy/haproxy.cfg`` in front of two app processes.

Ten browser sessions, all from 127.0.0.1 (one address, like a class behind a campus NAT), open the app through
the proxy and upload an image each. HAProxy's cookie (SERVERID) must spread them over both replicas, and every
session must see its own image's top-1. Then one replica stops: after their next click, its students' pages
must come back working from the other replica (the page says the image must be chosen again; no traceback, no
blank page), and an
upload there must work (the replicas share the cookie secret, so the XSRF check passes on either).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.app_process import ROOT, free_port, start_app, stop_app
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.load_sessions import LOAD_CHROMIUM_ARGS, expected_prediction, make_uploads

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CONFIG = ROOT / "deploy" / "haproxy.cfg"
SESSIONS = 10
TIMEOUT_MS = 120_000
#: The replicas must share it: Streamlit signs its XSRF cookie with it (deploy/docker-compose.yml sets it too).
COOKIE_SECRET = "cnn-lens-test-proxy-shared-secret"

_HOME_DONE = """(name) => {
    const main = document.querySelector("[data-testid='stMain']");
    if (!main || document.querySelector("[data-stale='true']") !== null) return false;
    const captions = [...main.querySelectorAll("[data-testid='stImageCaption']")].map(e => e.textContent.trim());
    return (name === null || captions.includes(name))
        && main.querySelectorAll(".st-key-top5 .ytick text").length === 5
        && main.querySelector("[data-testid='stMetricValue']") !== null;
}"""
_PROBLEMS = """() => document.querySelectorAll("[data-testid='stException']").length"""
_NOTE = "[data-testid='stSidebar'] [data-testid='stAlertContentInfo']"


def _wait_health(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer through the proxy within {timeout:.0f} s")


async def _upload(page, path: Path) -> str:
    sidebar = page.locator("section[data-testid='stSidebar']")
    await sidebar.locator("[data-testid='stRadio']").get_by_text("Upload", exact=True).click()
    chooser = sidebar.locator("input[type='file']")
    await chooser.wait_for(state="attached")
    await chooser.set_input_files(str(path))
    await page.wait_for_function(_HOME_DONE, arg=path.name, timeout=TIMEOUT_MS, polling=100)
    return (await page.locator("[data-testid='stMain'] [data-testid='stMetricValue']").inner_text()).strip()


async def _scenario(url: str, replicas: list[str], uploads: list[Path], stop_first: callable) -> dict:
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_ARGS + LOAD_CHROMIUM_ARGS)
        for replica in replicas:  # each loads the model on its first session: before the class arrives
            page = await browser.new_page()
            await page.goto(replica, wait_until="domcontentloaded")
            await page.locator("section[data-testid='stSidebar']").get_by_text("Upload", exact=True).wait_for(
                timeout=TIMEOUT_MS * 2)
            await page.close()
        contexts = [await browser.new_context(viewport={"width": 1000, "height": 700}) for _ in uploads]
        for context in contexts:
            context.set_default_timeout(TIMEOUT_MS)

        async def open_and_upload(context, path: Path, delay: float) -> tuple:
            await asyncio.sleep(delay)
            page = await context.new_page()
            await page.goto(url, wait_until="domcontentloaded")
            top1 = await _upload(page, path)
            cookies = {c["name"]: c["value"] for c in await context.cookies()}
            return page, top1, cookies.get("SERVERID")

        first = await asyncio.gather(*(open_and_upload(c, u, 0.2 * i)
                                       for i, (c, u) in enumerate(zip(contexts, uploads, strict=True))))
        stopped = stop_first()  # the replica name whose process is gone now

        async def after(page, path: Path, server: str | None) -> dict:
            if server != stopped:
                return {}
            # The browser reconnects by itself and HAProxy sends it to the other replica (option redispatch); the
            # page it shows is the old one until the student's next click, which runs on the new replica.
            for _ in range(8):
                await page.locator(".st-key-app_nav").get_by_role("link", name="Welcome", exact=True).click()
                try:
                    await page.locator(_NOTE).first.wait_for(timeout=15_000)
                    break
                except PlaywrightTimeoutError:
                    continue
            await page.wait_for_function(_HOME_DONE, arg=None, timeout=TIMEOUT_MS, polling=200)
            note = (await page.locator(_NOTE).first.inner_text()).strip()
            exceptions = await page.evaluate(_PROBLEMS)
            top1 = await _upload(page, path)  # and the other replica serves an upload
            cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
            return {"note": note, "exceptions": exceptions, "top1": top1, "server": cookies.get("SERVERID")}

        second = await asyncio.gather(*(after(page, u, server) for (page, _, server), u in zip(first, uploads,
                                                                                              strict=True)))
        await browser.close()
    return {"first": [(top1, server) for _, top1, server in first], "after": second}


@pytest.mark.timeout(480)
def _static_twice(proxy: str, replica: str) -> dict:
    """One frontend file fetched twice through the proxy, and once from a replica directly."""
    html = urllib.request.urlopen(replica, timeout=10).read().decode()
    path = "/" + re.search(r'src="\.?/?(static/js/[^"]+)"', html).group(1)
    answers = []
    for _ in range(2):
        with urllib.request.urlopen(proxy + path, timeout=10) as resp:
            answers.append((resp.read(), resp.headers.get_all("Set-Cookie") or []))
    with urllib.request.urlopen(replica + path, timeout=10) as resp:
        direct = resp.read()
    return {"path": path, "answers": answers, "direct": direct}


def _assert_frontend_cached(log: Path, fetched: dict) -> None:
    """HAProxy answered the frontend's files from its cache: same bytes, no cookie, most browsers' requests."""
    assert len(fetched["direct"]) > 10_000
    assert [body for body, _ in fetched["answers"]] == [fetched["direct"]] * 2
    assert fetched["answers"][1][1] == [], "a cached answer must not carry another browser's SERVERID cookie"
    lines = [line for line in log.read_text().splitlines() if '"GET /static/' in line]
    by_cache = [line for line in lines if "cnn_lens/<CACHE>" in line]
    last = next(line for line in reversed(lines) if fetched["path"] in line)
    assert "cnn_lens/<CACHE>" in last, last
    # Ten browsers load the same files; only the first requests of each file (some at once) reach a replica.
    assert len(by_cache) > len(lines) / 2, f"{len(by_cache)} of {len(lines)} frontend requests from HAProxy's cache"


def test_haproxy_spreads_one_address_over_two_replicas_and_fails_over(lite0, tmp_path):
    assert Path(HAPROXY).exists(), "haproxy is missing: apt-get install haproxy (.ci/run does)"
    env = {"STREAMLIT_SERVER_COOKIE_SECRET": COOKIE_SECRET}
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda i: start_app(tmp_path / f"replica{i}.log", env=env), (1, 2)))
    (proc1, url1), (proc2, url2) = started
    listen = f"127.0.0.1:{free_port()}"
    proxy_env = dict(os.environ, LISTEN=listen, REPLICA1=url1.removeprefix("http://"),
                     REPLICA2=url2.removeprefix("http://"))
    log = (tmp_path / "haproxy.log").open("w")
    proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)], env=proxy_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_health(f"http://{listen}", 30)
        uploads = make_uploads(tmp_path / "uploads", SESSIONS)
        expected = [expected_prediction(lite0, p.read_bytes())[0] for p in uploads]

        def stop_first() -> str:
            stop_app(proc1)
            return "app1"

        seen = asyncio.run(_scenario(f"http://{listen}", [url1, url2], uploads, stop_first))
        fetched = _static_twice(f"http://{listen}", url2)
    finally:
        proxy.terminate()
        proxy.wait(10)
        log.close()
        for proc in (proc1, proc2):
            if proc.poll() is None:
                stop_app(proc)

    _assert_frontend_cached(tmp_path / "haproxy.log", fetched)
    servers = [server for _, server in seen["first"]]
    assert set(servers) == {"app1", "app2"}, f"SERVERID cookies {servers}: both replicas must serve sessions"
    assert [top1 for top1, _ in seen["first"]] == expected, "each session sees its own image's top-1"
    moved = [(u.name, a) for u, a, server in zip(uploads, seen["after"], servers, strict=True) if server == "app1"]
    assert moved
    for name, after in moved:
        assert after["exceptions"] == 0, (name, after)
        assert "choose your image again" in after["note"], (name, after)
        assert after["server"] == "app2", (name, after)
    assert [a["top1"] for _, a in moved] == [e for e, s in zip(expected, servers, strict=True) if s == "app1"]
