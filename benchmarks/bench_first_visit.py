"""What a student's first visit costs the app process: directly, and behind HAProxy with deploy/haproxy.cfg.

A first visit loads Streamlit's frontend (about 10 MB of JavaScript under /static/) before the lesson starts. One
app process and one HAProxy with exactly ``deploy/haproxy.cfg`` (its cache keeps the frontend files), one
headless Chromium; fresh browser contexts (nothing cached in the browser, like a student's first visit) open
the Welcome page until its top-5 chart is drawn, alternating direct and through the proxy. Printed: the app
process's CPU seconds per visit each way, HAProxy's, and their ratio. The first visit through the proxy fills
its cache and is not counted.

Run: ``.venv/bin/python benchmarks/bench_first_visit.py [--visits 6]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._util import machine  # noqa: E402
from tests.app_process import free_port, start_app, stop_app  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

HAPROXY = "/usr/sbin/haproxy"
_DRAWN = """() => document.querySelectorAll("[data-testid='stMain'] .st-key-top5 .ytick text").length === 5"""


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer")


def _visit(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 800, "height": 600})
    try:
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function(_DRAWN, timeout=120_000, polling=100)
        return time.perf_counter() - start
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=6, help="visits each way")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder = Path("/tmp/bench_first_visit")
    folder.mkdir(exist_ok=True)
    proc, url = start_app(folder / "app.log")
    listen = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, LISTEN=listen, REPLICA1=url.removeprefix("http://"), REPLICA2=url.removeprefix("http://"))
    proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=env,
                             stdout=(folder / "haproxy.log").open("w"), stderr=subprocess.STDOUT)
    print(f"# bench_first_visit · {datetime.date.today()} · {machine()} · load average {os.getloadavg()[0]:.1f}")
    try:
        _wait(f"http://{listen}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            _visit(browser, url)  # the model loads and the scripts compile once, outside the figures
            _visit(browser, f"http://{listen}")  # fills HAProxy's cache
            cost = {"direct": [], "through HAProxy": []}
            proxy_cpu, seconds = [], {"direct": [], "through HAProxy": []}
            for _ in range(args.visits):
                for way, target in (("direct", url), ("through HAProxy", f"http://{listen}")):
                    app0, proxy0 = _cpu(proc.pid), _cpu(proxy.pid)
                    seconds[way].append(_visit(browser, target))
                    cost[way].append(_cpu(proc.pid) - app0)
                    if way != "direct":
                        proxy_cpu.append(_cpu(proxy.pid) - proxy0)
            browser.close()
    finally:
        proxy.terminate()
        stop_app(proc)
    direct, behind = statistics.median(cost["direct"]), statistics.median(cost["through HAProxy"])
    print("| first visit (Welcome page drawn) | app process CPU s (median) | HAProxy CPU s | wall s |")
    print("|---|---:|---:|---:|")
    print(f"| direct | {direct:.3f} | | {statistics.median(seconds['direct']):.2f} |")
    print(f"| through HAProxy (deploy/haproxy.cfg) | {behind:.3f} | {statistics.median(proxy_cpu):.3f} | "
          f"{statistics.median(seconds['through HAProxy']):.2f} |")
    print(f"ratio (through HAProxy / direct): {behind / direct:.2f}  ({args.visits} visits each way, alternating)")


if __name__ == "__main__":
    main()
