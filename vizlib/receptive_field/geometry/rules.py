"""The geometry rules: how each layer or function maps the receptive-field states of its inputs to its output's.

This is the recurrence of Araujo, Norris & Sim,
"Computing Receptive Fields of Convolutional Neural Networks" (Distill, 2019), carried as intervals
so that branches with different paddings merge exactly. Ops whose geometry is not known give an
:class:`Unknown` state carrying the reason; it propagates downstream and becomes an error only
when someone asks for such a layer.
"""

from __future__ import annotations

import operator
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from vizlib.receptive_field.geometry.trace import Axis, Map, Repeat, State, Unknown

__all__ = [
    "nonlinear_pointwise",
    "op_name",
]


# --------------------------------------------------------------------------------------------- states


# --------------------------------------------------------------------------------------------- tracing


# --------------------------------------------------------------------------------------------- geometry


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    if len(value) == 1:
        return int(value[0]), int(value[0])
    if len(value) != 2:
        raise TypeError(f"expected one or two values, got {value!r}")
    return int(value[0]), int(value[1])


def _window_axis(
    axis: Axis, k: int, s: int, pl: int, pr: int, d: int, ceil_mode: bool, what: str
) -> tuple[Axis, bool] | Unknown:
    """A sliding window (conv or pool) along one axis; also whether one window covers the whole axis."""
    span = d * (k - 1) + 1
    room = axis.n + pl + pr - span
    if room < 0:
        return Unknown(f"{what}'s window ({span}) is larger than its padded input ({axis.n + pl + pr}) at this size")
    n = (-(-room // s) if ceil_mode else room // s) + 1
    if ceil_mode and (n - 1) * s >= axis.n + pl:
        n -= 1
    lo, hi, jump = axis.lo - pl * axis.jump, axis.hi + (span - 1 - pl) * axis.jump, axis.jump * s
    out = Axis(n=n, lo=lo, hi=hi, jump=jump, first=max(lo, axis.first), last=min(hi + (n - 1) * jump, axis.last))
    covers = n == 1 and pl >= 0 and span - 1 - pl >= axis.n - 1
    return out, covers


def _window(x: Map, k: Any, s: Any, pad: tuple[int, int, int, int], d: Any, ceil_mode: bool, what: str) -> State:
    """``pad`` is (top, bottom, left, right)."""
    if x.flat:
        return Unknown(f"{what} is applied to a flattened tensor")
    (kh, kw), (sh, sw), (dh, dw) = _pair(k), _pair(s), _pair(d)
    h = _window_axis(x.h, kh, sh, pad[0], pad[1], dh, ceil_mode, what)
    w = _window_axis(x.w, kw, sw, pad[2], pad[3], dw, ceil_mode, what)
    if isinstance(h, Unknown):
        return h
    if isinstance(w, Unknown):
        return w
    return Map(ndim=x.ndim, h=h[0], w=w[0], is_global=x.is_global or (h[1] and w[1]))


def _reduce_all(x: Map, ndim: int, flat: bool) -> Map:
    """Every output unit pools the whole spatial map (global pooling, flatten)."""

    def whole(a: Axis) -> Axis:
        return Axis(n=1, lo=a.lo, hi=a.hi + (a.n - 1) * a.jump, jump=a.n * a.jump, first=a.first, last=a.last)

    if x.flat:
        return replace(x, ndim=ndim)
    return Map(ndim=ndim, h=whole(x.h), w=whole(x.w), is_global=True, flat=flat)


def _merge(states: list[Map], what: str) -> State:
    """Elementwise combination with broadcasting: the union of the inputs' receptive fields."""
    if len(states) == 1:
        return states[0]
    if len({s.flat for s in states}) > 1:
        return Unknown(f"{what} combines a flattened tensor with a spatial one")
    axes = []
    for pick in (lambda m: m.h, lambda m: m.w):
        n = max(pick(s).n for s in states)
        parts = []
        for s in states:
            a = pick(s)
            if a.n == n:
                parts.append(a)
            elif not (a.n == 1 and s.is_global):
                return Unknown(f"{what} broadcasts a {a.n}-unit axis onto {n} units, so unit geometry varies")
        if len({a.jump for a in parts}) > 1:
            return Unknown(f"{what} merges feature maps with different strides {sorted({a.jump for a in parts})}")
        axes.append(
            Axis(
                n=n,
                lo=min(a.lo for a in parts),
                hi=max(a.hi for a in parts),
                jump=parts[0].jump,
                first=min(pick(s).first for s in states),
                last=max(pick(s).last for s in states),
            )
        )
    return Map(
        ndim=max(s.ndim for s in states),
        h=axes[0],
        w=axes[1],
        is_global=any(s.is_global for s in states),
        flat=states[0].flat,
    )


# --------------------------------------------------------------------------------------------- op tables

# fmt: off
_NONLINEAR = frozenset({
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "silu", "gelu", "elu",
    "elu_", "selu", "celu", "leaky_relu", "leaky_relu_", "mish", "softplus", "sigmoid", "sigmoid_", "tanh",
    "tanh_", "prelu", "rrelu", "logsigmoid", "softsign", "tanhshrink", "hardshrink", "softshrink", "threshold",
    "clamp", "clamp_", "clip", "exp", "abs", "square", "sqrt", "rsqrt", "pow",
})
_POINTWISE = _NONLINEAR | frozenset({
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "batch_norm",
    "contiguous", "clone", "detach", "float", "double", "half", "bfloat16", "to", "type", "type_as", "neg",
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "true_divide", "rsub", "maximum", "minimum",
    "where", "lerp", "addcmul", "local_response_norm", "channel_shuffle", "native_channel_shuffle", "iadd",
    "isub", "imul", "itruediv", "truediv", "stochastic_depth",
})
_RULE_NAMES = (
    "conv2d", "max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "pad",
    "flatten", "mean", "sum", "amax", "amin", "std", "var", "nanmean", "nansum", "logsumexp", "view",
    "reshape", "linear", "softmax", "log_softmax", "unsqueeze", "squeeze", "cat", "concat", "concatenate",
    "stack", "chunk", "split", "tensor_split", "unbind", "transpose", "swapaxes", "permute", "group_norm",
    "instance_norm",
)
# fmt: on
_SHAPE_METHODS = frozenset({"size", "dim", "numel", "nelement", "element_size"})
_OPERATORS = {
    operator.add: "add", operator.iadd: "iadd", operator.sub: "sub", operator.isub: "isub",
    operator.mul: "mul", operator.imul: "imul", operator.truediv: "truediv", operator.itruediv: "itruediv",
    operator.neg: "neg", operator.pow: "pow",
}  # fmt: skip
_THIRD_PARTY = {"torchvision.ops.stochastic_depth.stochastic_depth": "stochastic_depth"}


def _torch_function_names() -> dict[Any, str]:
    """Torch callables (as fx records them) -> their name, for every name a rule knows."""
    names: dict[Any, str] = dict(_OPERATORS)
    for name in (*_POINTWISE, *_RULE_NAMES):
        for mod in (torch, F, torch._C._nn, torch.Tensor):
            fn = getattr(mod, name, None)
            if fn is not None and not isinstance(fn, type):
                names.setdefault(fn, name)
    return names


_FUNCTION_NAMES = _torch_function_names()

_NONLINEAR_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU, nn.ELU, nn.SELU, nn.CELU,
    nn.LeakyReLU, nn.Mish, nn.Softplus, nn.Sigmoid, nn.Tanh, nn.PReLU, nn.RReLU, nn.LogSigmoid, nn.Softsign,
    nn.Tanhshrink, nn.Hardshrink, nn.Softshrink, nn.Threshold,
)  # fmt: skip
_PASS_MODULES: tuple[type[nn.Module], ...] = (
    *_NONLINEAR_MODULES,
    nn.Identity, nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.LocalResponseNorm,
    nn.ChannelShuffle,
)  # fmt: skip
_GLOBAL_NORM_MODULES = (nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
_PAD_MODULES = tuple(
    getattr(nn, name)
    for name in ("ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "CircularPad2d")
    if hasattr(nn, name)
)


def op_name(node: fx.Node) -> str:
    """The name the rules know a call_function/call_method node by ('' if none)."""
    if node.op == "call_method":
        return str(node.target)
    if node.op == "call_function":
        fn = node.target
        try:
            name = _FUNCTION_NAMES.get(fn)
        except TypeError:  # unhashable callable
            name = None
        if name is None:
            name = _THIRD_PARTY.get(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__name__', '')}")
        return name or ""
    return ""


def nonlinear_pointwise(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node`` is a pointwise nonlinearity (what a linearised copy of a network drops)."""
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), _NONLINEAR_MODULES)
    return op_name(node) in _NONLINEAR


# --------------------------------------------------------------------------------------------- rules


def _norm_dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def _arg(args: tuple, kwargs: dict, pos: int, key: str, default: Any = None) -> Any:
    if len(args) > pos:
        return args[pos]
    return kwargs.get(key, default)


def _conv_geometry(x: Map, k: Any, s: Any, padding: Any, d: Any, name: str) -> State:
    (kh, kw), (dh, dw) = _pair(k), _pair(d)
    if padding == "valid":
        pad = (0, 0, 0, 0)
    elif padding == "same":
        th, tw = dh * (kh - 1), dw * (kw - 1)
        pad = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = _pair(padding)
        pad = (ph, ph, pw, pw)
    return _window(x, (kh, kw), s, pad, (dh, dw), False, name)


def _pool_geometry(x: Map, k: Any, s: Any, p: Any, d: Any, ceil_mode: bool, name: str) -> State:
    if s is None or (isinstance(s, (tuple, list)) and len(s) == 0):
        s = k
    ph, pw = _pair(p)
    return _window(x, k, s, (ph, ph, pw, pw), d, ceil_mode, name)


def _adaptive_geometry(x: Map, output_size: Any, name: str) -> State:
    if x.flat:
        return Unknown(f"{name} is applied to a flattened tensor")
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size, output_size)
    sizes = []
    for axis, out in zip((x.h, x.w), tuple(output_size), strict=True):
        out = axis.n if out is None else int(out)
        if axis.n % out:
            return Unknown(
                f"{name} pools {axis.n} cells into {out}: its windows differ in size, so no single receptive "
                "field describes its units (choose an input size where the map divides evenly)"
            )
        sizes.append(axis.n // out)
    return _window(x, tuple(sizes), tuple(sizes), (0, 0, 0, 0), 1, False, name)


def _pad_geometry(x: Map, pad: Any, name: str) -> State:
    pad = [int(p) for p in pad]
    if len(pad) == 2:
        pad += [0, 0]
    if len(pad) < 4 or any(pad[4:]):
        return Unknown(f"{name} pads a non-spatial dimension")
    if x.flat:
        return Unknown(f"{name} pads a flattened tensor")
    left, right, top, bottom = pad[:4]

    def shift(a: Axis, before: int, after: int) -> Axis:
        return replace(a, n=a.n + before + after, lo=a.lo - before * a.jump, hi=a.hi - before * a.jump)

    return replace(x, h=shift(x.h, top, bottom), w=shift(x.w, left, right))


def _on_whole_map(x: Map) -> bool:
    return x.flat or (x.h.n == 1 and x.w.n == 1 and x.is_global)


def _linear(x: Map, name: str) -> State:
    if _on_whole_map(x):
        return x
    return Unknown(f"{name} is a fully connected layer applied along the width of a spatial map")


def _softmax(x: Map, dim: Any, name: str) -> State:
    if x.flat or dim is None or _norm_dim(dim, x.ndim) < x.ndim - 2:
        return x
    return Unknown(f"{name} normalises over a spatial axis")


def _flatten(x: Map, start: int, end: int, name: str) -> State:
    start, end = _norm_dim(start, x.ndim), _norm_dim(end, x.ndim)
    ndim = x.ndim - (end - start)
    if x.flat:
        return replace(x, ndim=ndim)
    touched = {x.ndim - 2, x.ndim - 1} & set(range(start, end + 1))
    if not touched:
        return replace(x, ndim=ndim)
    if len(touched) == 1:
        return Unknown(f"{name} flattens only one spatial axis")
    return _reduce_all(x, ndim=ndim, flat=True)


def _reduction(x: Map, dims: Any, keepdim: bool, name: str) -> State:
    if x.flat:
        return x
    if dims is None:
        return _reduce_all(x, ndim=0, flat=True)
    dims = {_norm_dim(d, x.ndim) for d in ((dims,) if isinstance(dims, int) else dims)}
    spatial = dims & {x.ndim - 2, x.ndim - 1}
    ndim = x.ndim if keepdim else x.ndim - len(dims)
    if not spatial:
        return replace(x, ndim=ndim)
    if len(spatial) == 1:
        return Unknown(f"{name} reduces only one spatial axis")
    return _reduce_all(x, ndim=ndim, flat=not keepdim)


def _reshape(x: Map, shape: tuple, name: str) -> State:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if len(shape) <= 2:  # (batch, features): a flatten
        return _reduce_all(x, ndim=len(shape), flat=True)
    if _on_whole_map(x) and all(isinstance(v, int) and v == 1 for v in shape[-2:]):
        return replace(x, ndim=len(shape), flat=False)
    return Unknown(f"{name} reshapes a spatial feature map")


def _getitem(x: Map, index: Any, name: str) -> State:
    index = index if isinstance(index, tuple) else (index,)
    if any(i is None or i is Ellipsis or not isinstance(i, (int, slice)) for i in index):
        return Unknown(f"{name} indexes a feature map in a way whose geometry is unknown")
    if not x.flat:
        for pos, item in enumerate(index):
            if pos >= x.ndim - 2 and item != slice(None):
                return Unknown(f"{name} crops or indexes a spatial axis")
    return replace(x, ndim=x.ndim - sum(isinstance(i, int) for i in index))


def _squeeze(x: Map, dim: Any, name: str) -> State:
    if x.flat:
        return x
    if isinstance(dim, int) and _norm_dim(dim, x.ndim) < x.ndim - 2:
        return replace(x, ndim=x.ndim - 1)
    if _on_whole_map(x):
        return replace(x, flat=True)
    return Unknown(f"{name} squeezes a spatial axis")


def _move_axes(x: Map, key: str, args: tuple, name: str) -> State:
    if key == "permute":
        dims = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
        moved = {i for i, d in enumerate(dims) if _norm_dim(d, x.ndim) != i}
    else:
        moved = {_norm_dim(d, x.ndim) for d in args[1:3]}
    if x.flat or not moved & {x.ndim - 2, x.ndim - 1}:
        return x
    return Unknown(f"{name} moves a spatial axis")


def _module_rule(m: nn.Module, x: Map, name: str) -> State:
    if isinstance(m, nn.Conv2d):
        return _conv_geometry(x, m.kernel_size, m.stride, m.padding, m.dilation, name)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)):
        ceil_mode = bool(getattr(m, "ceil_mode", False))
        return _pool_geometry(
            x, m.kernel_size, m.stride, getattr(m, "padding", 0), getattr(m, "dilation", 1), ceil_mode, name
        )
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return _adaptive_geometry(x, m.output_size, name)
    if isinstance(m, _PAD_MODULES):
        return _pad_geometry(x, m.padding, name)
    if isinstance(m, _PASS_MODULES):
        return x
    if isinstance(m, _GLOBAL_NORM_MODULES):
        return replace(x, is_global=True)
    if isinstance(m, nn.Flatten):
        return _flatten(x, m.start_dim, m.end_dim, name)
    if isinstance(m, nn.Linear):
        return _linear(x, name)
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        return _softmax(x, m.dim, name)
    return Unknown(f"{name} ({type(m).__name__}) has no known receptive-field geometry")


def _function_rule(key: str, maps: list[Map], args: tuple, kwargs: dict, name: str) -> State:
    """Geometry of a call_function/call_method node the rules know as ``key``; ``args[0]`` is its input."""
    x = maps[0] if not isinstance(args[0], Map) else args[0]
    if key in _POINTWISE:
        return _merge(maps, name)
    if key in ("group_norm", "instance_norm"):
        return replace(x, is_global=True)
    if key == "conv2d":
        weight = args[1]
        if not isinstance(weight, torch.Size):
            return Unknown(f"{name}: the kernel size of a functional convolution is not known")
        return _conv_geometry(
            x, tuple(weight[-2:]), _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 4, "padding", 0),
            _arg(args, kwargs, 5, "dilation", 1), name,
        )  # fmt: skip
    if key in ("max_pool2d", "avg_pool2d"):
        is_max = key == "max_pool2d"
        return _pool_geometry(
            x, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
            _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "dilation", 1) if is_max else 1,
            bool(_arg(args, kwargs, 5 if is_max else 4, "ceil_mode", False)), name,
        )  # fmt: skip
    if key == "lp_pool2d":
        return _pool_geometry(
            x, _arg(args, kwargs, 2, "kernel_size"), _arg(args, kwargs, 3, "stride"), 0, 1,
            bool(_arg(args, kwargs, 4, "ceil_mode", False)), name,
        )  # fmt: skip
    if key in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return _adaptive_geometry(x, _arg(args, kwargs, 1, "output_size"), name)
    if key == "pad":
        return _pad_geometry(x, _arg(args, kwargs, 1, "pad"), name)
    if key == "flatten":
        return _flatten(x, _arg(args, kwargs, 1, "start_dim", 0), _arg(args, kwargs, 2, "end_dim", -1), name)
    if key in ("mean", "sum", "amax", "amin", "std", "var", "nanmean", "nansum", "logsumexp"):
        dims = _arg(args, kwargs, 1, "dim")
        return _reduction(x, dims, bool(_arg(args, kwargs, 2, "keepdim", False)), name)
    if key in ("view", "reshape"):
        shape = tuple(args[1:]) if len(args) > 1 else (kwargs.get("shape") or kwargs.get("size") or ())
        return _reshape(x, shape, name)
    if key == "linear":
        return _linear(x, name)
    if key in ("softmax", "log_softmax"):
        return _softmax(x, _arg(args, kwargs, 1, "dim"), name)
    if key == "unsqueeze":
        dim = _norm_dim(_arg(args, kwargs, 1, "dim"), x.ndim + 1)
        if x.flat or dim <= x.ndim - 2:
            return replace(x, ndim=x.ndim + 1)
        return Unknown(f"{name} inserts a dimension among the spatial axes")
    if key == "squeeze":
        return _squeeze(x, _arg(args, kwargs, 1, "dim"), name)
    if key in ("cat", "concat", "concatenate", "stack"):
        dim = _norm_dim(_arg(args, kwargs, 1, "dim", 0), x.ndim + (key == "stack"))
        if x.flat or dim < x.ndim - 2:
            return _merge(maps, name)
        return Unknown(f"{name} concatenates along a spatial axis")
    if key in ("chunk", "split", "tensor_split", "unbind"):
        dim = _arg(args, kwargs, 1, "dim", 0) if key == "unbind" else _arg(args, kwargs, 2, "dim", 0)
        if x.flat or _norm_dim(dim, x.ndim) < x.ndim - 2:
            return Repeat(replace(x, ndim=x.ndim - (key == "unbind")))
        return Unknown(f"{name} splits along a spatial axis")
    if key in ("transpose", "swapaxes", "permute"):
        return _move_axes(x, key, args, name)
    return Unknown(f"{name} ({key}) has no known receptive-field geometry")


# --------------------------------------------------------------------------------------------- analysis


