"""Walk a real network: every layer's output shape, parameters and multiply-accumulates, in execution order.

Nothing here is a table of formulas. The model is traced with torch.fx (so functional operations and
branches are seen, not only modules), then run once on *fake* tensors (``torch._subclasses.FakeTensorMode``:
shapes only, no arithmetic, no memory for activations) while a dispatch mode asks torch's own flop counter
(``torch.utils.flop_counter.flop_registry``: convolutions, matrix products) what each operation costs.
MACs are half its FLOPs. Parameters are counted from the modules themselves, each module once.

The dispatch mode is thread-local, nothing is attached to the model and nothing is changed, so a shared
:class:`vizlib.models.LoadedModel` can be walked while other sessions use it (tracing holds
:data:`vizlib.concurrency.GRAPH_LOCK` exclusively for a moment, as :mod:`vizlib.receptive_field` does).
Results are kept in ``loaded.cache``.
"""

from __future__ import annotations

import contextlib
import operator
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import fx, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from vizlib import receptive_field as R
from vizlib.concurrency import GRAPH_LOCK

if TYPE_CHECKING:
    from vizlib.models import LoadedModel

__all__ = ["LayerRow", "ModelCost", "UncountableModelError", "architecture_costs", "layer_costs", "model_cost"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_MERGES = {operator.add: "add", operator.iadd: "add", torch.add: "add", torch.cat: "cat", torch.concat: "cat"}
#: Kinds of the params/compute split: convolutions, dense (fully connected) layers, everything else.
KINDS = ("conv", "dense", "other")


class UncountableModelError(Exception):
    """The model can't be traced or run on fake tensors; the message says why."""


@dataclass(frozen=True)
class LayerRow:
    """One layer of a walked model (one call of a module, or one functional operation that costs MACs or merges).

    Attributes:
        name: The module's name in ``named_modules()`` (a functional operation: its owner's name and the op).
        type: The module class (``Conv2d``, ``Linear``, ...) or the operation (``add``, ``cat``, ``matmul``).
        kind: ``"conv"``, ``"dense"`` or ``"other"`` (see :data:`KINDS`).
        kernel, stride, padding, dilation: Per spatial axis for convolutions and pooling; ``None`` otherwise
            (``padding`` may be a string such as ``"same"``).
        groups: Channel groups of a convolution (``None`` otherwise).
        out_shape: Output shape without the batch axis (``None`` when the output is not one tensor).
        params: Parameters first used here (a module that runs twice counts them once).
        macs: Multiply-accumulates of this call, counted by torch's flop counter (FLOPs / 2).
        receptive_field: The layer's theoretical receptive field (``None`` where it has none or can't be known).
        inputs: Number of tensors merged (2 for a residual addition, 4 for an inception concat); 1 otherwise.
    """

    name: str
    type: str
    kind: str
    kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    padding: tuple[int, ...] | str | None
    dilation: tuple[int, ...] | None
    groups: int | None
    out_shape: tuple[int, ...] | None
    params: int
    macs: int
    receptive_field: R.ReceptiveField | None
    inputs: int = 1


@dataclass(frozen=True)
class ModelCost:
    """Totals of a walked model.

    Attributes:
        name: Registry name.
        input_shape: ``(channels, height, width)`` the walk used.
        params: All parameters of the model (each counted once).
        macs: All multiply-accumulates of one forward pass.
        layers: Number of rows of :func:`layer_costs`.
        split: ``{kind: (params, macs)}`` for ``"conv"``, ``"dense"`` and ``"other"``.
    """

    name: str
    input_shape: tuple[int, ...]
    params: int
    macs: int
    layers: int
    split: dict[str, tuple[int, int]]


# --------------------------------------------------------------------------------------------- tracing


def _torch_forward(cls: type, attr: str) -> bool:
    owner = next((c for c in cls.__mro__ if attr in c.__dict__), None)
    return owner is not None and owner.__module__.startswith("torch.nn")


class _Tracer(fx.Tracer):
    """Keeps torch.nn layers whole; a subclass with its own forward (a padded conv) is traced through."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, _CONTAINERS) or type(m) is nn.Module:
            return False
        leaf = _torch_forward(type(m), "forward")
        if leaf and isinstance(m, nn.modules.conv._ConvNd):
            leaf = _torch_forward(type(m), "_conv_forward")
        return leaf


_GRAPHS: weakref.WeakKeyDictionary[nn.Module, fx.Graph] = weakref.WeakKeyDictionary()


def _graph(model: nn.Module) -> fx.Graph:
    graph = _GRAPHS.get(model)
    if graph is None:
        try:
            with GRAPH_LOCK.write():  # fx patches nn.Module.__call__ process-wide while it traces
                graph = _Tracer().trace(model)
        except Exception as exc:
            raise UncountableModelError(
                f"{type(model).__name__} can't be traced with torch.fx ({type(exc).__name__}: {exc}), so its "
                "layers can't be counted one by one."
            ) from None
        _GRAPHS[model] = graph
    return graph


# --------------------------------------------------------------------------------------------- running


class _FlopTally(TorchDispatchMode):
    """Adds up torch's own flop formula of every operation it sees (thread-local, nothing attached)."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += int(formula(*args, **kwargs, out_val=out))
        return out


def _fetch(model: nn.Module, target: str) -> Any:
    obj: Any = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _owner(node: fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path


def _run(model: nn.Module, graph: fx.Graph, x: Any) -> list[tuple[fx.Node, Any, int]]:
    """Every node with its (fake) output and its FLOPs."""
    env: dict[fx.Node, Any] = {}
    out: list[tuple[fx.Node, Any, int]] = []
    tally = _FlopTally()
    load = lambda a: fx.node.map_arg(a, env.__getitem__)  # noqa: E731
    with tally:
        for node in graph.nodes:
            before = tally.flops
            if node.op == "placeholder":
                value = x if not env else node.args[0] if node.args else None
            elif node.op == "get_attr":
                value = _fetch(model, node.target)
            elif node.op == "call_module":
                value = model.get_submodule(node.target)(*load(node.args), **load(node.kwargs))
            elif node.op == "call_function":
                value = node.target(*load(node.args), **load(node.kwargs))
            elif node.op == "call_method":
                args = load(node.args)
                value = getattr(args[0], node.target)(*args[1:], **load(node.kwargs))
            else:  # output
                continue
            env[node] = value
            out.append((node, value, tally.flops - before))
    return out


# --------------------------------------------------------------------------------------------- rows


def _axes(value: Any, n: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value,) * n
    return tuple(int(v) for v in value)


def _geometry(m: nn.Module | None) -> dict[str, Any]:
    empty = {"kernel": None, "stride": None, "padding": None, "dilation": None, "groups": None}
    if m is None or not hasattr(m, "kernel_size"):
        return empty
    k = m.kernel_size
    n = len(k) if isinstance(k, tuple) else {"1d": 1, "3d": 3}.get(type(m).__name__[-2:].lower(), 2)
    padding = m.padding if isinstance(m.padding, str) else _axes(m.padding, n)
    if (
        isinstance(m, nn.modules.conv._ConvNd)
        and type(m).forward is not nn.Conv2d.forward
        and hasattr(m, "static_padding")
    ):
        pad = getattr(m.static_padding, "padding", None)  # efficientnet-lite pads "same" before a padding-free conv
        padding = "same" if pad is None or any(pad) else padding
    return {
        "kernel": _axes(k, n),
        "stride": _axes(m.stride, n),
        "padding": padding,
        "dilation": _axes(getattr(m, "dilation", 1), n),
        "groups": getattr(m, "groups", None),
    }


def _kind(m: nn.Module | None, op: str) -> str:
    if isinstance(m, nn.modules.conv._ConvNd) or "conv" in op:
        return "conv"
    if isinstance(m, nn.Linear) or op in ("linear", "matmul", "mm", "addmm", "bmm"):
        return "dense"
    return "other"


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(int(s) for s in value.shape[1:]) if isinstance(value, torch.Tensor) else None


def _op_name(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        return str(target)
    return getattr(target, "__name__", str(target)).strip("_")


def _rows(
    model: nn.Module, steps: list[tuple[fx.Node, Any, int]], fields: dict[str, R.ReceptiveField]
) -> list[LayerRow]:
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    open_row: dict[str, dict[str, Any]] = {}  # traced-through modules with parameters: one row per call
    called: set[str] = set()  # receptive fields describe a module's first call only

    def params_of(m: nn.Module, recurse: bool) -> int:
        if id(m) in seen:
            return 0
        seen.add(id(m))
        return sum(p.numel() for p in m.parameters(recurse=recurse))

    def new_row(name: str, m: nn.Module | None, op: str, value: Any, flops: int, params: int, inputs: int = 1) -> dict:
        first = m is not None and name not in called
        called.add(name)
        row = {"name": name, "type": type(m).__name__ if m is not None else op, "kind": _kind(m, op),
               **_geometry(m), "out_shape": _shape(value), "params": params, "flops": flops,
               "receptive_field": fields.get(name) if first else None, "inputs": inputs}  # fmt: skip
        rows.append(row)
        return row

    for node, value, flops in steps:
        if node.op == "call_module":
            m = model.get_submodule(node.target)
            new_row(node.target, m, "", value, flops, params_of(m, True))
            continue
        if node.op not in ("call_function", "call_method"):
            continue
        owner = _owner(node)
        m = model.get_submodule(owner) if owner is not None else None
        if m is not None and any(True for _ in m.parameters(recurse=False)):
            row = open_row.get(owner)
            if row is None or row["closed"]:
                row = new_row(owner, m, "", value, 0, params_of(m, False))
                row["closed"] = False
                open_row[owner] = row
            row["flops"] += flops
            row["out_shape"] = _shape(value)
            continue
        for other in open_row.values():
            other["closed"] = True
        op = _op_name(node)
        merge = _MERGES.get(node.target) if node.op == "call_function" else None
        if merge == "cat":
            inputs = len(node.args[0]) if node.args and isinstance(node.args[0], (list, tuple)) else 1
        else:
            inputs = sum(isinstance(a, fx.Node) for a in node.args)
        if flops or (merge and inputs > 1):
            name = f"{owner}.{op}" if owner else op
            new_row(name, None, merge or op, value, flops, 0, inputs if merge else 1)
    for row in rows:
        row.pop("closed", None)
    return [LayerRow(**{k: v for k, v in row.items() if k != "flops"}, macs=row["flops"] // 2) for row in rows]


# --------------------------------------------------------------------------------------------- public


def _unwrap(
    loaded: LoadedModel | nn.Module, input_shape: tuple[int, ...] | None
) -> tuple[nn.Module, tuple[int, ...], Any]:
    if isinstance(loaded, nn.Module):
        if input_shape is None:
            raise ValueError("Give input_shape=(channels, height, width) to walk a bare nn.Module.")
        return loaded, tuple(input_shape), None
    h, w = loaded.spec.input_size
    shape = tuple(input_shape) if input_shape is not None else (loaded.spec.in_channels, h, w)
    return loaded.model, shape, loaded


def layer_costs(loaded: LoadedModel | nn.Module, input_shape: tuple[int, ...] | None = None) -> list[LayerRow]:
    """Every layer of a model in execution order, with its output shape, parameters, MACs and receptive field.

    Args:
        loaded: A registry model (its own input size is used) or a bare ``nn.Module`` (then ``input_shape``
            is required). It is traced and run on fake tensors only: never changed, no hooks.
        input_shape: ``(channels, height, width)`` to count at (default: the model's input size).

    Returns:
        The rows (cached in ``loaded.cache`` per input shape; a new list each call).

    Raises:
        UncountableModelError: torch.fx can't trace the model, or it fails on fake tensors.
        ValueError: No input shape for a bare module.
    """
    model, shape, wrapper = _unwrap(loaded, input_shape)
    key = ("layer_costs", shape)
    cache = getattr(wrapper, "cache", None)
    if cache is not None and key in cache:
        return list(cache[key])
    graph = _graph(model)
    steps = _fake_run(model, graph, shape, wrapper)
    try:
        fields = R.receptive_fields(model, shape[1:] if len(shape) == 3 else shape[-1], every_layer=True)
    except (R.ReceptiveFieldError, ValueError):
        fields = {}
    rows = _rows(model, steps, fields)
    if cache is not None:
        cache[key] = tuple(rows)
    return rows


def _fake_run(model: nn.Module, graph: fx.Graph, shape: tuple[int, ...], wrapper: Any) -> list:
    from torch._subclasses.fake_tensor import FakeTensorMode

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    shared: Callable[[], Any] = wrapper.shared if wrapper is not None else contextlib.nullcontext
    # A model on the meta device already computes shapes only (and faster: fake tensors decompose batch norm);
    # a model with real weights runs on fake tensors, which stand in for its weights without touching them.
    fake = FakeTensorMode(allow_non_fake_inputs=True) if device.type != "meta" else contextlib.nullcontext()
    try:
        with shared(), fake, torch.no_grad():
            x = torch.empty((1, *shape), device=device, dtype=dtype)
            return _run(model, graph, x)
    except Exception as exc:
        raise UncountableModelError(
            f"{type(model).__name__} could not be run on an input of shape {shape} to count its layers "
            f"({type(exc).__name__}: {exc})."
        ) from None


def model_cost(loaded: LoadedModel | nn.Module, input_shape: tuple[int, ...] | None = None) -> ModelCost:
    """Totals of :func:`layer_costs`: parameters (all of the model's, each once), MACs, and the split by kind.

    Args:
        loaded: A registry model or a bare ``nn.Module`` (with ``input_shape``).
        input_shape: ``(channels, height, width)`` (default: the model's input size).

    Returns:
        The totals.

    Raises:
        UncountableModelError: As :func:`layer_costs`.
    """
    rows = layer_costs(loaded, input_shape)
    model, shape, wrapper = _unwrap(loaded, input_shape)
    split = {kind: (sum(r.params for r in rows if r.kind == kind), sum(r.macs for r in rows if r.kind == kind))
             for kind in KINDS}  # fmt: skip
    params = sum(p.numel() for p in model.parameters())
    unowned = params - sum(r.params for r in rows)
    if unowned:  # parameters used outside any layer row (e.g. a class token): counted as "other"
        split["other"] = (split["other"][0] + unowned, split["other"][1])
    name = wrapper.name if wrapper is not None else type(model).__name__
    return ModelCost(name, shape, params, sum(r.macs for r in rows), len(rows), split)


def architecture_costs(name: str) -> tuple[ModelCost, list[LayerRow]]:
    """:func:`model_cost` and :func:`layer_costs` of a registered architecture, built without weights.

    The network is built on PyTorch's ``meta`` device (no memory, no initialisation, no download): costs
    depend on the architecture only. Nothing is cached here: cache the result per name.

    Raises:
        vizlib.models.UnknownModelError: ``name`` is not registered.
        UncountableModelError: As :func:`layer_costs`.
    """
    from vizlib import models

    with torch.device("meta"):
        loaded = models.load_model(name, pretrained=False, device="meta")
    rows = layer_costs(loaded)
    return model_cost(loaded), rows
