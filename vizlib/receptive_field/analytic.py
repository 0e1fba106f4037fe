"""Receptive fields: exact theoretical numbers for every layer, and the effective receptive field.

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

The effective receptive field (Luo, Li, Urtasun & Zemel, 2016) is the gradient magnitude of one unit
with respect to the input, on one image or averaged over random inputs.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import fx, nn

from vizlib import _rf_geometry as geo
from vizlib._rf_geometry import ReceptiveFieldError, UnsupportedLayerError, UntraceableModelError
from vizlib.concurrency import GRAPH_LOCK

if TYPE_CHECKING:
    from vizlib.models import LoadedModel

__all__ = [
    "Box",
    "ConvStack1D",
    "EffectiveReceptiveField",
    "LayerNotFoundError",
    "ReceptiveField",
    "ReceptiveFieldError",
    "UnsupportedLayerError",
    "UntraceableModelError",
    "architecture_fields",
    "conv_stack_1d",
    "effective_receptive_field",
    "effective_size",
    "gradient_support",
    "receptive_field",
    "receptive_field_growth",
    "receptive_fields",
]

#: ((top, bottom), (left, right)): inclusive input-pixel rows and columns.
Box = tuple[tuple[int, int], tuple[int, int]]
IntOrPair = int | tuple[int, int]

_MAX_INPUT_SIDE = 8192
_EXTRACTORS_PER_MODEL = 16
_ERF_CHUNK = 4


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
    extractors: OrderedDict[str, fx.GraphModule] = field(default_factory=OrderedDict)


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


def receptive_field_growth(
    kernel_sizes: Sequence[int], strides: Sequence[int] | None = None, dilations: Sequence[int] | None = None
) -> list[int]:
    """Receptive-field size after each layer of a 1-D stack (Araujo et al.'s recurrence).

    ``r_l = r_{l-1} + (k_l - 1) * d_l * (s_1 * ... * s_{l-1})``, starting from ``r_0 = 1``.

    Args:
        kernel_sizes: Kernel size of each layer.
        strides: Stride of each layer (default all 1).
        dilations: Dilation of each layer (default all 1).

    Returns:
        One size per layer.

    Raises:
        ValueError: Lengths differ, or a value is below 1.
    """
    ks, ss, ds = _stack_params(kernel_sizes, strides, dilations)
    sizes, r, jump = [], 1, 1
    for k, s, d in zip(ks, ss, ds, strict=True):
        r += (k - 1) * d * jump
        jump *= s
        sizes.append(r)
    return sizes


# --------------------------------------------------------------------------------------------- 1-D demo


@dataclass(frozen=True)
class ConvStack1D:
    """Which units of a 1-D stack of convolutions (no padding) feed one output unit.

    Attributes:
        kernel_sizes: Per layer.
        strides: Per layer.
        dilations: Per layer.
        lengths: Units per level; level 0 is the input, level ``l`` the output of layer ``l``.
        output_unit: The chosen unit of the top level.
        feeds: Per level, the (sorted) units the output unit depends on; ``feeds[0]`` are input units.
        edges: Per layer ``l`` (index ``l - 1``), the connections ``(unit at level l, unit at level l-1)``
            on the paths into the output unit.
        growth: Receptive-field size after each layer.
        paths: For every input unit, the number of paths from it to the output unit (0 outside the
            receptive field): larger in the middle, the seed of the effective receptive field.
    """

    kernel_sizes: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    lengths: tuple[int, ...]
    output_unit: int
    feeds: tuple[tuple[int, ...], ...]
    edges: tuple[tuple[tuple[int, int], ...], ...]
    growth: tuple[int, ...]
    paths: tuple[int, ...]

    @property
    def receptive_field(self) -> int:
        """Span of the input units that feed the output unit (first to last, gaps included)."""
        return self.feeds[0][-1] - self.feeds[0][0] + 1


_MAX_DEMO_INPUTS = 4096


def _stack_params(
    kernel_sizes: Sequence[int], strides: Sequence[int] | None, dilations: Sequence[int] | None
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    ks = tuple(kernel_sizes)
    ss = tuple(strides) if strides is not None else (1,) * len(ks)
    ds = tuple(dilations) if dilations is not None else (1,) * len(ks)
    if not ks or len(ss) != len(ks) or len(ds) != len(ks):
        raise ValueError(
            f"Give one kernel size, stride and dilation per layer (got {len(ks)}, {len(ss)} and {len(ds)})."
        )
    for what, values in (("kernel size", ks), ("stride", ss), ("dilation", ds)):
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values):
            raise ValueError(f"Every {what} must be a whole number of at least 1, got {list(values)}.")
    return tuple(map(int, ks)), tuple(map(int, ss)), tuple(map(int, ds))


def conv_stack_1d(
    kernel_sizes: Sequence[int],
    strides: Sequence[int] | None = None,
    dilations: Sequence[int] | None = None,
    *,
    n_inputs: int | None = None,
    output_unit: int | None = None,
) -> ConvStack1D:
    """Trace one output unit of a 1-D convolution stack back to the inputs that feed it.

    With kernel 2 and stride 2, two layers see 4 inputs; with dilations 1, 2, 4, 8 and stride 1
    (WaveNet) the field doubles with each layer: 2, 4, 8, 16.

    Args:
        kernel_sizes: Kernel size per layer.
        strides: Stride per layer (default 1).
        dilations: Dilation per layer (default 1).
        n_inputs: Input length (default: the receptive field plus room for a few more output units).
        output_unit: Which top-level unit to trace (default: the middle one).

    Returns:
        The stack with the units and connections that feed the output unit.

    Raises:
        ValueError: Bad parameters, an input too short for one output unit, or a field too large to draw.
    """
    ks, ss, ds = _stack_params(kernel_sizes, strides, dilations)
    growth = receptive_field_growth(ks, ss, ds)
    total_stride = math.prod(ss)
    if n_inputs is None:
        n_inputs = growth[-1] + 2 * total_stride
    if n_inputs > _MAX_DEMO_INPUTS or growth[-1] > _MAX_DEMO_INPUTS:
        raise ValueError(f"This stack needs more than {_MAX_DEMO_INPUTS} inputs; use fewer or smaller layers.")
    lengths = [int(n_inputs)]
    for k, s, d in zip(ks, ss, ds, strict=True):
        n = (lengths[-1] - d * (k - 1) - 1) // s + 1
        if n < 1:
            raise ValueError(
                f"{n_inputs} inputs are too few: the stack's receptive field is {growth[-1]} inputs. Use more inputs."
            )
        lengths.append(n)
    top = lengths[-1] // 2 if output_unit is None else int(output_unit)
    if not 0 <= top < lengths[-1]:
        raise ValueError(f"output_unit must be between 0 and {lengths[-1] - 1}, got {output_unit}.")
    feeds: list[tuple[int, ...]] = [(top,)]
    edges: list[tuple[tuple[int, int], ...]] = []
    counts = {top: 1}
    for level in range(len(ks), 0, -1):
        k, s, d = ks[level - 1], ss[level - 1], ds[level - 1]
        links = tuple((u, u * s + t * d) for u in feeds[0] for t in range(k))
        below: dict[int, int] = {}
        for parent, child in links:
            below[child] = below.get(child, 0) + counts[parent]
        counts = below
        edges.insert(0, links)
        feeds.insert(0, tuple(sorted(below)))
    return ConvStack1D(
        kernel_sizes=ks,
        strides=ss,
        dilations=ds,
        lengths=tuple(lengths),
        output_unit=top,
        feeds=tuple(feeds),
        edges=tuple(edges),
        growth=tuple(growth),
        paths=tuple(counts.get(i, 0) for i in range(lengths[0])),
    )


# --------------------------------------------------------------------------------------------- ERF


@dataclass(frozen=True, eq=False)
class EffectiveReceptiveField:
    """Where one unit's input gradient is large: the effective receptive field (Luo et al., 2016).

    Attributes:
        layer: The layer.
        unit: ``(row, col)`` of the unit in the layer's feature map.
        channel: The channel, or None when the gradient of all channels' sum was taken.
        image_map: ``|d unit / d input|`` summed over colour channels on the given image, HxW float32
            scaled so its maximum is 1 (all zeros when the unit is switched off on this image); None
            without an image.
        random_map: The same, averaged over ``n_random`` random (standard normal) inputs, then scaled
            to maximum 1; None when ``n_random`` is 0.
        n_random: How many random inputs were averaged.
        theoretical: The layer's theoretical receptive field at this input size.
    """

    layer: str
    unit: tuple[int, int]
    channel: int | None
    image_map: np.ndarray | None
    random_map: np.ndarray | None
    n_random: int
    theoretical: ReceptiveField

    @property
    def box(self) -> Box:
        """The unit's theoretical receptive field, as :meth:`ReceptiveField.box`."""
        return self.theoretical.box(*self.unit)


def effective_size(grad_map: np.ndarray, mass: float = 0.95) -> float:
    """Side of a square with as many pixels as the smallest set holding ``mass`` of the map's total.

    A single number for how large an effective receptive field is (0 for an all-zero map).

    Raises:
        ValueError: ``mass`` is not in (0, 1] or the map is not 2-D.
    """
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}.")
    values = np.asarray(grad_map, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"Expected a 2-D map, got shape {values.shape}.")
    flat = np.sort(np.abs(values).ravel())[::-1]
    total = flat.sum()
    if total <= 0:
        return 0.0
    count = int(np.searchsorted(np.cumsum(flat), mass * total - 1e-12 * total) + 1)
    return float(math.sqrt(min(count, flat.size)))


def _extractor(entry: _Entry, model: nn.Module, layer: str) -> fx.GraphModule:
    """A GraphModule computing ``layer``'s output; it shares the model's modules and parameters."""
    with _CACHE_LOCK:
        gm = entry.extractors.get(layer)
        if gm is not None:
            entry.extractors.move_to_end(layer)
            return gm
    graph, _ = geo.graph_upto(entry.trace.graph, [_layer_node(entry, model, layer)])
    gm = fx.GraphModule(model, graph, f"{type(model).__name__}Upto")
    gm.graph.eliminate_dead_code()
    gm.recompile()
    with _CACHE_LOCK:
        entry.extractors[layer] = gm
        while len(entry.extractors) > _EXTRACTORS_PER_MODEL:
            entry.extractors.popitem(last=False)
    return gm


@contextmanager
def _shared(lock: Any) -> Iterator[None]:
    read = getattr(lock, "read", None)
    with GRAPH_LOCK.read(), read() if read is not None else nullcontext():
        yield


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _unit_gradient(gm: fx.GraphModule, x: torch.Tensor, unit: tuple[int, int], channel: int | None) -> torch.Tensor:
    """|d unit / d x| summed over input channels, one map per batch item (on x's device)."""
    x = x.detach().clone().requires_grad_(True)
    out = gm(x)
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 4):
        raise UnsupportedLayerError("The layer's output is not a feature map or a feature vector.")
    if channel is not None and not 0 <= channel < out.shape[1]:
        raise ValueError(f"channel must be between 0 and {out.shape[1] - 1}, got {channel}.")
    picked = out if out.dim() == 2 else out[:, :, unit[0], unit[1]]
    picked = picked[:, channel] if channel is not None else picked.sum(dim=1)
    (grad,) = torch.autograd.grad(picked.sum(), x)
    return grad.abs().sum(dim=1)


def _normalised(grad_map: torch.Tensor) -> np.ndarray:
    arr = grad_map.detach().to("cpu", torch.float32).numpy()
    peak = float(arr.max()) if arr.size else 0.0
    return (arr / peak if peak > 0 else np.zeros_like(arr)).astype(np.float32)


def effective_receptive_field(
    model: nn.Module | LoadedModel,
    layer: str,
    image: torch.Tensor | None = None,
    unit: tuple[int, int] | None = None,
    channel: int | None = None,
    *,
    n_random: int = 8,
    input_size: IntOrPair = 224,
    in_channels: int | None = None,
    seed: int = 0,
) -> EffectiveReceptiveField:
    """The input-gradient magnitude of one unit: on an image and averaged over random inputs.

    Safe on a shared model: it runs a separate fx GraphModule that shares the model's parameters,
    attaches no hooks, changes no mode and no parameter, and only the input requires a gradient
    (``torch.autograd.grad``, so no ``.grad`` is written). Don't call it while holding the model's
    or :data:`vizlib.concurrency.GRAPH_LOCK`'s lock; it takes them itself.

    Args:
        model: A network or a :class:`vizlib.models.LoadedModel`.
        layer: A name from ``model.named_modules()``.
        image: A preprocessed input ``Tensor[1, C, H, W]`` (or ``[C, H, W]``), e.g. from
            ``LoadedModel.preprocess``; None for random inputs only.
        unit: ``(row, col)`` in the layer's feature map (default: the centre unit).
        channel: One channel of the unit, or None for the sum over all channels.
        n_random: Random inputs to average (0 for none).
        input_size: Input size for the random inputs when there is no image.
        in_channels: Input channels for the random inputs when there is no image (default: the
            registry model's, else 3).
        seed: Seed of the random inputs (the global random state is not touched).

    Returns:
        The maps and the theoretical receptive field for comparison.

    Raises:
        ValueError: No image and ``n_random`` 0, a bad image shape, or a unit/channel outside the layer.
        ReceptiveFieldError: The model can't be traced or has no such layer.
    """
    net, lock = _unwrap(model)
    if in_channels is None:
        in_channels = int(getattr(getattr(model, "spec", None), "in_channels", 3))
    if n_random < 0 or (image is None and n_random == 0):
        raise ValueError("Give an image, or a number of random inputs (n_random) of at least 1.")
    if image is not None:
        if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or (image.dim() == 4 and len(image) != 1):
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image must be a preprocessed Tensor[1, C, H, W], got {shape}.")
        image = image if image.dim() == 4 else image[None]
        hw, in_channels = (int(image.shape[2]), int(image.shape[3])), int(image.shape[1])
    else:
        hw = _check_input_size(input_size)
    theoretical = receptive_field(net, layer, hw)
    oh, ow = theoretical.output_hw
    unit = (oh // 2, ow // 2) if unit is None else (int(unit[0]), int(unit[1]))
    if not (0 <= unit[0] < oh and 0 <= unit[1] < ow):
        raise ValueError(f"unit {unit} is outside the {oh}x{ow} feature map of {layer!r}.")
    gm = _extractor(_entry(net), net, layer)
    device, dtype = _model_device_dtype(net)
    image_map = random_map = None
    with _shared(lock), torch.inference_mode(False), torch.enable_grad():
        if image is not None:
            image_map = _normalised(_unit_gradient(gm, image.to(device, dtype), unit, channel)[0])
        if n_random:
            gen = torch.Generator().manual_seed(seed)
            noise = torch.randn(n_random, in_channels, *hw, generator=gen)
            total = torch.zeros(hw, dtype=torch.float64)
            for chunk in noise.split(_ERF_CHUNK):
                total += _unit_gradient(gm, chunk.to(device, dtype), unit, channel).sum(0).double().cpu()
            random_map = _normalised(total / n_random)
    return EffectiveReceptiveField(
        layer=layer,
        unit=unit,
        channel=channel,
        image_map=image_map,
        random_map=random_map,
        n_random=int(n_random),
        theoretical=theoretical,
    )


# --------------------------------------------------------------------------------------------- brute force


def gradient_support(
    model: nn.Module | LoadedModel,
    units: Mapping[str, Sequence[tuple[int, int]]],
    input_size: IntOrPair,
    *,
    channel: int | None = None,
    in_channels: int = 3,
    local: bool = False,
    dtype: torch.dtype = torch.float32,
) -> dict[str, list[Box | None]]:
    """Brute-force receptive fields: where the input gradient of each unit is non-zero.

    Works on a linearised copy of the part of ``model`` that computes the layers (the model itself is
    untouched): pointwise nonlinearities removed, max and LP pooling replaced by average pooling over
    the same windows, every weight set to a positive constant, biases zero and batch norm the
    identity. On an all-ones input every path then adds a strictly positive amount, so the gradient
    is non-zero exactly on the pixels a unit depends on. The units of a layer share one batch (one
    unit per batch item), computed only up to that layer.

    Args:
        model: The network (or a :class:`vizlib.models.LoadedModel`).
        units: ``{layer: [(row, col), ...]}``; for flat layers (after flatten) use ``(0, 0)``.
        input_size: Input height and width.
        channel: Which channel of each layer to differentiate; None for the sum of all channels
            (the layer's receptive field: a concatenation's channels each see only their own branch).
        in_channels: Input channels.
        local: Cut (detach) every branch that pools the whole map, such as squeeze-and-excitation
            gates, to measure the spatial path that ``size``/``stride``/``padding`` describe.
        dtype: Precision. float32 suffices (sums and products are rescaled so values stay near 1) and is
            much faster on CPUs for depthwise and dilated convolutions; float64 to double-check.

    Returns:
        Per layer, per unit, the bounding box of the non-zero gradient, or None if it is all zero.

    Raises:
        ReceptiveFieldError: The model can't be traced, or a layer is unknown.
    """
    from vizlib import _rf_bruteforce

    net, lock = _unwrap(model)
    hw = _check_input_size(input_size)
    entry = _entry(net)
    targets = [_layer_node(entry, net, layer) for layer in units]
    sources = _global_sources(_states(entry, net, hw)) if local else set()
    with _shared(lock):
        twin, outputs = _rf_bruteforce.linearised_twin(net, entry.trace.graph, targets, sources, dtype)
    found: dict[str, list[Box | None]] = {}
    for layer, node in zip(units, outputs, strict=True):
        found[layer] = _rf_bruteforce.supports(twin, node, list(units[layer]), hw, in_channels, channel)
    return found


def _global_sources(env: dict[fx.Node, Any]) -> set[fx.Node]:
    """Nodes where a value becomes global: whole-map pooling (every squeeze-and-excitation gate), flatten."""
    found = set()
    for node, state in env.items():
        if not (isinstance(state, geo.Map) and state.is_global):
            continue
        maps = [s for s in (env.get(n) for n in node.all_input_nodes) if isinstance(s, geo.Map)]
        pooled = (state.flat or (state.h.n == 1 and state.w.n == 1)) and any(
            not s.flat and (s.h.n > 1 or s.w.n > 1) for s in maps
        )
        if pooled or not any(s.is_global for s in maps):
            found.add(node)
    return found
