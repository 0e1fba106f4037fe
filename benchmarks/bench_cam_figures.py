"""The Class activation maps page's three figures, as built before issue 15 and now, side by side.

For each figure the page draws on a student's first visit (the four default methods side by side, the close-up
over the image, the two-class "why A and not B"), built from real maps of the default model on the gallery's
photos, this prints the before/now medians and ratios of

* the server's CPU to build the figure (once per content: the page caches it), PNG encoding included (the
  data-URI cache is emptied before every build),
* the server's CPU to turn it into what ``st.plotly_chart`` sends, on every rerun (``to_dict`` and ``to_json``),
* the JSON's size,
* headless Chromium drawing it with plotly.js: the wall time of ``JSON.parse`` + ``Plotly.newPlot`` + two
  animation frames, and the CPU seconds of the whole browser (every Chromium process and Playwright's driver,
  from /proc) per drawing, 150 ms of settling included (plotly's redraw for a colour bar's margin comes
  later), rounds interleaved.

Before: ``benchmarks/_cam_figures_before.py`` (``make_subplots`` and per-panel axis updates; per panel the photo
as a PNG and the map as a heatmap at its full display grid that plotly.js colours, blends and re-encodes in
JavaScript; margins expanded for the colour bar, which in the app drew every panel twice). Now:
:mod:`vizlib.figures.cam` (one plain layout; per panel one PNG of the photo with the map blended over it, and a
transparent heatmap for hover, sampled every ``HOVER_STEP``-th drawn pixel for a smooth map; fixed margins).
Last, screenshots of both drawings of the methods figure, laid out with the same margins, are compared: the
mean and the 99th percentile of the absolute difference of their pixels (0-255).

Run: ``.venv/bin/python benchmarks/bench_cam_figures.py [--rounds 7]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import plotly.io as pio  # noqa: E402
import plotly.tools  # noqa: E402
from plotly.offline import get_plotlyjs  # noqa: E402

from benchmarks import _cam_figures_before as before  # noqa: E402
from benchmarks._util import machine, median_cpu_ms  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from vizlib import cam, images, models  # noqa: E402
from vizlib.figures import cam as fcam  # noqa: E402
from vizlib.figures import common  # noqa: E402

DEFAULT_METHODS = ("gradcam", "gradcam++", "layercam", "saliency")
RENDER = """async (spec) => { const t = performance.now(); const f = JSON.parse(spec);
  await Plotly.newPlot('d', f.data, f.layout);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const ms = performance.now() - t; await new Promise(r => setTimeout(r, 150)); Plotly.purge('d'); return ms; }"""
SHOW = """async (spec) => { const f = JSON.parse(spec); await Plotly.newPlot('d', f.data, f.layout);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); }"""


def _children_cpu() -> float:
    """CPU seconds of every live descendant of this process (Chromium, Playwright's driver)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    me, total = os.getpid(), 0.0
    for pid, seconds in cpu.items():
        p = parent.get(pid, 1)
        while p > 1 and p != me:
            p = parent.get(p, 1)
        total += seconds if p == me else 0.0
    return total


def _sent(fig) -> str:
    """What ``st.plotly_chart`` (Streamlit 1.67) does with a figure on every rerun."""
    return pio.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), validate=False)


def _figures(loaded) -> dict[str, dict[str, callable]]:
    photo = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    target = models.classify(loaded, photo, 1).indices[0]
    maps = cam.compute(loaded, photo, target, DEFAULT_METHODS)
    bee = images.fit_image(images.load_gallery_image("two_objects"), 1024)
    a, b = models.classify(loaded, bee, 2).indices
    pair = {"A": cam.compute(loaded, bee, a, ("gradcam",))["gradcam"],
            "B": cam.compute(loaded, bee, b, ("gradcam",))["gradcam"]}
    figures = {}
    for name, module in (("before", before), ("now", fcam)):
        figures[name] = {
            f"methods ({photo.shape[1]}x{photo.shape[0]}, 4 maps)":
                lambda m=module: m.methods_figure(photo, maps, titles=cam.TITLES),
            "close-up (Grad-CAM)": lambda m=module: m.overlay_figure(photo, maps["gradcam"], title="Grad-CAM"),
            "close-up (Saliency)": lambda m=module: m.overlay_figure(photo, maps["saliency"], title="Saliency"),
            f"why A and not B ({bee.shape[1]}x{bee.shape[0]}, 2 maps)":
                lambda m=module: m.methods_figure(bee, pair, columns=2),
        }
    return figures, dict(maps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each measurement (medians)")
    args = parser.parse_args()
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    figures, maps = _figures(loaded)
    print(f"# bench_cam_figures · {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · "
          f"load average {os.getloadavg()[0]:.2f} · {args.rounds} rounds")
    built = {name: {k: build() for k, build in group.items()} for name, group in figures.items()}
    specs = {name: {k: _sent(f) for k, f in group.items()} for name, group in built.items()}
    rows = {}
    for key in figures["now"]:
        cost = {}
        for name in ("before", "now"):
            cost[name] = (median_cpu_ms(lambda b=figures[name][key]: (common._URIS.clear(), b()), args.rounds,
                                        warmup=1),
                          median_cpu_ms(lambda f=built[name][key]: _sent(f), args.rounds, warmup=1),
                          len(specs[name][key]))
        rows[key] = cost

    from playwright.sync_api import sync_playwright

    wall = {key: {"before": [], "now": []} for key in rows}
    cpu = {key: {"before": [], "now": []} for key in rows}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_content("<div id=d style='width:1100px'></div><script>" + get_plotlyjs() + "</script>")
        for key in rows:  # warm-up
            for name in ("before", "now"):
                page.evaluate(RENDER, specs[name][key])
        for _ in range(args.rounds):
            for key in rows:
                for name in ("before", "now"):
                    start = _children_cpu()
                    wall[key][name].append(page.evaluate(RENDER, specs[name][key]))
                    cpu[key][name].append(1e3 * (_children_cpu() - start))
        shots = {}
        key = next(iter(rows))
        for name in ("before", "now"):  # the same margins, so that the panels fall on the same pixels
            spec = json.loads(specs[name][key])
            spec["layout"]["margin"] = json.loads(specs["now"][key])["layout"]["margin"]
            page.evaluate(SHOW, json.dumps(spec))
            shots[name] = cv2.imdecode(np.frombuffer(page.locator("#d").screenshot(), np.uint8), cv2.IMREAD_COLOR)
        browser.close()

    print("\n| figure | build CPU ms before / now | each rerun: to JSON CPU ms before / now | JSON KB before / now "
          "| browser: draw ms before / now | browser CPU ms per draw before / now |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, cost in rows.items():
        (b_build, b_json, b_size), (n_build, n_json, n_size) = cost["before"], cost["now"]
        bw, nw = statistics.median(wall[key]["before"]), statistics.median(wall[key]["now"])
        bc, nc = statistics.median(cpu[key]["before"]), statistics.median(cpu[key]["now"])
        print(f"| {key} | {b_build:.1f} / {n_build:.1f} ({n_build / b_build:.2f}x) | {b_json:.1f} / {n_json:.1f} "
              f"({n_json / b_json:.2f}x) | {b_size / 1e3:.0f} / {n_size / 1e3:.0f} ({n_size / b_size:.3f}x) | "
              f"{bw:.0f} / {nw:.0f} ({nw / bw:.2f}x) | {bc:.0f} / {nc:.0f} ({nc / max(bc, 1e-9):.2f}x) |")
    diff = np.abs(shots["before"].astype(int) - shots["now"].astype(int))
    stride = built["now"][next(iter(rows))].data[0].dx
    grids = {m: fcam.hover_grid(v, stride) for m, v in maps.items()}
    print(f"\nScreenshots of the methods figure, before against now ({diff.shape[1]}x{diff.shape[0]} px): mean "
          f"absolute difference {diff.mean():.2f}, 99th percentile {np.percentile(diff, 99):.0f} (of 255).")
    print(f"Hover samples per map now (rows x columns; drawn every {stride} px): " + ", ".join(
        f"{cam.TITLES[m]} {len(r)}x{len(c)}{' (smooth)' if fcam.is_smooth(maps[m]) else ''}"
        for m, (r, c) in grids.items()))


if __name__ == "__main__":
    main()
