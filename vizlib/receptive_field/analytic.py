"""Receptive fields: exact theoretical numbers for every layer, from the model's torch.fx graph.

The theoretical receptive field is computed analytically from the model's torch.fx graph, following
Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks" (Distill, 2019):
kernel size, stride, padding and dilation of every convolution and pooling, non-square kernels,
branches and residual additions (a merge sees the union of its inputs' fields, taken as intervals, so
branches with different paddings combine exactly). Layers that don't change geometry pass through.

A :class:`ReceptiveField` gives, per axis, the ``size`` (input pixels one unit depends on), the
``stride`` (how far the field moves from one unit to the next) and the ``padding`` (how far the first
unit's field starts before the image: unit ``i`` sees pixels ``[i*stride - padding, i*stride - padding +
size - 1]``). Units that pool the whole map (global pooling, flatten, fully connected layers) or are
gated by such a branch (squeeze-and-excitation) have ``is_global=True``: they depend on every input
pixel; their size/stride/padding still describe the spatial path (for global pooling: the whole map's
span, as a pooling window of the map's size would give).

Operations whose geometry is unknown (upsampling, attention, reshaping a feature map) make the layers
after them raise :class:`UnsupportedLayerError`; a model torch.fx can't trace raises
:class:`UntraceableModelError`: never a guessed number. Results are cached per model (weakly: the cache
never keeps a model alive) and input size. The first call traces the model while holding
:data:`vizlib.concurrency.GRAPH_LOCK` exclusively, so don't call these functions while holding it (or a
``LoadedModel.shared()`` block) yourself.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import fx, nn

from vizlib.caching import LRUCache
from vizlib.concurrency import GRAPH_LOCK
from vizlib.receptive_field import geometry as geo
from vizlib.receptive_field.geometry import ReceptiveFieldError, UnsupportedLayerError, UntraceableModelError

if TYPE_CHECKING:
    from vizlib.models import LoadedModel

__all__ = [
    "Box",
    "LayerNotFoundError",
    "ReceptiveField",
    "ReceptiveFieldError",
    "UnsupportedLayerError",
    "UntraceableModelError",
    "architecture_fields",
    "receptive_field",
    "receptive_fields",
]

#: ((top, bottom), (left, right)): inclusive input-pixel rows and columns.
Box = tuple[tuple[int, int], tuple[int, int]]
IntOrPair = int | tuple[int, int]

_MAX_INPUT_SIDE = 8192


class LayerNotFoundError(ReceptiveFieldError):
    """No module of that name runs in the model's forward pass."""


# --------------------------------------------------------------------------------------------- result


def _hw(value: IntOrPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _collapse(h: int, w: int) -> IntOrPair:
    return h if h == w else (h, w)


@dataclass(frozen=True)
class ReceptiveField:
    """The theoretical receptive field of one layer's units.

    Each numeric field is an int, or a ``(height, width)`` tuple where the two differ.

    Attributes:
        size: Input pixels one unit depends on, along each axis (padding included).
        stride: Distance in input pixels between the fields of neighbouring units (the effective stride).
        padding: How far the field of unit 0 starts before the first pixel (the effective padding).
        output_size: The layer's feature-map height/width at ``input_size`` (1 after global pooling).
        input_size: The input height/width these numbers were computed for.
        extent: ``((top, bottom), (left, right))``, the input pixels that reach this layer at all: the
            whole image, unless a strided layer whose windows don't fit evenly dropped the last rows
            or columns (later padding stands in for them).
        is_global: The units depend on every input pixel (global pooling, flatten, a fully connected
            layer, or a gate computed from one, as in squeeze-and-excitation).
    """

    size: IntOrPair
    stride: IntOrPair
    padding: IntOrPair
    output_size: IntOrPair
    input_size: IntOrPair
    extent: Box
    is_global: bool = False

    @property
    def size_hw(self) -> tuple[int, int]:
        """``size`` as (height, width)."""
        return _hw(self.size)

    @property
    def stride_hw(self) -> tuple[int, int]:
        """``stride`` as (height, width)."""
        return _hw(self.stride)

    @property
    def padding_hw(self) -> tuple[int, int]:
        """``padding`` as (height, width)."""
        return _hw(self.padding)

    @property
    def output_hw(self) -> tuple[int, int]:
        """``output_size`` as (height, width)."""
        return _hw(self.output_size)

    @property
    def input_hw(self) -> tuple[int, int]:
        """``input_size`` as (height, width)."""
        return _hw(self.input_size)

    def box(self, row: int = 0, col: int = 0) -> Box:
        """Input pixels seen by unit ``(row, col)``, inclusive; may reach past the image (into padding).

        Raises:
            ValueError: The unit is outside the feature map.
        """
        (oh, ow), (sh, sw), (ph, pw), (kh, kw) = self.output_hw, self.stride_hw, self.padding_hw, self.size_hw
        if not (0 <= row < oh and 0 <= col < ow):
            raise ValueError(f"Unit ({row}, {col}) is outside the {oh}x{ow} feature map.")
        top, left = row * sh - ph, col * sw - pw
        return (top, top + kh - 1), (left, left + kw - 1)

    def clipped_box(self, row: int = 0, col: int = 0) -> Box:
        """:meth:`box` cut to :attr:`extent`: the image pixels unit ``(row, col)`` depends on."""
        (top, bottom), (left, right) = self.box(row, col)
        (et, eb), (el, er) = self.extent
        return (max(top, et), min(bottom, eb)), (max(left, el), min(right, er))


def _to_rf(state: geo.Map, input_size: tuple[int, int]) -> ReceptiveField:
    h, w = state.h, state.w
    return ReceptiveField(
        size=_collapse(h.hi - h.lo + 1, w.hi - w.lo + 1),
        stride=_collapse(h.jump, w.jump),
        padding=_collapse(-h.lo, -w.lo),
        output_size=_collapse(h.n, w.n),
        input_size=_collapse(*input_size),
        extent=((h.first, h.last), (w.first, w.last)),
        is_global=state.is_global,
    )


# --------------------------------------------------------------------------------------------- cache


@dataclass(eq=False)
class _Entry:
    trace: geo.Trace
    states: dict[tuple[int, int], dict[fx.Node, Any]] = field(default_factory=dict)
    tables: dict[tuple[int, int], dict[str, ReceptiveField]] = field(default_factory=dict)
    every: dict[tuple[int, int], dict[str, ReceptiveField]] = field(default_factory=dict)
    extractors: LRUCache[str, fx.GraphModule] = field(default_factory=lambda: LRUCache(EXTRACTORS_PER_MODEL))


#: Layer extractors kept per model for the effective receptive field.
EXTRACTORS_PER_MODEL = 16

_CACHE: weakref.WeakKeyDictionary[nn.Module, _Entry] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def _unwrap(model: nn.Module | LoadedModel) -> tuple[nn.Module, Any]:
    """The nn.Module and, for a registry model, its lock."""
    if isinstance(model, nn.Module):
        return model, None
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        return inner, getattr(model, "lock", None)
    raise TypeError(f"Expected a torch.nn.Module or a vizlib LoadedModel, got {type(model).__name__}.")


def _entry(model: nn.Module) -> _Entry:
    with _CACHE_LOCK:
        entry = _CACHE.get(model)
    if entry is not None:
        return entry
    with GRAPH_LOCK.write():  # fx patches nn.Module.__call__ process-wide while it traces
        tr = geo.trace(model)
    entry = _Entry(trace=tr)
    with _CACHE_LOCK:
        return _CACHE.setdefault(model, entry)


def _states(entry: _Entry, model: nn.Module, hw: tuple[int, int]) -> dict[fx.Node, Any]:
    states = entry.states.get(hw)
    if states is None:
        states = geo.analyse(entry.trace, model, hw)
        entry.states[hw] = states
    return states


def _check_input_size(input_size: IntOrPair) -> tuple[int, int]:
    values = (input_size, input_size) if not isinstance(input_size, (tuple, list)) else tuple(input_size)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"input_size must be an int or a (height, width) pair, got {input_size!r}.")
    hw = (int(values[0]), int(values[1]))
    if not all(1 <= v <= _MAX_INPUT_SIDE for v in hw):
        raise ValueError(f"input_size must be between 1 and {_MAX_INPUT_SIDE} pixels per side, got {input_size!r}.")
    return hw


def _layer_node(entry: _Entry, model: nn.Module, layer: str) -> fx.Node:
    node = entry.trace.module_nodes.get(layer)
    if node is not None:
        return node
    known = [name for name, _ in model.named_modules()]
    if layer in known:
        raise LayerNotFoundError(
            f"Layer {layer!r} of {type(model).__name__} does not run in its forward pass (in its current "
            "train/eval mode), so it has no receptive field."
        )
    import difflib

    close = difflib.get_close_matches(layer, known, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise LayerNotFoundError(
        f"{type(model).__name__} has no layer named {layer!r}.{hint} Use names from model.named_modules()."
    )


def _as_rf(state: Any, layer: str, hw: tuple[int, int]) -> ReceptiveField:
    if isinstance(state, geo.Map):
        return _to_rf(state, hw)
    if isinstance(state, geo.Unknown):
        raise UnsupportedLayerError(
            f"The receptive field of {layer!r} can't be determined: {state.reason}. "
            "Layers before that operation still have exact receptive fields."
        )
    raise UnsupportedLayerError(f"{layer!r} does not output a single feature map, so it has no receptive field.")


# --------------------------------------------------------------------------------------------- public


def receptive_field(model: nn.Module | LoadedModel, layer: str, input_size: IntOrPair = 224) -> ReceptiveField:
    """The theoretical receptive field of ``layer``'s units, computed from the model's graph.

    A module that runs more than once in the forward pass is reported at its first call; a container
    (``"layer1"``) gives its output. Cached per model and input size.

    Args:
        model: A network (or a :class:`vizlib.models.LoadedModel`); it is traced, never changed.
        layer: A name from ``model.named_modules()`` (``""``: the model's output).
        input_size: Input height and width, an int or ``(h, w)``; matters for the feature-map size and
            for adaptive pooling.

    Returns:
        The layer's receptive field.

    Raises:
        UntraceableModelError: torch.fx can't trace the model.
        LayerNotFoundError: No such layer runs in the forward pass.
        UnsupportedLayerError: An operation on the way to ``layer`` has geometry that can't be determined.
        ValueError: ``input_size`` is not a valid size.
    """
    net, _ = _unwrap(model)
    hw = _check_input_size(input_size)
    entry = _entry(net)
    table = entry.tables.get(hw)
    if table is not None and layer in table:
        return table[layer]
    node = _layer_node(entry, net, layer)
    return _as_rf(_states(entry, net, hw)[node], layer, hw)


def receptive_fields(
    model: nn.Module | LoadedModel, input_size: IntOrPair = 224, *, every_layer: bool = False
) -> dict[str, ReceptiveField]:
    """Receptive fields of every convolution and pooling layer, in the order they run.

    Args:
        model: A network or a :class:`vizlib.models.LoadedModel`.
        input_size: Input height and width, an int or ``(h, w)``.
        every_layer: Give every named module that runs (activations, normalisations, blocks, fully
            connected layers too), leaving out those whose geometry can't be determined instead of raising.

    Returns:
        ``{layer name: ReceptiveField}`` (a new dict; cached per model and input size).

    Raises:
        UntraceableModelError: torch.fx can't trace the model.
        UnsupportedLayerError: Some convolution or pooling layer's geometry can't be determined (not
            with ``every_layer``).
        ValueError: ``input_size`` is not a valid size.
    """
    net, _ = _unwrap(model)
    hw = _check_input_size(input_size)
    entry = _entry(net)
    if every_layer:
        return dict(_every_layer(entry, net, hw))
    table = entry.tables.get(hw)
    if table is None:
        states = _states(entry, net, hw)
        kinds = (nn.modules.conv._ConvNd, *geo.POOL_TYPES)
        named = [
            (name, node)
            for name, node in entry.trace.module_nodes.items()
            if name and issubclass(entry.trace.module_types.get(name, nn.Module), kinds)
        ]
        order = {node: i for i, node in enumerate(entry.trace.graph.nodes)}
        named.sort(key=lambda item: order[item[1]])
        table = {name: _as_rf(states[node], name, hw) for name, node in named}
        entry.tables[hw] = table
    return dict(table)


def _every_layer(entry: _Entry, model: nn.Module, hw: tuple[int, int]) -> dict[str, ReceptiveField]:
    table = entry.every.get(hw)
    if table is None:
        states = _states(entry, model, hw)
        order = {node: i for i, node in enumerate(entry.trace.graph.nodes)}
        named = sorted(
            ((name, node) for name, node in entry.trace.module_nodes.items() if name),
            key=lambda item: order[item[1]],
        )
        table = {name: _to_rf(states[node], hw) for name, node in named if isinstance(states[node], geo.Map)}
        entry.every[hw] = table
    return table


def architecture_fields(
    name: str, input_size: IntOrPair | None = None, *, every_layer: bool = False
) -> dict[str, ReceptiveField]:
    """:func:`receptive_fields` of a registered architecture, without its weights.

    The network is built on PyTorch's ``meta`` device (no memory, no initialisation, no download):
    receptive fields depend on the architecture only. Nothing is cached here; cache the result per name.

    Args:
        name: A name from :func:`vizlib.models.list_models`.
        input_size: Input height and width (default: the model's own input size).
        every_layer: As in :func:`receptive_fields`.

    Returns:
        ``{layer name: ReceptiveField}``, layers named as in the loaded model.

    Raises:
        vizlib.models.UnknownModelError: ``name`` is not registered.
        ReceptiveFieldError: As :func:`receptive_fields`.
    """
    from vizlib import models

    spec = models.get_spec(name)
    with torch.device("meta"):
        net = models.load_model(name, pretrained=False, device="meta").model
    return receptive_fields(net, spec.input_size if input_size is None else input_size, every_layer=every_layer)


# --------------------------------------------------------------------------------------------- 1-D demo


# --------------------------------------------------------------------------------------------- ERF


# --------------------------------------------------------------------------------------------- brute force


