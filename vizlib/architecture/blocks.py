"""Building blocks of CNN architectures, each worked out in numbers against its alternative.

Every function takes the sizes (so a page can offer "try other sizes") and returns a :class:`Comparison`:
two or more :class:`Option` s with their parameters, multiply-accumulates and output shapes, each computed
with :mod:`vizlib.architecture.layers`, and the working as short Markdown lines. The defaults are the
lectures' examples (e.g. the inception branch's 120,422,400 vs 12,443,648 multiplications).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vizlib.architecture.layers import LayerCost, conv_cost, linear_cost

__all__ = [
    "SOBEL_COLUMN",
    "SOBEL_ROW",
    "Comparison",
    "Option",
    "conv1d_sequence",
    "conv3d_clip",
    "depthwise_separable",
    "gap_vs_flatten",
    "inception_branch",
    "residual_shortcut",
    "sobel_outer",
    "spatially_separable",
    "stacked_3x3",
]

#: The Sobel x-kernel is the outer product of a smoothing column and a difference row.
SOBEL_COLUMN = (1, 2, 1)
SOBEL_ROW = (-1, 0, 1)


@dataclass(frozen=True)
class Option:
    """One way to build the block.

    Attributes:
        label: What it is, e.g. ``"naive 5x5"``.
        params: Learned numbers (weights, plus biases where the option has them).
        macs: Multiply-accumulates for one input.
        out_shape: Output shape without the batch axis.
        steps: The working, one Markdown line per layer.
        receptive_field: Input pixels one output unit sees along one axis, where it matters.
    """

    label: str
    params: int
    macs: int
    out_shape: tuple[int, ...]
    steps: tuple[str, ...]
    receptive_field: int | None = None


@dataclass(frozen=True)
class Comparison:
    """Options side by side and the sentence that sums them up."""

    title: str
    options: tuple[Option, ...]
    summary: str

    def ratio(self, what: str = "macs") -> float:
        """``what`` (``"macs"`` or ``"params"``) of the first option divided by the last's."""
        first, last = getattr(self.options[0], what), getattr(self.options[-1], what)
        return first / last if last else float("inf")


def _x(shape: Sequence[int]) -> str:
    return " × ".join(str(s) for s in shape)


def _n(value: int) -> str:
    return f"{value:,}"


def _combine(label: str, parts: Sequence[tuple[str, LayerCost]], receptive_field: int | None = None) -> Option:
    steps = tuple(f"{text}: {_n(c.params)} parameters, {_n(c.macs)} MACs → {_x(c.out_shape)}" for text, c in parts)
    return Option(label, sum(c.params for _, c in parts), sum(c.macs for _, c in parts), parts[-1][1].out_shape,
                  steps, receptive_field)  # fmt: skip


def inception_branch(
    in_shape: Sequence[int] = (192, 28, 28), out_channels: int = 32, kernel: int = 5, reduce_to: int = 16
) -> Comparison:
    """An inception branch: a ``kernel`` convolution straight on the input vs after a 1x1 reduction.

    The defaults are the lecture's: 28x28x192 in, 32 filters of 5x5 ("same" padding): 120,422,400
    multiplications; with a 1x1 bottleneck to 16 channels first: 2,408,448 + 10,035,200 = 12,443,648.
    Biases are left out, as multiplications are what is counted.
    """
    c, h, w = in_shape
    naive = conv_cost(in_shape, out_channels, kernel, padding="same", bias=False)
    squeeze = conv_cost(in_shape, reduce_to, 1, bias=False)
    after = conv_cost(squeeze.out_shape, out_channels, kernel, padding="same", bias=False)
    options = (
        _combine(f"naive {kernel}×{kernel}", [(f"{kernel}×{kernel}×{c} conv, {out_channels} filters, same padding",
                                               naive)]),  # fmt: skip
        _combine(f"1×1 to {reduce_to}, then {kernel}×{kernel}", [
            (f"1×1×{c} conv, {reduce_to} filters", squeeze),
            (f"{kernel}×{kernel}×{reduce_to} conv, {out_channels} filters, same padding", after),
        ]),
    )  # fmt: skip
    cmp = Comparison("Inception branch: naive vs 1×1-reduced", options, "")
    summary = (
        f"Both give {_x(naive.out_shape)}. The 1×1 bottleneck cuts the multiplications from {_n(naive.macs)} to "
        f"{_n(options[1].macs)}, {cmp.ratio():.1f} times fewer."
    )
    return Comparison(cmp.title, options, summary)


def stacked_3x3(channels: int = 64, size: int = 56, kernel: int = 7) -> Comparison:
    """One ``kernel`` x ``kernel`` convolution vs ``(kernel - 1) / 2`` stacked 3x3s: same receptive field.

    ``channels`` in and out, "same" padding, no biases. For 7x7: 49 C² weights against 3 · 9 C² = 27 C².

    Raises:
        ValueError: ``kernel`` is not an odd number of at least 3.
    """
    if kernel < 3 or kernel % 2 == 0:
        raise ValueError(f"The large kernel must be odd and at least 3, got {kernel}.")
    shape = (channels, size, size)
    big = conv_cost(shape, channels, kernel, padding="same", bias=False)
    n = (kernel - 1) // 2
    small = conv_cost(shape, channels, 3, padding="same", bias=False)
    options = (
        _combine(f"one {kernel}×{kernel}", [(f"{kernel}×{kernel}×{channels} conv, {channels} filters", big)], kernel),
        _combine(
            f"{n} stacked 3×3",
            [(f"3×3×{channels} conv #{i + 1}, {channels} filters", small) for i in range(n)],
            1 + 2 * n,
        ),  # fmt: skip
    )
    summary = (
        f"Both see {kernel}×{kernel} input pixels. {n} stacked 3×3 layers use {9 * n} C² weights instead of "
        f"{kernel * kernel} C² ({_n(options[1].params)} vs {_n(big.params)}) and add {n - 1} more non-linearities."
    )
    return Comparison(f"One {kernel}×{kernel} vs stacked 3×3", options, summary)


def sobel_outer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(column, row, column ⊗ row)``: the 3x3 Sobel x-kernel as the outer product of two 1-D kernels."""
    col = np.asarray(SOBEL_COLUMN)
    row = np.asarray(SOBEL_ROW)
    return col, row, np.outer(col, row)


def spatially_separable(size: int = 100, kernel: int = 3) -> Comparison:
    """A ``kernel`` x ``kernel`` filter vs a ``kernel`` x 1 column then a 1 x ``kernel`` row (e.g. Sobel).

    One grayscale channel, "same" padding, no bias: ``k²`` against ``2k`` weights and MACs per pixel.
    """
    shape = (1, size, size)
    full = conv_cost(shape, 1, kernel, padding="same", bias=False)
    col = conv_cost(shape, 1, (kernel, 1), padding="same", bias=False)
    row = conv_cost(col.out_shape, 1, (1, kernel), padding="same", bias=False)
    options = (
        _combine(f"{kernel}×{kernel} filter", [(f"{kernel}×{kernel} filter", full)], kernel),
        _combine(f"{kernel}×1 then 1×{kernel}", [(f"{kernel}×1 column", col), (f"1×{kernel} row", row)], kernel),
    )
    summary = (
        f"A separable filter (Sobel = [1, 2, 1]ᵀ · [-1, 0, 1]) needs {2 * kernel} instead of {kernel * kernel} "
        f"multiplications per pixel: {_n(options[1].macs)} vs {_n(full.macs)} on a {size}×{size} image."
    )
    return Comparison("Spatially separable filter", options, summary)


def depthwise_separable(
    in_shape: Sequence[int] = (32, 112, 112), out_channels: int = 64, kernel: int = 3
) -> Comparison:
    """A standard convolution vs depthwise (one filter per channel) + pointwise 1x1 (MobileNet), no biases."""
    c = in_shape[0]
    standard = conv_cost(in_shape, out_channels, kernel, padding="same", bias=False)
    depthwise = conv_cost(in_shape, c, kernel, padding="same", groups=c, bias=False)
    pointwise = conv_cost(depthwise.out_shape, out_channels, 1, bias=False)
    options = (
        _combine(f"standard {kernel}×{kernel}", [(f"{kernel}×{kernel}×{c} conv, {out_channels} filters", standard)]),
        _combine("depthwise + pointwise", [
            (f"{kernel}×{kernel} depthwise, one filter per channel ({c})", depthwise),
            (f"1×1×{c} pointwise, {out_channels} filters", pointwise),
        ]),
    )  # fmt: skip
    cmp = Comparison("Depthwise-separable convolution", options, "")
    summary = (
        f"Same output {_x(standard.out_shape)}; {cmp.ratio():.1f} times fewer MACs "
        f"(1/{out_channels} + 1/{kernel * kernel} of the standard cost)."
    )
    return Comparison(cmp.title, options, summary)


def residual_shortcut(in_shape: Sequence[int] = (64, 56, 56), out_channels: int = 128, stride: int = 2) -> Comparison:
    """The shortcut of a residual block: identity (free) vs 1x1 projection (needed when the shape changes).

    The projection is a 1x1 convolution with the block's stride, no bias, followed by batch normalisation
    (2 parameters per channel), as in ResNet.
    """
    c, h, w = in_shape
    proj = conv_cost(in_shape, out_channels, 1, stride=stride, bias=False)
    bn = LayerCost(2 * out_channels, 0, proj.out_shape)
    same = c == out_channels and stride == 1
    identity = Option(
        "identity",
        0,
        0,
        tuple(in_shape),
        (f"x is added as it is ({_n(c * h * w)} additions, no parameters)",) if same else
        (f"not possible here: {_x(in_shape)} can't be added to {_x(proj.out_shape)}",),
    )  # fmt: skip
    projection = _combine("1×1 projection", [(f"1×1×{c} conv, {out_channels} filters, stride {stride}", proj),
                                             ("batch norm", bn)])  # fmt: skip
    summary = (
        "The identity shortcut costs nothing and works when input and output shapes match."
        if same
        else f"The block changes {_x(in_shape)} into {_x(proj.out_shape)}, so the shortcut must be projected: "
        f"{_n(projection.params)} parameters and {_n(projection.macs)} MACs."
    )
    return Comparison("Residual block shortcut", (identity, projection), summary)


def gap_vs_flatten(channels: int = 256, size: int = 100, classes: int = 10) -> Comparison:
    """A classifier head: flatten + dense vs global average pooling + dense (weights only, no biases).

    Lecture: 256 maps of 100x100 into 10 classes: 25,600,000 vs 2,560 weights.
    """
    flat = linear_cost(channels * size * size, classes, bias=False)
    gap = linear_cost(channels, classes, bias=False)
    options = (
        _combine("flatten + dense", [(f"dense {_n(channels * size * size)} → {classes}", flat)]),
        _combine("global average pooling + dense", [(f"average each {size}×{size} map → {channels} numbers "
                                                     f"({_n(channels * size * size)} additions)",
                                                     LayerCost(0, 0, (channels,))),
                                                    (f"dense {channels} → {classes}", gap)]),
    )  # fmt: skip
    summary = (
        f"Global average pooling keeps {_n(gap.params)} weights instead of {_n(flat.params)} "
        f"({flat.params // gap.params:,} times fewer) and accepts any input size."
    )
    return Comparison("Flatten + dense vs global average pooling", options, summary)


def conv1d_sequence(channels: int = 64, length: int = 100, out_channels: int = 128, kernel: int = 5) -> Comparison:
    """1-D convolution over a sequence (a time series, or text as ``channels``-dimensional embeddings)."""
    seq = conv_cost((channels, length), out_channels, kernel)
    same = conv_cost((channels, length), out_channels, kernel, padding="same")
    options = (
        _combine(
            "1-D, no padding",
            [(f"{kernel}×{channels} filters slide along {length} steps, {out_channels} of them", seq)],
            kernel,
        ),  # fmt: skip
        _combine("1-D, same padding", [(f"the same with {(kernel - 1) // 2} zeros on each end", same)], kernel),
    )
    summary = (
        f"A sequence of {length} vectors of {channels} numbers becomes {_x(seq.out_shape)}; each filter has "
        f"{kernel} × {channels} weights + 1 bias."
    )
    return Comparison("1-D convolution on a sequence", options, summary)


def conv3d_clip(in_shape: Sequence[int] = (3, 16, 112, 112), out_channels: int = 64, kernel: int = 3) -> Comparison:
    """3-D convolution over a video clip or volume ``(channels, frames, height, width)`` vs 2-D per frame."""
    c, t, h, w = in_shape
    pad = (kernel - 1) // 2
    vol = conv_cost(in_shape, out_channels, kernel, padding=pad)
    frame = conv_cost((c, h, w), out_channels, kernel, padding=pad)
    per_frame = LayerCost(frame.params, frame.macs * t, (out_channels, t, *frame.out_shape[1:]))
    options = (
        _combine(
            f"3-D {kernel}×{kernel}×{kernel}",
            [(f"{kernel}×{kernel}×{kernel}×{c} filters, {out_channels} of them, across frames", vol)],
        ),  # fmt: skip
        _combine(f"2-D {kernel}×{kernel} on each frame", [(f"{kernel}×{kernel}×{c} filters on {t} frames", per_frame)]),
    )
    summary = (
        f"A 3-D filter also looks {kernel} frames deep: {kernel}× the weights and MACs of a 2-D filter on every "
        f"frame ({_n(vol.macs)} vs {_n(per_frame.macs)} MACs), and it sees motion."
    )
    return Comparison("3-D convolution on a clip or volume", options, summary)
