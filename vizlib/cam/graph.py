"""The traced network behind :mod:`vizlib.cam` methods: layer names, the default layer, the CAM head, graph splits.

A model is traced once with torch.fx (see :func:`vizlib.activations.trace_graph`) and its shapes
recorded with one forward pass on a zero image; everything here is derived from that graph and
cached on the :class:`~vizlib.models.LoadedModel`. Nothing is attached to the shared model: the
modules built here are separate GraphModules that share its parameters.

Layer names follow :mod:`vizlib.activations` (torchvision's rule): a module name (``"layer4"``,
``"features.29"``) means the last operation inside that module, and the fx node names of
``get_graph_node_names`` (``"_swish_1"``, the second call of a reused module) are accepted too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from vizlib.activations import trace_graph
from vizlib.caching import LRUCache
from vizlib.models import LoadedModel

__all__ = [
    "CAMError",
    "CAMHeadError",
    "LayerError",
    "TracedModel",
    "captum_module",
    "default_layer",
    "linear_head",
    "resolve_layer",
    "split_module",
    "tap_module",
    "traced",
    "unguided_activations",
]

_CACHE_SIZE = 16

_GAP_MODULES = (nn.AdaptiveAvgPool2d, nn.AvgPool2d)
_GAP_FUNCTIONS = (F.adaptive_avg_pool2d, F.avg_pool2d, torch.mean)
_RESHAPE_FUNCTIONS = (torch.flatten, torch.reshape, torch.squeeze)
_RESHAPE_METHODS = ("flatten", "view", "reshape", "squeeze", "contiguous")
_PASS_MODULES = (nn.Dropout, nn.Identity, nn.Flatten)
_RELU_FUNCTIONS = (F.relu, torch.relu, torch.relu_)
_RELU6_FUNCTIONS = (F.relu6,)
# Activations guided backpropagation has no rule for (it rewrites the gradient of rectifiers only).
_OTHER_ACTIVATION_MODULES = (nn.SiLU, nn.Hardswish, nn.GELU, nn.ELU, nn.CELU, nn.SELU, nn.LeakyReLU, nn.PReLU,
                             nn.Mish, nn.Softplus, nn.Tanh)
_OTHER_ACTIVATION_FUNCTIONS = {F.silu: "SiLU", F.hardswish: "Hardswish", F.gelu: "GELU", F.elu: "ELU",
                               F.leaky_relu: "LeakyReLU", F.mish: "Mish", F.softplus: "Softplus", torch.tanh: "Tanh"}


class CAMError(ValueError):
    """Bad input for a class activation map; the message says what to change."""


class LayerError(CAMError):
    """The layer is unknown, or its output is not a (C, h, w) map."""


class CAMHeadError(CAMError):
    """The model's head is not global average pooling followed by one linear layer, so "cam" can't apply."""


@dataclass(frozen=True, eq=False)
class TracedModel:
    """A model's fx graph with each node's qualified name and output shape (from one zero-image pass).

    Attributes:
        gm: The traced GraphModule (shares the model's parameters; never run with hooks).
        qualnames: fx node name -> torchvision-style qualified name (``"layer4.2.relu_2"``).
        shapes: fx node name -> output shape, or ``None`` when the output is not one tensor.
        model_name: For messages.
    """

    gm: fx.GraphModule
    qualnames: dict[str, str]
    shapes: dict[str, tuple[int, ...] | None]
    model_name: str

    def node(self, name: str) -> fx.Node:
        """The fx node called ``name`` (an fx node name, not a qualified name)."""
        for node in self.gm.graph.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def describe(self, node: fx.Node) -> str:
        """``qualname (ModuleType)`` for messages."""
        label = self.qualnames.get(node.name, node.name)
        if node.op == "call_module":
            return f"{label} ({type(self.gm.get_submodule(str(node.target))).__name__})"
        return label


def traced(loaded: LoadedModel) -> TracedModel:
    """The model's traced graph with shapes, built once per loaded model and cached.

    Raises:
        vizlib.activations.ExtractionError: The model can't be traced.
    """
    cached = loaded.cache.get("cam_traced")
    if cached is not None:
        return cached
    base = trace_graph(loaded.model)  # may be a shared, cached trace: copy before annotating shapes
    base_names: dict = base.node_to_qualname  # type: ignore[attr-defined]  # keyed by node or node name
    by_name = {(key.name if isinstance(key, fx.Node) else str(key)): str(qn) for key, qn in base_names.items()}
    graph = fx.Graph()
    value_map: dict[fx.Node, fx.Node] = {}
    graph.output(graph.graph_copy(base.graph, value_map))
    qualnames = {new.name: by_name[old.name] for old, new in value_map.items() if old.name in by_name}
    gm = fx.GraphModule(base, graph, type(loaded.model).__name__)
    h, w = loaded.input_size
    x = torch.zeros(1, loaded.spec.in_channels, h, w, device=loaded.device)
    with loaded.shared(), torch.no_grad():
        ShapeProp(gm).propagate(x)
    shapes: dict[str, tuple[int, ...] | None] = {}
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        shapes[node.name] = tuple(int(s) for s in meta.shape) if hasattr(meta, "shape") else None
    result = TracedModel(gm, qualnames, shapes, loaded.name)
    loaded.cache["cam_traced"] = result
    return result


def resolve_layer(graph: TracedModel, layer: str) -> fx.Node:
    """The fx node a layer name stands for: the last node whose qualified name is ``layer`` or lies inside it.

    Raises:
        LayerError: No node matches, or the node's output is not a 4-D (N, C, h, w) tensor.
    """
    depth = layer.count(".") + 1
    found = None
    for node in reversed(graph.gm.graph.nodes):
        qualname = graph.qualnames.get(node.name)
        if qualname is not None and ".".join(qualname.split(".")[:depth]) == layer:
            found = node
            break
    if found is None:
        raise LayerError(
            f"{graph.model_name} has no layer {layer!r}. Pick a convolutional layer from "
            "vizlib.activations.conv_layers(), or leave the layer empty for the last convolutional block."
        )
    shape = graph.shapes.get(found.name)
    if shape is None or len(shape) != 4 or shape[2] * shape[3] < 1:
        raise LayerError(
            f"Layer {layer!r} of {graph.model_name} outputs {'shape ' + str(shape[1:]) if shape else 'no tensor'}, "
            "not a (channels, height, width) map; class activation maps need a convolutional layer."
        )
    return found


def _last_block_node(graph: TracedModel) -> fx.Node:
    nodes = list(graph.gm.graph.nodes)
    convs = [
        i
        for i, n in enumerate(nodes)
        if n.op == "call_module" and isinstance(graph.gm.get_submodule(str(n.target)), nn.Conv2d)
    ]
    if not convs:
        raise LayerError(f"{graph.model_name} has no 2-D convolution, so it has no layer to explain.")
    best = nodes[convs[-1]]
    spatial = graph.shapes[best.name][2:]  # type: ignore[index]
    for node in nodes[convs[-1] + 1 :]:
        shape = graph.shapes.get(node.name)
        if shape is None:
            continue
        if len(shape) != 4 or shape[2:] != spatial:
            break
        best = node
    return best


def _short_name(graph: TracedModel, node: fx.Node) -> str:
    """The shortest module name that resolves to ``node`` (``"layer4"`` rather than ``"layer4.2.relu_2"``)."""
    qualname = graph.qualnames[node.name]
    parts = qualname.split(".")
    modules = dict(graph.gm.named_modules())
    for end in range(1, len(parts)):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            try:
                if resolve_layer(graph, candidate) is node:
                    return candidate
            except LayerError:
                continue
    return qualname


def default_layer(loaded: LoadedModel) -> str:
    """The name of the last convolutional block: the output of the last convolution, carried on through
    the operations that keep its spatial size (its norm, activation, residual sum, branch concatenation).

    ``"layer4"`` for ResNets, ``"features.29"`` for VGG-16, ``"_swish_1"`` for EfficientNet-Lite0.

    Raises:
        LayerError: The model has no convolution.
    """
    name = loaded.cache.get("cam_default_layer")
    if name is None:
        graph = traced(loaded)
        name = loaded.cache["cam_default_layer"] = _short_name(graph, _last_block_node(graph))
    return name


# --------------------------------------------------------------------------------------------- CAM head


def _is_gap(graph: TracedModel, node: fx.Node, channels: int) -> bool:
    shape = graph.shapes.get(node.name)
    if shape is None or shape[:2] != (1, channels) or any(s != 1 for s in shape[2:]):
        return False
    if node.op == "call_module":
        return isinstance(graph.gm.get_submodule(str(node.target)), _GAP_MODULES)
    if node.op == "call_function":
        return node.target in _GAP_FUNCTIONS
    return node.op == "call_method" and node.target == "mean"


def _is_passthrough(graph: TracedModel, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(graph.gm.get_submodule(str(node.target)), _PASS_MODULES)
    if node.op == "call_function":
        return node.target in _RESHAPE_FUNCTIONS or node.target is F.dropout
    return node.op == "call_method" and node.target in _RESHAPE_METHODS


def _single_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def linear_head(graph: TracedModel, node: fx.Node) -> nn.Linear:
    """The linear layer of a global-average-pooling head fed directly by ``node`` (Zhou et al. 2016).

    The path from ``node`` to the output must be: global average pooling, then reshapes or dropout
    only, then one ``nn.Linear``, then the output.

    Raises:
        CAMHeadError: Anything else, with the reason and a pointer to Grad-CAM.
    """
    layer = graph.describe(node)
    channels = graph.shapes[node.name][1]  # type: ignore[index]
    advice = 'Use "gradcam", which generalises CAM to any head.'
    pool = _single_user(node)
    if pool is None or not _is_gap(graph, pool, channels):
        what = f"feeds {graph.describe(pool)}" if pool is not None else "feeds several operations"
        if pool is not None and pool.op != "output" and graph.shapes.get(pool.name) is not None:
            what += f", whose output is {tuple(graph.shapes[pool.name][1:])}"  # type: ignore[index]
        raise CAMHeadError(
            f"CAM (Zhou et al. 2016) needs a layer whose output goes straight into global average pooling and "
            f"then one linear layer; in {graph.model_name}, {layer} {what}. {advice}"
        )
    current = _single_user(pool)
    while current is not None and _is_passthrough(graph, current):
        current = _single_user(current)
    head = graph.gm.get_submodule(str(current.target)) if current is not None and current.op == "call_module" else None
    after = _single_user(current) if current is not None else None
    if not isinstance(head, nn.Linear) or after is None or after.op != "output":
        chain = _chain(graph, pool)
        raise CAMHeadError(
            f"CAM (Zhou et al. 2016) needs global average pooling followed by exactly one linear layer; "
            f"the head of {graph.model_name} after {layer} is {chain}. {advice}"
        )
    return head


def _chain(graph: TracedModel, start: fx.Node, limit: int = 6) -> str:
    names = []
    node: fx.Node | None = start
    while node is not None and node.op != "output" and len(names) < limit:
        names.append(graph.describe(node))
        node = _single_user(node)
    more = " -> ..." if node is not None and node.op != "output" else ""
    return " -> ".join(names) + more


# --------------------------------------------------------------------------------------------- splits


def _grad_leaf(x: torch.Tensor) -> torch.Tensor:
    """Cut the autograd history here: the layer's activation becomes a leaf that requires grad."""
    return x.detach().requires_grad_(True)


def _cached(loaded: LoadedModel, key: tuple[str, str], build: Callable[[], fx.GraphModule]) -> fx.GraphModule:
    cache: LRUCache[tuple[str, str], fx.GraphModule] = loaded.cache.setdefault("cam_modules", LRUCache(_CACHE_SIZE))
    return cache.get_or_create(key, build)  # built outside the lock; the first module stored wins


def split_module(loaded: LoadedModel, node: fx.Node) -> fx.GraphModule:
    """A GraphModule returning ``(activation, logits)`` in one forward pass.

    ``activation`` is the layer's output made an autograd leaf that requires grad; the rest of the
    network runs from a clone of it. With the model's parameters frozen and the input not requiring
    grad, autograd records only the part after the layer, so ``torch.autograd.grad(logits[0, c],
    activation)`` back-propagates through that part alone. The leaf keeps the layer's own values even
    when the next operation works in place (a ``ReLU(inplace=True)`` after a convolution).
    """
    return _tapped(loaded, node, cut=True)


def tap_module(loaded: LoadedModel, node: fx.Node) -> fx.GraphModule:
    """A GraphModule returning ``(activation, logits)`` in one forward pass, the autograd history kept whole.

    Unlike :func:`split_module`, ``activation`` stays a node of the autograd graph: with the input
    requiring grad, one ``torch.autograd.grad(logits[0, c], [activation, input])`` gives the layer's
    gradient and the input's from the same backward pass. The rest of the network runs from a clone of
    ``activation``, so an in-place operation after the layer leaves the returned values as they were.
    """
    return _tapped(loaded, node, cut=False)


def _tapped(loaded: LoadedModel, node: fx.Node, *, cut: bool) -> fx.GraphModule:
    graph = traced(loaded)

    def build() -> fx.GraphModule:
        new = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        tap = None
        for old in graph.gm.graph.nodes:
            if old.op == "output":
                new.output((tap, fx.graph.map_arg(old.args[0], lambda n: env[n])))
                continue
            env[old] = new.node_copy(old, lambda n: env[n])
            if old is node:
                tap = new.call_function(_grad_leaf, (env[old],)) if cut else env[old]
                env[old] = new.call_method("clone", (tap,))
        return fx.GraphModule(graph.gm, new, "CAMSplit" if cut else "CAMTap").eval()

    return _cached(loaded, ("split" if cut else "tap", node.name), build)


def captum_module(loaded: LoadedModel, node: fx.Node) -> fx.GraphModule:
    """The network as a GraphModule for Captum, with the layer's output tapped by an ``nn.Identity``
    named ``cam_layer`` and every rectifier routed through an ``nn.ReLU`` of its own.

    Captum's guided backpropagation rewrites the gradient of ``nn.ReLU`` modules only; here the
    functional ``F.relu`` of Inception/GoogLeNet and the ``ReLU6`` of EfficientNet-Lite (computed as
    ``ReLU`` then ``clamp(max=6)``, the same function) get the rule too, and Captum's hooks land on
    modules that belong to this wrapper rather than to the shared model. The wrapper is itself shared
    between sessions: attach hooks to it only under ``loaded.exclusive()``.
    """
    graph = traced(loaded)

    def build() -> fx.GraphModule:
        new = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        owned: dict[str, object] = {}
        for old in graph.gm.graph.nodes:
            if old.op == "output":
                new.output(fx.graph.map_arg(old.args[0], lambda n: env[n]))
                continue
            kind = _rectifier(graph, old)
            if kind:
                name = f"relu_{len([k for k in owned if k.startswith('relu_')])}"
                owned[name] = nn.ReLU()
                out = new.call_module(name, (env[old.args[0]],))
                if kind == "relu6":
                    out = new.call_function(torch.clamp, (out,), {"max": 6.0})
                env[old] = out
            else:
                env[old] = new.node_copy(old, lambda n: env[n])
                if old.op in ("call_module", "get_attr"):
                    owned[str(old.target)] = _fetch(graph.gm, str(old.target))
            if old is node:
                owned["cam_layer"] = nn.Identity()
                env[old] = new.call_module("cam_layer", (env[old],))
        return fx.GraphModule(owned, new, "CAMCaptum").eval()

    return _cached(loaded, ("captum", node.name), build)


def _fetch(root: nn.Module, target: str) -> object:
    obj: object = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def unguided_activations(loaded: LoadedModel) -> dict[str, int]:
    """The activations in ``loaded``'s forward pass that guided backpropagation leaves as they are.

    Guided backpropagation (and Guided Grad-CAM) only let positive gradients back through *rectifiers*
    (ReLU, ReLU6). Through any other activation (SiLU in EfficientNet-B0, Hardswish in MobileNet v3) the gradient
    passes unchanged, so on a network built mostly of those the "guided" map is close to a plain gradient.

    Returns:
        ``{activation type: how many times it runs}``, e.g. ``{"SiLU": 49}``; empty for an all-ReLU network.
    """
    graph = traced(loaded)
    counts: dict[str, int] = {}
    for node in graph.gm.graph.nodes:
        name = None
        if node.op == "call_module":
            module = graph.gm.get_submodule(str(node.target))
            if isinstance(module, _OTHER_ACTIVATION_MODULES):
                name = type(module).__name__
        elif node.op == "call_function":
            name = _OTHER_ACTIVATION_FUNCTIONS.get(node.target)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _rectifier(graph: TracedModel, node: fx.Node) -> str | None:
    if node.op == "call_module":
        module = graph.gm.get_submodule(str(node.target))
        if isinstance(module, nn.ReLU):
            return "relu"
        return "relu6" if isinstance(module, nn.ReLU6) else None
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return "relu"
        return "relu6" if node.target in _RELU6_FUNCTIONS else None
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        return "relu"
    return None
