"""Figures shared by several pages: the top-k bar chart and a plain image figure."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from vizlib.caching import LRUCache

__all__ = [
    "FrozenFigure", "freeze", "image_figure", "picture_trace", "png_data_uri", "png_uri", "spec_figure", "topk_bar",
]


#: Data URIs of recent pictures by content: a page redraws the same photo in several figures and on every rerun.
_URIS: LRUCache[tuple[bytes, tuple[int, ...]], str] = LRUCache(64)


def png_uri(image: np.ndarray, **png: object) -> str:
    """An RGB uint8 image as a ``data:image/png;base64,...`` URI, for an image trace's ``source``, encoded now.

    For a picture drawn once (its figure is cached by the page); ``png`` goes to
    :func:`vizlib.encoding.encode_png`.
    """
    from vizlib.encoding import encode_png  # here, not at the top: figures that draw no photo need no cv2

    return "data:image/png;base64," + base64.b64encode(encode_png(image, **png)).decode("ascii")


def png_data_uri(image: np.ndarray) -> str:
    """:func:`png_uri` once per picture content: a page redraws the same photo in several figures and reruns.

    Hashing the picture costs a small fraction of encoding it.
    """
    image = np.ascontiguousarray(image)
    key = (hashlib.blake2b(image.data, digest_size=16).digest(), image.shape)
    return _URIS.get_or_create(key, lambda: png_uri(image, filters="sub", rle=True))  # a photo: see encode_png


def spec_figure(spec: dict) -> go.Figure:
    """A plotly figure from a complete spec (``{"data": [...], "layout": {...}}``) without plotly's validation.

    Building a figure through plotly's validators (``go.Heatmap(...)``, ``update_layout``, ``update_xaxes``)
    costs 5 to 50 ms per figure on the server, paid for every new image by every student; the same figure from
    its spec costs under a millisecond, and Streamlit sends the same JSON (``benchmarks/bench_figures.py``).
    The spec must be in plotly's canonical form (titles as ``{"text": ...}``, every property valid): the tests
    rebuild every figure made this way with validation on (``tests/figure_check.py``) and compare the JSON.
    """
    return go.Figure(spec, _validate=False)


class FrozenFigure(go.Figure):
    """A figure shared read-only (by every rerun and every session that shows it): its dict made once.

    ``st.plotly_chart`` turns a figure into JSON on every run of the page: first ``to_dict()`` (a deep copy of the
    figure, its arrays base64-encoded), then the JSON text. A frozen figure keeps its first ``to_dict()`` and hands
    out that same dict, which nobody may change; changes made to the figure itself after that are not seen.
    Make one with :func:`freeze`.
    """

    def to_dict(self) -> dict:
        memo = self.__dict__.get("_frozen_dict")
        if memo is None:  # two first calls at once both build it; either result is the same
            memo = super().to_dict()
            self.__dict__["_frozen_dict"] = memo
        return memo


def freeze(fig: go.Figure) -> FrozenFigure:
    """``fig`` itself, now a :class:`FrozenFigure` (nothing is copied); change it no more."""
    if type(fig) is not go.Figure and not isinstance(fig, FrozenFigure):
        raise TypeError(f"Only a plotly go.Figure can be frozen, not {type(fig).__name__}.")
    fig.__class__ = FrozenFigure
    return fig  # type: ignore[return-value]


def picture_trace(image: np.ndarray, *, stride: int = 1, **kwargs) -> go.Image:
    """A photo as a plotly image trace that the browser decodes as a PNG, every ``stride``-th pixel.

    Plotly draws an image given as a ``z`` array pixel by pixel in JavaScript; given as a PNG ``source`` the
    browser decodes it natively: a four-panel class-activation figure renders about 7x faster in headless
    Chromium (``benchmarks/bench_server_costs.py``), and its JSON is no larger. Coordinates stay those of the full image
    (``dx = dy = stride``). Hover can show ``%{x}`` and ``%{y}``; the pixel's colour is not offered.

    Args:
        image: ``H x W x 3`` RGB; values are clipped to 0..255.
        stride: Keep every ``stride``-th row and column.
        **kwargs: More ``go.Image`` properties (e.g. ``hoverinfo="skip"``).
    """
    sampled = np.clip(np.asarray(image)[::stride, ::stride], 0, 255).astype(np.uint8)
    return go.Image(source=png_data_uri(np.ascontiguousarray(sampled)), x0=0, y0=0, dx=stride, dy=stride, **kwargs)


def topk_bar(top: Sequence[tuple[str, float]], title: str | None = None) -> go.Figure:
    """Horizontal bars of class probabilities, the most likely class on top.

    Args:
        top: ``(class name, probability)`` pairs, highest first (as :func:`vizlib.models.predict` gives).
        title: Optional figure title.
    """
    names = [name for name, _ in top][::-1]
    probs = [float(p) for _, p in top][::-1]
    bar = {
        "type": "bar", "x": probs, "y": names, "orientation": "h", "text": [f"{p:.1%}" for p in probs],
        "textposition": "outside", "cliponaxis": False, "marker": {"color": "#0072B2"},
        "hovertemplate": "%{y}: %{x:.2%}<extra></extra>",
    }
    layout = {
        "xaxis": {"range": [0, 1.12], "tickformat": ".0%", "title": {"text": "probability"},
                  "tickvals": [0, 0.25, 0.5, 0.75, 1]},
        "yaxis": {"automargin": True},
        "height": 60 + 42 * len(names),
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 40},
    }
    if title:
        layout["title"] = {"text": title}
    return spec_figure({"data": [bar], "layout": layout})


def image_figure(image: np.ndarray, title: str | None = None) -> go.Figure:
    """An RGB uint8 image as a plotly figure with pixel coordinates on hover."""
    fig = go.Figure(go.Image(z=image, hovertemplate="x=%{x}, y=%{y}<br>RGB=%{z}<extra></extra>"))
    fig.update_layout(title=title, margin={"l": 0, "r": 0, "t": 30 if title else 0, "b": 0})
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig
