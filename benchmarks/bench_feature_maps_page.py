"""Benchmark the Feature maps page's network overview: the plotly figure it was against the one picture it is now.

One process, side by side (EfficientNet-Lite0, 21 stages, 8 channels each, a gallery photo), medians and ratios:

1. Server CPU once per (image, ranking, colormap): ranking the channels, then building the figure and serializing it
   (``plotly.io.to_json``) against drawing the picture (:func:`vizlib.feature_maps.overview_picture`) and encoding it
   as PNG; also the PNG with and without PNG's row filters (``encode_png(filters=...)``), for the overview and for
   the default layer's montage.
2. Server CPU on every rerun of the page (both are cached): what ``st.plotly_chart`` does with the cached figure
   (``return_figure_from_figure_or_data`` + ``to_json``) against what ``st.image`` does with the cached PNG bytes
   (Streamlit's ``image_to_url`` checks + the media file's id, a hash of the bytes).
3. Browser cost in headless Chromium: the figure drawn by plotly.js (``JSON.parse`` + ``Plotly.newPlot``, until
   painted) against an ``<img>`` of the PNG (fetched, decoded, painted): wall time, and the page's main-thread
   task time from the Chrome DevTools Protocol (``Performance.getMetrics`` TaskDuration).
4. For the record, the channel section's three figures (heatmap, overlay, histogram): server build, per-rerun
   marshalling and browser render (they stay plotly: their hover values are the lesson).
5. With ``--page REF``: the whole page, the app at git ``REF`` (the overview as a figure) and this working tree
   served side by side, visits alternating (a fresh browser context each, home page, then Feature maps; the
   gallery's cat, so the activations are cached after the first visit): seconds from the montage to the page
   fully drawn (``tests/load_sessions.py``'s check; for the old page its overview's 21 images drawn), the
   browser's and the server's CPU seconds per visit.

Run: ``nice -n 10 .venv/bin/python benchmarks/bench_feature_maps_page.py [--rounds 7] [--page main --visits 5]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import plotly.io  # noqa: E402
import plotly.tools  # noqa: E402
import streamlit  # noqa: E402, F401  (loaded, as in the server)
from plotly.offline import get_plotlyjs  # noqa: E402
from streamlit.elements.lib import image_utils  # noqa: E402
from streamlit.elements.lib.layout_utils import LayoutConfig  # noqa: E402
from streamlit.runtime.memory_media_file_storage import _calculate_file_id  # noqa: E402

from benchmarks._plotly_overview import overview_figure  # noqa: E402
from benchmarks._util import machine, median_cpu_ms  # noqa: E402
from tests.app_process import cpu_seconds, start_app, stop_app  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from vizlib import feature_maps as fm  # noqa: E402
from vizlib import images, models  # noqa: E402
from vizlib.figures import feature_maps as ffm  # noqa: E402

K = 8




def _plotly_chart_marshal(fig) -> str:
    """What ``st.plotly_chart`` does with a figure on every rerun (Streamlit 1.5x: validate, then serialize)."""
    spec = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
    return plotly.io.to_json(spec, validate=False)


def _image_marshal(png: bytes) -> str:
    """What ``st.image(png, width="content")`` does with PNG bytes on every rerun, less the media manager's dict."""
    image_utils.image_to_url(png, LayoutConfig(width="content"), False, "RGB", "PNG", "overview")
    return _calculate_file_id(png, "image/png")  # the media file's id


def _row(name: str, before: float, now: float, unit: str = "CPU ms") -> None:
    print(f"| {name}, {unit} | {before:.1f} | {now:.1f} | {now / before:.3f} |")


PLOT = """async (spec) => { const t = performance.now(); const f = JSON.parse(spec);
  const d = document.createElement('div'); d.style.width = '1200px'; document.body.appendChild(d);
  await Plotly.newPlot(d, f.data, f.layout);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const ms = performance.now() - t; Plotly.purge(d); d.remove(); return ms; }"""

IMG = """async (url) => { const t = performance.now(); const img = document.createElement('img');
  const loaded = new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; });
  img.src = url; document.body.appendChild(img); await loaded; await img.decode();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const ms = performance.now() - t; img.remove(); return ms; }"""


def _browser(specs: dict[str, str], png: bytes, rounds: int) -> dict[str, tuple[float, float]]:
    """``{name: (median wall ms, median main-thread task ms)}`` for each plotly spec and for ``<img>`` of ``png``."""
    from playwright.sync_api import sync_playwright

    html = "<!doctype html><html><body><script>" + get_plotlyjs() + "</script></body></html>"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("http://bench.local/", lambda route: route.fulfill(body=html, content_type="text/html"))
        page.route("http://bench.local/*.png", lambda route: route.fulfill(body=png, content_type="image/png"))
        page.goto("http://bench.local/")
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def task_s() -> float:
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            return metrics["TaskDuration"]

        def measure(script: str, arg: str) -> tuple[float, float]:
            before = task_s()
            wall = page.evaluate(script, arg)
            return wall, 1e3 * (task_s() - before)

        jobs = {**{name: (PLOT, spec) for name, spec in specs.items()}, "img": (IMG, None)}
        out: dict[str, list[tuple[float, float]]] = {name: [] for name in jobs}
        for i in range(rounds + 1):  # interleaved; the first round warms up
            for name, (script, arg) in jobs.items():
                got = measure(script, arg if arg is not None else f"http://bench.local/overview-{i}.png")
                if i:
                    out[name].append(got)
        browser.close()
    return {name: (statistics.median(w for w, _ in v), statistics.median(t for _, t in v)) for name, v in out.items()}


_OLD_DONE = """() => document.querySelector("[data-stale='true']") === null
    && document.querySelectorAll(".st-key-fm_overview .js-plotly-plot .imagelayer image").length >= 21
    && ["fm_heatmap", "fm_overlay", "fm_histogram", "fm_scores"]
        .every(key => document.querySelector(`.st-key-${key} .js-plotly-plot`) !== null)
    && document.querySelector("[data-testid='stDataFrame']") !== null"""


def _tree(ref: str, folder: Path) -> Path:
    """The app as it was at git ``ref`` (git archive into ``folder``; weights linked, they are not in git)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    if (ROOT / "checkpoints").is_dir() and not (folder / "checkpoints").exists():
        (folder / "checkpoints").symlink_to(ROOT / "checkpoints")
    return folder


def _page_visits(ref: str, visits: int) -> None:
    """Section 5: the Feature maps page of ``ref`` and of this tree, visits alternating."""
    from playwright.sync_api import sync_playwright

    from tests.load_sessions import _FM_DONE, _MONTAGE

    with tempfile.TemporaryDirectory() as tmp:
        old_root = _tree(ref, Path(tmp) / "old")
        servers = {"before": start_app(Path(tmp) / "old.log", cwd=old_root), "now": start_app(Path(tmp) / "new.log")}
        done = {"before": _OLD_DONE, "now": _FM_DONE}
        got: dict[str, list[tuple[float, float, float]]] = {k: [] for k in servers}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                for i in range(visits + 1):  # the first visit of each warms its server up
                    for name, (proc, url) in servers.items():
                        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                        page.goto(url, wait_until="domcontentloaded")
                        page.get_by_role("heading", name="CNN Lens").wait_for(timeout=180_000)
                        server0, browser0 = cpu_seconds(proc.pid)
                        page.goto(url + "/feature-maps", wait_until="domcontentloaded")
                        page.wait_for_function(_MONTAGE, timeout=180_000, polling=50)
                        start = time.perf_counter()
                        page.wait_for_function(done[name], timeout=180_000, polling=50)
                        wall = time.perf_counter() - start
                        server1, browser1 = cpu_seconds(proc.pid)
                        page.context.close()
                        if i:
                            got[name].append((wall, browser1 - browser0, server1 - server0))
                browser.close()
        finally:
            for proc, _ in servers.values():
                stop_app(proc)
    print(f"\n| whole Feature maps page, {ref} against this tree, {visits} visits each (medians) | before | now | "
          "now / before |")
    print("|---|---:|---:|---:|")
    for i, what in enumerate(("montage to fully drawn, wall s", "browser CPU per visit, s",
                              "server CPU per visit (home page to fully drawn), s")):
        before, now = (statistics.median(v[i] for v in got[k]) for k in ("before", "now"))
        print(f"| {what} | {before:.2f} | {now:.2f} | {now / before:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each measurement (medians)")
    parser.add_argument("--page", metavar="REF", help="also the whole page: the app at git REF against this tree")
    parser.add_argument("--visits", type=int, default=5, help="visits per server with --page")
    parser.add_argument("--page-only", action="store_true", help="with --page: only the whole page")
    args = parser.parse_args()
    if args.page and args.page_only:
        print(f"# bench_feature_maps_page --page · {datetime.date.today()} · {machine()} · load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        _page_visits(args.page, args.visits)
        return
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    photo = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    acts = fm.compute_activations(loaded, photo)
    rows = fm.network_overview(acts, k=K)
    print(f"# bench_feature_maps_page · {datetime.date.today()} · {machine()} · load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"# {args.rounds} rounds each; {loaded.name}, {len(rows)} stages x {K} channels\n")
    print("| cost | plotly figure (before) | picture (now) | now / before |")
    print("|---|---:|---:|---:|")

    figure = overview_figure(rows)
    spec = figure.to_json()
    picture = fm.overview_picture(rows)
    png = fm.encode_png(picture.image, filters=False)
    old_once = median_cpu_ms(lambda: overview_figure(fm.network_overview(acts, k=K)).to_json(), args.rounds, warmup=1)
    new_once = median_cpu_ms(lambda: fm.encode_png(fm.overview_picture(fm.network_overview(acts, k=K)).image,
                                             filters=False), args.rounds)
    _row("overview once per image: rank + build + serialize / encode", old_once, new_once)
    _row("overview on every rerun: st.plotly_chart / st.image", median_cpu_ms(lambda: _plotly_chart_marshal(figure),
         args.rounds, warmup=1), median_cpu_ms(lambda: _image_marshal(png), args.rounds, warmup=1))
    print(f"| overview sent to the browser, KB | {len(spec) / 1e3:.0f} | {len(png) / 1e3:.0f} | "
          f"{len(png) / len(spec):.3f} |")
    h, w = picture.image.shape[:2]
    filtered = median_cpu_ms(lambda: fm.encode_png(picture.image), args.rounds, warmup=1)
    plain = median_cpu_ms(lambda: fm.encode_png(picture.image, filters=False), args.rounds, warmup=1)
    _row(f"PNG of the {w}x{h} overview: row filters / none", filtered, plain)
    montage = fm.montage(acts[fm.default_layer(acts.layers)]).image
    filtered = median_cpu_ms(lambda: fm.encode_png(montage), args.rounds, warmup=1)
    plain = median_cpu_ms(lambda: fm.encode_png(montage, filters=False), args.rounds, warmup=1)
    sizes = len(fm.encode_png(montage)) / 1e3, len(fm.encode_png(montage, filters=False)) / 1e3
    _row(f"PNG of the default layer's montage ({sizes[0]:.0f} / {sizes[1]:.0f} KB): row filters / none",
         filtered, plain)

    values = acts[fm.default_layer(acts.layers)]
    channel = int(fm.rank_channels(values)[0])
    zmin, zmax = float(values.min()), float(values.max())
    channel_figs = {
        "heatmap": lambda: ffm.channel_heatmap(values[channel], zmin=zmin, zmax=zmax, title="t"),
        "overlay": lambda: ffm.channel_overlay(photo, values[channel], opacity=0.6, zmin=zmin, zmax=zmax),
        "histogram": lambda: ffm.histogram_figure(fm.channel_stats(values, channel), title="h"),
    }
    specs = {"overview": spec, **{name: build().to_json() for name, build in channel_figs.items()}}
    browser = _browser(specs, png, args.rounds)
    (old_wall, old_task), (new_wall, new_task) = browser["overview"], browser["img"]
    _row("overview in Chromium until painted: plotly.js / <img>", old_wall, new_wall, "wall ms")
    _row("overview in Chromium: main-thread task time", old_task, new_task, "ms")

    print("\n| channel section (stays plotly) | build, CPU ms | every rerun, CPU ms | JSON, KB | Chromium, wall ms |")
    print("|---|---:|---:|---:|---:|")
    for name, build in channel_figs.items():
        fig = build()
        print(f"| {name} | {median_cpu_ms(build, args.rounds, warmup=1):.1f} | "
              f"{median_cpu_ms(lambda fig=fig: _plotly_chart_marshal(fig), args.rounds, warmup=1):.1f} | "
              f"{len(specs[name]) / 1e3:.0f} | {browser[name][0]:.0f} |")
    if args.page:
        _page_visits(args.page, args.visits)


if __name__ == "__main__":
    main()
