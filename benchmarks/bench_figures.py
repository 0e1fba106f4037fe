"""Figures built through plotly's validators against the same figures from their specs (``spec_figure``).

For each figure of the Feature maps and Welcome pages it times, in one process and one thread, rounds
interleaved: building the figure, and what ``st.plotly_chart`` then does with it (plotly's
``return_figure_from_figure_or_data`` and ``plotly.io.to_json``). "validated" is the way the figures were built
before (``go.Heatmap(...)``, ``go.Figure``, ``update_layout`` / ``update_xaxes`` / ``update_yaxes``, kept here);
"spec" is ``vizlib.figures`` now. Both send the same JSON (checked here, and for every figure in the tests).

Run: ``.venv/bin/python benchmarks/bench_figures.py [--rounds 30]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import plotly.io as pio  # noqa: E402
import plotly.tools  # noqa: E402

from benchmarks._util import machine  # noqa: E402
from vizlib import feature_maps as fm  # noqa: E402
from vizlib import images  # noqa: E402
from vizlib.figures import feature_maps as ffm  # noqa: E402
from vizlib.figures.common import png_data_uri, topk_bar  # noqa: E402

_HOVER = "x=%{x}, y=%{y}<br>value=%{z:.4g}<extra></extra>"


def _square_axes(fig: go.Figure) -> None:
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showgrid=False)
    fig.update_xaxes(constrain="domain", showgrid=False)


def old_heatmap(values, zmin, zmax, title):
    fig = go.Figure(go.Heatmap(z=np.asarray(values, dtype=np.float32), colorscale="Viridis", zmin=zmin, zmax=zmax,
                               hovertemplate=_HOVER, colorbar={"thickness": 12}))
    _square_axes(fig)
    fig.update_layout(title=title, height=460, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def old_overlay(image, values, opacity, zmin, zmax):
    z = np.asarray(values, dtype=np.float32)
    big_h, big_w = image.shape[:2]
    stride = max(1, math.ceil(max(big_h, big_w) / 384))
    picture = go.Image(source=png_data_uri(np.ascontiguousarray(image[::stride, ::stride])), x0=0, y0=0, dx=stride,
                       dy=stride, hoverinfo="skip")
    cell_w, cell_h = big_w / z.shape[1], big_h / z.shape[0]
    heat = go.Heatmap(
        z=z, x=(np.arange(z.shape[1]) + 0.5) * cell_w - 0.5, y=(np.arange(z.shape[0]) + 0.5) * cell_h - 0.5,
        colorscale="Viridis", zmin=zmin, zmax=zmax, opacity=opacity,
        customdata=np.stack(np.meshgrid(np.arange(z.shape[1]), np.arange(z.shape[0])), axis=-1),
        hovertemplate="map x=%{customdata[0]}, y=%{customdata[1]}<br>value=%{z:.4g}<extra></extra>",
        colorbar={"thickness": 12},
    )
    fig = go.Figure([picture, heat])
    _square_axes(fig)
    fig.update_xaxes(range=[-0.5, big_w - 0.5], showticklabels=False)
    fig.update_yaxes(range=[big_h - 0.5, -0.5], showticklabels=False)
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def old_histogram(stats, title):
    edges = np.asarray(stats.edges, dtype=np.float64)
    fig = go.Figure(go.Bar(
        x=(edges[:-1] + edges[1:]) / 2, y=stats.counts, width=np.diff(edges),
        marker_color=np.where(edges[1:] <= 0, "#D55E00", "#0072B2").tolist(),
        customdata=np.stack([edges[:-1], edges[1:]], axis=-1),
        hovertemplate="%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y} values<extra></extra>",
    ))
    fig.update_layout(title=title, height=300, bargap=0, xaxis_title="activation", yaxis_title="count",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def old_scores(top, by):
    labels = [f"channel {c}" for c, _ in top][::-1]
    fig = go.Figure(go.Bar(x=[float(s) for _, s in top][::-1], y=labels, orientation="h", marker_color="#0072B2",
                           hovertemplate="%{y}: " + by + " %{x:.4g}<extra></extra>"))
    fig.update_layout(height=60 + 24 * len(labels), xaxis_title=f"spatial {by}", yaxis={"automargin": True},
                      margin={"l": 10, "r": 10, "t": 10, "b": 40})
    return fig


def old_topk(top):
    names = [n for n, _ in top][::-1]
    probs = [float(p) for _, p in top][::-1]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", text=[f"{p:.1%}" for p in probs],
                           textposition="outside", cliponaxis=False, marker_color="#0072B2",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(xaxis={"range": [0, 1.12], "tickformat": ".0%", "title": "probability",
                                         "tickvals": [0, 0.25, 0.5, 0.75, 1]},
                      yaxis={"automargin": True}, height=60 + 42 * len(names),
                      margin={"l": 10, "r": 10, "t": 10, "b": 40})
    return fig


def _streamlit_side(fig) -> str:
    """What st.plotly_chart does with a figure before it is sent."""
    return pio.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), validate=False)


def _rounded(value):
    """JSON with floats to 9 digits (plotly's own colour stops differ from ours in the 16th digit)."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _ms(fn) -> float:
    start = time.thread_time()
    fn()
    return (time.thread_time() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    photo = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    values = np.random.default_rng(0).gamma(1.0, 1.0, size=(32, 112, 112)).astype(np.float32)
    stats = fm.channel_stats(values, 3)
    top = fm.top_channels(values, 8, "mean")
    classes = [("goldfish", 0.81), ("tench", 0.07), ("koi", 0.05), ("axolotl", 0.01), ("jellyfish", 0.004)]
    pairs = {
        "channel heatmap": (lambda: old_heatmap(values[3], 0.0, 9.0, "t"),
                            lambda: ffm.channel_heatmap(values[3], zmin=0.0, zmax=9.0, title="t")),
        "channel overlay": (lambda: old_overlay(photo, values[3], 0.6, 0.0, 9.0),
                            lambda: ffm.channel_overlay(photo, values[3], opacity=0.6, zmin=0.0, zmax=9.0)),
        "histogram": (lambda: old_histogram(stats, "h"), lambda: ffm.histogram_figure(stats, title="h")),
        "strongest channels": (lambda: old_scores(top, "mean"), lambda: ffm.scores_figure(top, by="mean")),
        "top-5 (Welcome)": (lambda: old_topk(classes), lambda: topk_bar(classes)),
    }
    for name, (old, new) in pairs.items():  # the same JSON both ways
        assert _rounded(json.loads(_streamlit_side(old()))) == _rounded(json.loads(_streamlit_side(new()))), name
    times: dict[str, dict[str, list[float]]] = {n: {"validated": [], "spec": []} for n in pairs}
    for _ in range(args.rounds):
        for name, (old, new) in pairs.items():
            for way, build in (("validated", old), ("spec", new)):
                times[name][way].append(_ms(lambda build=build: _streamlit_side(build())))
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · {args.rounds} rounds, "
          "thread CPU, build + st.plotly_chart's conversion")
    print("| figure | validated ms (median) | spec ms (median) | validated / spec [IQR of paired ratios] |")
    print("|---|---:|---:|---:|")
    total = {"validated": 0.0, "spec": 0.0}
    for name, row in times.items():
        ratios = sorted(a / b for a, b in zip(row["validated"], row["spec"], strict=True))
        q1, q3 = ratios[len(ratios) // 4], ratios[3 * len(ratios) // 4]
        old, new = statistics.median(row["validated"]), statistics.median(row["spec"])
        total["validated"] += old
        total["spec"] += new
        print(f"| {name} | {old:.2f} | {new:.2f} | {statistics.median(ratios):.1f} [{q1:.1f}-{q3:.1f}] |")
    print(f"| **the five** | **{total['validated']:.1f}** | **{total['spec']:.1f}** | "
          f"{total['validated'] / total['spec']:.1f} |")


if __name__ == "__main__":
    main()
