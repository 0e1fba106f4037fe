"""Figures for the digits page: the whole network at once, the probabilities, the preprocessing steps,
and what feeds a chosen unit.

The network figure is one plotly figure: a heatmap per stage (maps tiled in a grid, dense layers as
a block of cells, the last layer as probability bars), with an invisible marker on every unit so that
hovering names the unit and clicking selects it (Streamlit reports clicks on markers and bars, not on
heatmap cells). Each marker's ``customdata`` is ``[stage number, *unit index]``;
:func:`clicked_unit` turns a Streamlit selection back into a :class:`~vizlib.digits.Unit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.digits import DrawingSteps
from vizlib.digits.view import DigitFlow, Stage, Unit, UnitSources

__all__ = [
    "ACCENT",
    "clicked_unit",
    "network_figure",
    "patch_figure",
    "preprocessing_figure",
    "probabilities_figure",
    "sources_figure",
    "stage_label",
    "steps_caption",
    "unit_label",
]

#: Colour of the predicted class and of positive contributions.
ACCENT = "#0072B2"
_NEGATIVE = "#D55E00"
_HIGHLIGHT = "#E69F00"
_SOURCE = "#CC79A7"
_MUTED = "#A6BDD7"
_GRAY = [[0.0, "black"], [1.0, "white"]]
_ACTIVATION = "Viridis"
_DIVERGING = "RdBu"
# Paper-coordinate rows of the network figure: maps on top, dense layers below.
_ROWS = ((0.50, 0.94), (0.06, 0.34))
_GAP = 0.035


# --------------------------------------------------------------------------------------------- labels


def stage_label(stage: Stage) -> str:
    """A stage's name for people: ``"conv1 + ReLU"``; the last dense layer reads ``"fc3 → softmax"``."""
    return stage.title


def unit_label(unit: Unit) -> str:
    """A unit's name for people, e.g. ``"conv1 map 3, row 10, col 12"`` or ``"fc1 unit 5"``."""
    if unit.stage == "input":
        return f"input pixel row {unit.index[1]}, col {unit.index[2]}"
    if len(unit.index) == 3:
        c, y, x = unit.index
        return f"{unit.stage} map {c}, row {y}, col {x}"
    return f"{unit.stage} unit {unit.index[0]}"


def _panel_title(flow: DigitFlow, stage: Stage) -> str:
    if stage.kind == "input":
        return f"input {stage.shape[1]}×{stage.shape[2]}"
    if stage is flow.stages[-1]:
        return f"{stage.title} → softmax: P(digit)"
    if stage.spatial:
        return f"{stage.title} · {stage.shape[0]} × {stage.shape[1]}×{stage.shape[2]}"
    return f"{stage.title} · {stage.shape[0]} units"


# --------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Grid:
    """How a stage's units are laid out as one image: tiles of ``h x w`` in ``rows x cols``, 1-cell gaps."""

    rows: int
    cols: int
    h: int
    w: int

    @property
    def height(self) -> int:
        return self.rows * (self.h + 1) - 1

    @property
    def width(self) -> int:
        return self.cols * (self.w + 1) - 1


def _grid(stage: Stage) -> _Grid:
    if stage.spatial:
        c, h, w = stage.shape
        cols = 2 ** int(math.floor(math.log2(math.sqrt(c)))) if c > 1 else 1
        return _Grid(math.ceil(c / cols), cols, h, w)
    n = stage.shape[0]
    rows = max(1, round(math.sqrt(n / 4)))
    return _Grid(1, 1, rows, math.ceil(n / rows))


def _unit_positions(stage: Stage, grid: _Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(index array [size, ndim], row, col)`` of every unit in the stage's image, in flat order."""
    index = np.stack(np.unravel_index(np.arange(stage.size), stage.shape), axis=1)
    if stage.spatial:
        c, y, x = index.T
        row = (c // grid.cols) * (grid.h + 1) + y
        col = (c % grid.cols) * (grid.w + 1) + x
    else:
        row, col = index[:, 0] // grid.w, index[:, 0] % grid.w
    return index, row, col


def _image_of(values: np.ndarray, stage: Stage, grid: _Grid) -> np.ndarray:
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    _, row, col = _unit_positions(stage, grid)
    out[row, col] = values.reshape(-1)
    return out


def _cell(stage: Stage, grid: _Grid, index: Sequence[int]) -> tuple[int, int]:
    if stage.spatial:
        c, y, x = index
        return (c // grid.cols) * (grid.h + 1) + y, (c % grid.cols) * (grid.w + 1) + x
    return index[0] // grid.w, index[0] % grid.w


def _domains(aspects: Sequence[float], widths: tuple[float, float]) -> list[tuple[float, float]]:
    """Split ``widths`` into panels proportional to ``aspects`` with gaps between them."""
    lo, hi = widths
    room = hi - lo - _GAP * (len(aspects) - 1)
    unit = room / sum(aspects)
    out, x = [], lo
    for a in aspects:
        out.append((x, x + a * unit))
        x += a * unit + _GAP
    return out


def _axis_names(n: int) -> tuple[str, str]:
    return ("xaxis", "yaxis") if n == 1 else (f"xaxis{n}", f"yaxis{n}")


def _refs(n: int) -> tuple[str, str]:
    return ("x", "y") if n == 1 else (f"x{n}", f"y{n}")


# --------------------------------------------------------------------------------------------- network


def network_figure(flow: DigitFlow, *, selected: UnitSources | None = None, height: int = 480) -> go.Figure:
    """The whole network at once: input, every map, the dense layers and the class probabilities.

    Maps are tiled per stage (each stage on its own colour scale from 0 to its largest value); dense
    layers are blocks of cells; the last layer is a bar per class. Hovering a unit names it with its
    value; clicking selects it (see :func:`clicked_unit`).

    Args:
        flow: From :func:`vizlib.digits.digit_flow`.
        selected: What feeds the chosen unit (:func:`vizlib.digits.unit_sources`): the unit is
            outlined, its input patch framed on the input, and its strongest sources marked.
        height: Figure height in pixels.

    Returns:
        The figure.
    """
    stages = flow.stages
    last = stages[-1]
    top = [s for s in stages if s.spatial]
    bottom = [s for s in stages if not s.spatial]
    grids = {s.name: _grid(s) for s in stages if s is not last}
    aspects_top = [grids[s.name].width / grids[s.name].height for s in top]
    aspects_bottom = [grids[s.name].width / grids[s.name].height for s in bottom[:-1]] + [2.2]
    domains = dict(zip([s.name for s in top], _domains(aspects_top, (0.0, 1.0)), strict=True))
    domains.update(zip([s.name for s in bottom], _domains(aspects_bottom, (0.0, 1.0)), strict=True))
    fig = go.Figure()
    layout: dict[str, Any] = {}
    axis_of: dict[str, int] = {}
    for number, stage in enumerate(stages, start=1):
        axis_of[stage.name] = number
        xname, yname = _axis_names(number)
        xref, yref = _refs(number)
        row = _ROWS[0] if stage.spatial else _ROWS[1]
        title = {"text": _panel_title(flow, stage), "font": {"size": 12}, "standoff": 4}
        values = flow.activations[stage.name]
        if stage is last:
            _add_output_bars(fig, flow, number - 1, xref, yref, selected)
            layout[xname] = {"domain": domains[stage.name], "anchor": yref, "title": title, "type": "category",
                             "tickfont": {"size": 11}, "fixedrange": True, "ticks": ""}
            layout[yname] = {"domain": row, "anchor": xref, "range": [0, 1.05], "showticklabels": False,
                             "showgrid": False, "zeroline": False, "fixedrange": True, "ticks": ""}
            continue
        grid = grids[stage.name]
        image = _image_of(values, stage, grid)
        peak = float(np.nanmax(image)) if np.isfinite(image).any() else 0.0
        fig.add_trace(go.Heatmap(
            z=image, xaxis=xref, yaxis=yref, colorscale=_GRAY if stage.kind == "input" else _ACTIVATION,
            zmin=0.0, zmax=peak if peak > 0 else 1.0, showscale=False, hoverinfo="skip", hoverongaps=False,
        ))
        index, rows, cols = _unit_positions(stage, grid)
        custom = _small_ints(np.concatenate([np.full((stage.size, 1), number - 1), index], axis=1))
        fig.add_trace(go.Scatter(
            x=_small_ints(cols), y=_small_ints(rows), xaxis=xref, yaxis=yref, mode="markers",
            marker={"size": 4, "opacity": 0, "color": values.reshape(-1).astype(np.float32)},
            customdata=custom, hovertemplate=_hover(stage), showlegend=False, name=stage.name,
        ))
        layout[xname] = {"domain": domains[stage.name], "anchor": yref, "side": "top", "title": title,
                         "showticklabels": False, "showgrid": False, "zeroline": False, "constrain": "domain",
                         "ticks": "", "range": [-0.5, grid.width - 0.5]}
        layout[yname] = {"domain": row, "anchor": xref, "showticklabels": False, "showgrid": False, "ticks": "",
                         "zeroline": False, "scaleanchor": xref, "constrain": "domain",
                         "range": [grid.height - 0.5, -0.5]}
    fig.update_layout(
        **layout, height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
        clickmode="event+select", dragmode=False, hovermode="closest", plot_bgcolor="white",
        shapes=_selection_shapes(flow, grids, axis_of, selected) if selected is not None else [],
    )
    return fig


def _small_ints(values: np.ndarray) -> np.ndarray:
    """The narrowest unsigned dtype that holds ``values``: figures travel as typed arrays, so this keeps them small."""
    top = int(values.max()) if values.size else 0
    return values.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)


def _hover(stage: Stage) -> str:
    value = "value %{marker.color:.3f}<extra></extra>"
    if stage.kind == "input":
        return "input row %{customdata[2]}, col %{customdata[3]}<br>" + value
    if stage.spatial:
        return f"{stage.title}<br>map %{{customdata[1]}}, row %{{customdata[2]}}, col %{{customdata[3]}}<br>" + value
    return f"{stage.title}<br>unit %{{customdata[1]}}<br>" + value


def _add_output_bars(fig: go.Figure, flow: DigitFlow, stage_number: int, xref: str, yref: str,
                     selected: UnitSources | None) -> None:
    probs = [float(p) for p in flow.probabilities]
    colors = [ACCENT if i == flow.predicted else _MUTED for i in range(len(probs))]
    widths = [0.0] * len(probs)
    if selected is not None and selected.unit.stage == flow.stages[-1].name:
        widths[selected.unit.index[0]] = 3.0
    fig.add_trace(go.Bar(
        x=list(flow.categories), y=probs, xaxis=xref, yaxis=yref,
        marker={"color": colors, "line": {"color": _HIGHLIGHT, "width": widths}},
        customdata=[[stage_number, i] for i in range(len(probs))],
        hovertemplate="digit %{x}: %{y:.1%}<br>logit %{text}<extra></extra>",
        text=[f"{v:.2f}" for v in flow.activations[flow.stages[-1].name].tolist()], textposition="none",
        showlegend=False, name="output",
    ))


def _rect(xref: str, yref: str, row: float, col: float, h: float, w: float, color: str, *, dash: str = "solid",
          width: float = 2.0) -> dict:
    return {"type": "rect", "xref": xref, "yref": yref, "x0": col - 0.5, "x1": col + w - 0.5, "y0": row - 0.5,
            "y1": row + h - 0.5, "line": {"color": color, "width": width, "dash": dash}}


def _selection_shapes(flow: DigitFlow, grids: dict[str, _Grid], axis_of: dict[str, int],
                      selected: UnitSources) -> list[dict]:
    shapes = []
    stage = flow.stage(selected.unit.stage)
    inp = flow.stages[0]
    xref, yref = _refs(axis_of[inp.name])
    t, left, b, r = selected.patch
    if stage.spatial:
        shapes.append(_rect(xref, yref, t, left, b - t, r - left, _HIGHLIGHT, dash="dash"))
    for source in selected.sources:
        src_stage = flow.stage(source.unit.stage)
        if src_stage.kind == "input" or src_stage.name not in grids:
            continue  # on the input, the dashed patch already shows where the unit looks
        sx, sy = _refs(axis_of[src_stage.name])
        row, col = _cell(src_stage, grids[src_stage.name], source.unit.index)
        shapes.append(_rect(sx, sy, row, col, 1, 1, _SOURCE, width=1.5))
    if stage is not flow.stages[-1]:
        ux, uy = _refs(axis_of[stage.name])
        row, col = _cell(stage, grids[stage.name], selected.unit.index)
        shapes.append(_rect(ux, uy, row, col, 1, 1, _HIGHLIGHT, width=2.5))
    return shapes


def clicked_unit(stages: Sequence[Stage], selection: Mapping[str, Any] | None) -> Unit | None:
    """The unit a click on :func:`network_figure` selected, from Streamlit's selection state.

    Args:
        stages: The stages of the flow the figure was drawn from (``flow.stages``).
        selection: ``event.selection`` of ``st.plotly_chart(..., on_select=...)`` (or ``None``).

    Returns:
        The unit of the last clicked point, or ``None`` when nothing usable was clicked.
    """
    points = (selection or {}).get("points") or []
    for point in reversed(points):
        data = point.get("customdata")
        if isinstance(data, Mapping):  # typed arrays arrive as {"0": .., "1": ..}
            data = [data[k] for k in sorted(data, key=int)]
        if not isinstance(data, Sequence) or len(data) < 2:
            continue
        try:
            numbers = [int(v) for v in data]
        except (TypeError, ValueError):
            continue
        if not 0 <= numbers[0] < len(stages):
            continue
        stage = stages[numbers[0]]
        index = tuple(numbers[1 : 1 + len(stage.shape)])
        if len(index) == len(stage.shape) and all(0 <= i < n for i, n in zip(index, stage.shape, strict=True)):
            return Unit(stage.name, index)
    return None


# --------------------------------------------------------------------------------------------- probabilities


def probabilities_figure(flow: DigitFlow, height: int = 300) -> go.Figure:
    """The ten class probabilities as bars, the predicted digit highlighted.

    Args:
        flow: From :func:`vizlib.digits.digit_flow`.
        height: Figure height in pixels.
    """
    probs = [float(p) for p in flow.probabilities]
    fig = go.Figure(go.Bar(
        x=list(flow.categories), y=probs,
        marker_color=[ACCENT if i == flow.predicted else _MUTED for i in range(len(probs))],
        text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
        hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
    ))
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 10, "b": 40},
        xaxis={"title": "digit", "type": "category"},
        yaxis={"range": [0, 1.15], "tickformat": ".0%", "tickvals": [0, 0.5, 1], "title": "probability"},
    )
    return fig


# --------------------------------------------------------------------------------------------- preprocessing


def _display(img: np.ndarray, side: int = 112) -> tuple[np.ndarray, int]:
    step = max(1, math.ceil(max(img.shape) / side))
    return img[::step, ::step], step


def preprocessing_figure(steps: DrawingSteps, height: int = 260) -> go.Figure:
    """The four steps of MNIST-style preprocessing side by side.

    1. the ink with its bounding box, 2. cropped to the box, 3. scaled so its longest side is 20 px,
    4. pasted into 28x28 with its centre of mass (marked) at the centre (the cross).

    Args:
        steps: From :func:`vizlib.digits.drawing_steps` (not empty).
        height: Figure height in pixels.
    """
    ink, step = _display(steps.ink)
    (h, w), (sh, sw) = steps.cropped.shape, steps.scaled.shape
    titles = [
        f"1 · ink, box {h}×{w} px",
        f"2 · cropped {h}×{w}",
        f"3 · scaled to {sh}×{sw} (20 px)",
        "4 · centred in 28×28",
    ]
    fig = make_subplots(rows=1, cols=4, subplot_titles=titles, horizontal_spacing=0.04)
    panels = [(ink, step), (steps.cropped, 1), (steps.scaled, 1), (steps.result, 1)]
    for col, (img, dx) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(z=img.astype(np.float32), dx=dx, dy=dx, x0=0, y0=0, colorscale=_GRAY, zmin=0,
                                 zmax=1, showscale=False, hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", row=1, col=col)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                         scaleanchor=f"x{'' if col == 1 else col}", constrain="domain", row=1, col=col)
    if steps.bbox is not None:
        t, left, b, r = steps.bbox
        fig.add_shape(type="rect", x0=left - 0.5, x1=r - 0.5, y0=t - 0.5, y1=b - 0.5,
                      line={"color": _HIGHLIGHT, "width": 2}, row=1, col=1)
        com_y = steps.offset[0] + steps.centre_of_mass[0]
        com_x = steps.offset[1] + steps.centre_of_mass[1]
        centre = (steps.result.shape[0] - 1) / 2
        fig.add_trace(go.Scatter(x=[centre], y=[centre], mode="markers", showlegend=False,
                                 marker={"symbol": "cross-thin", "size": 16, "line": {"color": ACCENT, "width": 2}},
                                 hovertemplate="centre of the field (%{y}, %{x})<extra></extra>"), row=1, col=4)
        ring = {"symbol": "circle-open", "size": 10, "line": {"color": _HIGHLIGHT, "width": 2}}
        fig.add_trace(go.Scatter(x=[com_x], y=[com_y], mode="markers", showlegend=False, marker=ring,
                                 hovertemplate="centre of mass (%{y:.1f}, %{x:.1f})<extra></extra>"), row=1, col=4)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, plot_bgcolor="white")
    return fig


def steps_caption(steps: DrawingSteps) -> str:
    """One sentence with the numbers of each preprocessing step (Markdown)."""
    if steps.bbox is None:
        return "The canvas is empty."
    t, left, b, r = steps.bbox
    (h, w), (sh, sw) = steps.cropped.shape, steps.scaled.shape
    cy, cx = steps.centre_of_mass
    oy, ox = steps.offset
    return (
        f"**Crop** to the ink: rows {t}–{b - 1}, cols {left}–{r - 1} ({h}×{w} px) · "
        f"**scale** the longest side to 20 px: {sh}×{sw} · "
        f"**centre of mass** at ({cy:.1f}, {cx:.1f}) in the scaled digit · "
        f"**pad** to 28×28 with the digit's corner at ({oy}, {ox}), so the mass sits at "
        f"({oy + cy:.1f}, {ox + cx:.1f}) ≈ the centre (13.5, 13.5)."
    )


# --------------------------------------------------------------------------------------------- one unit


def sources_figure(sources: UnitSources, height: int | None = None) -> go.Figure:
    """The unit's strongest incoming connections as bars of ``weight × activation``.

    Args:
        sources: From :func:`vizlib.digits.unit_sources`.
        height: Figure height in pixels (default: from the number of bars).
    """
    rows = list(sources.sources)[::-1]
    labels = [unit_label(s.unit) for s in rows]
    values = [s.contribution for s in rows]
    fig = go.Figure(go.Bar(
        x=values, y=labels, orientation="h",
        marker_color=[ACCENT if v >= 0 else _NEGATIVE for v in values],
        customdata=[[s.weight, s.activation] for s in rows],
        hovertemplate="%{y}<br>weight %{customdata[0]:.3f} × activation %{customdata[1]:.3f}"
                      "<br>= %{x:.3f}<extra></extra>",
    ))
    fig.update_layout(
        height=height or 80 + 26 * max(len(rows), 1),
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
        title={"text": f"Strongest inputs of {unit_label(sources.unit)}", "font": {"size": 13}},
        xaxis={"title": "weight × activation", "zeroline": True},
        yaxis={"automargin": True, "type": "category"},
    )
    return fig


def patch_figure(flow: DigitFlow, sources: UnitSources, height: int = 230) -> go.Figure:
    """Where a unit looks: its patch on the input, and for a window unit the window's numbers.

    For a convolution unit the panels are the input with the patch, then for its strongest input
    channel the values under the window, the kernel, and their product (which sums, over channels,
    plus the bias, to the unit's value before the ReLU). For a pooling unit: the window it takes the
    maximum of. For a dense unit: the input (it sees all of it).

    Args:
        flow: From :func:`vizlib.digits.digit_flow`.
        sources: From :func:`vizlib.digits.unit_sources` for a unit of ``flow``.
        height: Figure height in pixels.
    """
    stage = flow.stage(sources.unit.stage)
    panels: list[tuple[str, np.ndarray, str | list, float | None]] = []
    t, left, b, r = sources.patch
    if sources.kernel is not None and sources.window is not None:
        products = (sources.kernel * sources.window).reshape(sources.kernel.shape[0], -1).sum(axis=1)
        ch = int(np.argmax(np.abs(products)))
        prev = flow.stages[flow.stages.index(stage) - 1]
        where = "input" if prev.kind == "input" else f"{prev.name} map {ch}"
        window, kernel = sources.window[ch], sources.kernel[ch]
        span = float(np.abs(kernel).max()) or 1.0
        prod = window * kernel
        pspan = float(np.abs(prod).max()) or 1.0
        panels += [
            (f"{where} under the window", window, _GRAY if prev.kind == "input" else _ACTIVATION, None),
            (f"kernel ({stage.name} map {sources.unit.index[0]})", kernel, _DIVERGING, span),
            (f"product: sums to {products[ch]:.2f}", prod, _DIVERGING, pspan),
        ]
    elif sources.window is not None:
        prev = flow.stages[flow.stages.index(stage) - 1]
        panels.append((f"{prev.name} map {sources.unit.index[0]} window (max → {sources.value:.2f})",
                       sources.window[0], _ACTIVATION, None))
    titles = [f"input: rows {t}–{b - 1}, cols {left}–{r - 1}"] + [p[0] for p in panels]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.06)
    fig.add_trace(go.Heatmap(z=flow.activations[flow.stages[0].name][0], colorscale=_GRAY, zmin=0, zmax=1,
                             showscale=False, hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>"), 1, 1)
    fig.add_shape(type="rect", x0=left - 0.5, x1=r - 0.5, y0=t - 0.5, y1=b - 0.5,
                  line={"color": _HIGHLIGHT, "width": 2, "dash": "dash"}, row=1, col=1)
    for col, (_, values, scale, span) in enumerate(panels, start=2):
        kwargs = {"zmin": -span, "zmax": span, "zmid": 0.0} if span is not None else {"zmin": 0.0}
        fig.add_trace(go.Heatmap(z=values.astype(np.float32), colorscale=scale, showscale=False,
                                 hovertemplate="%{z:.3f}<extra></extra>", **kwargs), 1, col)
    for col in range(1, len(titles) + 1):
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", row=1, col=col)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                         scaleanchor=f"x{'' if col == 1 else col}", constrain="domain", row=1, col=col)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, plot_bgcolor="white")
    return fig
