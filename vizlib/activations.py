"""Intermediate activations of any layer, by torch.fx feature extraction (no hooks).

Layers are named as in ``model.named_modules()``. A module that runs more than once in a forward
pass (a ReLU reused inside a ResNet block, say) is reported at its first call. Naming a container
(``"layer1"``) gives the output of its last operation.
"""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import (
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    _AvgPoolNd,
    _MaxPoolNd,
)

from vizlib.caching import LRUCache
from vizlib.concurrency import GRAPH_LOCK
from vizlib.models import LoadedModel, run_with_cpu_fallback

__all__ = [
    "ExtractionError",
    "LayerInfo",
    "build_extractor",
    "conv_layers",
    "extract",
    "layer_table",
    "leaf_module_classes",
    "trace_graph",
]

# Module kinds that must stay single graph nodes even when a package subclasses them
# (efficientnet-lite's Conv2dStaticSamePadding is an nn.Conv2d subclass with its own forward).
_ATOMIC_BASES: tuple[type[nn.Module], ...] = (
    _ConvNd,
    _MaxPoolNd,
    _AvgPoolNd,
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    _BatchNorm,
    nn.Linear,
)
_EXTRACTOR_CACHE_SIZE = 16
_INPLACE_OPERATORS = {
    operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv, operator.imod,
    operator.ipow, operator.iand, operator.ior, operator.ixor, operator.ilshift, operator.irshift,
    operator.setitem,
}
_VIEW_METHODS = {
    "view", "view_as", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "narrow",
    "expand", "expand_as", "contiguous", "__getitem__", "t", "unflatten", "detach", "as_strided",
}


class ExtractionError(ValueError):
    """A layer name is unknown or the model can't be traced."""


@dataclass(frozen=True)
class LayerInfo:
    """One row of a model's layer table."""

    name: str
    type: str
    stage: str
    output_shape: tuple[int, ...]
    params: int
    depth: int


def leaf_module_classes(model: nn.Module) -> list[type[nn.Module]]:
    """Classes in ``model`` that subclass a conv/pool/norm/linear layer outside ``torch.nn``.

    torch.fx would trace into their ``forward``; keeping them as leaves keeps their names.
    """
    found: dict[type[nn.Module], None] = {}
    for module in model.modules():
        cls = type(module)
        if isinstance(module, _ATOMIC_BASES) and not cls.__module__.startswith("torch.nn"):
            found[cls] = None
    return list(found)


def _tracer_kwargs(model: nn.Module) -> dict:
    return {"leaf_modules": leaf_module_classes(model)}


_TRACES: weakref.WeakKeyDictionary[nn.Module, fx.GraphModule] = weakref.WeakKeyDictionary()


def trace_graph(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model`` (eval mode) into a GraphModule whose module calls keep their names.

    The trace is made once per model and cached (weakly keyed). Tracing patches
    ``torch.nn.Module.__call__`` process-wide, so it holds :data:`GRAPH_LOCK` exclusively: no forward
    pass of any vizlib model runs meanwhile. The graph module's ``node_to_qualname`` maps each node's name to
    its module path (``layer1.0.relu``, ``layer1.0.relu_1`` for a second call). Treat it as read-only.

    Raises:
        ExtractionError: The model can't be traced symbolically.
    """
    cached = _TRACES.get(model)
    if cached is not None:
        return cached
    from torchvision.models.feature_extraction import NodePathTracer

    with GRAPH_LOCK.write():
        cached = _TRACES.get(model)
        if cached is not None:
            return cached
        was_training = model.training
        try:
            model.eval()
            tracer = NodePathTracer(autowrap_modules=(math,), **_tracer_kwargs(model))
            graph = tracer.trace(model)
        except Exception as exc:
            raise ExtractionError(
                f"{type(model).__name__} can't be traced with torch.fx ({type(exc).__name__}: {exc})."
            ) from None
        finally:
            model.train(was_training)
        gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
        gm.node_to_qualname = {node.name: name for node, name in tracer.node_to_qualname.items()}  # type: ignore[attr-defined]
        _TRACES[model] = gm
        return gm


def _find_node(nodes: list[fx.Node], qualnames: dict[str, str], layer: str) -> fx.Node | None:
    """The node giving ``layer``'s output: its (first) call, or for a container its last operation."""
    depth = layer.count(".")
    for node in reversed(nodes):
        qualname = qualnames.get(node.name)
        if qualname is not None and ".".join(qualname.split(".")[: depth + 1]) == layer:
            return node
    return None


def build_extractor(model: nn.Module, layers: Sequence[str]) -> fx.GraphModule:
    """A GraphModule returning ``{layer: activation}`` for ``layers``; it shares ``model``'s parameters.

    Built from the cached trace of ``model`` (see :func:`trace_graph`): the graph is copied, its output
    replaced by the requested nodes and everything after them removed. Several names may share a node
    (a container and its last layer).

    Raises:
        ExtractionError: A layer is not a module of ``model``, or the model can't be traced.
    """
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules or name == ""]
    if missing:
        raise ExtractionError(
            f"No layer named {', '.join(map(repr, missing))} in {type(model).__name__}. "
            "Use names from vizlib.activations.layer_table()."
        )
    traced = trace_graph(model)
    graph = fx.Graph()
    value_map: dict[fx.Node, fx.Node] = {}
    graph.graph_copy(traced.graph, value_map)
    copied = [value_map[node] for node in traced.graph.nodes if node in value_map]
    qualnames = {value_map[node].name: traced.node_to_qualname[node.name]
                 for node in traced.graph.nodes if node in value_map and node.name in traced.node_to_qualname}
    outputs: dict[str, fx.Node] = {}
    for layer in layers:
        node = _find_node(copied, qualnames, layer)
        if node is None:
            raise ExtractionError(f"{layer!r} does not run in {type(model).__name__}'s forward pass.")
        outputs[layer] = node
    graph.output(outputs)
    extractor = fx.GraphModule(traced, graph, type(model).__name__)
    extractor.graph.eliminate_dead_code()
    extractor.delete_all_unused_submodules()
    extractor.recompile()
    return _protect_outputs(extractor.eval())


def _is_inplace(user: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``user`` may write into its first argument (conservative: unsure counts as yes)."""
    if user.op == "call_module":
        return bool(getattr(modules.get(str(user.target)), "inplace", False))
    if user.op == "call_method":
        name = str(user.target)
        return name.endswith("_") and not name.endswith("__")
    if user.op == "call_function":
        if user.target in _INPLACE_OPERATORS or user.kwargs.get("inplace") is True:
            return True
        name = getattr(user.target, "__name__", "")
        return (name.endswith("_") and not name.endswith("__")) or any(a is True for a in user.args[1:])
    return False


def _aliases(node: fx.Node) -> list[fx.Node]:
    """``node`` and the views of it that the graph makes (whose mutation would change it)."""
    found, todo = [], [node]
    while todo:
        current = todo.pop()
        found.append(current)
        for user in current.users:
            is_view = user.op == "call_method" and user.target in _VIEW_METHODS
            is_view |= user.op == "call_function" and user.target is operator.getitem
            if is_view and user.args and user.args[0] is current:
                todo.append(user)
    return found


def _protect_outputs(extractor: fx.GraphModule) -> fx.GraphModule:
    """Clone every returned activation that a later in-place op would overwrite.

    Without this, a conv output followed by ``ReLU(inplace=True)`` (VGG, AlexNet, ResNet's ``out += identity``)
    would come back already rectified or summed. Only the affected activations are copied.
    """
    gm = extractor
    modules = dict(gm.named_modules())
    output = next(n for n in gm.graph.nodes if n.op == "output")
    returned = dict(output.args[0])
    changed = False
    for key, node in list(returned.items()):
        if not isinstance(node, fx.Node):
            continue
        mutated = any(
            _is_inplace(user, modules) and user.args and user.args[0] is alias
            for alias in _aliases(node)
            for user in alias.users
            if user is not output
        )
        if mutated:
            with gm.graph.inserting_after(node):
                copy = gm.graph.call_method("clone", (node,))
            returned[key] = copy
            changed = True
    if changed:
        output.args = (returned,)
        gm.graph.lint()
        gm.recompile()
    return gm.eval()


def _cached_extractor(loaded: LoadedModel, layers: tuple[str, ...]) -> fx.GraphModule:
    cache: LRUCache[tuple[str, ...], fx.GraphModule] = loaded.cache.setdefault(
        "extractors", LRUCache(_EXTRACTOR_CACHE_SIZE)
    )  # dict.setdefault is atomic: every thread gets the same cache
    key = tuple(sorted(set(layers)))
    return cache.get_or_create(key, lambda: build_extractor(loaded.model, key))


def run_extractor(loaded: LoadedModel, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """One forward pass of a cached extractor on an already preprocessed batch; outputs stay on the device."""
    extractor = _cached_extractor(loaded, tuple(layers))
    with loaded.shared(), torch.no_grad():
        return extractor(x)


def extract(loaded: LoadedModel, image: np.ndarray, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` for one image, in one forward pass.

    Thread-safe on a shared model: it attaches nothing to the model (the fx extractor is a separate
    module sharing the parameters) and holds the model's shared lock while running.

    Args:
        loaded: A model from :func:`vizlib.models.load_model`.
        image: HxWx3 uint8 RGB array.
        layers: Names from ``model.named_modules()``.

    Returns:
        ``{layer: tensor}`` in the order asked, each without the batch dimension ((C, h, w) for
        convolutional layers), detached, float32, on the CPU.

    Raises:
        ExtractionError: A name is unknown or the model can't be traced.
    """
    layers = list(dict.fromkeys(layers))
    if not layers:
        return {}

    def run(lm: LoadedModel) -> dict[str, torch.Tensor]:
        outputs = run_extractor(lm, lm.preprocess(image), layers)
        return {name: outputs[name][0].detach().float().cpu() for name in layers}

    return run_with_cpu_fallback(loaded, run)  # type: ignore[return-value]


def layer_table(loaded: LoadedModel) -> tuple[LayerInfo, ...]:
    """Every leaf layer that runs in the forward pass, in execution order, with its output shape.

    Computed once per loaded model (one forward pass on a zero image) and cached.
    """
    cached = loaded.cache.get("layer_table")
    if cached is not None:
        return cached
    model = loaded.model
    gm = trace_graph(model)
    modules = dict(model.named_modules())
    order: list[str] = []
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target in modules and node.target not in order:
            order.append(str(node.target))
    h, w = loaded.input_size
    x = torch.zeros(1, loaded.spec.in_channels, h, w, device=loaded.device)
    outputs = run_extractor(loaded, x, order) if order else {}
    rows = []
    for name in order:
        out = outputs[name]
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
        module = modules[name]
        rows.append(
            LayerInfo(
                name=name,
                type=type(module).__name__,
                stage=_stage_of(name),
                output_shape=tuple(int(s) for s in shape),
                params=sum(p.numel() for p in module.parameters()),
                depth=name.count(".") + 1,
            )
        )
    table = tuple(rows)
    loaded.cache["layer_table"] = table
    return table


def _stage_of(name: str) -> str:
    """The block a layer belongs to: ``layer1``, ``features.3`` (torchvision MobileNet/EfficientNet),
    ``_blocks.4`` (EfficientNet-Lite); the top-level name for flat stacks such as VGG's ``features``."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[1].isdigit() and parts[0] in ("features", "_blocks", "layers", "blocks"):
        return ".".join(parts[:2])
    return parts[0]


def conv_layers(loaded: LoadedModel) -> list[str]:
    """Names of the 2-D convolutions that run in the forward pass, in execution order."""
    modules = dict(loaded.model.named_modules())
    return [row.name for row in layer_table(loaded) if isinstance(modules[row.name], nn.Conv2d)]
