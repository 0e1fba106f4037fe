"""The Feature maps page's network overview as it was drawn before the picture: a plotly figure with one image
subplot per stage (kept here only so the benchmarks can compare it with :mod:`vizlib.feature_maps.glance`)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.feature_maps import OverviewRow, montage
from vizlib.figures.common import png_data_uri

__all__ = ["OVERVIEW_TILE", "overview_figure", "row_picture"]

#: Tile side the overview aimed for, in pixels.
OVERVIEW_TILE = 56


def row_picture(row: OverviewRow, colormap: str, tile: int) -> tuple[np.ndarray, int]:
    """The row's maps at about ``tile`` pixels a side (every ``stride``-th value, then repeated)."""
    side = max(row.maps.shape[1], row.maps.shape[2])
    stride = max(1, side // tile)
    maps = row.maps[:, ::stride, ::stride]
    upscale = max(1, tile // max(maps.shape[1], maps.shape[2]))
    pic = montage(maps, scale="channel", colormap=colormap, columns=len(row.channels), upscale=upscale, gap=2)
    return pic.image, pic.layout.tile_width


def overview_figure(rows: Sequence[OverviewRow], *, colormap: str = "viridis", tile: int = OVERVIEW_TILE) -> go.Figure:
    """The network overview as a figure: one image subplot per stage, channel numbers as tick labels."""
    if not rows:
        raise ValueError("No stages to show.")
    titles = [f"{r.stage} · {r.layer} · {' × '.join(map(str, r.output_shape))}" for r in rows]
    row_px, gap_px = tile + 24, 56  # each row: its picture, then its channel numbers and the next title
    total = len(rows) * row_px + (len(rows) - 1) * gap_px
    layout = copy.deepcopy(_overview_skeleton(tuple(titles), gap_px / total))
    data = []
    for i, row in enumerate(rows, start=1):
        picture, tile_w = row_picture(row, colormap, tile)
        suffix = "" if i == 1 else str(i)
        data.append({"type": "image", "source": png_data_uri(picture), "hoverinfo": "skip",
                     "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"})
        centres = [(tile_w + 2) * j + tile_w / 2 for j in range(len(row.channels))]
        layout[f"xaxis{suffix}"].update(tickvals=centres, ticktext=[f"#{c}" for c in row.channels], showgrid=False,
                                        tickfont={"size": 10}, ticklen=0)
        layout[f"yaxis{suffix}"].update(showticklabels=False, showgrid=False)
    layout.update(height=total + 50, margin={"l": 10, "r": 10, "t": 30, "b": 20}, showlegend=False)
    return go.Figure(data=data, layout=layout)


@functools.lru_cache(maxsize=16)
def _overview_skeleton(titles: tuple[str, ...], spacing: float) -> dict:
    """The subplot layout (axes, domains, titles) as a plain dict, made once per model."""
    fig = make_subplots(rows=len(titles), cols=1, subplot_titles=list(titles), vertical_spacing=spacing)
    fig.update_annotations(font_size=12, xanchor="left", x=0)
    return fig.layout.to_plotly_json()
