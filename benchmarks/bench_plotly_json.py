"""What ``st.plotly_chart`` pays to turn each page's figures into JSON: plotly's ``json`` engine against ``orjson``.

Streamlit calls ``plotly.io.to_json`` for every chart on every run of a page (a new image, every rerun after a
widget moves, a student coming back). Plotly's ``"auto"`` engine uses ``orjson`` when it is installed
(requirements.txt). For the charts of the path a student takes (Welcome's top-5; Feature maps' channel heat map,
channel over the photo, histogram and top-k scores; the CAM page's methods figure, its close-up and "why A and not
B"), on one photo and one process, it times ``plotly.io.to_json(figure, validate=False)`` with each engine, rounds
interleaved, and checks that both give the same JSON.

Run: ``.venv/bin/python benchmarks/bench_plotly_json.py [--rounds 30]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import plotly.io as pio  # noqa: E402
import torch  # noqa: E402

from benchmarks._util import machine  # noqa: E402
from benchmarks.bench_load import DEFAULT_CAM_METHODS as METHODS  # noqa: E402
from vizlib import cam, images, models  # noqa: E402
from vizlib import feature_maps as fm  # noqa: E402
from vizlib.figures import cam as fcam  # noqa: E402
from vizlib.figures import feature_maps as ffm  # noqa: E402
from vizlib.figures.common import topk_bar  # noqa: E402


def _figures(photo: str) -> dict:
    loaded = models.load_model("efficientnet_lite0")
    image = images.fit_image(images.load_gallery_image(photo), 1024)
    prediction = models.classify(loaded, image, 5)
    acts = fm.compute_activations(loaded, image)
    layer = acts.info(fm.default_layer(acts.layers))
    values = acts[layer.name]
    channel = int(fm.rank_channels(values, "mean")[0])
    stats = fm.channel_stats(values, channel)
    top = fm.top_channels(values, 8, "mean")
    target, other = prediction.indices[0], prediction.indices[1]
    maps = cam.compute(loaded, image, target, METHODS)
    pair = {"A": maps["gradcam"], "B": cam.compute(loaded, image, other, ("gradcam",))["gradcam"]}
    figures = {
        "Welcome: top-5": topk_bar(prediction.top),
        "FM: channel heat map": ffm.channel_heatmap(values[channel]),
        "FM: channel over the photo": ffm.channel_overlay(image, values[channel]),
        "FM: top-k scores": ffm.scores_figure(top, by="mean"),
        "CAM: methods": fcam.methods_figure(image, maps, titles=cam.TITLES),
        "CAM: close-up": fcam.overlay_figure(image, maps["gradcam"], label="Grad-CAM", title="Grad-CAM"),
        "CAM: why A and not B": fcam.methods_figure(image, pair, columns=2),
        "FM: histogram": ffm.histogram_figure(stats),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--photo", default=images.gallery()[0].key, help="a gallery key")
    args = parser.parse_args()
    torch.set_num_threads(1)
    figures = _figures(args.photo)
    engine = pio.json.config.default_engine
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · photo {args.photo} · "
          f"plotly's engine setting {engine!r} · {args.rounds} rounds, medians")
    print("| figure | JSON KB | json engine ms | orjson ms | json / orjson | same JSON |")
    print("|---|---:|---:|---:|---:|---|")
    totals = {"json": 0.0, "orjson": 0.0}
    for name, fig in figures.items():
        times: dict[str, list[float]] = {"json": [], "orjson": []}
        out = {}
        for _ in range(args.rounds):
            for eng in times:
                start = time.process_time()
                out[eng] = pio.to_json(fig, validate=False, engine=eng)
                times[eng].append(time.process_time() - start)
        a, b = (statistics.median(times[e]) * 1000 for e in ("json", "orjson"))
        totals["json"] += a
        totals["orjson"] += b
        same = json.loads(out["json"]) == json.loads(out["orjson"])
        print(f"| {name} | {len(out['json']) / 1024:.0f} | {a:.2f} | {b:.2f} | {a / b:.2f} | "
              f"{'yes' if same else 'NO'}{' (bytes too)' if out['json'] == out['orjson'] else ''} |")
    print(f"| **all, one student's first visit** | | {totals['json']:.1f} | {totals['orjson']:.1f} | "
          f"{totals['json'] / totals['orjson']:.2f} | |")


if __name__ == "__main__":
    main()
