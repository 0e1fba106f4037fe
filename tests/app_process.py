"""Start and stop the app as its own ``streamlit run`` process, and count CPU time by process tree.

Shared by the browser tests (``tests/conftest.py``) and the benchmarks that drive the app in Chromium.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ROOT", "cpu_seconds", "free_port", "nav_link", "start_app", "stop_app"]

ROOT = Path(__file__).resolve().parent.parent


def nav_link(page, title: str):
    """The link to the page titled ``title`` in the app's own page list in the sidebar (a Playwright locator)."""
    return page.locator(".st-key-app_nav [data-testid='stPageLink'] a", has_text=title).first


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    log_path: Path, *options: str, env: Mapping[str, str] | None = None, timeout: float = 90.0,
    cwd: Path = ROOT, port: int | None = None,
) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on a free localhost port with the models on the CPU; returns (process, URL).

    Args:
        log_path: Where the server's output goes (kept open for the server's life).
        *options: More ``streamlit run`` options, e.g. ``"--server.disconnectedSessionTTL", "10"``.
        env: More environment variables for the server.
        timeout: Seconds to wait for ``/_stcore/health``.
        cwd: The app's folder (another checkout of the app, e.g. an older commit for a comparison).
        port: The port (default: a free one).

    Raises:
        RuntimeError: The server exited or did not answer in time; the message ends with its log.
    """
    port = port or free_port()
    environ = dict(os.environ, CNN_LENS_DEVICE="cpu", PYTHONUNBUFFERED="1", **(env or {}))
    log = log_path.open("w")  # noqa: SIM115 - the server writes to it until it stops
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", *options],
        cwd=cwd, env=environ, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()  # the child has its own copy of the file
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    stop_app(proc)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"streamlit did not start within {timeout:.0f} s; its log ({log_path}) ends:\n{tail}")


def stop_app(proc: subprocess.Popen) -> None:
    """Terminate the server (kill it after 15 s)."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(server_pid: int) -> tuple[float, float]:
    """CPU seconds used so far by (the server's process tree, everything else this process started).

    "Everything else" is Chromium and Playwright: live descendants, plus what exited children used once their
    parent waited for them.
    """
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick

    def under(pid: int, root: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parent.get(pid, 1)
        return False

    me = os.getpid()
    server = sum(c for pid, c in cpu.items() if under(pid, server_pid))
    others = sum(c for pid, c in cpu.items() if pid != me and under(pid, me) and not under(pid, server_pid))
    times = os.times()
    return server, others + times.children_user + times.children_system
