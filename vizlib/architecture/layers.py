"""The cost of one layer: parameters, multiply-accumulates and output shape, from the layer's sizes alone.

These are the formulas a student works out by hand. The tests hold them against torch itself (a real
``nn.Conv2d``'s parameter count, ``torch.utils.flop_counter`` and a real forward pass); the model walk in
:mod:`vizlib.architecture.walk` counts real networks with torch's machinery instead of these formulas.

One multiply-accumulate (MAC) is one ``a * b + c``; a "FLOP" count is usually twice the MACs. Bias
additions are not counted as MACs (as torch's flop counter and torchvision's published figures do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LayerCost", "conv_cost", "conv_output_size", "linear_cost", "local_cost"]

IntOrSeq = int | Sequence[int]


@dataclass(frozen=True)
class LayerCost:
    """What one layer costs.

    Attributes:
        params: Learned numbers (weights and biases).
        macs: Multiply-accumulates for one input (batch of one).
        out_shape: Output shape without the batch axis: ``(channels, *spatial)`` or ``(features,)``.
    """

    params: int
    macs: int
    out_shape: tuple[int, ...]

    @property
    def flops(self) -> int:
        """Floating-point operations, counting a multiply and an add separately (``2 * macs``)."""
        return 2 * self.macs


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}.")
    return value


def _per_axis(name: str, value: IntOrSeq, n: int, *, minimum: int = 1) -> tuple[int, ...]:
    values = (value,) * n if isinstance(value, int) and not isinstance(value, bool) else tuple(value)  # type: ignore[arg-type]
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        raise ValueError(f"{name} must be a whole number >= {minimum} or {n} of them (one per axis), got {value!r}.")
    return values


def conv_output_size(size: int, kernel: int, *, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis: ``floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1``.

    Raises:
        ValueError: The (dilated) kernel does not fit in the padded input.
    """
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(
            f"A kernel spanning {span} pixels does not fit in an input of {size} pixels padded by {padding} on "
            "each side: make the kernel or dilation smaller, or pad more."
        )
    return (size + 2 * padding - span) // stride + 1


def _shape(in_shape: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    shape = tuple(in_shape)
    if not 2 <= len(shape) <= 4:
        raise ValueError(
            "in_shape is (channels, width) for 1-D, (channels, height, width) for 2-D or (channels, depth, height, "
            f"width) for 3-D; got {in_shape!r}."
        )
    for i, v in enumerate(shape):
        _positive(f"in_shape[{i}]", v)
    return shape[0], shape[1:]


def _out_spatial(
    spatial: tuple[int, ...], kernel: IntOrSeq, stride: IntOrSeq, padding: IntOrSeq | str, dilation: IntOrSeq
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    n = len(spatial)
    ks = _per_axis("kernel", kernel, n)
    ss = _per_axis("stride", stride, n)
    ds = _per_axis("dilation", dilation, n)
    if padding == "same":
        if any(s != 1 for s in ss):
            raise ValueError(
                'padding="same" needs stride 1 (as in PyTorch): with a stride, give the padding in pixels.'
            )
        return spatial, ks
    if padding == "valid":
        padding = 0
    if isinstance(padding, str):
        raise ValueError(f'padding must be a whole number, a tuple, "same" or "valid", got {padding!r}.')
    ps = _per_axis("padding", padding, n, minimum=0)
    out = tuple(
        conv_output_size(x, k, stride=s, padding=p, dilation=d)
        for x, k, s, p, d in zip(spatial, ks, ss, ps, ds, strict=True)
    )
    return out, ks


def conv_cost(
    in_shape: Sequence[int],
    out_channels: int,
    kernel: IntOrSeq,
    *,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    bias: bool = True,
) -> LayerCost:
    """Cost of a convolution (1-D, 2-D or 3-D, by the length of ``in_shape``), as ``nn.ConvNd`` computes it.

    Each output value takes ``in_channels / groups * prod(kernel)`` MACs; there are ``out_channels *
    prod(output spatial size)`` of them. Weights: ``out_channels * in_channels / groups * prod(kernel)``, plus
    one bias per output channel.

    Args:
        in_shape: ``(channels, height, width)`` (or ``(channels, length)``, ``(channels, depth, height, width)``).
        out_channels: Number of filters.
        kernel: Kernel size, one number or one per spatial axis.
        stride: Step, one number or one per axis.
        padding: Zeros added on each side, one number or one per axis, or ``"same"`` (output as large as the input,
            stride 1) or ``"valid"`` (no padding).
        dilation: Spacing of the kernel taps.
        groups: Channel groups (``groups == in_channels`` is a depthwise convolution).
        bias: Whether each filter has a bias.

    Returns:
        The layer's cost.

    Raises:
        ValueError: Sizes that PyTorch would refuse (channels not divisible by groups, kernel larger than the
            padded input, ...), with the reason.
    """
    c_in, spatial = _shape(in_shape)
    _positive("out_channels", out_channels)
    _positive("groups", groups)
    if c_in % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide both the input channels ({c_in}) and the output channels ({out_channels})."
        )
    out, ks = _out_spatial(spatial, kernel, stride, padding, dilation)
    per_output = c_in // groups * math.prod(ks)
    weights = out_channels * per_output
    return LayerCost(
        params=weights + (out_channels if bias else 0),
        macs=out_channels * math.prod(out) * per_output,
        out_shape=(out_channels, *out),
    )


def linear_cost(in_features: int, out_features: int, *, bias: bool = True) -> LayerCost:
    """Cost of a fully connected layer (``nn.Linear``): ``in * out`` weights and MACs, ``out`` biases.

    Raises:
        ValueError: A size below 1.
    """
    _positive("in_features", in_features)
    _positive("out_features", out_features)
    return LayerCost(
        params=in_features * out_features + (out_features if bias else 0),
        macs=in_features * out_features,
        out_shape=(out_features,),
    )


def local_cost(
    in_shape: Sequence[int],
    out_channels: int,
    kernel: IntOrSeq,
    *,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
    bias: bool = True,
) -> LayerCost:
    """Cost of a locally connected layer: a convolution whose weights are not shared between positions.

    The MACs are a convolution's; the weights are multiplied by the number of output positions, and each
    output unit (channel and position) has its own bias.

    Args:
        in_shape: ``(channels, height, width)`` (1-D and 3-D shapes work as in :func:`conv_cost`).
        out_channels: Number of output channels.
        kernel: Window size, one number or one per axis.
        stride: Step.
        padding: Zeros on each side, or ``"same"`` / ``"valid"``.
        bias: One bias per output unit.

    Returns:
        The layer's cost.

    Raises:
        ValueError: As :func:`conv_cost`.
    """
    conv = conv_cost(in_shape, out_channels, kernel, stride=stride, padding=padding, bias=False)
    positions = math.prod(conv.out_shape[1:])
    units = out_channels * positions
    return LayerCost(
        params=conv.params * positions + (units if bias else 0),
        macs=conv.macs,
        out_shape=conv.out_shape,
    )
