"""Receptive-field geometry of a traced graph: the engine behind :mod:`vizlib.receptive_field`.

Modules: :mod:`~.trace` (the states and the torch.fx trace), :mod:`~.rules` (each layer's and function's
geometry), :mod:`~.propagate` (the state of every node, the graph cut after some nodes).
"""

from __future__ import annotations

from vizlib.receptive_field.geometry.propagate import analyse, graph_upto
from vizlib.receptive_field.geometry.rules import nonlinear_pointwise, op_name
from vizlib.receptive_field.geometry.trace import (
    CONST,
    POOL_TYPES,
    Axis,
    Map,
    ReceptiveFieldError,
    Repeat,
    State,
    Trace,
    Unknown,
    UnsupportedLayerError,
    UntraceableModelError,
    trace,
)

__all__ = [
    "CONST",
    "POOL_TYPES",
    "Axis",
    "Map",
    "ReceptiveFieldError",
    "Repeat",
    "State",
    "Trace",
    "UnsupportedLayerError",
    "UntraceableModelError",
    "Unknown",
    "analyse",
    "graph_upto",
    "nonlinear_pointwise",
    "op_name",
    "trace",
]
