"""Plotly figures and downloads for the training lab: curves, first-layer filters, robustness, class maps."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vizlib.training_lab.fcn import ClassMap
from vizlib.training_lab.params import Comparison
from vizlib.training_lab.shift import RobustnessCurve
from vizlib.training_lab.train import FilterSnapshot, NetRun

__all__ = [
    "COLORS",
    "SHORT_NAMES",
    "class_map_figure",
    "curves_csv",
    "curves_figure",
    "drag_figure",
    "filter_tiles",
    "filters_animation",
    "filters_gif",
    "filters_strip",
    "params_figure",
    "robustness_figure",
]

#: One colour per net (Okabe-Ito, colour-blind safe).
COLORS = {"fashion_mlp": "#E69F00", "fashion_local": "#009E73", "fashion_cnn": "#0072B2", "fashion_fcn": "#CC79A7"}
SHORT_NAMES = {"fashion_mlp": "MLP", "fashion_local": "Locally connected", "fashion_cnn": "CNN",
               "fashion_fcn": "Fully convolutional"}


def _short(name: str) -> str:
    return SHORT_NAMES.get(name, name)


def curves_figure(runs: Mapping[str, NetRun], height: int = 380) -> go.Figure:
    """Training loss (left) and accuracy (right: training batches dotted, test set as markers) of every net."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Training loss", "Accuracy"), horizontal_spacing=0.1)
    for name, run in runs.items():
        color = COLORS.get(name, "#555555")
        epochs = [p.epoch for p in run.points]
        fig.add_trace(go.Scatter(x=epochs, y=[p.train_loss for p in run.points], name=_short(name),
                                 legendgroup=name, line={"color": color},
                                 hovertemplate="epoch %{x:.2f}: loss %{y:.3f}<extra>" + _short(name) + "</extra>"),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=epochs, y=[p.train_accuracy for p in run.points], name=f"{_short(name)} (train)",
                                 legendgroup=name, showlegend=False, line={"color": color, "dash": "dot"},
                                 hovertemplate="epoch %{x:.2f}: train %{y:.1%}<extra>" + _short(name) + "</extra>"),
                      row=1, col=2)
        tested = [p for p in run.points if p.test_accuracy is not None]
        fig.add_trace(go.Scatter(x=[p.epoch for p in tested], y=[p.test_accuracy for p in tested],
                                 name=f"{_short(name)} (test)", legendgroup=name, showlegend=False,
                                 mode="lines+markers", line={"color": color}, marker={"size": 9},
                                 hovertemplate="epoch %{x:.2f}: test %{y:.2%}<extra>" + _short(name) + "</extra>"),
                      row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h"})
    return fig


def curves_csv(runs: Mapping[str, NetRun]) -> str:
    """Every curve point of every net as CSV: ``net,epoch,train_loss,train_accuracy,test_accuracy``."""
    lines = ["net,epoch,train_loss,train_accuracy,test_accuracy"]
    for name, run in runs.items():
        for p in run.points:
            test = "" if p.test_accuracy is None else f"{p.test_accuracy:.6f}"
            lines.append(f"{name},{p.epoch:.4f},{p.train_loss:.6f},{p.train_accuracy:.6f},{test}")
    return "\n".join(lines) + "\n"


def filter_tiles(weights: np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """``[maps, k, k]`` filters tiled in a grid, each scaled to -1..1 by the snapshot's largest weight;
    gaps are NaN (drawn empty)."""
    maps, k, _ = weights.shape
    rows = -(-maps // columns)
    scale = float(np.abs(weights).max()) or 1.0
    out = np.full((rows * (k + gap) - gap, columns * (k + gap) - gap), np.nan)
    for i in range(maps):
        r, c = divmod(i, columns)
        out[r * (k + gap) : r * (k + gap) + k, c * (k + gap) : c * (k + gap) + k] = weights[i] / scale
    return out


def _filter_heatmap(tiles: np.ndarray, **kwargs) -> go.Heatmap:
    return go.Heatmap(z=tiles, zmin=-1, zmax=1, colorscale="RdBu_r", showscale=False, hoverinfo="skip", **kwargs)


def filters_animation(snapshots: Sequence[FilterSnapshot], height: int = 260) -> go.Figure:
    """The first-layer filters as an animation (plotly frames, a Play button and a slider over the snapshots)."""
    if not snapshots:
        raise ValueError("No filter snapshots to animate.")
    tiles = [filter_tiles(s.weights) for s in snapshots]
    fig = go.Figure(_filter_heatmap(tiles[0]), frames=[
        go.Frame(data=[_filter_heatmap(t)], name=s.label, layout={"title": {"text": s.label}})
        for s, t in zip(snapshots, tiles, strict=True)
    ])
    steps = [{"label": s.label, "method": "animate",
              "args": [[s.label], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]} for s in snapshots]
    fig.update_layout(
        title=snapshots[0].label, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"visible": False, "constrain": "domain"}, yaxis={"visible": False, "autorange": "reversed",
                                                                 "scaleanchor": "x"},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0, "y": -0.05, "xanchor": "left",
                      "buttons": [{"label": "Play", "method": "animate",
                                   "args": [None, {"frame": {"duration": 700, "redraw": True},
                                                   "fromcurrent": True}]}]}],
        sliders=[{"steps": steps, "x": 0.12, "len": 0.88, "y": 0, "currentvalue": {"visible": False}}],
    )
    return fig


def filters_strip(snapshots: Sequence[FilterSnapshot], height_per_row: int = 70) -> go.Figure:
    """Every snapshot's filters, one row each, labelled: random noise at the top, trained at the bottom."""
    if not snapshots:
        raise ValueError("No filter snapshots to show.")
    tiles = [filter_tiles(s.weights) for s in snapshots]
    h = tiles[0].shape[0]
    gap = np.full((2, tiles[0].shape[1]), np.nan)
    z = np.vstack([row for t in tiles for row in (t, gap)][:-1])
    centres = [i * (h + 2) + (h - 1) / 2 for i in range(len(tiles))]
    fig = go.Figure(_filter_heatmap(z))
    fig.update_layout(height=max(160, height_per_row * len(tiles)), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"visible": False, "constrain": "domain"},
                      yaxis={"autorange": "reversed", "scaleanchor": "x", "tickvals": centres,
                             "ticktext": [s.label for s in snapshots], "showgrid": False, "zeroline": False})
    return fig


def filters_gif(snapshots: Sequence[FilterSnapshot], scale: int = 12, ms_per_frame: int = 700) -> bytes:
    """The filter animation as an animated GIF (Pillow), each frame captioned with its snapshot label."""
    from PIL import Image, ImageDraw

    frames = []
    for s in snapshots:
        tiles = filter_tiles(s.weights)
        rgb = np.full((*tiles.shape, 3), 255, np.uint8)
        valid = ~np.isnan(tiles)
        v = np.nan_to_num(tiles)
        # blue (negative) - white - red (positive)
        rgb[..., 0] = np.where(valid, np.clip(255 * (1 + np.minimum(v, 0)), 0, 255), 255)
        rgb[..., 2] = np.where(valid, np.clip(255 * (1 - np.maximum(v, 0)), 0, 255), 255)
        rgb[..., 1] = np.where(valid, np.clip(255 * (1 - np.abs(v)), 0, 255), 255)
        big = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
        frame = Image.new("RGB", (big.width, big.height + 18), "white")
        frame.paste(big, (0, 18))
        ImageDraw.Draw(frame).text((4, 3), s.label, fill="black")
        frames.append(frame)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


def params_figure(comparison: Comparison, height: int = 260) -> go.Figure:
    """Parameters of the three layer kinds on a log axis, weights and biases stacked."""
    kinds = [("Dense", comparison.dense), ("Locally connected", comparison.local), ("Convolution", comparison.conv)]
    names = [k for k, _ in kinds]
    fig = go.Figure([
        # floats: the calculator's extremes (100,000² inputs into 100,000² units) pass 2**64, which JSON can't carry
        go.Bar(y=names, x=[float(max(c.weights, 1)) for _, c in kinds], orientation="h", name="weights",
               marker_color="#0072B2", text=[f"{c.total:,}" for _, c in kinds], textposition="outside",
               cliponaxis=False, hovertemplate="%{y}: %{x:,} weights<extra></extra>"),
    ])
    fig.update_layout(height=height, xaxis={"type": "log", "title": "parameters (log scale)"},
                      yaxis={"autorange": "reversed"}, margin={"l": 10, "r": 60, "t": 10, "b": 10}, showlegend=False)
    return fig


def robustness_figure(curve: RobustnessCurve, height: int = 340) -> go.Figure:
    """Accuracy against shift (pixels) or rotation (degrees), one line per net."""
    fig = go.Figure()
    for name, acc in curve.accuracy.items():
        fig.add_trace(go.Scatter(x=list(curve.amounts), y=list(acc), name=_short(name), mode="lines+markers",
                                 line={"color": COLORS.get(name, "#555555")},
                                 hovertemplate="%{x}: %{y:.1%}<extra>" + _short(name) + "</extra>"))
    unit = "pixels to the right" if curve.kind == "shift" else "degrees"
    dtick = 1 if curve.kind == "shift" else 5
    fig.update_layout(height=height, xaxis={"title": f"{curve.kind} ({unit})", "dtick": dtick},
                      yaxis={"title": f"test accuracy ({curve.images:,} images)", "tickformat": ".0%", "range": [0, 1]},
                      margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h"})
    return fig


def drag_figure(probabilities: Mapping[str, np.ndarray], classes: Sequence[str], true_label: int,
                height: int = 300) -> go.Figure:
    """Each net's probability for every class, the true class marked."""
    fig = go.Figure()
    labels = [f"<b>{c}</b>" if i == true_label else c for i, c in enumerate(classes)]
    for name, probs in probabilities.items():
        fig.add_trace(go.Bar(x=labels, y=probs, name=_short(name), marker_color=COLORS.get(name, "#555555"),
                             hovertemplate="%{x}: %{y:.1%}<extra>" + _short(name) + "</extra>"))
    fig.update_layout(barmode="group", height=height, yaxis={"tickformat": ".0%", "range": [0, 1]},
                      margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h"})
    return fig


def class_map_figure(canvas: np.ndarray, cmap: ClassMap, classes: Sequence[str], height: int = 340) -> go.Figure:
    """The canvas (left) and the FCN's most likely class at each location (right, faint where unsure)."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Canvas", "Class at each location"), horizontal_spacing=0.04)
    fig.add_trace(go.Heatmap(z=canvas, colorscale="gray", showscale=False, hoverinfo="skip"), row=1, col=1)
    best, conf = cmap.best, cmap.confidence
    text = [[f"{classes[best[r, c]]} {conf[r, c]:.0%}" for c in range(best.shape[1])] for r in range(best.shape[0])]
    n = len(classes)
    scale = []
    for i, color in enumerate(palette[:n]):
        scale += [[i / n, color], [(i + 1) / n, color]]
    fig.add_trace(go.Heatmap(z=best, x=cmap.centres_x, y=cmap.centres_y, zmin=-0.5, zmax=n - 0.5, colorscale=scale,
                             text=text, hovertemplate="(%{x:.0f}, %{y:.0f}): %{text}<extra></extra>",
                             colorbar={"tickvals": list(range(n)), "ticktext": list(classes), "len": 1}),
                  row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(range=[-0.5, canvas.shape[1] - 0.5], showticklabels=False, row=1, col=col)
        fig.update_yaxes(range=[canvas.shape[0] - 0.5, -0.5], scaleanchor=f"x{'' if col == 1 else 2}",
                         showticklabels=False, row=1, col=col)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig

