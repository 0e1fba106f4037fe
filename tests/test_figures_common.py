"""vizlib.figures.common: frozen figures (their dict made once) and plotly's JSON engine."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from vizlib.figures.common import FrozenFigure, freeze, spec_figure


def _figure() -> go.Figure:
    z = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    return spec_figure({"data": [{"type": "heatmap", "z": z, "hovertemplate": "%{z:.3f}<extra></extra>"}],
                        "layout": {"title": {"text": "t"}, "height": 200}})


def test_freeze_keeps_the_figure_and_its_first_dict():
    fig = _figure()
    plain = _figure().to_dict()
    frozen = freeze(fig)
    assert frozen is fig and isinstance(frozen, FrozenFigure)
    first = frozen.to_dict()
    assert frozen.to_dict() is first
    assert json.dumps(first, sort_keys=True) == json.dumps(plain, sort_keys=True)
    assert pio.to_json(frozen, validate=False) == pio.to_json(_figure(), validate=False)
    assert frozen.layout.height == 200  # still a figure to read
    assert freeze(frozen) is frozen


@pytest.mark.parametrize("value", [{"data": []}, b"png", None])
def test_only_a_figure_can_be_frozen(value):
    with pytest.raises(TypeError, match="go.Figure"):
        freeze(value)


def test_plotly_serializes_with_orjson():
    """requirements.txt brings orjson, which plotly's "auto" engine picks: half the CPU of the json engine for
    the CAM page's figures (benchmarks/bench_plotly_json.py), the same JSON."""
    import orjson  # noqa: F401 - in requirements.txt: its absence is a failure, not a skip

    assert pio.json.config.default_engine in ("auto", "orjson")
    fig = _figure()
    assert pio.to_json(fig, validate=False, engine="orjson") == pio.to_json(fig, validate=False, engine="json")
