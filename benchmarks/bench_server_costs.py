"""Benchmark three per-request costs the load profile found, each against the way it was done before.

One process, side by side, medians of CPU time (or of in-browser render time) and their ratio:

1. A full garbage collection (what Streamlit's ``runner.postScriptGC`` ran after every script run) with
   streamlit, torch, plotly and the default model loaded: as it was, and after ``gc.freeze()`` (what
   ``ui.shared.shared_model`` does after loading a model).
2. The Feature maps page's network-overview figure (EfficientNet-Lite0, 21 stages): built with
   ``make_subplots`` and one ``update_xaxes``/``update_yaxes`` per stage (before), and as
   ``benchmarks/_plotly_overview.py`` builds it (the page's figure until the overview became one picture:
   ``benchmarks/bench_feature_maps_page.py`` compares the two).
3. The CAM page's four-panel methods figure rendered by plotly.js in headless Chromium: photos as ``z``
   pixel arrays (before) and as PNG sources (:func:`vizlib.figures.common.picture_trace`, now), in the figure
   as it was then (``benchmarks/_cam_figures_before.py``; ``bench_cam_figures.py`` compares it with today's).

Run: ``.venv/bin/python benchmarks/bench_server_costs.py [--rounds 7]``
"""

from __future__ import annotations

import argparse
import datetime
import gc
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit  # noqa: E402, F401  (loaded, as in the server)
from plotly.offline import get_plotlyjs  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from benchmarks import _cam_figures_before as cam_figures_before  # noqa: E402
from benchmarks._plotly_overview import OVERVIEW_TILE, overview_figure  # noqa: E402
from benchmarks._plotly_overview import row_picture as _row_picture  # noqa: E402
from benchmarks._util import machine, median_cpu_ms  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from vizlib import cam, images, models  # noqa: E402
from vizlib import feature_maps as fm  # noqa: E402
from vizlib.figures.common import png_data_uri  # noqa: E402


def _overview_before(rows, colormap: str = "viridis", tile: int = OVERVIEW_TILE) -> go.Figure:
    """The overview as it was built before: make_subplots, then per-stage axis updates."""
    titles = [f"{r.stage} · {r.layer} · {' × '.join(map(str, r.output_shape))}" for r in rows]
    row_px, gap_px = tile + 24, 56
    total = len(rows) * row_px + (len(rows) - 1) * gap_px
    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=titles, vertical_spacing=gap_px / total)
    for i, row in enumerate(rows, start=1):
        picture, tile_w = _row_picture(row, colormap, tile)
        fig.add_trace(go.Image(source=png_data_uri(picture), hoverinfo="skip"), row=i, col=1)
        centres = [(tile_w + 2) * j + tile_w / 2 for j in range(len(row.channels))]
        fig.update_xaxes(tickvals=centres, ticktext=[f"#{c}" for c in row.channels], showgrid=False,
                         tickfont_size=10, ticklen=0, row=i, col=1)
        fig.update_yaxes(showticklabels=False, showgrid=False, row=i, col=1)
    fig.update_annotations(font_size=12, xanchor="left", x=0)
    fig.update_layout(height=total + 50, margin={"l": 10, "r": 10, "t": 30, "b": 20}, showlegend=False)
    return fig


def _with_pixel_arrays(fig: go.Figure, image: np.ndarray) -> go.Figure:
    """The same figure with every photo as a ``z`` pixel array (how it was sent before)."""
    out = go.Figure(fig)
    for trace in out.data:
        if trace.type == "image":
            stride = int(trace.dx)
            trace.source = None
            trace.z = np.ascontiguousarray(image[::stride, ::stride])
    return out


RENDER = """async (spec) => { const f = JSON.parse(spec); const t = performance.now();
  await Plotly.newPlot('d', f.data, f.layout);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const ms = performance.now() - t; Plotly.purge('d'); return ms; }"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each measurement (medians)")
    args = parser.parse_args()
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    photo = images.fit_image(images.load_gallery_image(images.gallery()[1].key), 1024)
    print(f"# bench_server_costs · {datetime.date.today()} · {machine()}")
    print(f"# {args.rounds} rounds each; photo {photo.shape[1]}x{photo.shape[0]}\n")
    print("| cost | before | now | now / before |")
    print("|---|---:|---:|---:|")

    gc.unfreeze()
    full = median_cpu_ms(lambda: gc.collect(2), args.rounds)
    tracked = len(gc.get_objects())
    gc.freeze()
    frozen = median_cpu_ms(lambda: gc.collect(2), args.rounds)
    gc.unfreeze()
    print(f"| full garbage collection ({tracked:,} objects), CPU ms | {full:.1f} | {frozen:.3f} (frozen) | "
          f"{frozen / full:.4f} |")

    rows = fm.network_overview(fm.compute_activations(loaded, photo), k=8, by="mean")
    _overview_before(rows), overview_figure(rows)  # first calls fill plotly's validator caches
    before = median_cpu_ms(lambda: _overview_before(rows), args.rounds)
    now = median_cpu_ms(lambda: overview_figure(rows), args.rounds)
    print(f"| network-overview figure ({len(rows)} stages), CPU ms | {before:.0f} | {now:.0f} | {now / before:.2f} |")

    target = models.classify(loaded, photo, 1).indices[0]
    maps = cam.compute(loaded, photo, target, ("gradcam", "gradcam++", "layercam", "saliency"))
    # the figure as it was when photos moved to PNG sources (photo + heatmap per panel); since then each panel
    # is one blended PNG with a transparent heatmap: benchmarks/bench_cam_figures.py compares those
    figure = cam_figures_before.methods_figure(photo, maps, titles=cam.TITLES)
    specs = {"before": _with_pixel_arrays(figure, photo).to_json(), "now": figure.to_json()}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_content("<div id=d style='width:1200px;height:600px'></div><script>" + get_plotlyjs() + "</script>")
        page.evaluate(RENDER, specs["now"])  # warm-up
        ms = {k: [] for k in specs}
        for _ in range(args.rounds):  # interleaved
            for key, spec in specs.items():
                ms[key].append(page.evaluate(RENDER, spec))
        browser.close()
    before, now = statistics.median(ms["before"]), statistics.median(ms["now"])
    sizes = {k: len(v) / 1e6 for k, v in specs.items()}
    print(f"| CAM methods figure in Chromium (JSON {sizes['before']:.2f} / {sizes['now']:.2f} MB), render ms | "
          f"{before:.0f} | {now:.0f} | {now / before:.2f} |")


if __name__ == "__main__":
    main()
