"""Figures built from specs without plotly's validation (vizlib.figures.common.spec_figure), checked here.

:func:`checked` rebuilds a figure with every validator on and returns the validated copy: an invalid property
raises, and a property in a non-canonical form (a title as a bare string, a colour list plotly would rewrite)
makes the JSON differ and fails, so what the server sends without validation is exactly what plotly would send.
"""

from __future__ import annotations

import copy
import json

import plotly.graph_objects as go
import plotly.io as pio


def checked(fig: go.Figure) -> go.Figure:
    """The figure rebuilt with plotly's validation; asserts that it sends the same JSON as ``fig``."""
    # the figure's own spec, numpy arrays included (to_dict would already have encoded them as base64)
    validated = go.Figure({"data": copy.deepcopy(fig._data), "layout": copy.deepcopy(fig._layout)})
    assert json.loads(pio.to_json(fig, validate=False)) == json.loads(pio.to_json(validated, validate=False))
    return validated
