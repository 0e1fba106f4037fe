"""Brute-force receptive fields (private engine of :func:`vizlib.receptive_field.gradient_support`).

A linearised, positive copy of a network: the support of one unit's input gradient is then exactly
the set of input pixels the unit depends on, which checks the analytic numbers independently.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from vizlib import _rf_geometry as geo

__all__ = ["linearised_twin", "supports"]

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
    if geo._pair(dilation) == (1, 1):
        return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad=True)
    if ceil_mode:
        raise geo.UnsupportedLayerError("Dilated max pooling with ceil_mode can't be linearised.")
    kh, kw = geo._pair(kernel_size)
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
