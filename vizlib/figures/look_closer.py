"""Figures of the Look closer lessons: the covered picture, occlusion beside Grad-CAM, sweeps, layer shifts,
the sanity-check cascade."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.figures.cam import colorscale
from vizlib.figures.common import picture_trace

__all__ = [
    "MOUSE_MODES",
    "equivariance_figure",
    "patch_figure",
    "placed_patch",
    "sanity_correlation_figure",
    "sanity_maps_figure",
    "sensitivity_figure",
    "sweep_figure",
]

_DIVERGING = [[0.0, "rgb(33,102,172)"], [0.5, "rgb(247,247,247)"], [1.0, "rgb(178,24,43)"]]


def _square_axes(fig: go.Figure, **where) -> None:
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=False, **where)
    fig.update_xaxes(constrain="domain", showticklabels=False, **where)


#: How the mouse places the patch on :func:`patch_figure`. Streamlit takes clicks as selections only while
#: dragging does not select, so the two are modes.
MOUSE_MODES: dict[str, str] = {"box": "drag a box", "click": "click to move"}


def patch_figure(picture: np.ndarray, x: int, y: int, patch: int, title: str | None = None, *,
                 grid: int = 8, mouse: str = "box") -> go.Figure:
    """The network's picture (already covered) with the patch outlined, ready to place the patch on.

    With ``mouse="box"`` a drag draws a box selection (the patch takes the box's place and size); with
    ``mouse="click"`` invisible points every ``grid`` pixels take a click (the patch's centre goes there) and a
    drag does nothing (the axes are fixed). Read either back with :func:`placed_patch`.

    Args:
        picture: ``h x w x 3`` uint8, the picture the network sees.
        x: Left edge of the patch, pixels.
        y: Top edge of the patch, pixels.
        patch: Side of the patch, pixels.
        title: Optional title.
        grid: Spacing of the clickable points, pixels.
        mouse: A key of :data:`MOUSE_MODES`.
    """
    if mouse not in MOUSE_MODES:
        raise ValueError(f"Unknown mouse mode {mouse!r}. Choose one of: {', '.join(MOUSE_MODES)}.")
    h, w = picture.shape[:2]
    fig = go.Figure(picture_trace(picture, hoverinfo="skip"))
    cols, rows = np.meshgrid(np.arange(grid // 2, w, grid), np.arange(grid // 2, h, grid))
    fig.add_trace(go.Scatter(
        x=cols.ravel(), y=rows.ravel(), mode="markers", marker={"size": grid, "opacity": 0}, showlegend=False,
        name="place", hovertemplate="(%{x}, %{y})<extra></extra>",
    ))
    fig.add_shape(type="rect", x0=x - 0.5, y0=y - 0.5, x1=x + patch - 0.5, y1=y + patch - 0.5,
                  line={"color": "#D55E00", "width": 2})
    _square_axes(fig)
    fig.update_xaxes(range=[-0.5, w - 0.5], fixedrange=True, showgrid=False, zeroline=False)
    fig.update_yaxes(range=[h - 0.5, -0.5], autorange=False, fixedrange=True, showgrid=False, zeroline=False)
    fig.update_layout(title=title, height=340, margin={"l": 0, "r": 0, "t": 30 if title else 0, "b": 0},
                      dragmode="select" if mouse == "box" else "pan", clickmode="event+select", hovermode="closest",
                      newselection={"line": {"color": "#D55E00", "dash": "dot"}})
    return fig


def _coordinate(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def placed_patch(
    selection: Mapping[str, Any] | None, input_size: tuple[int, int], patch: int, *, min_patch: int = 8,
    max_patch: int | None = None, step: int = 4,
) -> tuple[int, int, int] | None:
    """Where the student put the patch on :func:`patch_figure`, from Streamlit's selection state.

    A dragged box wins over points: the patch becomes the square on the box's longer side (rounded to ``step``
    pixels, within ``[min_patch, max_patch]``) centred where the box is centred. A click (a selected point)
    keeps the size and centres the patch on the point. The pixel ``c`` a patch is centred on becomes its
    column (row) ``patch // 2``; the patch then moves inside the picture if it reaches past an edge.

    Args:
        selection: ``event.selection`` of ``st.plotly_chart(..., on_select=...)`` (or None).
        input_size: ``(h, w)`` of the picture.
        patch: The patch's side now, pixels.
        min_patch: Smallest side a box gives.
        max_patch: Largest side a box gives (default: the picture's shorter side).
        step: A box's side is rounded to a multiple of this.

    Returns:
        ``(x, y, patch)`` (left edge, top edge, side), or None when nothing usable was selected.
    """
    h, w = input_size
    largest = min(h, w) if max_patch is None else min(max_patch, h, w)
    centre: tuple[float, float] | None = None
    for box in reversed(list((selection or {}).get("box") or [])):
        xs = [_coordinate(v) for v in (box.get("x") or [])[:2]] if isinstance(box, Mapping) else []
        ys = [_coordinate(v) for v in (box.get("y") or [])[:2]] if isinstance(box, Mapping) else []
        if len(xs) == 2 and len(ys) == 2 and None not in xs + ys:
            side = max(abs(xs[1] - xs[0]), abs(ys[1] - ys[0]))
            patch = int(min(max(step * round(side / step), min_patch), largest))
            centre = ((xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2)
            break
    if centre is None:
        for point in reversed(list((selection or {}).get("points") or [])):
            if isinstance(point, Mapping):
                cx, cy = _coordinate(point.get("x")), _coordinate(point.get("y"))
                if cx is not None and cy is not None:
                    centre = (cx, cy)
                    break
    if centre is None:
        return None
    patch = int(min(max(patch, 1), h, w))
    x, y = (int(np.floor(c + 0.5)) - patch // 2 for c in centre)
    return min(max(x, 0), w - patch), min(max(y, 0), h - patch), patch


def sensitivity_figure(
    image: np.ndarray, drop: np.ndarray, gradcam: np.ndarray, *, titles: Sequence[str] = ("Occlusion", "Grad-CAM"),
    opacity: float = 0.6, max_side: int = 256,
) -> go.Figure:
    """The occlusion map (blue: covering helps, red: covering hurts) beside the Grad-CAM of the same class.

    Args:
        image: ``H x W x 3`` uint8.
        drop: ``H x W`` probability drop (signed), as :func:`vizlib.occlusion.sensitivity` returns.
        gradcam: ``H x W`` Grad-CAM in ``[0, 1]``.
        titles: The two panel titles.
        opacity: The maps' opacity.
        max_side: Longest side drawn per panel.
    """
    if drop.shape != image.shape[:2] or gradcam.shape != image.shape[:2]:
        raise ValueError("The maps must have the image's height and width.")
    stride = max(1, int(np.ceil(max(image.shape[:2]) / max_side)))
    limit = float(max(np.abs(drop).max(), 1e-6))
    xs, ys = np.arange(0, image.shape[1], stride), np.arange(0, image.shape[0], stride)
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(titles), horizontal_spacing=0.08)
    heats = (
        go.Heatmap(z=drop[::stride, ::stride], x=xs, y=ys, colorscale=_DIVERGING, zmin=-limit, zmax=limit,
                   opacity=opacity, colorbar={"title": {"text": "drop"}, "x": 0.44, "thickness": 10},
                   hovertemplate="x=%{x}, y=%{y}<br>probability drop %{z:+.3f}<extra></extra>"),
        go.Heatmap(z=gradcam[::stride, ::stride], x=xs, y=ys, colorscale=colorscale("jet"), zmin=0, zmax=1,
                   opacity=opacity, colorbar={"title": {"text": "Grad-CAM"}, "thickness": 10},
                   hovertemplate="x=%{x}, y=%{y}<br>Grad-CAM %{z:.3f}<extra></extra>"),
    )
    for col, heat in enumerate(heats, start=1):
        fig.add_trace(picture_trace(image, stride=stride, hoverinfo="skip"), row=1, col=col)
        fig.add_trace(heat, row=1, col=col)
        anchor = "x" if col == 1 else "x2"
        fig.update_yaxes(autorange="reversed", scaleanchor=anchor, constrain="domain", showticklabels=False,
                         row=1, col=col)
        fig.update_xaxes(constrain="domain", showticklabels=False, row=1, col=col)
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def sweep_figure(values: np.ndarray, probabilities: np.ndarray, names: Sequence[str], *, kind: str,
                 unit: str) -> go.Figure:
    """Each followed class's probability against the transform's value."""
    fig = go.Figure()
    for i, name in enumerate(names):
        fig.add_trace(go.Scatter(x=values, y=probabilities[:, i], mode="lines+markers", name=name,
                                 hovertemplate=f"{kind} %{{x:.3g}}{unit}<br>{name}: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(xaxis={"title": f"{kind} ({unit})"}, yaxis={"title": "probability", "tickformat": ".0%",
                      "range": [0, 1]}, height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def equivariance_figure(layers: Sequence[str], aligned: Sequence[float], unaligned: Sequence[float],
                        strides: Sequence[int], shift: int) -> go.Figure:
    """Per layer, first to last: cosine similarity with and without shifting the map back."""
    x = list(range(len(layers)))
    custom = np.asarray([[name, s] for name, s in zip(layers, strides, strict=True)], dtype=object)
    fig = go.Figure()
    for values, name, dash in ((aligned, "shifted back (equivariance)", "solid"),
                               (unaligned, "as they are (invariance)", "dot")):
        fig.add_trace(go.Scatter(
            x=x, y=list(values), mode="lines+markers", name=name, line={"dash": dash}, customdata=custom,
            hovertemplate="%{customdata[0]} (stride %{customdata[1]})<br>cosine %{y:.3f}<extra></extra>"))
    ticks = x[:: max(1, len(x) // 12)]
    fig.update_layout(
        xaxis={"title": f"layer, first to last (image shifted {shift} px right)", "tickvals": ticks,
               "ticktext": [layers[i] for i in ticks]},
        yaxis={"title": "cosine similarity", "range": [min(0.0, float(np.nanmin([*aligned, *unaligned]))), 1.02]},
        height=400, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.1},
    )
    return fig


def sanity_maps_figure(
    steps: Sequence[tuple[str, Mapping[str, np.ndarray]]], titles: Mapping[str, str], *, max_side: int = 96
) -> go.Figure:
    """One row per method, one column per cascade step: the maps (``[0, 1]``) as small heat maps."""
    methods = list(steps[0][1])
    fig = make_subplots(rows=len(methods), cols=len(steps), horizontal_spacing=0.01, vertical_spacing=0.03,
                        column_titles=[label for label, _ in steps], row_titles=[titles.get(m, m) for m in methods])
    scale = colorscale("jet")
    for c, (_, maps) in enumerate(steps, start=1):
        for r, method in enumerate(methods, start=1):
            m = maps[method]
            stride = max(1, int(np.ceil(max(m.shape) / max_side)))
            fig.add_trace(go.Heatmap(z=m[::stride, ::stride], colorscale=scale, zmin=0, zmax=1, showscale=False,
                                     hovertemplate="%{z:.2f}<extra></extra>"), row=r, col=c)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(height=60 + 120 * len(methods), margin={"l": 10, "r": 30, "t": 60, "b": 10})
    return fig


def sanity_correlation_figure(labels: Sequence[str], correlations: Mapping[str, Sequence[float]],
                              titles: Mapping[str, str], threshold: float) -> go.Figure:
    """Spearman correlation with the trained map, per method, along the cascade."""
    fig = go.Figure()
    for method, values in correlations.items():
        fig.add_trace(go.Scatter(x=list(labels), y=list(values), mode="lines+markers", name=titles.get(method, method),
                                 hovertemplate="%{x}<br>Spearman %{y:.2f}<extra></extra>"))
    fig.add_hline(y=threshold, line={"dash": "dot", "color": "grey"})
    fig.update_layout(yaxis={"title": "rank correlation with the trained map", "range": [-1, 1.05]},
                      height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.12})
    return fig
