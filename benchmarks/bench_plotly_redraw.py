"""What plotly.js's second draw of each chart costs, as Streamlit's chart element hands it over.

Streamlit's ``st.plotly_chart`` element (1.67) draws a figure as soon as it mounts, then gives ``Plotly.react`` its
own re-themed copy (JSON out and back in: new arrays) with the width its frame measured, and plotly.js draws the
whole figure again (``bench_browser_pages.py`` counts two full draws per chart on the Feature maps and the Class
activation maps pages). This times both draws of each of those pages' figures on a bare page in headless
Chromium: ``Plotly.newPlot``, then ``Plotly.react`` with a JSON copy of the drawn figure and an explicit width
(a column's fractional width, as the element measures it). Warm (after ``--warmup`` draws), medians of
``--rounds``; the figures are built by vizlib for the gallery's first photo, the default model and layer.

Run: ``.venv/bin/python benchmarks/bench_plotly_redraw.py [--rounds 7]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plotly.offline import get_plotlyjs  # noqa: E402

from benchmarks._util import machine  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from vizlib import cam, images, models  # noqa: E402
from vizlib import feature_maps as fm  # noqa: E402
from vizlib.figures import cam as fcam  # noqa: E402
from vizlib.figures import feature_maps as ffm  # noqa: E402

_DRAW_TWICE = """async ([spec, width]) => {
    const f = JSON.parse(spec);
    const gd = document.getElementById("d");
    gd.style.width = width + "px";
    Plotly.purge(gd);
    const t0 = performance.now();
    await Plotly.newPlot(gd, f.data, f.layout);
    const t1 = performance.now();
    const copy = JSON.parse(JSON.stringify({data: gd.data, layout: gd.layout}));
    copy.layout.width = width + 0.00025;  // the frame's measured width, against plotly's autosized one
    const t2 = performance.now();
    await Plotly.react(gd, copy.data, copy.layout);
    return [t1 - t0, performance.now() - t2];
}"""


def _figures() -> dict[str, tuple[object, int]]:
    """The two pages' figures on the gallery's first photo, each with the width it is drawn at (1280 px window)."""
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    photo = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    target = int(models.classify(loaded, photo, 1).indices[0])
    maps = cam.compute(loaded, photo, target, ("gradcam", "gradcam++", "layercam", "saliency"),
                       cam.default_layer(loaded))
    acts = fm.compute_activations(loaded, photo)
    values = acts[fm.default_layer(acts.layers)]
    channel = int(fm.rank_channels(values, "mean")[0])
    return {
        "CAM methods, 4 panels": (fcam.methods_figure(photo, maps, titles=cam.TITLES), 820),
        "CAM close-up": (fcam.overlay_figure(photo, maps["gradcam"], title="Grad-CAM", label="Grad-CAM"), 820),
        "Feature maps channel heatmap": (ffm.channel_heatmap(values[channel], title="channel"), 402),
        "Feature maps channel overlay": (ffm.channel_overlay(photo, values[channel]), 402),
        "Feature maps histogram": (ffm.histogram_figure(fm.channel_stats(values, channel), title="histogram"), 820),
        "Feature maps strongest channels": (ffm.scores_figure(fm.top_channels(values, 8, "mean")), 265),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    figures = _figures()
    load = os.getloadavg()
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · load average "
          f"{load[0]:.1f} · headless Chromium, warm, medians of {args.rounds}")
    print("| figure (drawn width) | first draw ms | second draw ms | second / first |")
    print("|---|---:|---:|---:|")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_content("<div id=d></div><script>" + get_plotlyjs() + "</script>")
        for name, (fig, width) in figures.items():
            spec = fig.to_json()
            for _ in range(args.warmup):
                page.evaluate(_DRAW_TWICE, [spec, width])
            runs = [page.evaluate(_DRAW_TWICE, [spec, width]) for _ in range(args.rounds)]
            first, second = (statistics.median(r[i] for r in runs) for i in (0, 1))
            print(f"| {name} ({width} px) | {first:.0f} | {second:.0f} | {second / first:.2f} |")
        browser.close()


if __name__ == "__main__":
    main()
