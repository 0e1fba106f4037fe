"""The class-activation-map figures as they were built before issue 15 (for ``bench_cam_figures.py``).

``make_subplots`` with an ``update_xaxes``/``update_yaxes`` per panel, and every map sent at its full display
grid (every ``stride``-th pixel, up to 256 per side per panel, 448 for the close-up), drawn brick by brick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.figures.cam import colorscale
from vizlib.figures.common import picture_trace

_HOVER = "x=%{x}, y=%{y}<br>%{meta}=%{z:.3f}<extra></extra>"


def _traces(image, cam, stride, scale, opacity, label, show_scale):
    picture = picture_trace(image, stride=stride, hoverinfo="skip")
    heat = go.Heatmap(
        z=np.asarray(cam, dtype=np.float32)[::stride, ::stride], x=np.arange(0, cam.shape[1], stride),
        y=np.arange(0, cam.shape[0], stride), colorscale=scale, zmin=0.0, zmax=1.0, opacity=opacity, meta=label,
        hovertemplate=_HOVER, showscale=show_scale, colorbar={"title": {"text": label}, "thickness": 12},
    )
    return picture, heat


def _stride(shape, max_side):
    return max(1, math.ceil(max(shape[0], shape[1]) / max_side))


def overlay_figure(image, cam, *, colormap="jet", opacity=0.5, title=None, label="value", max_side=448):
    stride = _stride(image.shape, max_side)
    fig = go.Figure(list(_traces(image, cam, stride, colorscale(colormap), opacity, label, True)))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=False)
    fig.update_xaxes(constrain="domain", showticklabels=False)
    fig.update_layout(title=title, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10})
    return fig


def methods_figure(image, maps: Mapping[str, np.ndarray], *, colormap="jet", opacity=0.5, titles=None,
                   columns=3, max_side=256):
    keys = list(maps)
    cols = min(columns, len(keys))
    rows = math.ceil(len(keys) / cols)
    names = [(titles or {}).get(key, key) for key in keys]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.02, vertical_spacing=0.08)
    stride = _stride(image.shape, max_side)
    scale = colorscale(colormap)
    for i, key in enumerate(keys):
        row, col = divmod(i, cols)
        for trace in _traces(image, maps[key], stride, scale, opacity, "value", i == 0):
            fig.add_trace(trace, row=row + 1, col=col + 1)
        anchor = "x" if i == 0 else f"x{i + 1}"
        fig.update_yaxes(autorange="reversed", scaleanchor=anchor, constrain="domain", showticklabels=False,
                         row=row + 1, col=col + 1)
        fig.update_xaxes(constrain="domain", showticklabels=False, row=row + 1, col=col + 1)
    fig.update_layout(height=40 + 260 * rows, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
