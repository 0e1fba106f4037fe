"""Propagating geometry through a traced graph: the state of every node, and the graph cut after some nodes."""

from __future__ import annotations

import builtins
import operator
from typing import Any

import torch
from torch import fx, nn

from vizlib.receptive_field.geometry.rules import _SHAPE_METHODS, _function_rule, _getitem, _module_rule, op_name
from vizlib.receptive_field.geometry.trace import CONST, Axis, Map, Repeat, State, Trace, Unknown

__all__ = [
    "analyse",
    "graph_upto",
]


def _input_state(input_size: tuple[int, int]) -> Map:
    h, w = input_size
    return Map(
        ndim=4,
        h=Axis(n=h, lo=0, hi=0, jump=1, first=0, last=h - 1),
        w=Axis(n=w, lo=0, hi=0, jump=1, first=0, last=w - 1),
    )


def analyse(tr: Trace, model: nn.Module, input_size: tuple[int, int]) -> dict[fx.Node, State]:
    """The geometry state of every node of ``tr`` for an input of ``input_size`` (height, width)."""
    modules = dict(model.named_modules())
    labels = {node: name for name, node in tr.module_nodes.items() if name}
    env: dict[fx.Node, State] = {}
    first_input = True
    for node in tr.graph.nodes:
        if node.op == "placeholder":
            env[node] = _input_state(input_size) if first_input else CONST
            first_input = False
        elif node.op == "get_attr":
            env[node] = CONST
        elif node.op != "output":
            env[node] = _evaluate(node, env, modules, repr(labels.get(node, node.name)))
    return env


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def _evaluate(node: fx.Node, env: dict[fx.Node, State], modules: dict[str, nn.Module], label: str) -> State:
    args = fx.node.map_arg(node.args, lambda n: env[n])
    kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
    leaves = _leaves((args, kwargs))
    unknown = next((v for v in leaves if isinstance(v, Unknown)), None)
    if unknown is not None:
        return unknown
    maps = [v for v in leaves if isinstance(v, Map)]
    if node.op == "call_function" and node.target is operator.getitem:
        return _getitem_node(args[0], args[1], label)
    if node.op == "call_function" and node.target is builtins.getattr:
        if args[1] in ("shape", "dtype", "device", "ndim", "is_cuda") or not maps:
            return CONST
        return Unknown(f"{label} reads attribute {args[1]!r} of a feature map")
    if node.op == "call_method" and node.target in _SHAPE_METHODS:
        return CONST
    if any(isinstance(v, Repeat) for v in leaves):
        return Unknown(f"{label} uses a tuple of tensors as one tensor")
    if not maps:
        return CONST
    if node.op == "call_module":
        module = modules.get(str(node.target))
        if module is None:
            return Unknown(f"{label} calls a module that is not part of the model")
        if len(maps) != 1 or not isinstance(args[0], Map):
            return Unknown(f"{label} ({type(module).__name__}) takes more than one feature map")
        return _module_rule(module, args[0], label)
    key = op_name(node)
    if not key:
        return Unknown(f"{label} ({node.target}) has no known receptive-field geometry")
    if key == "conv2d":
        args = (args[0], _weight_shape(node.args[1] if len(node.args) > 1 else None, modules), *args[2:])
    return _function_rule(key, maps, args, kwargs, label)


def _weight_shape(weight: Any, modules: dict[str, nn.Module]) -> torch.Size | None:
    if not isinstance(weight, fx.Node) or weight.op != "get_attr":
        return None
    owner, _, attr = str(weight.target).rpartition(".")
    value = getattr(modules.get(owner), attr, None)
    return value.shape if isinstance(value, torch.Tensor) and value.dim() == 4 else None


def _getitem_node(container: State, index: Any, label: str) -> State:
    if isinstance(container, Repeat):
        return container.item
    if isinstance(container, (tuple, list)):
        try:
            return container[index]
        except (IndexError, TypeError):
            return Unknown(f"{label} indexes a tuple in a way whose geometry is unknown")
    if isinstance(container, Map):
        return _getitem(container, index, label)
    return CONST


def graph_upto(graph: fx.Graph, targets: list[fx.Node]) -> tuple[fx.Graph, dict[fx.Node, fx.Node]]:
    """A new graph computing ``targets`` (one node, or a tuple of several) and the map old -> new node.

    Nodes after the last target are not copied; unused ones are left for dead-code elimination.
    """
    wanted = set(targets)
    new = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in graph.nodes:
        if node.op == "output":
            break
        env[node] = new.node_copy(node, lambda n: env[n])
        wanted.discard(node)
        if not wanted:
            break
    outs = [env[t] for t in targets]
    new.output(outs[0] if len(outs) == 1 else tuple(outs))
    return new, env
