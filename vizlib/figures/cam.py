"""Figures for class activation maps: one map over its image, and several maps side by side.

Each panel is the image with the map blended over it at the chosen opacity and colormap, drawn by the server
with :func:`vizlib.overlay.overlay` (the same colours as the PNG download) and sent as one PNG the browser
decodes natively; a transparent heatmap of the map's values over it gives hover the pixel's coordinates and
the map's value there. Large images are shown with every ``stride``-th pixel so the longer side is at most
``max_side``; coordinates on hover stay those of the full image.

Hover samples a map with detail at every pixel (Saliency) at every drawn pixel. A smooth map (Grad-CAM and its
family: a layer's coarse grid, e.g. 7 x 7, resized bilinearly to the image; see :func:`is_smooth`) is sampled
every :data:`HOVER_STEP`-th drawn pixel: its values there are the map's own, a few pixels apart on the screen.
The colour bar sits in a fixed right margin: in the app, plotly's margin expansion for it drew every panel a
second time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from vizlib.figures.common import png_uri, spec_figure
from vizlib.overlay import COLORMAPS, colorize, overlay

__all__ = ["HOVER_STEP", "TOLERANCE", "colorscale", "hover_grid", "is_smooth", "methods_figure", "overlay_figure"]

_HOVER = "x=%{x}, y=%{y}<br>%{meta}=%{z:.3f}<extra></extra>"
#: A smooth map's hover samples are this many drawn pixels apart.
HOVER_STEP = 4
#: A map is smooth when bilinear interpolation between the rows and columns where it bends reproduces it
#: within this at every pixel (hover shows three decimals; the colours have 256 levels, 0.0039 apart).
TOLERANCE = 1e-3
#: A second difference above this counts as a bend (float32 rounding of a resized map stays far below it).
_BEND = 1e-5
_SPACING = {"horizontal": 0.02, "vertical": 0.08}


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


def _stride(shape: tuple[int, ...], max_side: int) -> int:
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1; got {max_side}.")
    return max(1, math.ceil(max(shape[0], shape[1]) / max_side))


def _bends(values: np.ndarray, axis: int) -> np.ndarray:
    """Positions along ``axis`` where some line across the map bends, with both ends."""
    lines = np.moveaxis(values, axis, 0)
    n = lines.shape[0]
    if n < 3:
        return np.arange(n)
    second = np.abs(lines[:-2] - 2 * lines[1:-1] + lines[2:]).max(axis=1)
    return np.concatenate([[0], np.flatnonzero(second > _BEND) + 1, [n - 1]])


def _interpolate(samples: np.ndarray, positions: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Linear interpolation along ``axis`` from samples at sorted ``positions`` to every position ``0..n-1``."""
    if len(positions) == 1:
        return np.repeat(samples, n, axis=axis)
    points = np.arange(n)
    left = np.clip(np.searchsorted(positions, points, side="right") - 1, 0, len(positions) - 2)
    t = (points - positions[left]) / (positions[left + 1] - positions[left])
    shape = [1, 1]
    shape[axis] = n
    t = t.reshape(shape)
    return np.take(samples, left, axis=axis) * (1 - t) + np.take(samples, left + 1, axis=axis) * t


def is_smooth(cam: np.ndarray) -> bool:
    """Whether ``cam`` is linear between a few of its rows and columns (a coarse grid resized bilinearly).

    True when the rows and columns where it bends (two beside each line of the grid that falls between pixels)
    are at most one in ``HOVER_STEP`` of each side, and
    bilinear interpolation between them reproduces the map within :data:`TOLERANCE` at every pixel.
    """
    values = np.asarray(cam, dtype=np.float32)
    h, w = values.shape
    rows, cols = _bends(values, 0), _bends(values, 1)
    if len(rows) > max(2, h / HOVER_STEP) or len(cols) > max(2, w / HOVER_STEP):
        return False
    samples = values[np.ix_(rows, cols)].astype(np.float64)
    drawn = _interpolate(_interpolate(samples, cols, w, 1), rows, h, 0)
    return bool(np.abs(drawn - values).max() <= TOLERANCE)


def hover_grid(cam: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of ``cam`` whose values hover shows, for a figure that draws every ``stride``-th.

    Every ``stride``-th row and column; every ``HOVER_STEP * stride``-th for a map that is smooth as drawn
    (:func:`is_smooth` of every ``stride``-th row and column).
    """
    values = np.asarray(cam)
    step = stride * (HOVER_STEP if is_smooth(values[::stride, ::stride]) else 1)
    h, w = values.shape
    return np.arange(0, h, step), np.arange(0, w, step)


def _panel(
    image: np.ndarray, cam: np.ndarray, stride: int, axes: str, colormap: str, opacity: float, label: str,
    show_scale: bool,
) -> list[dict]:
    """The image with the map blended over it, as a PNG, and the map's values for hover, transparent."""
    photo = np.clip(np.asarray(image)[::stride, ::stride], 0, 255).astype(np.uint8)
    blended = overlay(photo, np.asarray(cam, dtype=np.float32)[::stride, ::stride], colormap, opacity)
    # a photo with a map over it: the fast photo setting of encode_png; not through png_data_uri's cache of photos,
    # the figure itself is cached by the page
    source = png_uri(blended, filters="sub", rle=True)
    picture = {"type": "image", "source": source, "x0": 0, "y0": 0, "dx": stride, "dy": stride,
               "hoverinfo": "skip", "xaxis": f"x{axes}", "yaxis": f"y{axes}"}
    rows, cols = hover_grid(cam, stride)
    heat = {
        "type": "heatmap",
        "z": np.asarray(cam, dtype=np.float32)[np.ix_(rows, cols)],
        "x": cols,
        "y": rows,
        "colorscale": colorscale(colormap),
        "zmin": 0.0,
        "zmax": 1.0,
        "opacity": 0.0,  # the colours are in the picture; this layer is there for hover and the colour bar
        "meta": label,
        "hovertemplate": _HOVER,
        "showscale": show_scale,
        "colorbar": {"title": {"text": label}, "thickness": 12},
        "xaxis": f"x{axes}",
        "yaxis": f"y{axes}",
    }
    return [picture, heat]


def _margin(label: str, top: int) -> dict:
    """Fixed margins with room for the colour bar and its title (no second drawing to make room)."""
    return {"l": 10, "r": max(70, 20 + 8 * len(label)), "t": top, "b": 10, "autoexpand": False}


def _axes(shape: tuple[int, ...], stride: int, axes: str, domain: tuple[list[float], list[float]] | None) -> dict:
    """Square-pixel axes framing the picture exactly (a heatmap's edge samples reach past it; they are cut)."""
    h, w = math.ceil(shape[0] / stride), math.ceil(shape[1] / stride)
    x = {"range": [-stride / 2, (w - 0.5) * stride], "constrain": "domain", "showticklabels": False,
         "anchor": f"y{axes}"}
    y = {"range": [(h - 0.5) * stride, -stride / 2], "scaleanchor": f"x{axes}", "constrain": "domain",
         "showticklabels": False, "anchor": f"x{axes}"}
    if domain is not None:
        x["domain"], y["domain"] = domain
    return {f"xaxis{axes}": x, f"yaxis{axes}": y}


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
    layout = {"margin": _margin(label, 40 if title else 10), **_axes(image.shape, stride, "", None)}
    if title:
        layout["title"] = {"text": title}
    return spec_figure({"data": _panel(image, cam, stride, "", colormap, opacity, label, True), "layout": layout})


def _domains(rows: int, cols: int) -> list[tuple[list[float], list[float]]]:
    """Each panel's (x, y) domain, row by row from the top, spaced as ``make_subplots`` spaces them."""
    width = (1 - _SPACING["horizontal"] * (cols - 1)) / cols
    height = (1 - _SPACING["vertical"] * (rows - 1)) / rows
    out = []
    for i in range(rows * cols):
        row, col = divmod(i, cols)
        x0 = col * (width + _SPACING["horizontal"])
        y1 = 1 - row * (height + _SPACING["vertical"])
        out.append(([round(x0, 9), round(x0 + width, 9)], [round(max(y1 - height, 0.0), 9), round(y1, 9)]))
    return out


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
    stride = _stride(image.shape, max_side)
    colorscale(colormap)  # a clear error for an unknown colormap before any work
    data: list = []
    layout: dict = {"annotations": [], "height": 40 + 260 * rows, "margin": _margin("value", 50)}
    for i, (key, domain) in enumerate(zip(keys, _domains(rows, cols), strict=False)):
        axes = "" if i == 0 else str(i + 1)
        data += _panel(image, maps[key], stride, axes, colormap, opacity, "value", i == 0)
        layout |= _axes(image.shape, stride, axes, domain)
        name = (titles or {}).get(key, key)
        if scores is not None and key in scores:
            name += f"<br><sub>faithfulness {scores[key]:+.3f}</sub>"
        layout["annotations"].append({
            "text": name, "x": sum(domain[0]) / 2, "y": domain[1][1], "xref": "paper", "yref": "paper",
            "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 16},
        })
    return spec_figure({"data": data, "layout": layout})
