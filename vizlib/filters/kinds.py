"""Convolution kinds: 1x1, depthwise and grouped convolutions, what each costs, and depthwise-pointwise pairs.

Convolution kinds are read from the modules themselves: *depthwise* when ``groups == in_channels > 1`` (each
filter sees one input channel), *pointwise* when the kernel is 1x1 and ``groups == 1`` (a per-pixel linear
map across channels), *grouped* for other ``groups > 1``, *standard* otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from vizlib.filters.weights import FilterError

__all__ = [
    "ConvCost",
    "ConvInfo",
    "SeparablePair",
    "conv_catalogue",
    "conv_cost",
    "separable_pairs",
]


@dataclass(frozen=True)
class ConvCost:
    """Parameters (weights + bias) and multiplications of a convolution.

    ``mults_per_position`` counts the multiplications for one output position (all output channels);
    ``mults`` multiplies that by the output's ``h x w`` when known (else ``None``).
    """

    params: int
    mults_per_position: int
    mults: int | None


def conv_cost(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int],
    *,
    groups: int = 1,
    bias: bool = False,
    output_hw: tuple[int, int] | None = None,
) -> ConvCost:
    """The cost of a 2-D convolution: ``out * (in / groups) * kh * kw`` weights (plus ``out`` biases).

    Raises:
        FilterError: Channels not divisible by ``groups`` or non-positive sizes.
    """
    kh, kw = kernel
    if min(in_channels, out_channels, kh, kw, groups) < 1 or in_channels % groups or out_channels % groups:
        raise FilterError(
            f"Impossible convolution: {in_channels} -> {out_channels} channels, kernel {kh}x{kw}, groups {groups}."
        )
    per_position = out_channels * (in_channels // groups) * kh * kw
    mults = None if output_hw is None else per_position * int(output_hw[0]) * int(output_hw[1])
    return ConvCost(per_position + (out_channels if bias else 0), per_position, mults)


@dataclass(frozen=True)
class ConvInfo:
    """One convolution of a model and what kind it is.

    Attributes:
        name: Module name.
        kind: ``"standard"``, ``"pointwise"`` (1x1), ``"depthwise"`` or ``"grouped"``.
        in_channels, out_channels, kernel, stride, groups: From the module.
        output_shape: ``(C, h, w)`` when known, else ``None``.
        bias: Whether it adds a bias per output channel.
        cost: Its own parameters and multiplications.
        standard: The same shape as a standard convolution (``groups = 1``).
        in_squeeze_excitation: It sits in a squeeze-and-excitation block (its parent module, not the model
            itself, also holds a global average pool).
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    output_shape: tuple[int, ...] | None
    bias: bool
    cost: ConvCost
    standard: ConvCost
    in_squeeze_excitation: bool = False


def _kind(conv: nn.Conv2d) -> str:
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return "depthwise"
    if conv.groups > 1:
        return "grouped"
    if tuple(conv.kernel_size) == (1, 1):
        return "pointwise"
    return "standard"


def conv_catalogue(
    model: nn.Module, output_shapes: Mapping[str, Sequence[int]] | None = None
) -> tuple[ConvInfo, ...]:
    """Every ``Conv2d`` of ``model`` (module order) with its kind and its cost against a standard conv.

    Args:
        model: Any module; only read.
        output_shapes: ``{name: (C, h, w)}`` (e.g. from the layer table) to count total multiplications.

    Returns:
        One :class:`ConvInfo` per convolution.
    """
    shapes = output_shapes or {}
    pooled_parents = {
        name for name, module in model.named_modules()
        if name and any(isinstance(child, nn.AdaptiveAvgPool2d) for child in module.children())
    }
    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        shape = tuple(int(s) for s in shapes[name]) if name in shapes else None
        hw = (shape[1], shape[2]) if shape is not None and len(shape) == 3 else None
        kernel = (int(module.kernel_size[0]), int(module.kernel_size[1]))
        bias = module.bias is not None
        args = (module.in_channels, module.out_channels, kernel)
        rows.append(
            ConvInfo(
                name=name,
                kind=_kind(module),
                in_channels=int(module.in_channels),
                out_channels=int(module.out_channels),
                kernel=kernel,
                stride=(int(module.stride[0]), int(module.stride[1])),
                groups=int(module.groups),
                output_shape=shape,
                bias=bias,
                cost=conv_cost(*args, groups=module.groups, bias=bias, output_hw=hw),
                standard=conv_cost(*args, groups=1, bias=bias, output_hw=hw),
                in_squeeze_excitation=name.rpartition(".")[0] in pooled_parents,
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class SeparablePair:
    """A depthwise convolution and the pointwise convolution that mixes its channels: a separable conv.

    ``standard`` is one standard ``k x k`` convolution from the depthwise input channels straight to the
    pointwise output channels, at the depthwise stride, with a bias if the pointwise conv has one: what the pair
    replaces.
    """

    depthwise: ConvInfo
    pointwise: ConvInfo
    cost: ConvCost
    standard: ConvCost

    @property
    def param_ratio(self) -> float:
        """Parameters of the pair over those of the standard convolution."""
        return self.cost.params / self.standard.params


def separable_pairs(catalogue: Sequence[ConvInfo]) -> tuple[SeparablePair, ...]:
    """Each depthwise conv with the next pointwise conv reading its channels (squeeze-excitation skipped).

    Total multiplications are filled in when both output shapes are known.
    """
    pairs = []
    for i, dw in enumerate(catalogue):
        if dw.kind != "depthwise":
            continue
        for pw in catalogue[i + 1 :]:
            if pw.kind == "pointwise" and pw.in_channels == dw.out_channels and not pw.in_squeeze_excitation:
                break
        else:
            continue
        hw = None
        if pw.output_shape is not None and len(pw.output_shape) == 3:
            hw = (pw.output_shape[1], pw.output_shape[2])
        dw_mults = dw.cost.mults_per_position
        pw_mults = pw.cost.mults_per_position
        cost = ConvCost(
            dw.cost.params + pw.cost.params,
            dw_mults + pw_mults,
            None if dw.cost.mults is None or pw.cost.mults is None else dw.cost.mults + pw.cost.mults,
        )
        standard = conv_cost(dw.in_channels, pw.out_channels, dw.kernel, bias=pw.bias, output_hw=hw)
        pairs.append(SeparablePair(dw, pw, cost, standard))
    return tuple(pairs)
