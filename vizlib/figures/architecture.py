"""Figures of the Architectures page: the models' bubble chart, a model's stage diagram, its cost split,
and a building block's options side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from vizlib.architecture.anatomy import Anatomy, Block
from vizlib.architecture.blocks import Comparison
from vizlib.architecture.catalog import ModelPoint
from vizlib.architecture.walk import ModelCost

__all__ = ["KIND_COLOURS", "bubble_chart", "comparison_bars", "cost_split", "stage_diagram"]

#: Colour-blind-safe colours (Okabe-Ito) of the layer kinds.
KIND_COLOURS = {"conv": "#0072B2", "dense": "#D55E00", "other": "#999999"}
_BLOCK_COLOURS = ["#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#0072B2", "#D55E00"]


def _label_positions(points: Sequence[ModelPoint]) -> list[str]:
    """Labels above their bubble, except below where a close, more accurate neighbour's label is above."""
    placed: list[tuple[float, float]] = []
    positions = ["top center"] * len(points)
    for i in sorted(range(len(points)), key=lambda i: -points[i].top1):
        x, y = math.log10(max(points[i].macs, 1)), points[i].top1
        if any(abs(x - px) < 0.25 and abs(y - py) < 3 for px, py in placed):
            positions[i] = "bottom center"
        else:
            placed.append((x, y))
    return positions


def bubble_chart(points: Sequence[ModelPoint], selected: str | None = None) -> go.Figure:
    """ImageNet top-1 against multiply-accumulates (log axis); bubble area ∝ parameters; one trace.

    Each point's ``customdata`` is ``[registry name, source]``; the point index follows ``points``.
    """
    biggest = max((p.params for p in points), default=1)
    ticks = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    sizes = [12 + 58 * math.sqrt(p.params / biggest) for p in points]
    fig = go.Figure(
        go.Scatter(
            x=[p.macs / 1e9 for p in points],
            y=[p.top1 for p in points],
            mode="markers+text",
            text=[p.title.split(" (")[0] for p in points],
            textposition=_label_positions(points),
            customdata=[[p.name, p.source] for p in points],
            marker={
                "size": sizes,
                "color": ["#D55E00" if p.name == selected else "#0072B2" for p in points],
                "opacity": 0.6,
                "line": {"width": [3 if p.name == selected else 1 for p in points], "color": "#333"},
            },
            selected={"marker": {"opacity": 0.85}},
            unselected={"marker": {"opacity": 0.45}, "textfont": {"color": "#444"}},
            hovertemplate=[
                f"<b>{p.title}</b><br>top-1 {p.top1:.1f}%<br>{p.macs / 1e9:.2f} G multiply-accumulates"
                f"<br>{p.params / 1e6:.1f} M parameters<br>at {p.input_size[0]}×{p.input_size[1]}<extra></extra>"
                for p in points
            ],
        )
    )
    fig.update_layout(
        xaxis={
            "type": "log",
            "title": "compute: multiply-accumulates per image (G, log scale)",
            "tickvals": ticks,
            "ticktext": [f"{t:g}" for t in ticks],
        },
        yaxis={"title": "ImageNet top-1 accuracy (%)"},
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
        clickmode="event+select",
        dragmode=False,
        showlegend=False,
    )
    return fig


def _shape(shape: tuple[int, ...] | None) -> str:
    return "×".join(str(s) for s in shape) if shape else "?"


def _label(b: Block) -> str:
    rep = f" ×{b.repeats}" if b.repeats > 1 else ""
    extra = []
    if b.shortcut:
        extra.append(f"{b.shortcut} shortcut")
    if b.branches > 1:
        extra.append(f"{b.branches} branches")
    more = f" · {', '.join(extra)}" if extra else ""
    numbers = f"{_shape(b.out_shape)} · {b.params / 1e6:.2f} M params · {b.macs / 1e6:.0f} M MACs"
    return f"<b>{b.type}{rep}</b>{more}<br>{numbers}"


def stage_diagram(anatomy: Anatomy) -> go.Figure:
    """The model as a column of blocks grouped by stage (resolution), top to bottom.

    Each block is a box (its width ∝ its share of the MACs, at least a sliver); repeats are written ×n,
    residual shortcuts are drawn as arcs on the right and inception branches as a fan on the left.
    """
    fig = go.Figure()
    total = max(anatomy.cost.macs, 1)
    y = 0.0
    types: dict[str, str] = {}
    hover_x, hover_y, hover_text = [], [], []
    for s, stage in enumerate(anatomy.stages):
        top = y
        for b in stage.blocks:
            colour = types.setdefault(b.type, _BLOCK_COLOURS[len(types) % len(_BLOCK_COLOURS)])
            half = 0.08 + 0.42 * math.sqrt(b.macs / total)
            fig.add_shape(type="rect", x0=0.5 - half, x1=0.5 + half, y0=y - 0.4, y1=y + 0.4,
                          fillcolor=colour, opacity=0.55, line={"color": "#333", "width": 1})  # fmt: skip
            fig.add_annotation(x=0.5, y=y, text=_label(b), showarrow=False, font={"size": 11})
            if b.shortcut:
                dash = "solid" if b.shortcut == "identity" else "dash"
                edge = 0.5 + half + 0.02
                fig.add_shape(type="path", path=f"M {edge} {y + 0.35} Q {edge + 0.18} {y} {edge} {y - 0.35}",
                              line={"color": "#D55E00", "width": 2, "dash": dash})  # fmt: skip
            if b.branches > 1:
                for j in range(b.branches):
                    yy = y - 0.3 + 0.6 * j / (b.branches - 1)
                    x1 = 0.5 - half - 0.02
                    fig.add_shape(type="line", x0=x1 - 0.12, y0=y, x1=x1, y1=yy, line={"color": "#009E73", "width": 2})
            hover_x.append(0.5)
            hover_y.append(y)
            rep = f" ×{b.repeats}" if b.repeats > 1 else ""
            hover_text.append(f"{b.name} ({b.type}{rep})<br>in {_shape(b.in_shape)} → out {_shape(b.out_shape)}"
                              f"<br>{b.params:,} parameters<br>{b.macs:,} MACs")  # fmt: skip
            y -= 1.0
        name = "head" if stage.resolution is None else "×".join(str(r) for r in stage.resolution)
        fig.add_shape(type="rect", x0=-0.2, x1=1.25, y0=y + 0.5, y1=top + 0.5, line={"color": "#bbb", "dash": "dot"},
                      fillcolor="rgba(0,0,0,0)")  # fmt: skip
        fig.add_annotation(x=-0.2, y=top + 0.45, text=f"stage {s + 1}: {name}", showarrow=False, xanchor="left",
                           yanchor="top", font={"size": 10, "color": "#666"})  # fmt: skip
    fig.add_trace(go.Scatter(x=hover_x, y=hover_y, mode="markers", marker={"size": 30, "opacity": 0},
                             hovertext=hover_text, hoverinfo="text", showlegend=False))  # fmt: skip
    fig.update_xaxes(visible=False, range=[-0.25, 1.3])
    fig.update_yaxes(visible=False, range=[y + 0.4, 0.6])
    fig.update_layout(height=max(300, int(46 * -y) + 40), margin={"l": 0, "r": 0, "t": 10, "b": 10},
                      plot_bgcolor="white", dragmode=False)  # fmt: skip
    return fig


def cost_split(cost: ModelCost) -> go.Figure:
    """Where the parameters and the compute go: stacked shares of convolutions, dense layers and the rest."""
    fig = go.Figure()
    totals = {"parameters": max(cost.params, 1), "MACs": max(cost.macs, 1)}
    for kind, colour in KIND_COLOURS.items():
        params, macs = cost.split[kind]
        values = {"parameters": params, "MACs": macs}
        fig.add_trace(go.Bar(
            y=list(values), x=[100 * values[k] / totals[k] for k in values], orientation="h", name=kind,
            marker_color=colour, text=[f"{kind}: {100 * values[k] / totals[k]:.1f}%" for k in values],
            textposition="inside", customdata=[f"{values[k]:,}" for k in values],
            hovertemplate=f"{kind}: %{{customdata}} (%{{x:.1f}}%)<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(barmode="stack", height=190, xaxis={"title": "% of the model", "range": [0, 100]},
                      margin={"l": 10, "r": 10, "t": 10, "b": 40}, legend={"orientation": "h", "y": -0.5})  # fmt: skip
    return fig


def comparison_bars(comparison: Comparison) -> go.Figure:
    """Parameters and MACs of a building block's options side by side (log scale when they differ a lot)."""
    fig = go.Figure()
    labels = [o.label for o in comparison.options]
    for what, colour in (("params", "#009E73"), ("macs", "#0072B2")):
        values = [getattr(o, what) for o in comparison.options]
        fig.add_trace(go.Bar(x=labels, y=values, name="parameters" if what == "params" else "MACs",
                             marker_color=colour, text=[f"{v:,}" for v in values], textposition="outside",
                             cliponaxis=False))  # fmt: skip
    values = [v for o in comparison.options for v in (o.params, o.macs) if v > 0]
    wide = values and max(values) / min(values) > 100
    fig.update_layout(barmode="group", height=300, yaxis={"type": "log" if wide else "linear"},
                      margin={"l": 10, "r": 10, "t": 20, "b": 30}, legend={"orientation": "h"})  # fmt: skip
    return fig
