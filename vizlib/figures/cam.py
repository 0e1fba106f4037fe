"""Figures for class activation maps: one map over its image, and several maps side by side.

The map is a heatmap drawn over the image with the chosen opacity and colormap (the same colours as
:func:`vizlib.overlay.overlay`, so the PNG download looks like the figure); hover shows the pixel's
coordinates and the map's value there. Large images are shown with every ``stride``-th pixel so the
longer side is at most ``max_side``; coordinates on hover stay those of the full image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.figures.common import picture_trace
from vizlib.overlay import COLORMAPS, colorize

__all__ = ["colorscale", "methods_figure", "overlay_figure"]

_HOVER = "x=%{x}, y=%{y}<br>%{meta}=%{z:.3f}<extra></extra>"


def colorscale(colormap: str, steps: int = 17) -> list[list[float | str]]:
    """A plotly colorscale sampled from the OpenCV colormap of :func:`vizlib.overlay.overlay`.

    Raises:
        ValueError: Unknown colormap.
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"Unknown colormap {colormap!r}. Choose one of: {', '.join(COLORMAPS)}.")
    levels = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    rgb = colorize(levels[None, :], colormap)[0]
    return [[float(t), f"rgb({r},{g},{b})"] for t, (r, g, b) in zip(levels, rgb.tolist(), strict=True)]


def _check(image: np.ndarray, cam: np.ndarray, opacity: float) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("Expected the image as an H x W x 3 RGB array.")
    if np.shape(cam) != image.shape[:2]:
        raise ValueError(f"The map's shape {np.shape(cam)} differs from the image's {image.shape[:2]}.")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}.")


def _traces(
    image: np.ndarray, cam: np.ndarray, stride: int, scale: list, opacity: float, label: str, show_scale: bool
) -> tuple[go.Image, go.Heatmap]:
    picture = picture_trace(image, stride=stride, hoverinfo="skip")
    heat = go.Heatmap(
        z=np.asarray(cam, dtype=np.float32)[::stride, ::stride],
        x=np.arange(0, cam.shape[1], stride),
        y=np.arange(0, cam.shape[0], stride),
        colorscale=scale,
        zmin=0.0,
        zmax=1.0,
        opacity=opacity,
        meta=label,
        hovertemplate=_HOVER,
        showscale=show_scale,
        colorbar={"title": {"text": label}, "thickness": 12},
    )
    return picture, heat


def _stride(shape: tuple[int, ...], max_side: int) -> int:
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1; got {max_side}.")
    return max(1, math.ceil(max(shape[0], shape[1]) / max_side))


def overlay_figure(
    image: np.ndarray,
    cam: np.ndarray,
    *,
    colormap: str = "jet",
    opacity: float = 0.5,
    title: str | None = None,
    label: str = "value",
    max_side: int = 448,
) -> go.Figure:
    """One map over its image, with the map's value on hover.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        cam: ``H x W`` map in [0, 1] (as :func:`vizlib.cam.compute` returns).
        colormap: A name from :data:`vizlib.overlay.COLORMAPS`.
        opacity: The map's opacity, 0 to 1.
        title: Figure title.
        label: What hover calls the value.
        max_side: Longest side drawn, in samples.

    Returns:
        A plotly figure.

    Raises:
        ValueError: Shapes differ, or a bad colormap or opacity.
    """
    _check(image, cam, opacity)
    stride = _stride(image.shape, max_side)
    picture, heat = _traces(image, cam, stride, colorscale(colormap), opacity, label, True)
    fig = go.Figure([picture, heat])
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=False)
    fig.update_xaxes(constrain="domain", showticklabels=False)
    fig.update_layout(title=title, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10})
    return fig


def methods_figure(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    colormap: str = "jet",
    opacity: float = 0.5,
    titles: Mapping[str, str] | None = None,
    scores: Mapping[str, float] | None = None,
    columns: int = 3,
    max_side: int = 256,
) -> go.Figure:
    """Several maps of the same image side by side (methods, or classes for "why A and not B").

    Args:
        image: ``H x W x 3`` uint8 RGB.
        maps: ``{key: H x W map in [0, 1]}``, drawn in order.
        colormap: A name from :data:`vizlib.overlay.COLORMAPS`.
        opacity: The maps' opacity, 0 to 1.
        titles: Panel titles by key (default: the key).
        scores: Optional faithfulness score by key, shown under the title.
        columns: Panels per row.
        max_side: Longest side drawn per panel, in samples.

    Returns:
        A plotly figure with one panel per map and one shared colour bar.

    Raises:
        ValueError: No maps, shapes differ, or a bad colormap, opacity or column count.
    """
    if not maps:
        raise ValueError("No maps to show: pick at least one method.")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}.")
    for cam in maps.values():
        _check(image, cam, opacity)
    keys = list(maps)
    cols = min(columns, len(keys))
    rows = math.ceil(len(keys) / cols)
    names = []
    for key in keys:
        name = (titles or {}).get(key, key)
        if scores is not None and key in scores:
            name += f"<br><sub>faithfulness {scores[key]:+.3f}</sub>"
        names.append(name)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.02, vertical_spacing=0.08)
    stride = _stride(image.shape, max_side)
    scale = colorscale(colormap)
    for i, key in enumerate(keys):
        row, col = divmod(i, cols)
        for trace in _traces(image, maps[key], stride, scale, opacity, "value", i == 0):
            fig.add_trace(trace, row=row + 1, col=col + 1)
        anchor = "x" if i == 0 else f"x{i + 1}"
        fig.update_yaxes(
            autorange="reversed", scaleanchor=anchor, constrain="domain", showticklabels=False, row=row + 1, col=col + 1
        )
        fig.update_xaxes(constrain="domain", showticklabels=False, row=row + 1, col=col + 1)
    fig.update_layout(height=40 + 260 * rows, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
