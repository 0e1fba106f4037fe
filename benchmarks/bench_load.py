"""Benchmark a classroom: N concurrent browser sessions through upload -> feature maps -> class activation maps.

Starts its own ``streamlit run app.py`` (device forced to CPU) on a free localhost port, warms it up with one
session, then runs N sessions at once in one headless Chromium (one browser context each, every session
with its own image; ``tests/load_sessions.py`` drives them, as in ``tests/test_load.py``). Reported per
step, over the sessions: p50 and p95 seconds of

* ``upload``: file chosen -> the home page's top-5 for it is shown (the rerun has finished);
* ``fm_montage`` / ``fm_done``: sidebar link clicked -> the Feature maps montage is shown / the page is done;
* ``cam_figure`` / ``cam_done``: sidebar link clicked -> the CAM methods figure is shown / the page is done;

and the server's memory (peak resident set size while the sessions ran, polled from /proc every 0.2 s, and
the resident set once the sessions have closed and the server has dropped them: the benchmark's server keeps
a closed session for ``--session-ttl`` s instead of Streamlit's 120 s), the CPU seconds of the server and of
the browser, and the load average. ``--sweep`` runs N = 1, 5, 10, 20, 30 one after the other on the same
server (each wave with fresh images, so no wave is served from the previous wave's caches) and says how many
sessions one replica serves with a p95 page switch of at most 2 s.

The browsers run on the same machine as the server and take most of its CPU, so on a 2-core machine the
latencies are an upper bound for a classroom where every student's browser runs on their own computer.

Run: ``.venv/bin/python benchmarks/bench_load.py [--sessions 30 [--waves 3]] [--sweep] [--stagger 0.3] [--no-cam]
[--proxy]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._util import machine  # noqa: E402
from tests.app_process import cpu_seconds, free_port, start_app, stop_app  # noqa: E402
from tests.load_sessions import STEPS, SessionResult, expected_prediction, make_uploads, run_sessions  # noqa: E402
from vizlib import models  # noqa: E402

SWEEP = (1, 5, 10, 20, 30)
#: The CAM page's default methods (pages/cam.py DEFAULT_METHODS), what a student sees on arrival.
DEFAULT_CAM_METHODS = ("gradcam", "gradcam++", "layercam", "saliency")
TARGET_SWITCH_S = 2.0
#: The steps that are page switches (what the 2 s target is about): the first result shown on the page.
SWITCHES = ("fm_montage", "cam_figure")


def _memory_mb(pid: int | tuple[int, ...]) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS over the process's life) of ``pid`` (summed over several), in MB."""
    out = {"VmRSS": 0.0, "VmHWM": 0.0}
    for one in (pid,) if isinstance(pid, int) else pid:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in out:
                out[key] += int(value.split()[0]) / 1024
    return out


def _cpu(pids: tuple[int, ...]) -> tuple[float, float]:
    """CPU seconds so far of (the servers' process trees, everything else this process started: the browser)."""
    first, others = cpu_seconds(pids[0])
    rest = sum(cpu_seconds(pid)[0] for pid in pids[1:])
    return first + rest, others - rest


class _RssPoller(threading.Thread):
    """Polls a process's resident set size while a wave runs and keeps the maximum."""

    def __init__(self, pid: int | tuple[int, ...], every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _memory_mb(self.pid)["VmRSS"])
            self._done.wait(self.every)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _wrong(result: SessionResult, expected: tuple[str, float], cam: bool) -> str | None:
    """Why a session's pages do not show its own image's results, or None."""
    label, _ = expected
    if result.failure:
        return result.failure
    if result.home_caption != [result.name] or set(result.sidebar_captions.values()) != {result.name}:
        return f"captions {result.home_caption} {result.sidebar_captions}"
    if result.top1 != label:
        return f"top-1 {result.top1!r}, expected {label!r}"
    if cam and not (result.cam_caption or "").startswith(f"Evidence for {label} "):
        return f"CAM caption {result.cam_caption!r}"
    if result.exceptions or result.error_alerts:
        return f"{result.exceptions} exceptions, errors {result.error_alerts}"
    return None


def _server_errors(log_path: Path, offset: int) -> tuple[list[str], int]:
    """Exceptions the app raised (Streamlit's "Uncaught app execution" log entries) after ``offset`` in its log.

    A session's page may show an exception and replace it on the next rerun, so the final pages alone can
    miss one; the server's log keeps every one. Returns (one "Type: message" line per exception, new offset).
    """
    text = log_path.read_text(errors="replace")
    errors, lines = [], text[offset:].splitlines()
    for i, line in enumerate(lines):
        if "Uncaught app execution" in line:
            tail = next((x for x in lines[i + 1:] if x and not x.startswith((" ", "Traceback", "During"))), "?")
            errors.append(tail.strip()[:200])
    return errors, len(text)


def _needed_cpu(loaded, uploads: list[Path], cam_page: bool) -> float:
    """CPU seconds per student of the model passes the path truly needs, run here on the same images.

    Per image: classify (home page's top-5), every layer's activations in one pass (Feature maps) and, with
    the CAM page, one call of the default methods (one forward and backward to the layer for Grad-CAM,
    Grad-CAM++ and LayerCAM, and one backward to the input for Saliency). One torch thread, like the server.
    """
    from vizlib import cam, feature_maps, images

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        for path in uploads:
            image = images.fit_image(images.load_image(path.read_bytes()), 1024)
            top = models.classify(loaded, image, len(loaded.categories)).indices[0]
            feature_maps.compute_activations(loaded, image)
            if cam_page:
                cam.compute(loaded, image, top, DEFAULT_CAM_METHODS)
        return (time.process_time() - start) / len(uploads)
    finally:
        torch.set_num_threads(threads)


def _wave(url: str, pid: tuple[int, ...], n: int, wave: int, folder: Path, loaded, args, label: str = "") -> dict:
    uploads = make_uploads(folder / f"wave{wave}{label}", n, salt=wave)
    expected = {p.name: expected_prediction(loaded, p.read_bytes()) for p in uploads}
    load_before = os.getloadavg()[0]
    cpu_before = _cpu(pid)
    poller = _RssPoller(pid)
    poller.start()
    start = time.perf_counter()
    results = run_sessions(url, uploads, cam=not args.no_cam, step_timeout=args.step_timeout,
                           total_timeout=args.total_timeout, stagger=args.stagger)
    wall = time.perf_counter() - start
    peak = poller.stop()
    cpu_after = _cpu(pid)
    load_after = os.getloadavg()[0]
    time.sleep(args.settle)  # the sessions' websockets are closed; let the server drop them
    wrong = {r.name: why for r in results if (why := _wrong(r, expected[r.name], not args.no_cam))}
    needed = _needed_cpu(loaded, uploads, not args.no_cam)
    server_errors, args.log_offset = _server_errors(args.log_path, args.log_offset)
    steps = {s: [r.seconds[s] for r in results if s in r.seconds] for s in STEPS}
    return {
        "n": n, "wall": wall, "steps": steps, "wrong": wrong, "server_errors": server_errors, "peak_rss": peak,
        "rss_after": _memory_mb(pid)["VmRSS"], "server_cpu": cpu_after[0] - cpu_before[0],
        "browser_cpu": cpu_after[1] - cpu_before[1], "load": (load_before, load_after), "needed_cpu": needed,
        "label": label,
    }


def _print_wave(row: dict) -> None:
    n = row["n"]
    print(f"\n{row['label'] or 'server'}, N = {n}: per student: server CPU {row['server_cpu'] / n:.2f} s, model passes "
          f"the path needs {row['needed_cpu']:.2f} s (ratio {row['server_cpu'] / n / row['needed_cpu']:.1f}), "
          f"browser CPU {row['browser_cpu'] / n:.2f} s")
    print(f"N = {row['n']}: {row['wall']:.0f} s wall, load average {row['load'][0]:.1f} -> {row['load'][1]:.1f}; "
          f"CPU s: server {row['server_cpu']:.1f}, browser {row['browser_cpu']:.1f}; server RSS peak "
          f"{row['peak_rss']:.0f} MB, after the sessions closed {row['rss_after']:.0f} MB; "
          f"sessions with wrong or missing results: {len(row['wrong'])}")
    for name, why in row["wrong"].items():
        print(f"  {name}: {why}")
    print(f"exceptions in the server log: {len(row['server_errors'])}")
    for text, count in Counter(row["server_errors"]).most_common():
        print(f"  {count} x {text}")
    print("| step | sessions | p50 s | p95 s | max s |")
    print("|---|---:|---:|---:|---:|")
    for step, values in row["steps"].items():
        if values:
            print(f"| {step} | {len(values)} | {_percentile(values, 50):.2f} | {_percentile(values, 95):.2f} | "
                  f"{max(values):.2f} |")


def _summary(rows: list[dict]) -> None:
    print("\n| server | sessions | upload p50/p95 s | feature maps p50/p95 s (montage; page done) | CAM p50/p95 s "
          "(figure; page done) | server CPU s per student | needed passes s | ratio | browser CPU s per student | "
          "server RSS peak / after MB | load avg | wrong | app errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def pair(values: list[float]) -> str:
        return f"{_percentile(values, 50):.1f} / {_percentile(values, 95):.1f}" if values else "–"

    for r in rows:
        s = r["steps"]
        per = r["server_cpu"] / r["n"]
        print(f"| {r['label'] or 'server'} | {r['n']} | {pair(s['upload'])} | {pair(s['fm_montage'])}; "
              f"{pair(s['fm_done'])} | {pair(s['cam_figure'])}; {pair(s['cam_done'])} | {per:.2f} | "
              f"{r['needed_cpu']:.2f} | {per / r['needed_cpu']:.1f} | {r['browser_cpu'] / r['n']:.2f} | "
              f"{r['peak_rss']:.0f} / {r['rss_after']:.0f} | {r['load'][0]:.0f}–{r['load'][1]:.0f} | "
              f"{len(r['wrong'])} | {len(r['server_errors'])} |")
    if len({r["label"] for r in rows}) > 1:
        _compare(rows)
        return
    within = [r["n"] for r in rows if not r["wrong"] and not r["server_errors"] and all(
        r["steps"][s] and _percentile(r["steps"][s], 95) <= TARGET_SWITCH_S for s in SWITCHES if r["steps"][s]
    )]
    best = max(within) if within else None
    print(f"\nLargest N: all right, no app exception, p95 page switch (first result) <= {TARGET_SWITCH_S:.0f} s: "
          + (str(best) if best else f"none of {[r['n'] for r in rows]}"))


def _start_profile(pid: int, out: Path, rate: int = 50, gil: bool = False) -> subprocess.Popen:
    """py-spy sampling the server ``rate`` times a second (CPU only: idle threads left out) into ``out`` as raw
    collapsed stacks; ``gil``: only the thread holding the interpreter lock (Python's own work, exactly; native
    code that released the lock, such as torch's kernels, is left out)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "-p", str(pid), "-o", str(out), "--format", "raw", "--rate", str(rate), "--nonblocking"]
    return subprocess.Popen(command + (["--gil"] if gil else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _compare(rows: list[dict]) -> None:
    """New against old, wave by wave (the waves alternate between the two servers)."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    old, new = ([r for r in rows if r["label"] == x] for x in labels[:2])
    print(f"\n| N | {labels[1]} / {labels[0]}: server CPU per student | p95 of every step, each |")
    print("|---:|---:|---|")
    for a, b in zip(old, new, strict=False):
        ratios = ", ".join(
            f"{step} {_percentile(b['steps'][step], 95) / _percentile(a['steps'][step], 95):.2f}"
            for step in STEPS if a["steps"][step] and b["steps"][step]
        )
        print(f"| {a['n']} | {b['server_cpu'] / a['server_cpu']:.2f} | {ratios} |")


def _old_tree(ref: str, folder: Path) -> Path:
    """The app as it was at git ``ref``, extracted into ``folder`` (git archive: no worktree registered)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    for extra in ("checkpoints",):  # weights are not in git
        if (ROOT / extra).is_dir() and not (folder / extra).exists():
            (folder / extra).symlink_to(ROOT / extra)
    return folder


def _snapshot(folder: Path) -> Path:
    """A copy of the app's working tree (code and data, not .git or caches) to serve from."""
    import shutil as sh

    sh.copytree(ROOT, folder, ignore=sh.ignore_patterns(".git", "__pycache__", ".venv", ".pytest_cache", ".ruff_cache"),
                symlinks=True)
    return folder


_REPLICA_URLS: dict[str, str] = {}


def _replica_url(log: Path) -> str:
    return _REPLICA_URLS[str(log)]


def _start_proxy(folder: Path, replicas: list[str]) -> tuple[subprocess.Popen, str]:
    """HAProxy with deploy/haproxy.cfg in front of ``replicas`` (URLs); returns (process, its URL)."""
    for i, url in enumerate(replicas, start=1):
        _REPLICA_URLS[str(folder / f"replica{i}.log")] = url
    listen = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, LISTEN=listen, **{f"REPLICA{i}": u.removeprefix("http://")
                                             for i, u in enumerate(replicas, start=1)})
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    with (folder / "haproxy.log").open("w") as log:
        proc = subprocess.Popen([haproxy, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    time.sleep(1.0)
    return proc, f"http://{listen}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30, help="concurrent sessions (without --sweep)")
    parser.add_argument("--sweep", action="store_true", help=f"run N = {', '.join(map(str, SWEEP))} in turn")
    parser.add_argument("--waves", type=int, default=1,
                        help="repeat --sessions this many times on one server (memory as sessions come and go)")
    parser.add_argument("--stagger", type=float, default=0.3, help="seconds between session starts")
    parser.add_argument("--no-cam", action="store_true", help="skip the Class activation maps page")
    parser.add_argument("--step-timeout", type=float, default=300.0, help="seconds any one wait may take")
    parser.add_argument("--total-timeout", type=float, default=900.0, help="seconds one wave may take")
    parser.add_argument("--session-ttl", type=int, default=10,
                        help="server.disconnectedSessionTTL: seconds a closed session's state is kept (app: 120)")
    parser.add_argument("--counts", type=int, nargs="+", default=None,
                        help="run these numbers of sessions in turn (like --sweep, with other N)")
    parser.add_argument("--compare", metavar="GIT_REF", default=None,
                        help="also serve the app as it was at this commit and alternate waves between the two")
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=1,
                        help="2: also two replicas behind HAProxy (deploy/haproxy.cfg), waves alternating with one")
    parser.add_argument("--proxy", action="store_true",
                        help="put each one-replica server (and the --compare one) behind its own HAProxy with "
                        "deploy/haproxy.cfg, as DEPLOY.md recommends; HAProxy's CPU counts as the server's")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the server with py-spy (raw collapsed stacks) into this file during the waves")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to wait after a wave before reading the RSS (longer than --session-ttl)")
    args = parser.parse_args()
    args.log_offset = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the server

    print(f"# bench_load · {datetime.date.today()} · {machine()}")
    print(f"# load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        servers = []  # (label, pids, url, log of the replica that logs app errors)
        procs = []
        ttl = ("--server.disconnectedSessionTTL", str(args.session_ttl))
        try:
            if args.compare:
                tree = _old_tree(args.compare, folder / "old")
                proc, url = start_app(folder / "server-old.log", *ttl, cwd=tree)
                procs.append(proc)
                servers.append((f"before ({args.compare})", (proc.pid,), url, [folder / "server-old.log"]))
            # the app as it is now, copied: editing the working tree while the benchmark runs changes nothing
            now = _snapshot(folder / "now")
            proc, url = start_app(folder / "server.log", *ttl, cwd=now)
            procs.append(proc)
            servers.append(("now, 1 replica" if args.replicas > 1 else "now" if args.compare else "", (proc.pid,), url,
                            [folder / "server.log"]))
            if args.proxy:  # one HAProxy per one-replica server: both of the config's server lines name it
                for i, (label, pids, url, logs) in enumerate(list(servers)):
                    sub = folder / f"proxy{i}"
                    sub.mkdir()
                    proxy, proxy_url = _start_proxy(sub, [url, url])
                    procs.append(proxy)
                    _REPLICA_URLS[str(logs[0])] = url
                    servers[i] = (f"{label or 'now'} behind HAProxy", pids + (proxy.pid,), proxy_url, logs)
            if args.replicas > 1:
                env = {"STREAMLIT_SERVER_COOKIE_SECRET": "bench-load-shared-secret"}
                reps = [start_app(folder / f"replica{i}.log", *ttl, cwd=now, env=env) for i in (1, 2)]
                procs += [p for p, _ in reps]
                proxy, proxy_url = _start_proxy(folder, [u for _, u in reps])
                procs.append(proxy)
                servers.append(("now, 2 replicas + HAProxy", tuple(p.pid for p, _ in reps) + (proxy.pid,), proxy_url,
                                [folder / "replica1.log", folder / "replica2.log"]))
            for label, pids, url, logs in servers:
                print(f"# server {label} pids {pids}, RSS at start {_memory_mb(pids)['VmRSS']:.0f} MB")
                for log in logs:  # warm every replica directly (each loads the model on its first session)
                    direct = url if len(logs) == 1 else _replica_url(log)  # behind --proxy: fills its cache
                    args.log_path, args.log_offset = log, 0
                    warm = _wave(direct, pids, 1, 0, folder, loaded, args, label)
                    print(f"# warm-up session {label}: {warm['wall']:.0f} s, RSS after {warm['rss_after']:.0f} MB, "
                          f"wrong: {warm['wrong'] or 'none'}")
            spy = _start_profile(servers[-1][1][0], args.profile) if args.profile else None
            offsets = {str(log): len(log.read_text(errors="replace")) for *_, logs in servers for log in logs}
            rows = []
            counts = args.counts or (SWEEP if args.sweep else (args.sessions,) * args.waves)
            for wave, n in enumerate(counts, start=1):
                order = servers if wave % 2 else servers[::-1]  # alternate which server goes first
                for label, pids, url, logs in order:
                    errors = []
                    args.log_path, args.log_offset = logs[0], offsets[str(logs[0])]
                    rows.append(_wave(url, pids, n, wave, folder, loaded, args, label))
                    offsets[str(logs[0])] = args.log_offset
                    for log in logs[1:]:
                        more, offsets[str(log)] = _server_errors(log, offsets[str(log)])
                        errors += more
                    rows[-1]["server_errors"] += errors
                    _print_wave(rows[-1])
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
                print(f"# py-spy profile of the waves: {args.profile}")
            _summary(rows)
            for label, pids, _, _ in servers:
                print(f"# server {label} VmHWM (peak RSS over its life) {_memory_mb(pids)['VmHWM']:.0f} MB; "
                      f"alive: {all(p.poll() is None for p in procs)}")
        finally:
            for proc in procs:
                stop_app(proc)
    print(f"# load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
