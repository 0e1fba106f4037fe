"""Brute-force receptive fields, a test reference for the analytic ones: :func:`gradient_support`.

A linearised, positive copy of a network: the support of one unit's input gradient is then exactly
the set of input pixels the unit depends on, which checks the analytic numbers independently.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from vizlib.models import LoadedModel
from vizlib.receptive_field import geometry as geo
from vizlib.receptive_field.analytic import IntOrPair, _check_input_size, _entry, _layer_node, _states, _unwrap
from vizlib.receptive_field.effective import _shared
from vizlib.receptive_field.geometry.rules import _pair

__all__ = [
    "gradient_support",
    "linearised_twin",
    "supports",
]

Box = tuple[tuple[int, int], tuple[int, int]]

# Products and sums of positive values grow without bound (a gate squares its input); rescaling their
# results by a detached positive number keeps float32 finite and leaves the gradient's support unchanged.
_GROWING = frozenset({"add", "add_", "iadd", "mul", "mul_", "imul"})


def _make_positive(twin: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Every weight a positive constant (1 / fan-in), biases zero, batch norm the identity.

    Works on models built on the ``meta`` device too (their values are all overwritten).
    """
    if any(t.is_meta for t in (*twin.parameters(), *twin.buffers())):
        twin.to_empty(device="cpu")
        with torch.no_grad():
            for buf in twin.buffers():
                buf.fill_(1 if buf.is_floating_point() else 0)
    twin.to("cpu", dtype)
    with torch.no_grad():
        for name, param in twin.named_parameters():
            param.requires_grad_(False)
            if param.dim() >= 2:
                param.fill_(1.0 / (param.numel() / param.shape[0]))
            else:
                param.fill_(0.0 if name.endswith("bias") else 1.0)
        for name, buf in twin.named_buffers():  # batch norm (also torchvision's frozen one): the identity
            if not buf.is_floating_point():
                continue
            if name.endswith(("running_mean", "bias")):
                buf.zero_()
            elif name.endswith(("running_var", "weight")):
                buf.fill_(1.0)
    return twin.eval()


def _avg_like_max(x: torch.Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                  ceil_mode: bool = False, **_: Any) -> torch.Tensor:  # fmt: skip
    """Average pooling with max pooling's windows (dilation included): positive, linear."""
    stride = kernel_size if stride is None or stride == [] else stride
    if _pair(dilation) == (1, 1):
        return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad=True)
    if ceil_mode:
        raise geo.UnsupportedLayerError("Dilated max pooling with ceil_mode can't be linearised.")
    kh, kw = _pair(kernel_size)
    weight = torch.ones(x.shape[1], 1, kh, kw, dtype=x.dtype, device=x.device) / (kh * kw)
    return F.conv2d(x, weight, None, stride, padding, dilation, groups=x.shape[1])


class _AvgLikeMax(nn.Module):
    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.args = (pool.kernel_size, pool.stride, getattr(pool, "padding", 0), getattr(pool, "dilation", 1),
                     bool(getattr(pool, "ceil_mode", False)))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _avg_like_max(x, *self.args)


def _rescaled(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        return x
    peak = x.detach().abs().flatten(1).amax(dim=1).clamp_min(torch.finfo(x.dtype).tiny)
    return x / peak.view(-1, *([1] * (x.dim() - 1)))


def _insert_after(graph: fx.Graph, node: fx.Node, op: Any) -> None:
    with graph.inserting_after(node):
        new = graph.call_method(op, (node,)) if isinstance(op, str) else graph.call_function(op, (node,))
    node.replace_all_uses_with(new, delete_user_cb=lambda user: user is not new)


def _replace_module(gm: fx.GraphModule, target: str, module: nn.Module) -> None:
    owner, _, attr = target.rpartition(".")
    setattr(gm.get_submodule(owner) if owner else gm, attr, module)


def _linearise(gm: fx.GraphModule, cut: set[fx.Node]) -> None:
    """Rewrite ``gm`` in place: nonlinearities dropped, max/LP pooling averaged, ``cut`` nodes detached."""
    modules = dict(gm.named_modules())
    graph = gm.graph
    for node in list(graph.nodes):
        if geo.nonlinear_pointwise(node, modules):
            node.replace_all_uses_with(node.args[0] if node.args else node.kwargs["input"])
            graph.erase_node(node)
            continue
        name = geo.op_name(node)
        if node.op == "call_module":
            module = modules[str(node.target)]
            if isinstance(module, (nn.MaxPool2d, nn.LPPool2d)):
                _replace_module(gm, str(node.target), _AvgLikeMax(module))
            elif isinstance(module, nn.AdaptiveMaxPool2d):
                _replace_module(gm, str(node.target), nn.AdaptiveAvgPool2d(module.output_size))
        elif node.op == "call_function" and name in ("max_pool2d", "lp_pool2d"):
            if name == "lp_pool2d":  # (input, norm_type, kernel_size, stride, ceil_mode)
                node.args = (node.args[0], *node.args[2:])
            node.target = _avg_like_max
        elif node.op == "call_function" and name == "adaptive_max_pool2d":
            node.target = F.adaptive_avg_pool2d
            node.kwargs = {k: v for k, v in node.kwargs.items() if k != "return_indices"}
        if node in cut:
            _insert_after(graph, node, "detach")
        elif name in _GROWING:
            _insert_after(graph, node, _rescaled)


def linearised_twin(
    model: nn.Module, graph: fx.Graph, targets: list[fx.Node], cut: set[fx.Node], dtype: torch.dtype
) -> tuple[fx.GraphModule, list[fx.Node]]:
    """A positive, linearised copy of the part of ``model`` that computes ``targets``.

    Args:
        model: The traced model (read, never changed).
        graph: Its traced graph.
        targets: The nodes to compute.
        cut: Nodes whose outputs are detached (global branches).
        dtype: Floating-point type of the copy.

    Returns:
        The copy (a GraphModule with its own parameters) and the nodes in it that stand for ``targets``.
    """
    sub, env = geo.graph_upto(graph, targets)
    shared = fx.GraphModule(model, sub)
    shared.graph.eliminate_dead_code()
    shared.delete_all_unused_submodules()
    twin = copy.deepcopy(shared)  # copies only the submodules the targets need
    _make_positive(twin, dtype)
    position = {node: i for i, node in enumerate(shared.graph.nodes)}
    twin_nodes = list(twin.graph.nodes)
    mapped = {old: twin_nodes[position[new]] for old, new in env.items() if new in position}
    _linearise(twin, {mapped[n] for n in cut if n in mapped})
    # read the targets back from the output node: a target that was a dropped nonlinearity is now its input
    out_node = next(n for n in twin.graph.nodes if n.op == "output")
    outputs = list(out_node.args[0]) if isinstance(out_node.args[0], (tuple, list)) else [out_node.args[0]]
    twin.recompile()
    return twin, outputs


def supports(
    twin: fx.GraphModule,
    node: fx.Node,
    units: list[tuple[int, int]],
    hw: tuple[int, int],
    in_channels: int,
    channel: int | None,
) -> list[Box | None]:
    """Bounding boxes of the non-zero input gradient of ``units`` of ``node`` (one batch item each)."""
    if not units:
        return []
    graph, _ = geo.graph_upto(twin.graph, [node])
    gm = fx.GraphModule(twin, graph)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    dtype = next((p.dtype for p in twin.parameters()), torch.float32)
    x = torch.ones(len(units), in_channels, *hw, dtype=dtype, requires_grad=True)
    out = gm(x)
    mask = torch.zeros_like(out)
    channels = slice(None) if channel is None else channel
    for b, (row, col) in enumerate(units):
        mask[(b, channels) if out.dim() == 2 else (b, channels, row, col)] = 1.0
    (grad,) = torch.autograd.grad((out * mask).sum(), x)
    support = (grad != 0).any(dim=1)
    boxes: list[Box | None] = []
    for b in range(len(units)):
        rows = torch.nonzero(support[b].any(dim=1)).flatten()
        cols = torch.nonzero(support[b].any(dim=0)).flatten()
        boxes.append(None if rows.numel() == 0 else ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))))
    return boxes


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
    net, lock = _unwrap(model)
    hw = _check_input_size(input_size)
    entry = _entry(net)
    targets = [_layer_node(entry, net, layer) for layer in units]
    sources = _global_sources(_states(entry, net, hw)) if local else set()
    with _shared(lock):
        twin, outputs = linearised_twin(net, entry.trace.graph, targets, sources, dtype)
    found: dict[str, list[Box | None]] = {}
    for layer, node in zip(units, outputs, strict=True):
        found[layer] = supports(twin, node, list(units[layer]), hw, in_channels, channel)
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
