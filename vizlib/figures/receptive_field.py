"""Figures for receptive fields: picking a unit, its field on the image, the effective field; and (re-exported from
:mod:`vizlib.figures.receptive_field_growth`) growth with depth, across models and with dilation.

Input-pixel coordinates are those of the network input (``ReceptiveField.input_size``); an image of
another size is drawn stretched onto that grid, so the boxes and maps land where the network looks.
Boxes may reach past the image: that part is the zero padding, drawn hatched and grey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.figures.common import picture_trace
from vizlib.figures.receptive_field_growth import (
    COLORS,
    comparison_figure,
    dilation_figure,
    dilation_grid_figure,
    growth_figure,
)
from vizlib.receptive_field import Box, EffectiveReceptiveField, ReceptiveField

__all__ = [
    "COLORS",
    "box_figure",
    "clicked_unit",
    "comparison_figure",
    "dilation_figure",
    "dilation_grid_figure",
    "erf_figure",
    "growth_figure",
    "unit_picker_figure",
]


# --------------------------------------------------------------------------------------------- picking a unit


def unit_picker_figure(
    maps: np.ndarray,
    unit: tuple[int, int],
    *,
    channel: int | None = None,
    title: str | None = None,
    colorscale: str = "Viridis",
    height: int = 380,
) -> go.Figure:
    """A layer's feature map to click on: one invisible marker per unit, the chosen unit outlined.

    Each marker's ``customdata`` is ``[row, col]`` and its (invisible) colour the value;
    :func:`clicked_unit` reads a click back.

    Args:
        maps: The layer's activations, ``C x h x w`` (or one ``h x w`` map).
        unit: ``(row, col)`` of the chosen unit.
        channel: The channel to show; None for the mean over channels.
        title: Figure title.
        colorscale: A plotly colour scale name.
        height: Figure height in pixels.

    Returns:
        A heatmap of the map with the markers and the chosen unit's frame.

    Raises:
        ValueError: Not a 2-D or 3-D array, a channel or unit outside it.
    """
    values = np.asarray(maps, dtype=np.float32)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise ValueError(f"Expected C x h x w activations, got shape {values.shape}.")
    if channel is not None and not 0 <= channel < values.shape[0]:
        raise ValueError(f"channel must be between 0 and {values.shape[0] - 1}, got {channel}.")
    grid = values[channel] if channel is not None else values.mean(axis=0)
    h, w = grid.shape
    row, col = int(unit[0]), int(unit[1])
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"Unit ({row}, {col}) is outside the {h}x{w} feature map.")
    rows, cols = (a.astype(np.uint8 if max(h, w) <= 256 else np.uint16) for a in np.divmod(np.arange(h * w), w))
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            colorscale=colorscale,
            hoverinfo="skip",
            colorbar={"title": {"text": "activation" if channel is not None else "mean"}, "thickness": 12},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=cols,
            y=rows,
            mode="markers",
            marker={"size": 6, "opacity": 0, "color": grid.ravel()},
            customdata=np.stack([rows, cols], axis=1),
            hovertemplate="unit (%{customdata[0]}, %{customdata[1]})<br>value %{marker.color:.3g}"
            "<extra>click to pick</extra>",
            showlegend=False,
            name="units",
        )
    )
    fig.add_shape(
        type="rect", x0=col - 0.5, x1=col + 0.5, y0=row - 0.5, y1=row + 0.5,
        line={"color": COLORS["box"], "width": 3},
    )  # fmt: skip
    fig.update_xaxes(range=[-0.5, w - 0.5], showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(
        range=[h - 0.5, -0.5], showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x",
        constrain="domain",
    )  # fmt: skip
    fig.update_layout(
        title=title,
        height=height,
        clickmode="event+select",
        dragmode=False,
        hovermode="closest",
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )
    return fig


def clicked_unit(selection: Mapping[str, Any] | None, shape: tuple[int, int]) -> tuple[int, int] | None:
    """The unit a click on :func:`unit_picker_figure` selected, from Streamlit's selection state.

    Args:
        selection: ``event.selection`` of ``st.plotly_chart(..., on_select=...)`` (or None).
        shape: ``(h, w)`` of the feature map the figure showed.

    Returns:
        ``(row, col)`` of the last clicked unit, or None when nothing usable was clicked.
    """
    points = (selection or {}).get("points") or []
    for point in reversed(points):
        data = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(data, Mapping):  # typed arrays arrive as {"0": .., "1": ..}
            data = [data[k] for k in sorted(data, key=int)]
        if not isinstance(data, Sequence) or len(data) < 2:
            continue
        try:
            row, col = int(data[0]), int(data[1])
        except (TypeError, ValueError):
            continue
        if 0 <= row < shape[0] and 0 <= col < shape[1]:
            return row, col
    return None


# --------------------------------------------------------------------------------------------- on the image


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("Expected the image as an H x W x 3 RGB array.")
    return np.clip(image, 0, 255).astype(np.uint8)


def _scale(image: np.ndarray, rf: ReceptiveField) -> tuple[float, float]:
    """Image pixels per input pixel, (vertical, horizontal)."""
    h, w = rf.input_hw
    return image.shape[0] / h, image.shape[1] / w


def _edges(box: Box, scale: tuple[float, float]) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) of an inclusive pixel box, in image coordinates (pixel centres at integers)."""
    (top, bottom), (left, right) = box
    sy, sx = scale
    return left * sx - 0.5, (right + 1) * sx - 0.5, top * sy - 0.5, (bottom + 1) * sy - 0.5


def _rect(x0: float, x1: float, y0: float, y1: float) -> tuple[list[float], list[float]]:
    return [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]


def _box_traces(rf: ReceptiveField, unit: tuple[int, int], scale: tuple[float, float]) -> list[go.Scatter]:
    """The unit's box: the padding part hatched, the part on the image outlined."""
    box = rf.box(*unit)
    x0, x1, y0, y1 = _edges(box, scale)
    h, w = rf.input_hw
    ix0, ix1, iy0, iy1 = _edges(((0, h - 1), (0, w - 1)), scale)
    traces = []
    strips = [  # the parts of the box outside the image: top, bottom, left, right
        (x0, x1, y0, min(y1, iy0)),
        (x0, x1, max(y0, iy1), y1),
        (x0, min(x1, ix0), max(y0, iy0), min(y1, iy1)),
        (max(x0, ix1), x1, max(y0, iy0), min(y1, iy1)),
    ]
    xs: list[float | None] = []
    ys: list[float | None] = []
    for sx0, sx1, sy0, sy1 in strips:
        if sx1 > sx0 and sy1 > sy0:
            rx, ry = _rect(sx0, sx1, sy0, sy1)
            xs += [*rx, None]
            ys += [*ry, None]
    (top, bottom), (left, right) = box
    label = f"unit ({unit[0]}, {unit[1]}): rows {top}…{bottom}, columns {left}…{right}"
    if xs:
        traces.append(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                fill="toself",
                fillcolor=COLORS["padding"],
                fillpattern={"shape": "/", "fgcolor": "rgba(60, 60, 60, 0.6)", "size": 8},
                line={"color": "rgba(90, 90, 90, 0.9)", "width": 1, "dash": "dot"},
                name="padding (zeros)",
                hovertemplate="padding: outside the image<extra></extra>",
            )
        )
    (ct, cb), (cl, cr) = rf.clipped_box(*unit)
    cx0, cx1, cy0, cy1 = _edges(((ct, cb), (cl, cr)), scale)
    rx, ry = _rect(cx0, cx1, cy0, cy1)
    traces.append(
        go.Scatter(
            x=rx,
            y=ry,
            mode="lines",
            line={"color": COLORS["box"], "width": 3},
            name="receptive field on the image",
            hovertemplate=f"{label}<extra></extra>",
        )
    )
    return traces


def _image_layout(fig: go.Figure, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
    fig.update_xaxes(range=list(x_range), showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(
        range=[y_range[1], y_range[0]],
        showticklabels=False,
        showgrid=False,
        zeroline=False,
        scaleanchor="x",
        constrain="domain",
    )


def box_figure(
    image: np.ndarray, rf: ReceptiveField, unit: tuple[int, int], *, title: str | None = None, height: int = 480
) -> go.Figure:
    """One unit's theoretical receptive field drawn on the picture the network sees.

    The axes extend past the image where the box does: that part is the zero padding, hatched.

    Args:
        image: ``H x W x 3`` uint8 RGB, the network's input picture (any size: it is mapped onto the
            network's input grid).
        rf: The layer's receptive field.
        unit: ``(row, col)`` in the layer's feature map.
        title: Figure title.
        height: Figure height in pixels.

    Returns:
        The image with the box.

    Raises:
        ValueError: Not an RGB image, or the unit is outside the feature map.
    """
    picture = _check_image(image)
    scale = _scale(picture, rf)
    fig = go.Figure(picture_trace(picture, hovertemplate="x=%{x}, y=%{y}<extra></extra>"))
    for trace in _box_traces(rf, unit, scale):
        fig.add_trace(trace)
    x0, x1, y0, y1 = _edges(rf.box(*unit), scale)
    h, w = picture.shape[:2]
    _image_layout(fig, (min(x0, -0.5) - 2, max(x1, w - 0.5) + 2), (min(y0, -0.5) - 2, max(y1, h - 0.5) + 2))
    fig.update_layout(
        title=title,
        height=height,
        showlegend=True,
        legend={"orientation": "h", "y": -0.02, "yanchor": "top"},
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )
    return fig


def erf_figure(
    image: np.ndarray,
    erf: EffectiveReceptiveField,
    *,
    opacity: float = 0.6,
    colorscale: str = "Inferno",
    height: int = 420,
) -> go.Figure:
    """The effective receptive field as a heatmap over the image, with the theoretical box outlined.

    One panel per available map: on this image, and averaged over random inputs.

    Args:
        image: ``H x W x 3`` uint8 RGB, the network's input picture.
        erf: From :func:`~vizlib.receptive_field.effective_receptive_field`.
        opacity: The heatmap's opacity, 0 to 1.
        colorscale: A plotly colour scale name.
        height: Figure height in pixels.

    Returns:
        A figure with one or two panels.

    Raises:
        ValueError: Not an RGB image, or a bad opacity.
    """
    picture = _check_image(image)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}.")
    panels = [(m, t) for m, t in ((erf.image_map, "on this image"), (erf.random_map, None)) if m is not None]
    titles = [t or f"average over {erf.n_random} random inputs" for _, t in panels]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.04)
    rf = erf.theoretical
    sy, sx = _scale(picture, rf)
    for col, (grad_map, _) in enumerate(panels, start=1):
        fig.add_trace(picture_trace(picture, hoverinfo="skip"), 1, col)
        fig.add_trace(
            go.Heatmap(
                z=grad_map,
                x0=(sx - 1) / 2,
                dx=sx,
                y0=(sy - 1) / 2,
                dy=sy,
                zmin=0.0,
                zmax=1.0,
                colorscale=colorscale,
                opacity=opacity,
                showscale=col == len(panels),
                colorbar={"title": {"text": "|∂unit/∂pixel|"}, "thickness": 12},
                hovertemplate="x=%{x:.0f}, y=%{y:.0f}<br>relative gradient %{z:.3f}<extra></extra>",
            ),
            1,
            col,
        )
        cx0, cx1, cy0, cy1 = _edges(rf.clipped_box(*erf.unit), (sy, sx))
        rx, ry = _rect(cx0, cx1, cy0, cy1)
        fig.add_trace(
            go.Scatter(
                x=rx,
                y=ry,
                mode="lines",
                line={"color": COLORS["box"], "width": 2, "dash": "dash"},
                name="theoretical receptive field",
                showlegend=col == 1,
                hovertemplate="theoretical receptive field<extra></extra>",
            ),
            1,
            col,
        )
    h, w = picture.shape[:2]
    fig.update_xaxes(range=[-0.5, w - 0.5], showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    for col in range(1, len(panels) + 1):
        anchor = "x" if col == 1 else f"x{col}"
        fig.update_yaxes(
            range=[h - 0.5, -0.5],
            showticklabels=False,
            showgrid=False,
            zeroline=False,
            scaleanchor=anchor,
            constrain="domain",
            row=1,
            col=col,
        )
    fig.update_layout(
        height=height,
        legend={"orientation": "h", "y": -0.02, "yanchor": "top"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


# --------------------------------------------------------------------------------------------- dilation demo


