"""Where the server's memory goes while a class comes and goes: owners, arrays alive, malloc, RSS.

Starts the app (``streamlit run app.py``, models on the CPU) with a probe inside its process
(``benchmarks/_memprobe``: Python's ``sitecustomize`` hook, nothing in the app changes), warms it up with one
session, then runs waves of N concurrent browser sessions (``tests/load_sessions.py``, as ``bench_load.py``:
upload, Feature maps, Class activation maps, a new image each). The probe is read after the warm-up, every
``--every`` seconds during each wave, when the wave's sessions have closed, after ``--settle`` seconds, and once
more after ``malloc_trim(0)`` (what glibc could give back). Each reading lists, in MB: the resident set
(/proc), what malloc holds in use and keeps free, Streamlit's caches (``st.cache_resource`` walked deep,
``st.cache_data`` by pickled size), the app's own LRU caches, media files, uploads, sessions' state, and every
numpy array and torch tensor alive.

The probe walks the heap under the interpreter lock (about a second per deep reading with 30 sessions): the
wave's latencies are not the app's. Memory figures for the record come from ``bench_load.py``; this script
says where they come from.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--sessions 30] [--waves 3] [--every 20] [--no-cam]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._util import machine  # noqa: E402
from tests.app_process import start_app, stop_app  # noqa: E402
from tests.load_sessions import make_uploads, run_sessions  # noqa: E402

PROBE = ROOT / "benchmarks" / "_memprobe"


def _ask(folder: Path, name: str, trim: bool = False, timeout: float = 120.0) -> dict:
    """Ask the probe for a reading and wait for it."""
    (folder / (("trim-" if trim else "req-") + name)).write_text("")
    answer = folder / f"{name}.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if answer.exists():  # renamed into place when complete
            return json.loads(answer.read_text())
        time.sleep(0.2)
    return {"error": "no answer"}


def _row(label: str, r: dict) -> str:
    if "error" in r:
        return f"| {label} | {r['error']} |"
    p, m = r["proc"], r["malloc"]
    caches = sum(v["mb"] for v in r.get("cache_resource", {}).values())
    data = sum(v["mb"] for v in r.get("cache_data", {}).values())
    lru = sum(v["mb"] for v in r.get("lru", {}).values())
    s = r.get("sessions", {})
    alive = r.get("alive", {})
    return (f"| {label} | {p['Rss_mb']:.0f} | {p['Anonymous_mb']:.0f} | {m['in_use_mb']:.0f} | "
            f"{m['free_kept_mb']:.0f} | {m['mmapped_mb']:.0f} | {caches:.0f} | {data:.0f} | {lru:.0f} | "
            f"{r.get('media_files', {}).get('mb', 0):.0f} | {r.get('uploaded_files', {}).get('mb', 0):.1f} | "
            f"{s.get('count', 0)} ({s.get('active', 0)}) | {s.get('state_mb', 0):.1f} | "
            f"{alive.get('numpy_owned_mb', 0):.0f} | {alive.get('torch_storages_mb', 0):.0f} | "
            f"{r.get('probe_cpu_s', 0):.1f} |")


HEADER = ("| reading | RSS | anon | malloc in use | malloc free kept | of it mmapped | cache_resource | cache_data | "
          "app LRUs | media files | uploads | sessions (active) | session state | numpy owned | torch storages | "
          "probe CPU s |\n|---|" + "---:|" * 15)


def _details(r: dict) -> None:
    for group in ("cache_resource", "cache_data", "lru"):
        for name, v in sorted(r.get(group, {}).items(), key=lambda kv: -kv[1]["mb"]):
            if v["mb"] >= 0.5:
                print(f"#   {group}: {name}: {v['entries']} entries, {v['mb']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--every", type=float, default=20.0, help="seconds between readings during a wave (0: none)")
    parser.add_argument("--no-cam", action="store_true")
    parser.add_argument("--collect", action="store_true",
                        help="a full garbage collection (timed) before each reading during the waves")
    parser.add_argument("--stagger", type=float, default=0.3)
    parser.add_argument("--session-ttl", type=int, default=10)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE", help="more environment for the server")
    parser.add_argument("--option", nargs="*", default=[], metavar="--server.x=y", help="more streamlit options")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(f"# bench_memory · {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()}")
    print(f"# load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        probe = folder / "probe"
        env = {"PYTHONPATH": str(PROBE), "CNN_LENS_MEMPROBE": str(probe)}
        env.update(dict(item.split("=", 1) for item in args.env))
        options = [x for opt in args.option for x in opt.split("=", 1)]
        proc, url = start_app(folder / "server.log", "--server.disconnectedSessionTTL", str(args.session_ttl),
                              *options, env=env)
        try:
            print(HEADER)
            run_sessions(url, make_uploads(folder / "warm", 1, salt=99), cam=not args.no_cam)
            reading = _ask(probe, "warm")
            print(_row("after warm-up", reading))
            readings = {"warm": reading}
            for wave in range(1, args.waves + 1):
                uploads = make_uploads(folder / f"wave{wave}", args.sessions, salt=wave)
                done = threading.Event()
                during = []

                def poll(wave: int, done: threading.Event, during: list) -> None:
                    i = 0
                    prefix = "gc" if args.collect else "w"
                    while args.every and not done.wait(args.every):
                        i += 1
                        during.append((f"wave {wave}, {i * args.every:.0f} s", _ask(probe, f"{prefix}{wave}-{i}")))

                poller = threading.Thread(target=poll, args=(wave, done, during), daemon=True)
                poller.start()
                results = run_sessions(url, uploads, cam=not args.no_cam, step_timeout=300, total_timeout=900,
                                       stagger=args.stagger)
                done.set()
                poller.join()
                for label, r in during:
                    print(_row(label, r))
                    if r.get("gc"):
                        print(f"#   full collection: {r['gc']}")
                failures = [r.failure for r in results if r.failure]
                end = _ask(probe, f"w{wave}-end")
                print(_row(f"wave {wave}: sessions closed", end))
                time.sleep(args.settle)
                settled = _ask(probe, f"why{wave}-settled", trim=True)
                print(_row(f"wave {wave}: +{args.settle:.0f} s", settled))
                if "after_trim" in settled:
                    t = settled["after_trim"]
                    print(f"| wave {wave}: after malloc_trim ({settled['trim_cpu_s'] * 1000:.0f} ms CPU) | "
                          f"{t['proc']['Rss_mb']:.0f} | {t['proc']['Anonymous_mb']:.0f} | "
                          f"{t['malloc']['in_use_mb']:.0f} | {t['malloc']['free_kept_mb']:.0f} | "
                          f"{t['malloc']['mmapped_mb']:.0f} |" + " |" * 10)
                peak = max([r.get("proc", {}).get("Rss_mb", 0) for _, r in during] + [0])
                if settled.get("housekeeping"):
                    print(f"# housekeeping so far: {settled['housekeeping']}")
                print(f"# wave {wave}: {len(failures)} failed sessions {failures[:3]}; highest reading {peak:.0f} MB; "
                      f"VmHWM {settled.get('proc', {}).get('VmHWM', 0):.0f} MB")
                busiest = max(during, key=lambda lr: lr[1].get("proc", {}).get("Rss_mb", 0), default=None)
                if busiest:
                    print(f"# at the highest reading ({busiest[0]}):")
                    _details(busiest[1])
                print("# when settled:")
                _details(settled)
                for item in settled.get("unattributed", []):
                    print(f"#   unattributed: {item}")
                readings[f"wave{wave}"] = {"during": during, "end": end, "settled": settled}
            out = ROOT / "out"
            out.mkdir(exist_ok=True)
            (out / "bench_memory.json").write_text(json.dumps(readings, indent=1))
            print(f"# readings: {out / 'bench_memory.json'}")
        finally:
            stop_app(proc)
    print(f"# load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
