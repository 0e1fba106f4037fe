"""Where headless Chromium spends its CPU drawing the Feature maps and the Class activation maps pages.

``bench_student_steps.py`` says how much CPU the browser spends per step; this says where. It starts the app
(models on the CPU; ``--proxy``: behind HAProxy with exactly ``deploy/haproxy.cfg``), warms it with one student,
then drives ``--students`` students one after the other, each in a fresh Chromium context with a new image of
its own: open the app, upload, then the two timed steps of the issue, each a *first visit* of the page in that
context (its code not yet run there):

* ``feature maps``: the sidebar link clicked -> the page fully drawn (``tests/load_sessions.py``'s ``_FM_DONE``);
* ``cam``: the sidebar link clicked -> the page fully drawn (``_CAM_DONE``).

Every step is measured three ways, none of which needs the others:

1. **CPU per browser thread**, read from ``/proc/<pid>/task/*/stat`` before and after the step for every process
   this script started except the app and the proxy: Chromium's browser, renderer, GPU and utility processes
   thread by thread (``CrRendererMain`` is the page's JavaScript, style, layout and paint; ``Compositor`` and
   ``CompositorTileW`` the compositing and raster; ``ThreadPoolForeg`` image decoding and off-thread script
   compiling) and Playwright's driver (``node``). No instrumentation: these are the figures to compare.
2. **The page's main thread by kind** (CDP ``Performance.getMetrics`` before and after: ``ScriptDuration``,
   ``V8CompileDuration``, ``RecalcStyleDuration``, ``LayoutDuration``, ``TaskDuration``; the rest of the tasks'
   time is paint, image decoding on the main thread, parsing and the scheduler). Cheap; taken on every student.
3. With ``--trace`` (every other student; these students' CPU figures are left out of parts 1 and 2, since
   instrumenting costs CPU): a Chromium trace (``devtools.timeline``) of the step, whose events' own thread time
   is summed per kind on the renderer's main thread and its other threads (script, compile, GC, style, layout,
   paint/prepaint/layerize/commit, image decode, raster), and a CDP JavaScript CPU profile (``Profiler``, 0.5 ms
   sampling) whose self time is summed per script file: ``PlotlyChart`` (plotly.js and its React wrapper),
   ``DataFrame`` / ``arrowFormatUtils`` (the data grid and Arrow), ``react-dom`` and ``index`` (React and
   Streamlit's element rendering), ``protobuf``, and the rest by file.

Medians over the students are printed as tables, per page.

Run: ``.venv/bin/python benchmarks/bench_browser_pages.py [--students 4] [--proxy] [--trace] [--app-dir DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._util import machine  # noqa: E402
from benchmarks.bench_load import _start_proxy  # noqa: E402
from tests.app_process import start_app, stop_app  # noqa: E402
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

PAGES = (("feature maps", "Feature maps", _FM_DONE), ("cam", "Class activation maps", _CAM_DONE))
_TIMEOUT_MS = 120_000
_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "blink.user_timing",
               "disabled-by-default-devtools.timeline.frame", "cc", "gpu"]
#: Counts, per chart (its ``st-key-``), plotly.js's full draws (``plotly_afterplot``) and ``Plotly.react`` calls.
_COUNT_DRAWS = """(() => {
    window.__plotly = {};
    const count = (key, what) => {
        const row = window.__plotly[key] ??= {draws: 0, reacts: 0};
        row[what] += 1;
    };
    const watch = (gd) => {
        if (gd.__cnnLensCounted || typeof gd.on !== "function") return;
        gd.__cnnLensCounted = true;
        const box = gd.closest("[class*='st-key-']");
        const key = box ? [...box.classList].find(c => c.startsWith("st-key-")).slice(7) : "?";
        gd.on("plotly_afterplot", () => count(key, "draws"));
        gd.on("plotly_react", () => count(key, "reacts"));
    };
    new MutationObserver(() => document.querySelectorAll(".js-plotly-plot").forEach(watch))
        .observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["class"]});
})();"""
_METRICS = ("TaskDuration", "ScriptDuration", "V8CompileDuration", "RecalcStyleDuration", "LayoutDuration",
            "TaskOtherDuration", "ThreadTime", "ProcessTime")

# ------------------------------------------------------------------------------------------- /proc per thread


def _descendants(root: int, skip: set[int]) -> list[int]:
    """Processes under ``root`` (not ``root``), leaving out the trees rooted at ``skip``."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    out = []
    for pid in parent:
        p, chain = pid, []
        while p > 1 and p != root and p not in skip:
            chain.append(p)
            p = parent.get(p, 1)
        if p == root and pid != root:
            out.append(pid)
    return out


def _kind(pid: int) -> str:
    try:  # Chromium rewrites its children's command lines as one string: split on spaces too
        cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
    except OSError:
        return "gone"
    exe = Path(cmd[0]).name if cmd else "?"
    for arg in cmd:
        if arg.startswith("--type="):
            kind = arg.split("=", 1)[1]
            if kind == "utility":
                sub = next((a.split("=", 1)[1] for a in cmd if a.startswith("--utility-sub-type=")), "")
                return "utility " + sub.rsplit(".", 1)[-1]
            return kind
    if "chrom" in exe:
        return "browser"
    return "driver" if exe in ("node", "playwright") else exe


def _threads(skip: set[int]) -> dict[tuple[int, int], tuple[str, str, float]]:
    """(pid, tid) -> (process kind, thread name without its number, CPU seconds) for this script's children."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in _descendants(os.getpid(), skip):
        kind = _kind(pid)
        try:
            tasks = list((Path("/proc") / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            name = re.sub(r"[\d/]+$", "", stat[stat.index("(") + 1:stat.rindex(")")]).strip() or "?"
            fields = stat.rsplit(")", 1)[1].split()
            out[(pid, int(task.name))] = (kind, name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def _thread_delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per "process kind / thread name" between two snapshots (threads born in between counted whole)."""
    out: dict[str, float] = defaultdict(float)
    for key, (kind, name, cpu) in after.items():
        out[f"{kind} / {name}"] += cpu - (before[key][2] if key in before else 0.0)
    return dict(out)


# ------------------------------------------------------------------------------------------- the trace


def _kind_of_event(name: str) -> str:
    low = name.lower()
    if "gc" in name.split(".")[-1] or name.startswith(("V8.GC", "BlinkGC", "MinorGC", "MajorGC", "CppGC")):
        return "GC"
    if "decode" in low or "lazypixelref" in low or name in ("Resize Image", "ImageFrameGenerator::decode"):
        return "image decode"
    if ("compile" in low or "v8.parse" in low or "deserialize" in low or "producecache" in low
            or "produceModuleCache" in name or name == "CacheScript"):
        return "JS compile"
    if name in ("UpdateLayoutTree", "RecalculateStyles", "ParseAuthorStyleSheet", "Document::updateStyle"):
        return "style"
    if name in ("Layout", "UpdateLayout", "LocalFrameView::layout") or "IntersectionObserver" in name:
        return "layout"
    if name in ("Paint", "PrePaint", "Layerize", "UpdateLayer", "UpdateLayerTree", "Commit", "CompositeLayers",
                "PaintImage", "PaintSetup", "Rasterize", "RasterTask", "DisplayItemList", "ProxyMain::BeginMainFrame",
                "LayerTreeHost::DoUpdateLayers", "LocalFrameView::RunPaintLifecyclePhase") \
            or "raster" in low or low.startswith(("paint", "cc::")):
        return "paint / raster / composite"
    if name in ("ParseHTML",):
        return "parse HTML"
    if name in ("FunctionCall", "EvaluateScript", "v8.evaluateModule", "TimerFire", "EventDispatch",
                "FireAnimationFrame", "RunMicrotasks", "v8.run", "V8.Execute", "v8.callFunction", "v8.callModuleMethod",
                "XHRReadyStateChange", "XHRLoad", "HandlePostMessage", "FireIdleCallback", "v8.newInstance",
                "ResizeObserverController::DeliverObservations", "v8.execute") or low.startswith("v8."):
        return "script"
    if name.startswith(("Resource", "Loader", "Fetch")) or "network" in low:
        return "loading"
    return "other (scheduler, tasks' own time)"


def _self_times(evs: list[dict]) -> dict[str, float]:
    """Seconds of thread time per kind on one thread, each event counted without its children."""
    evs.sort(key=lambda e: (e["ts"], -e["dur"]))
    totals: dict[str, float] = defaultdict(float)
    stack: list[list] = []  # [end_ts, kind, tdur, children's tdur]
    for e in [*evs, None]:
        while stack and (e is None or stack[-1][0] <= e["ts"]):
            item = stack.pop()
            totals[item[1]] += max(item[2] - item[3], 0.0)
        if e is None:
            break
        if stack:
            stack[-1][3] += e["tdur"]
        stack.append([e["ts"] + e["dur"], _kind_of_event(e["name"]), float(e["tdur"]), 0.0])
    return {k: v / 1e6 for k, v in totals.items()}


def _self_thread_times(events: list[dict]) -> dict[tuple[int, int], dict[str, float]]:
    """Per (pid, tid): seconds of thread time per kind, each event counted without its children."""
    by_thread: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "tdur" in e and "dur" in e:
            by_thread[(e["pid"], e["tid"])].append(e)
    return {key: _self_times(evs) for key, evs in by_thread.items()}


def _trace_breakdown(trace: bytes) -> dict[str, float]:
    """Renderer threads' self thread time per kind: "main: script", "raster: paint / raster / composite", ..."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    names, procs = {}, {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e["pid"], e["tid"])] = e["args"]["name"]
        if e.get("ph") == "M" and e.get("name") == "process_name":
            procs[e["pid"]] = e["args"]["name"]
    out: dict[str, float] = defaultdict(float)
    for (pid, tid), kinds in _self_thread_times(events).items():
        if "Renderer" not in procs.get(pid, ""):
            continue
        thread = names.get((pid, tid), "?")
        where = {"CrRendererMain": "main"}.get(thread, re.sub(r"[\d/]+$", "", thread).strip())
        for kind, seconds in kinds.items():
            out[f"{where}: {kind}"] += seconds
    return dict(out)


def _profile_by_file(profile: dict) -> dict[str, float]:
    """JavaScript self time (s) per script file (its name without the hash), from a CDP CPU profile."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    out: dict[str, float] = defaultdict(float)
    for i, node_id in enumerate(profile.get("samples", [])):
        spent = deltas[i + 1] if i + 1 < len(deltas) else 0
        frame = nodes[node_id]["callFrame"]
        url, fn = frame.get("url", ""), frame.get("functionName", "")
        if url:
            label = Path(url.split("?")[0]).name.split(".")[0] or url
        elif fn in ("(program)", "(idle)", "(garbage collector)", "(root)"):
            label = fn
        else:
            label = "(V8 built-ins and Blink bindings)"
        out[label] += spent / 1e6
    return dict(out)


# ------------------------------------------------------------------------------------------- one student


async def _metrics(cdp) -> dict[str, float]:
    got = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    return {k: got.get(k, 0.0) for k in _METRICS}


async def _student(browser, url: str, upload: Path, skip: set[int], trace: bool) -> dict:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(_TIMEOUT_MS)
    await context.add_init_script(_COUNT_DRAWS)
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    out: dict = {"traced": trace}
    try:
        await page.goto(url, wait_until="domcontentloaded")
        await _until(page, _HEADING, "CNN Lens", _TIMEOUT_MS)
        sidebar = page.locator("section[data-testid='stSidebar']")
        await sidebar.get_by_text("Upload", exact=True).click()
        chooser = sidebar.locator("input[type='file']")
        await chooser.wait_for(state="attached")
        await chooser.set_input_files(str(upload))
        await _until(page, _HOME_DONE, upload.name, _TIMEOUT_MS)
        for step, title, done in PAGES:
            await asyncio.sleep(0.5)  # the previous step's last messages and paints settle
            if trace:
                await cdp.send("Profiler.enable")
                await cdp.send("Profiler.setSamplingInterval", {"interval": 500})
                await browser.start_tracing(categories=_CATEGORIES)
                await cdp.send("Profiler.start")
            await page.evaluate("() => { window.__plotly = {}; }")
            threads, metrics, start = _threads(skip), await _metrics(cdp), time.perf_counter()
            await _switch(page, title, _TIMEOUT_MS)
            await _until(page, done, None, _TIMEOUT_MS)
            wall = time.perf_counter() - start
            after_metrics, after_threads = await _metrics(cdp), _threads(skip)
            await asyncio.sleep(1.0)  # what the browser still does once the page counts as drawn
            tail = sum(_thread_delta(after_threads, _threads(skip)).values())
            row = {"wall": wall, "threads": _thread_delta(threads, after_threads), "tail": tail,
                   "plotly": await page.evaluate("() => window.__plotly"),
                   "metrics": {k: after_metrics[k] - metrics[k] for k in _METRICS}}
            if trace:
                profile = (await cdp.send("Profiler.stop"))["profile"]
                row["trace"] = _trace_breakdown(await browser.stop_tracing())
                row["scripts"] = _profile_by_file(profile)
            out[step] = row
    finally:
        await context.close()
    return out


async def _run(url: str, uploads: list[Path], skip: set[int], trace: bool) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_ARGS + LOAD_CHROMIUM_ARGS)
        teacher = await browser.new_context()  # as in bench_student_steps: one session stays connected
        try:
            page = await teacher.new_page()
            await page.goto(url, wait_until="domcontentloaded", timeout=_TIMEOUT_MS)
            await _until(page, _HEADING, "CNN Lens", _TIMEOUT_MS)
            return [await _student(browser, url, up, skip, trace and i % 2 == 1) for i, up in enumerate(uploads)]
        finally:
            await browser.close()


# ------------------------------------------------------------------------------------------- report


def _table(title: str, rows: list[dict], unit: str = "CPU s", limit: float = 0.005) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: -statistics.median(r.get(k, 0.0) for r in rows))
    print(f"\n| {title} | {unit} (median) | min-max |")
    print("|---|---:|---:|")
    shown = 0.0
    for k in keys:
        values = [r.get(k, 0.0) for r in rows]
        med = statistics.median(values)
        if med < limit:
            continue
        shown += med
        print(f"| {k} | {med:.3f} | {min(values):.3f}-{max(values):.3f} |")
    total = statistics.median(sum(r.values()) for r in rows)
    print(f"| **total** | **{total:.3f}** | |")


def report(rows: list[dict], label: str) -> None:
    plain = [r for r in rows if not r["traced"]]
    traced = [r for r in rows if r["traced"]]
    for step, title, _ in PAGES:
        print(f"\n## {title}: first visit in a fresh context ({label})")
        if plain:
            walls = [r[step]["wall"] for r in plain]
            print(f"\nwall s, click -> page fully drawn: median {statistics.median(walls):.2f}, "
                  f"min {min(walls):.2f}, max {max(walls):.2f} ({len(plain)} students, not instrumented)")
            _table("browser thread (process kind / thread)", [r[step]["threads"] for r in plain])
            tails = [r[step]["tail"] for r in plain]
            print(f"\nbrowser CPU s, the second after the page counted as drawn: median "
                  f"{statistics.median(tails):.3f}")
            _table("page main thread, CDP Performance.getMetrics", [r[step]["metrics"] for r in plain], "s")
            charts = sorted({k for r in plain for k in r[step]["plotly"]})
            print("\nplotly.js per chart (median over students): " + ", ".join(
                f"{k} {statistics.median(r[step]['plotly'].get(k, {}).get('draws', 0) for r in plain):g} full draws / "
                f"{statistics.median(r[step]['plotly'].get(k, {}).get('reacts', 0) for r in plain):g} Plotly.react"
                for k in charts))
        if traced:
            walls = [r[step]["wall"] for r in traced]
            print(f"\ntraced students: wall s median {statistics.median(walls):.2f} (instrumented, slower)")
            _table("renderer thread: kind (trace, self thread time)", [r[step]["trace"] for r in traced])
            _table("JavaScript self time by script file (CPU profile)", [r[step]["scripts"] for r in traced])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4, help="students, one after the other")
    parser.add_argument("--proxy", action="store_true", help="HAProxy with deploy/haproxy.cfg in front of the app")
    parser.add_argument("--trace", action="store_true",
                        help="trace and profile every other student (left out of the uninstrumented tables)")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the app's folder (another checkout)")
    parser.add_argument("--json", type=Path, help="also write every student's figures here")
    args = parser.parse_args()

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cnn-lens-browser-") as tmp:
        folder = Path(tmp)
        proc, url = start_app(folder / "app.log", cwd=args.app_dir)
        proxy = None
        skip = {proc.pid}
        try:
            if args.proxy:
                proxy, url = _start_proxy(folder, [url, url])
                skip.add(proxy.pid)
            asyncio.run(_run(url, make_uploads(folder / "warm", 1, salt=99), skip, False))
            rows = asyncio.run(_run(url, make_uploads(folder / "students", args.students, salt=11), skip, args.trace))
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait(10)
            stop_app(proc)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    label = f"{args.app_dir.name}, {'behind HAProxy' if args.proxy else 'direct'}"
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · {label} · "
          f"{args.students} students · load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start")
    report(rows, label)


if __name__ == "__main__":
    main()
