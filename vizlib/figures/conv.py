"""Figures for convolution arithmetic: frames as numbered grids, the convolution matrix, overlap maps.

A frame is first laid out as :class:`Panel` objects (one coloured, numbered grid each); the plotly
builders here and the GIF renderer in :mod:`vizlib.conv_arithmetic.export` both draw those panels, so the slides
and the page show the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.conv_arithmetic import ConvFrame, Frame, TransposedFrame

__all__ = [
    "COLORS",
    "Panel",
    "checkerboard_figure",
    "frame_figure",
    "frame_panels",
    "latex_matrix",
    "matrix_figure",
    "matvec_figure",
    "overlap_figure",
    "panels_figure",
]

#: Cell colours (Okabe-Ito based, readable with colour-vision deficiencies).
COLORS: dict[str, str] = {
    "input": "#ECECEC",
    "padding": "#D5E5F5",
    "outside": "#E3E3E3",
    "tap": "#E69F00",
    "tap_padding": "#F3C57A",
    "hole": "#FFF1C9",
    "kernel": "#56B4E9",
    "done": "#CDEBDC",
    "current": "#009E73",
    "empty": "#F7F7F7",
    "box": "#222222",
}

_BARE_AXIS = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": "", "showline": False}
#: Largest grid side that still gets numbers printed in its cells.
_MAX_TEXT_SIDE = 24


@dataclass(frozen=True, eq=False)
class Panel:
    """One grid of a figure: a colour and a label per cell, plus outlined rectangles.

    Attributes:
        title: Shown above the grid.
        colors: ``(h, w)`` array of ``#RRGGBB`` strings.
        text: ``(h, w)`` array of labels ("" for none).
        hover: ``(h, w)`` array of hover texts.
        boxes: Outlined rectangles as inclusive ``(row0, col0, row1, col1)``.
    """

    title: str
    colors: np.ndarray
    text: np.ndarray
    hover: np.ndarray
    boxes: tuple[tuple[int, int, int, int], ...] = ()


def _fmt(v: float) -> str:
    if np.isnan(v):
        return ""
    if np.isinf(v):
        return "−∞" if v < 0 else "∞"
    if float(v).is_integer():
        return str(int(v)).replace("-", "−")
    return f"{v:.2f}".rstrip("0").replace("-", "−")


def _texts(values: np.ndarray) -> np.ndarray:
    uniques, inverse = np.unique(np.asarray(values, dtype=np.float64), return_inverse=True)
    labels = np.array([_fmt(v) for v in uniques], dtype=object)
    return labels[inverse.reshape(np.shape(values))]


def _full(shape: tuple[int, ...], value: str) -> np.ndarray:
    return np.full(shape, value, dtype=object)


def _span(indices: Sequence[int]) -> tuple[int, int]:
    return min(indices), max(indices)


# --------------------------------------------------------------------------- frame -> panels


def _input_panel(frame: ConvFrame) -> Panel:
    g = frame.grid
    colors = _full(g.shape, COLORS["input"])
    colors[frame.padding_mask] = COLORS["padding"]
    colors[frame.outside_mask] = COLORS["outside"]
    (r0, r1), (c0, c1) = _span(frame.rows), _span(frame.cols)
    foot = np.zeros(g.shape, dtype=bool)
    foot[r0 : r1 + 1, c0 : c1 + 1] = True
    taps = np.zeros(g.shape, dtype=bool)
    taps[np.ix_(frame.rows, frame.cols)] = True
    colors[foot & ~taps & ~frame.padding_mask & ~frame.outside_mask] = COLORS["hole"]
    colors[taps] = COLORS["tap"]
    colors[taps & (frame.padding_mask | frame.outside_mask)] = COLORS["tap_padding"]
    text = _texts(g)
    hover = np.empty(g.shape, dtype=object)
    p = frame.padding
    for (r, c), v in np.ndenumerate(g):
        kind = "padding" if frame.padding_mask[r, c] else "beyond the padding (ceil mode)"
        inside = not (frame.padding_mask[r, c] or frame.outside_mask[r, c])
        hover[r, c] = f"input[{r - p}, {c - p}] = {_fmt(v)}" if inside else f"{kind}: {_fmt(v) or 'ignored'}"
    title = f"Input, padding {p}" + (f", stride {frame.stride}" if frame.stride > 1 else "")
    return Panel(title, colors, text, hover, ((r0, c0, r1, c1),))


def _output_panel(output: np.ndarray, current: tuple[int, int] | None, title: str) -> Panel:
    colors = _full(output.shape, COLORS["empty"])
    colors[~np.isnan(output)] = COLORS["done"]
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    if current is not None:
        colors[current] = COLORS["current"]
        boxes = ((*current, *current),)
    hover = np.empty(output.shape, dtype=object)
    for (r, c), v in np.ndenumerate(output):
        hover[r, c] = f"output[{r}, {c}] = {_fmt(v)}" if not np.isnan(v) else f"output[{r}, {c}]: not yet"
    return Panel(title, colors, _texts(output), hover, boxes)


def _kernel_panel(kernel: np.ndarray, dilation: int, title: str, color: str) -> Panel:
    kh, kw = kernel.shape
    shape = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1)
    colors, text, hover = _full(shape, COLORS["hole"]), _full(shape, "·"), _full(shape, "hole (dilation): skipped")
    for (a, b), v in np.ndenumerate(kernel):
        colors[a * dilation, b * dilation] = color
        text[a * dilation, b * dilation] = _fmt(v)
        hover[a * dilation, b * dilation] = f"w[{a}, {b}] = {_fmt(v)}"
    return Panel(title, colors, text, hover)


def _conv_panels(frame: ConvFrame) -> tuple[Panel, ...]:
    assert frame.kernel is not None
    d = frame.dilation
    kernel = _kernel_panel(
        frame.kernel,
        d,
        f"Kernel {frame.kernel.shape[0]}×{frame.kernel.shape[1]}" + (f", dilation {d}" if d > 1 else ""),
        COLORS["kernel"],
    )
    colors = _full(frame.terms.shape, COLORS["tap"])
    colors[frame.padding_mask[np.ix_(frame.rows, frame.cols)]] = COLORS["tap_padding"]
    hover = np.empty(frame.terms.shape, dtype=object)
    for (a, b), v in np.ndenumerate(frame.terms):
        hover[a, b] = f"{_fmt(frame.window[a, b])} · {_fmt(frame.kernel[a, b])} = {_fmt(v)}"
    products = Panel(f"Products, sum = {_fmt(frame.value)}", colors, _texts(frame.terms), hover)
    output = _output_panel(frame.output, frame.position, "Output")
    return _input_panel(frame), kernel, products, output


def _pool_panels(frame: ConvFrame) -> tuple[Panel, ...]:
    idx = np.ix_(frame.rows, frame.cols)
    pad, out = frame.padding_mask[idx], frame.outside_mask[idx]
    colors = _full(frame.terms.shape, COLORS["tap"])
    colors[pad] = COLORS["tap_padding"]
    colors[out] = COLORS["outside"]
    hover = _full(frame.terms.shape, "")
    hover[pad] = "padding (counted)" if frame.mode == "avg" else "padding (ignored by max)"
    hover[out] = "beyond the padding: ignored"
    if frame.mode == "max":
        colors[(frame.terms == frame.value) & ~pad & ~out] = COLORS["current"]
        title = f"Window: max = {_fmt(frame.value)}"
    else:
        title = f"Window: sum / {frame.divisor} = {_fmt(frame.value)}"
    window = Panel(title, colors, _texts(frame.terms), hover)
    name = "Max" if frame.mode == "max" else "Average"
    return _input_panel(frame), window, _output_panel(frame.output, frame.position, f"{name} pooling output")


def _transposed_panels(frame: TransposedFrame) -> tuple[Panel, ...]:
    h, w = frame.input.shape
    done = np.zeros((h, w), dtype=bool)
    done.ravel()[: frame.index] = True
    colors = _full((h, w), COLORS["input"])
    colors[done] = COLORS["done"]
    colors[frame.position] = COLORS["tap"]
    hover = np.empty((h, w), dtype=object)
    for (r, c), v in np.ndenumerate(frame.input):
        hover[r, c] = f"input[{r}, {c}] = {_fmt(v)}"
    inp = Panel(
        f"Input, stride {frame.stride}", colors, _texts(frame.input), hover, ((*frame.position, *frame.position),)
    )
    contrib = _kernel_panel(frame.contribution, frame.dilation, f"input{list(frame.position)} × kernel", COLORS["tap"])

    canvas, touched, p = frame.canvas, frame.canvas_overlap > 0, frame.padding
    colors = _full(canvas.shape, COLORS["padding"])
    ch, cw = canvas.shape
    oh, ow = frame.output.shape
    colors[p : p + oh, p : p + ow] = COLORS["empty"]
    colors[touched & (colors == COLORS["empty"])] = COLORS["done"]
    taps = np.zeros(canvas.shape, dtype=bool)
    taps[np.ix_(frame.rows, frame.cols)] = True
    colors[taps] = np.where(colors[taps] == COLORS["padding"], COLORS["tap_padding"], COLORS["tap"])
    text = np.where(touched, _texts(canvas), "").astype(object)
    hover = np.empty(canvas.shape, dtype=object)
    for (r, c), v in np.ndenumerate(canvas):
        cropped = not (p <= r < p + oh and p <= c < p + ow)
        where = "cropped by padding" if cropped else f"output[{r - p}, {c - p}]"
        hover[r, c] = f"{where}: {_fmt(v)} from {frame.canvas_overlap[r, c]} products"
    (r0, r1), (c0, c1) = _span(frame.rows), _span(frame.cols)
    boxes = ((r0, c0, r1, c1),)
    title = "Output" + (f" (padding {p} crops the blue cells)" if p else "")
    if frame.output_padding:
        title += f", output padding {frame.output_padding}"
    canvas_panel = Panel(title, colors, text, hover, boxes)
    return inp, contrib, canvas_panel, _overlap_panel(frame.overlap, "Overlap count")


def _overlap_panel(counts: np.ndarray, title: str, vmax: int | None = None) -> Panel:
    vmax = int(vmax if vmax is not None else max(int(counts.max()), 1))
    samples = pcolors.sample_colorscale("Viridis", list(np.linspace(0.0, 1.0, vmax + 1)))
    palette = np.array([_hex(sample) for sample in samples], dtype=object)
    colors = palette[np.clip(counts.astype(np.int64), 0, vmax)]
    hover = np.empty(counts.shape, dtype=object)
    for (r, c), v in np.ndenumerate(counts):
        hover[r, c] = f"output[{r}, {c}]: {v} overlapping products"
    return Panel(title, colors, _texts(counts.astype(float)), hover)


def _hex(rgb: str) -> str:
    r, g, b = (round(float(x)) for x in pcolors.unlabel_rgb(rgb))
    return f"#{r:02X}{g:02X}{b:02X}"


def frame_panels(frame: Frame) -> tuple[Panel, ...]:
    """Lay a frame out as panels: input, kernel or window, products, output (and overlap counts).

    Args:
        frame: A frame from :mod:`vizlib.conv_arithmetic`.

    Returns:
        The panels, left to right.
    """
    if isinstance(frame, TransposedFrame):
        return _transposed_panels(frame)
    if frame.mode == "conv":
        return _conv_panels(frame)
    return _pool_panels(frame)


# --------------------------------------------------------------------------- plotly


def _heatmap(panel: Panel) -> go.Heatmap:
    palette = sorted(set(panel.colors.ravel()))
    index = {c: i for i, c in enumerate(palette)}
    z = np.vectorize(index.__getitem__, otypes=[int])(panel.colors)
    n = len(palette)
    scale = [[pos, c] for i, c in enumerate(palette) for pos in (i / n, (i + 1) / n)]
    show_text = max(panel.colors.shape) <= _MAX_TEXT_SIDE
    return go.Heatmap(
        z=z,
        zmin=-0.5,
        zmax=n - 0.5,
        colorscale=scale,
        showscale=False,
        xgap=1,
        ygap=1,
        text=panel.text if show_text else None,
        texttemplate="%{text}" if show_text else None,
        textfont={"size": 11},
        hovertext=panel.hover,
        hovertemplate="%{hovertext}<extra></extra>",
    )


def panels_figure(panels: Sequence[Panel], *, title: str | None = None, height: int = 380) -> go.Figure:
    """Draw panels side by side as heatmaps with square cells, numbers and outlined boxes.

    Args:
        panels: The panels, left to right.
        title: Figure title.
        height: Figure height in pixels.

    Returns:
        A plotly figure.
    """
    widths = [p.colors.shape[1] for p in panels]
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        column_widths=[w / sum(widths) for w in widths],
        subplot_titles=[p.title for p in panels],
        horizontal_spacing=0.04,
    )
    tallest = max(p.colors.shape[0] for p in panels)
    for col, panel in enumerate(panels, start=1):
        fig.add_trace(_heatmap(panel), row=1, col=col)
        h, w = panel.colors.shape
        suffix = "" if col == 1 else str(col)
        margin = (tallest - h) / 2  # the same cell size in every panel, smaller grids centred
        fig.update_xaxes(range=[-0.5, w - 0.5], row=1, col=col, **_BARE_AXIS)
        fig.update_yaxes(
            range=[h - 0.5 + margin, -0.5 - margin],
            **_BARE_AXIS,
            scaleanchor=f"x{suffix}",
            constrain="domain",
            row=1,
            col=col,
        )
        for r0, c0, r1, c1 in panel.boxes:
            fig.add_shape(
                type="rect",
                x0=c0 - 0.5,
                x1=c1 + 0.5,
                y0=r0 - 0.5,
                y1=r1 + 0.5,
                line={"color": COLORS["box"], "width": 3},
                xref=f"x{suffix}",
                yref=f"y{suffix}",
            )
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 70 if title else 40, "b": 10},
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def frame_figure(frame: Frame, *, titled: bool = True, height: int | None = None) -> go.Figure:
    """One animation step as a figure.

    Args:
        frame: A frame from :mod:`vizlib.conv_arithmetic`.
        titled: Title the figure "Step i of n".
        height: Figure height in pixels (default: from the tallest grid, 300 to 640).

    Returns:
        A plotly figure.
    """
    panels = frame_panels(frame)
    tallest = max(p.colors.shape[0] for p in panels)
    height = height or int(min(max(110 + 26 * tallest, 300), 640))
    title = f"Step {frame.index + 1} of {frame.total}" if titled else None
    return panels_figure(panels, title=title, height=height)


def matrix_figure(matrix: np.ndarray, *, title: str | None = None, height: int | None = None) -> go.Figure:
    """A small matrix as a numbered heatmap; zero entries are left white.

    Args:
        matrix: A 2D array (e.g. :func:`vizlib.conv_arithmetic.conv1d_matrix`).
        title: Figure title.
        height: Figure height in pixels (default from the number of rows).

    Returns:
        A plotly figure.
    """
    return matvec_figure(matrix, title=title, height=height)


def _matrix_panel(matrix: np.ndarray, title: str, color: str) -> Panel:
    m = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    colors = np.where(m != 0, color, COLORS["empty"]).astype(object)
    hover = np.empty(m.shape, dtype=object)
    for (r, c), v in np.ndenumerate(m):
        hover[r, c] = f"{title}[{r}, {c}] = {_fmt(v)}"
    return Panel(title, colors, _texts(m), hover)


def matvec_figure(
    matrix: np.ndarray,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    *,
    names: tuple[str, str, str] = ("K", "x", "y"),
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """A matrix, optionally times a column vector and equal to a result column: ``K · x = y``.

    Args:
        matrix: The matrix, shape ``(m, n)``.
        x: Optional vector of length ``n``.
        y: Optional result of length ``m``.
        names: Panel titles for matrix, x and y.
        title: Figure title.
        height: Figure height in pixels (default from the number of rows).

    Returns:
        A plotly figure.
    """
    panels = [_matrix_panel(matrix, names[0], COLORS["kernel"])]
    if x is not None:
        panels.append(_matrix_panel(np.reshape(x, (-1, 1)), names[1], COLORS["tap"]))
    if y is not None:
        panels.append(_matrix_panel(np.reshape(y, (-1, 1)), names[2], COLORS["done"]))
    rows = max(p.colors.shape[0] for p in panels)
    return panels_figure(panels, title=title, height=height or 90 + 34 * rows)


def overlap_figure(counts: np.ndarray, *, title: str = "Overlap count", vmax: int | None = None) -> go.Figure:
    """Heatmap of a transposed convolution's overlap counts (see :func:`vizlib.conv_arithmetic.overlap_counts`).

    Args:
        counts: Integer array.
        title: Figure title.
        vmax: Count mapped to the brightest colour (default: the maximum).

    Returns:
        A plotly figure.
    """
    return panels_figure([_overlap_panel(counts, title, vmax)], height=120 + 18 * counts.shape[0])


def checkerboard_figure(
    left: np.ndarray, right: np.ndarray, *, titles: tuple[str, str] = ("Kernel 3, stride 2", "Kernel 4, stride 2")
) -> go.Figure:
    """Two overlap-count maps side by side on one colour scale, e.g. kernel 3 vs 4 at stride 2.

    Args:
        left, right: Integer overlap counts.
        titles: Titles of the two panels.

    Returns:
        A plotly figure.
    """
    vmax = int(max(left.max(), right.max(), 1))
    panels = [_overlap_panel(left, titles[0], vmax), _overlap_panel(right, titles[1], vmax)]
    return panels_figure(panels, height=120 + 18 * max(left.shape[0], right.shape[0]))


def latex_matrix(matrix: np.ndarray) -> str:
    """A small matrix (or vector, as a column) as a LaTeX ``bmatrix`` for ``st.latex``.

    Args:
        matrix: 1D or 2D array of numbers.

    Returns:
        LaTeX source, e.g. ``\\begin{bmatrix}15 & 16\\\\ 6 & 15\\end{bmatrix}``.
    """
    m = np.asarray(matrix, dtype=np.float64)
    m = m.reshape(-1, 1) if m.ndim == 1 else np.atleast_2d(m)
    rows = [" & ".join(_fmt(v).replace("−", "-").replace("∞", r"\infty") for v in row) for row in m]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"
