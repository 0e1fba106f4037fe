"""Figures of how receptive fields grow: with depth, across models, and with dilation (the 1-D demo).

Re-exported by :mod:`vizlib.figures.receptive_field`, the lesson's figure module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.receptive_field import ConvStack1D, ReceptiveField

__all__ = [
    "COLORS",
    "comparison_figure",
    "dilation_figure",
    "dilation_grid_figure",
    "growth_figure",
]

#: Okabe-Ito colours (readable with colour-vision deficiencies).
COLORS: dict[str, str] = {
    "size": "#0072B2",
    "size_w": "#56B4E9",
    "stride": "#D55E00",
    "box": "#E69F00",
    "padding": "rgba(120, 120, 120, 0.45)",
    "unit": "#009E73",
    "edge": "#009E73",
    "idle": "#C8C8C8",
    "input_line": "#777777",
}
_SERIES = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def _hover_rows(fields: Mapping[str, ReceptiveField]) -> list[str]:
    rows = []
    for name, rf in fields.items():
        glob = "<br>sees the whole image (global)" if rf.is_global else ""
        rows.append(
            f"<b>{name}</b><br>size {_pair_text(rf.size)}, stride {_pair_text(rf.stride)}, "
            f"padding {_pair_text(rf.padding)}<br>output {_pair_text(rf.output_size)}{glob}"
        )
    return rows


def _pair_text(value: int | tuple[int, int]) -> str:
    return str(value) if isinstance(value, int) else f"{value[0]}×{value[1]}"


def _check_fields(fields: Mapping[str, ReceptiveField]) -> None:
    if not fields:
        raise ValueError("No receptive fields to draw: the model has no convolution or pooling layer.")


def growth_figure(
    fields: Mapping[str, ReceptiveField], *, title: str | None = None, log_y: bool = True, height: int = 480
) -> go.Figure:
    """Receptive-field size and stride against depth for one model.

    Args:
        fields: ``{layer: ReceptiveField}`` in execution order (as :func:`~vizlib.receptive_field.receptive_fields`).
        title: Figure title.
        log_y: Logarithmic y axes (sizes span from 3 to over 1000 pixels).
        height: Figure height in pixels.

    Returns:
        Two stacked panels sharing the depth axis: size (height, and width where it differs) with the
        input size as a dotted line, and stride.

    Raises:
        ValueError: ``fields`` is empty.
    """
    _check_fields(fields)
    depth = np.arange(1, len(fields) + 1)
    rfs = list(fields.values())
    hover = _hover_rows(fields)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    sizes_h = [rf.size_hw[0] for rf in rfs]
    sizes_w = [rf.size_hw[1] for rf in rfs]
    square = sizes_h == sizes_w
    fig.add_trace(_line(depth, sizes_h, "size" if square else "size (height)", COLORS["size"], hover), 1, 1)
    if not square:
        fig.add_trace(_line(depth, sizes_w, "size (width)", COLORS["size_w"], hover, dash="dash"), 1, 1)
    strides = [rf.stride_hw[0] for rf in rfs]
    fig.add_trace(_line(depth, strides, "stride", COLORS["stride"], hover), 2, 1)
    side = rfs[0].input_hw[0]
    fig.add_trace(
        go.Scatter(
            x=[0.5, len(rfs) + 0.5],
            y=[side, side],
            mode="lines",
            line={"dash": "dot", "color": COLORS["input_line"]},
            name=f"input ({side} px)",
            hovertemplate=f"input size {side} px<extra></extra>",
        ),
        1,
        1,
    )
    fig.update_yaxes(title_text="receptive field (px)", type="log" if log_y else "linear", row=1, col=1)
    fig.update_yaxes(title_text="stride (px)", type="log" if log_y else "linear", row=2, col=1)
    fig.update_xaxes(title_text="depth (convolution and pooling layers, in order)", row=2, col=1)
    fig.update_layout(
        title=title, height=height, hovermode="closest", margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10}
    )
    return fig


def _line(
    x: Sequence[float], y: Sequence[float], name: str, color: str, hover: list[str], *, dash: str = "solid"
) -> go.Scatter:
    return go.Scatter(
        x=list(x),
        y=list(y),
        mode="lines+markers",
        name=name,
        line={"color": color, "dash": dash},
        marker={"size": 5},
        customdata=hover,
        hovertemplate="%{customdata}<extra></extra>",
    )


def comparison_figure(
    models: Mapping[str, Mapping[str, ReceptiveField]], *, title: str | None = None, height: int = 520
) -> go.Figure:
    """Receptive-field size and stride against relative depth for several models side by side.

    Depth is the layer's position divided by the number of layers, so deep and shallow networks span
    the same axis; hover names the layer.

    Args:
        models: ``{model name: {layer: ReceptiveField}}``.
        title: Figure title.
        height: Figure height in pixels.

    Returns:
        Two stacked panels (size, stride; logarithmic), one line per model.

    Raises:
        ValueError: No models, or a model without layers.
    """
    if not models:
        raise ValueError("Choose at least one model to compare.")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    for i, (name, fields) in enumerate(models.items()):
        _check_fields(fields)
        rfs = list(fields.values())
        depth = np.arange(1, len(rfs) + 1) / len(rfs)
        hover = [f"{name} · {row}" for row in _hover_rows(fields)]
        color = _SERIES[i % len(_SERIES)]
        size = _line(depth, [max(rf.size_hw) for rf in rfs], name, color, hover)
        stride = _line(depth, [max(rf.stride_hw) for rf in rfs], name, color, hover)
        stride.showlegend = False
        size.legendgroup = stride.legendgroup = name
        fig.add_trace(size, 1, 1)
        fig.add_trace(stride, 2, 1)
    fig.update_yaxes(title_text="receptive field (px)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="stride (px)", type="log", row=2, col=1)
    fig.update_xaxes(title_text="relative depth (0 = input, 1 = last layer)", range=[0, 1.02], row=2, col=1)
    fig.update_layout(
        title=title, height=height, hovermode="closest", margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10}
    )
    return fig


def _unit_centres(stack: ConvStack1D) -> list[np.ndarray]:
    """x position of every unit of every level: the centre of its receptive field, in input units."""
    centres, jump, size = [np.arange(stack.lengths[0], dtype=float)], 1, 1
    for level, (k, s, d) in enumerate(zip(stack.kernel_sizes, stack.strides, stack.dilations, strict=True), 1):
        size += (k - 1) * d * jump
        centres.append(np.arange(stack.lengths[level]) * jump * s + (size - 1) / 2)
        jump *= s
    return centres


def dilation_figure(stack: ConvStack1D, *, title: str | None = None, height: int | None = None) -> go.Figure:
    """A 1-D stack of convolutions: which units feed one output unit.

    Each level is a row of units (the input at the bottom), each unit placed at the centre of its own
    receptive field; the connections into the chosen output unit are drawn, the units on them are
    coloured and the input units that feed it are labelled with the number of paths from them.

    Args:
        stack: From :func:`~vizlib.receptive_field.conv_stack_1d`.
        title: Figure title (default: the receptive field in words).
        height: Figure height in pixels (default: grows with the number of layers).

    Returns:
        The figure.
    """
    centres = _unit_centres(stack)
    fig = go.Figure()
    ex: list[float | None] = []
    ey: list[float | None] = []
    for layer, links in enumerate(stack.edges, start=1):
        for parent, child in links:
            ex += [float(centres[layer][parent]), float(centres[layer - 1][child]), None]
            ey += [layer, layer - 1, None]
    fig.add_trace(
        go.Scatter(
            x=ex, y=ey, mode="lines", line={"color": COLORS["edge"], "width": 1.5}, name="connections", hoverinfo="skip"
        )
    )
    paths = np.asarray(stack.paths)
    for level, xs in enumerate(centres):
        active = set(stack.feeds[level])
        colors = [COLORS["unit"] if i in active else COLORS["idle"] for i in range(len(xs))]
        if level == 0:
            hover = [
                f"input {i}: {paths[i]} path(s) to the output" if paths[i] else f"input {i}" for i in range(len(xs))
            ]
            text = [str(paths[i]) if paths[i] else "" for i in range(len(xs))]
        else:
            hover = [f"layer {level}, unit {i}" for i in range(len(xs))]
            text = None
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[level] * len(xs),
                mode="markers+text" if text else "markers",
                marker={"size": 13 if level == len(centres) - 1 else 10, "color": colors, "line": {"width": 0}},
                text=text,
                textposition="bottom center",
                name="input" if level == 0 else f"layer {level}",
                hovertext=hover,
                hoverinfo="text",
                showlegend=False,
            )
        )
    ticks = ["input"] + [
        f"layer {i}: k={k}, s={s}, d={d} → RF {r}"
        for i, (k, s, d, r) in enumerate(
            zip(stack.kernel_sizes, stack.strides, stack.dilations, stack.growth, strict=True), 1
        )
    ]
    fig.update_yaxes(tickvals=list(range(len(ticks))), ticktext=ticks, range=[-0.8, len(ticks) - 0.5], zeroline=False)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    n_in = len(stack.feeds[0])
    gaps = f" ({n_in} connected, the rest fall in dilation gaps)" if n_in != stack.receptive_field else ""
    fig.update_layout(
        title=title or f"The output unit's receptive field spans {stack.receptive_field} inputs{gaps}",
        height=height or 140 + 70 * len(ticks),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        plot_bgcolor="white",
    )
    return fig


def dilation_grid_figure(stack: ConvStack1D, *, title: str | None = None, height: int = 420) -> go.Figure:
    """The 2-D version of a stack (the same kernels along both axes): input pixels feeding one output.

    The number of paths from each input pixel is the product of the 1-D counts; its spread shows why
    the effective receptive field is concentrated in the middle.

    Args:
        stack: From :func:`~vizlib.receptive_field.conv_stack_1d`.
        title: Figure title.
        height: Figure height in pixels.

    Returns:
        A heatmap of path counts over the input grid (zero: not in the receptive field).
    """
    paths = np.asarray(stack.paths, dtype=float)
    grid = np.outer(paths, paths)
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            colorscale=[[0.0, "#FFFFFF"], [1e-9, "#DFF2EA"], [1.0, COLORS["unit"]]],
            zmin=0.0,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": "paths"}, "thickness": 12},
            hovertemplate="input (%{y}, %{x}): %{z:.0f} path(s)<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=False)
    fig.update_xaxes(constrain="domain", showticklabels=False)
    fig.update_layout(
        title=title or f"2-D: the output unit sees {stack.receptive_field}×{stack.receptive_field} inputs",
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig
