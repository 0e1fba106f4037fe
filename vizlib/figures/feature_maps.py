"""Figures for the feature-map page: one channel large, its overlay on the image, its histogram, the scores.

The montage and the network overview are pictures (``vizlib.feature_maps.montage``, ``vizlib.feature_maps.glance``),
not figures: one picture stays fast at thousands of channels and many stages. Pictures inside figures travel as PNG
data URIs, which keeps the figure JSON small.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from vizlib.feature_maps import ChannelStats
from vizlib.figures.common import png_data_uri, spec_figure

__all__ = [
    "channel_heatmap",
    "channel_overlay",
    "histogram_figure",
    "png_data_uri",
    "scores_figure",
]

_HOVER = "x=%{x}, y=%{y}<br>value=%{z:.4g}<extra></extra>"


@functools.cache
def _colorscale(colormap: str) -> tuple[tuple[float, str], ...]:
    """plotly's "Viridis" / "Cividis" (the same maps as the LUTs), as the stops plotly's validation sends."""
    return tuple(tuple(stop) for stop in plotly.colors.get_colorscale(colormap.capitalize()))


def _range(zmin: float | None, zmax: float | None) -> dict:
    """The colour scale's bounds where given (plotly takes the map's own otherwise)."""
    return {k: float(v) for k, v in (("zmin", zmin), ("zmax", zmax)) if v is not None}


def _square_layout(title: str | None, height: int, **axes: object) -> dict:
    """Layout of a map drawn with square cells, row 0 on top; ``axes``: more x/y axis properties, for both."""
    layout = {
        "xaxis": {"constrain": "domain", "showgrid": False, **axes},
        "yaxis": {"autorange": "reversed", "scaleanchor": "x", "constrain": "domain", "showgrid": False, **axes},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    }
    if title:
        layout["title"] = {"text": title}
    return layout


def channel_heatmap(
    values: np.ndarray,
    *,
    title: str | None = None,
    colormap: str = "viridis",
    zmin: float | None = None,
    zmax: float | None = None,
    height: int = 460,
) -> go.Figure:
    """One channel's map, large, with each value on hover.

    Args:
        values: ``(h, w)`` activations.
        title: Figure title.
        colormap: ``"viridis"`` or ``"cividis"``.
        zmin: Bottom of the colour scale (the layer's minimum for a shared scale); the map's own by default.
        zmax: Top of the colour scale.
        height: Figure height in pixels.

    Returns:
        A plotly figure with one heatmap.
    """
    z = np.asarray(values, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"Expected one channel as an (h, w) map, got shape {z.shape}.")
    heat = {"type": "heatmap", "z": z, "colorscale": _colorscale(colormap), "hovertemplate": _HOVER,
            "colorbar": {"thickness": 12}, **_range(zmin, zmax)}
    return spec_figure({"data": [heat], "layout": _square_layout(title, height)})


def channel_overlay(
    image: np.ndarray,
    values: np.ndarray,
    *,
    opacity: float = 0.5,
    colormap: str = "viridis",
    zmin: float | None = None,
    zmax: float | None = None,
    max_side: int = 384,
    title: str | None = None,
    height: int = 460,
) -> go.Figure:
    """A channel's map stretched over the whole input image (which the network saw resized, uncropped).

    Map cell ``(i, j)`` covers image pixels ``[j * W / w, (j + 1) * W / w)`` by ``[i * H / h, (i + 1) * H / h)``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, the image the user chose.
        values: ``(h, w)`` activations.
        opacity: Of the map over the image, 0 (image only) to 1 (map only).
        colormap: ``"viridis"`` or ``"cividis"``.
        zmin: Bottom of the colour scale.
        zmax: Top of the colour scale.
        max_side: Longest side of the picture sent to the browser (every ``stride``-th pixel).
        title: Figure title.
        height: Figure height in pixels.

    Returns:
        A plotly figure: the image, then the map as a translucent heatmap with values on hover.

    Raises:
        ValueError: Opacity outside 0..1, or bad shapes.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}.")
    z = np.asarray(values, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or z.ndim != 2:
        raise ValueError("Expected an (H, W, 3) image and an (h, w) map.")
    big_h, big_w = image.shape[:2]
    stride = max(1, math.ceil(max(big_h, big_w) / max_side))
    picture = {
        "type": "image", "source": png_data_uri(np.ascontiguousarray(image[::stride, ::stride])),
        "x0": 0, "y0": 0, "dx": stride, "dy": stride, "hoverinfo": "skip",
    }
    cell_w, cell_h = big_w / z.shape[1], big_h / z.shape[0]
    heat = {
        "type": "heatmap", "z": z,
        "x": (np.arange(z.shape[1]) + 0.5) * cell_w - 0.5,
        "y": (np.arange(z.shape[0]) + 0.5) * cell_h - 0.5,
        "colorscale": _colorscale(colormap), "opacity": opacity,
        "customdata": np.stack(np.meshgrid(np.arange(z.shape[1]), np.arange(z.shape[0])), axis=-1),
        "hovertemplate": "map x=%{customdata[0]}, y=%{customdata[1]}<br>value=%{z:.4g}<extra></extra>",
        "colorbar": {"thickness": 12}, **_range(zmin, zmax),
    }
    layout = _square_layout(title, height, showticklabels=False)
    layout["xaxis"]["range"] = [-0.5, big_w - 0.5]
    layout["yaxis"]["range"] = [big_h - 0.5, -0.5]
    return spec_figure({"data": [picture, heat], "layout": layout})


def histogram_figure(stats: ChannelStats, *, title: str | None = None, height: int = 300) -> go.Figure:
    """The channel's activation histogram (bars from :func:`vizlib.feature_maps.channel_stats`).

    Values ``<= 0`` (what a ReLU zeroes) are drawn in a second colour.
    """
    edges = np.asarray(stats.edges, dtype=np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    colours = np.where(edges[1:] <= 0, "#D55E00", "#0072B2")  # Okabe-Ito vermilion / blue
    bar = {
        "type": "bar", "x": centres, "y": np.asarray(stats.counts), "width": np.diff(edges),
        "marker": {"color": colours.tolist()},
        "customdata": np.stack([edges[:-1], edges[1:]], axis=-1),
        "hovertemplate": "%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y} values<extra></extra>",
    }
    layout = {
        "height": height, "bargap": 0,
        "xaxis": {"title": {"text": "activation"}}, "yaxis": {"title": {"text": "count"}},
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    }
    if title:
        layout["title"] = {"text": title}
    return spec_figure({"data": [bar], "layout": layout})


def scores_figure(top: Sequence[tuple[int, float]], *, by: str = "mean", height: int | None = None) -> go.Figure:
    """Horizontal bars of the strongest channels' scores, the strongest on top."""
    labels = [f"channel {c}" for c, _ in top][::-1]
    scores = [float(s) for _, s in top][::-1]
    bar = {"type": "bar", "x": scores, "y": labels, "orientation": "h", "marker": {"color": "#0072B2"},
           "hovertemplate": "%{y}: " + by + " %{x:.4g}<extra></extra>"}
    layout = {
        "height": height or 60 + 24 * len(labels),
        "xaxis": {"title": {"text": f"spatial {by}"}},
        "yaxis": {"automargin": True},
        "margin": {"l": 10, "r": 10, "t": 10, "b": 40},
    }
    return spec_figure({"data": [bar], "layout": layout})
