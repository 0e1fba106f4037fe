"""The states of the receptive-field geometry and the torch.fx trace they are computed on.

Every tensor in the graph gets a :class:`Map` state: for each spatial axis, the number of units and
the input interval ``[lo + i*jump, hi + i*jump]`` (inclusive, input-pixel coordinates, negative
means padding) that unit ``i`` depends on. Ops whose geometry is not known give an :class:`Unknown`
state carrying the reason; it propagates downstream and becomes an error only when someone asks for such a layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import fx, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd

__all__ = [
    "CONST",
    "POOL_TYPES",
    "Axis",
    "Map",
    "ReceptiveFieldError",
    "Repeat",
    "Trace",
    "Unknown",
    "UnsupportedLayerError",
    "UntraceableModelError",
    "trace",
]


POOL_TYPES: tuple[type[nn.Module], ...] = (
    _MaxPoolNd,
    _AvgPoolNd,
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    nn.LPPool2d,
)


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class ReceptiveFieldError(ValueError):
    """Base class: a receptive field can't be given; the message says why and what to do."""


class UntraceableModelError(ReceptiveFieldError):
    """torch.fx can't trace the model, so its graph (and its receptive fields) are unknown."""


class UnsupportedLayerError(ReceptiveFieldError):
    """The layer's geometry can't be determined (an op with unknown geometry, or no such layer)."""


@dataclass(frozen=True)
class Axis:
    """One spatial axis: ``n`` units, unit ``i`` sees input pixels ``[lo + i*jump, hi + i*jump]``.

    ``first``/``last`` bound the input pixels that reach this map at all: a layer whose windows
    don't fit evenly drops the last pixels, and later padding stands in for them.
    """

    n: int
    lo: int
    hi: int
    jump: int
    first: int
    last: int


@dataclass(frozen=True)
class Map:
    """A tensor whose last two dimensions are (height, width), or a flattened one (``flat``).

    ``is_global``: every unit also depends on the whole input (global pooling, a fully connected
    layer, or a gate computed from such a branch); ``h``/``w`` still describe the spatial path.
    """

    ndim: int
    h: Axis
    w: Axis
    is_global: bool = False
    flat: bool = False


@dataclass(frozen=True)
class Unknown:
    """Geometry that can't be determined, and why."""

    reason: str


@dataclass(frozen=True)
class Repeat:
    """A tuple of tensors of identical geometry (from ``chunk``/``split`` along channels)."""

    item: Map


class _Const:
    def __repr__(self) -> str:
        return "CONST"


#: Values that do not depend on the input (shapes, parameters, Python numbers).
CONST = _Const()


State = Any  # Map | Unknown | Repeat | CONST | tuple of states


def _defined_in_torch_nn(cls: type, attr: str) -> bool:
    owner = next((c for c in cls.__mro__ if attr in c.__dict__), None)
    return owner is not None and owner.__module__.startswith(("torch.nn", "torch.ao.nn"))


class _Tracer(fx.Tracer):
    """fx tracer that keeps torch.nn layers whole and records the first output of every module.

    A subclass of a torch.nn layer stays a leaf only when it inherits torch.nn's ``forward``; one
    with its own ``forward`` (efficientnet-lite's ``Conv2dStaticSamePadding`` pads before it
    convolves) is traced through, so whatever it does to the geometry is counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.module_nodes: dict[str, fx.Node] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, _CONTAINERS) or type(m) is nn.Module:
            return False
        leaf = _defined_in_torch_nn(type(m), "forward")
        if leaf and isinstance(m, _ConvNd):
            leaf = _defined_in_torch_nn(type(m), "_conv_forward")
        return leaf

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        out = super().call_module(m, forward, args, kwargs)
        try:
            name = self.path_of_module(m)
        except NameError:
            return out
        if isinstance(out, fx.Proxy) and name not in self.module_nodes:
            self.module_nodes[name] = out.node
        return out


@dataclass(frozen=True, eq=False)
class Trace:
    """A traced model: its graph and the node that gives each module's (first) output."""

    graph: fx.Graph
    module_nodes: dict[str, fx.Node]
    module_types: dict[str, type[nn.Module]]


def trace(model: nn.Module) -> Trace:
    """Trace ``model`` symbolically (in its current train/eval mode; nothing is changed).

    Raises:
        UntraceableModelError: torch.fx can't trace it.
    """
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:
        raise UntraceableModelError(
            f"{type(model).__name__} can't be traced with torch.fx ({type(exc).__name__}: {exc}), so its "
            "receptive fields can't be computed exactly. Models whose forward pass branches on tensor values "
            "can't be traced; rewrite the branch, or choose another model."
        ) from None
    nodes = dict(tracer.module_nodes)
    for node in graph.nodes:
        if node.op == "output":
            out = node.args[0]
            if isinstance(out, fx.Node):
                nodes[""] = out
    types = {name: type(mod) for name, mod in model.named_modules()}
    return Trace(graph=graph, module_nodes=nodes, module_types=types)
