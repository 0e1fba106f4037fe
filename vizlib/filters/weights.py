"""Learned filters: the first convolution's filters as RGB images, and the kernel slices of any deeper filter.

Filter images (documented, tested): weight ``w`` of filter ``f`` at input channel ``c`` (R, G, B) and
position ``(y, x)`` becomes ``tile[f][y, x, c] = floor(255 * (w - lo) / (hi - lo) + 0.5)``, where ``lo``/``hi``
are the minimum and maximum of that filter's weights (``"filter"`` normalisation: every filter uses the whole
range) or of the whole layer (``"global"``: brightness compares across filters). A constant filter is
mid-gray (128). The raw weights are kept beside the images for hover read-outs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vizlib import activations
from vizlib.feature_maps import MontageLayout, montage_layout, tile_rgb
from vizlib.models import LoadedModel

__all__ = [
    "NORMALISATIONS",
    "FilterError",
    "FilterGrid",
    "KernelSlices",
    "conv_weight",
    "filter_grid",
    "filter_response",
    "first_conv",
    "kernel_slices",
]

#: ``"filter"``: each filter its own min..max; ``"global"``: one min..max for the whole layer.
NORMALISATIONS: tuple[str, ...] = ("filter", "global")
_GRID_SEPARATOR = np.array([255, 255, 255], dtype=np.uint8)


class FilterError(ValueError):
    """A layer, filter or option can't be used; the message says what to change."""


# ------------------------------------------------------------------------------------------- weights


def _conv(model: nn.Module, layer: str) -> nn.Conv2d:
    module = dict(model.named_modules()).get(layer)
    if not isinstance(module, nn.Conv2d):
        kind = "no such layer" if module is None else f"a {type(module).__name__}"
        raise FilterError(f"{layer!r} is {kind}, not a 2-D convolution. Pick a layer from the conv layer list.")
    return module


def conv_weight(model: nn.Module, layer: str) -> np.ndarray:
    """A float32 copy of a convolution's weight, ``(out, in / groups, kh, kw)``.

    Raises:
        FilterError: ``layer`` is not a ``Conv2d`` of ``model``.
    """
    weight = _conv(model, layer).weight
    with torch.no_grad():
        return weight.detach().to("cpu", torch.float32).numpy().copy()


def first_conv(loaded: LoadedModel) -> str:
    """The name of the first 2-D convolution the model runs (e.g. ``_conv_stem``, ``conv1``).

    Raises:
        FilterError: The model has no convolution.
    """
    convs = activations.conv_layers(loaded)
    if not convs:
        raise FilterError(f"{loaded.spec.title} has no 2-D convolution, so there are no filters to show.")
    return convs[0]


# ------------------------------------------------------------------------------------------- the grid


@dataclass(frozen=True, eq=False)
class FilterGrid:
    """A conv layer's filters as RGB images, tiled into one picture.

    Attributes:
        layer: The layer's name.
        weights: Raw weights, ``(out, 3, kh, kw)`` float32.
        tiles: One RGB image per filter, ``(out, kh, kw, 3)`` uint8.
        image: The tiles laid out with white separators, ``(H, W, 3)`` uint8.
        layout: Where each filter lies in ``image``.
        normalisation: ``"filter"`` or ``"global"``.
        lo: Weight drawn as 0, per filter.
        hi: Weight drawn as 255, per filter.
    """

    layer: str
    weights: np.ndarray
    tiles: np.ndarray
    image: np.ndarray
    layout: MontageLayout
    normalisation: str
    lo: np.ndarray
    hi: np.ndarray


def filter_grid(
    weight: np.ndarray | torch.Tensor,
    *,
    layer: str = "",
    normalisation: str = "filter",
    columns: int | None = None,
    gap: int = 1,
) -> FilterGrid:
    """Filters with 3 input channels (or 1, shown gray) as RGB images, normalised as the module docstring says.

    Args:
        weight: ``(out, 3, kh, kw)`` or ``(out, 1, kh, kw)`` weights.
        layer: The layer's name, carried along for captions.
        normalisation: One of :data:`NORMALISATIONS`.
        columns: Filters per row; roughly square by default.
        gap: Separator pixels between filters.

    Returns:
        The grid.

    Raises:
        FilterError: Not a 4-D weight with 1 or 3 input channels, or an unknown normalisation.
    """
    w = np.asarray(weight.detach().cpu() if isinstance(weight, torch.Tensor) else weight, dtype=np.float32)
    if w.ndim != 4 or w.shape[1] not in (1, 3) or w.shape[0] < 1:
        raise FilterError(
            f"Filters can be drawn as colour images only with 3 (or 1) input channels; got weights of shape "
            f"{tuple(w.shape)}. Use kernel_slices() for deeper layers."
        )
    if normalisation not in NORMALISATIONS:
        raise FilterError(f"Unknown normalisation {normalisation!r}. Choose one of: {', '.join(NORMALISATIONS)}.")
    if w.shape[1] == 1:
        w = np.repeat(w, 3, axis=1)
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    if normalisation == "filter":
        lo, hi = flat.min(axis=1), flat.max(axis=1)
    else:
        lo, hi = np.full(len(w), flat.min()), np.full(len(w), flat.max())
    span = (hi - lo)[:, None, None, None]
    scaled = np.where(span > 0, 255.0 * (w - lo[:, None, None, None]) / np.where(span > 0, span, 1.0) + 0.5, 128.0)
    tiles = np.clip(np.floor(scaled), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    layout = montage_layout(len(w), w.shape[2], w.shape[3], columns=columns, upscale=1, gap=gap)
    image = tile_rgb(np.ascontiguousarray(tiles), layout, _GRID_SEPARATOR)
    return FilterGrid(layer, w, tiles, image, layout, normalisation, lo, hi)


# ------------------------------------------------------------------------------------------- deeper kernels


@dataclass(frozen=True, eq=False)
class KernelSlices:
    """One filter of a convolution: its ``kh x kw`` kernel slice for each input channel it reads.

    Attributes:
        layer: The layer's name.
        filter: The filter (output channel) number.
        weights: ``(in / groups, kh, kw)`` float32, slice ``i`` applied to input channel ``input_channels[i]``.
        input_channels: The layer's input channels this filter reads (all of them unless grouped).
        bias: The filter's bias, or ``None``.
        groups: The layer's ``groups``.
    """

    layer: str
    filter: int
    weights: np.ndarray
    input_channels: tuple[int, ...]
    bias: float | None
    groups: int


def kernel_slices(model: nn.Module, layer: str, filter_index: int) -> KernelSlices:
    """The kernel slices of filter ``filter_index`` of conv ``layer``, with the input channels they read.

    Raises:
        FilterError: Not a conv layer, or no such filter.
    """
    conv = _conv(model, layer)
    if not 0 <= filter_index < conv.out_channels:
        raise FilterError(f"{layer} has filters 0 to {conv.out_channels - 1}; there is no filter {filter_index}.")
    per_group_out = conv.out_channels // conv.groups
    per_group_in = conv.in_channels // conv.groups
    first = (filter_index // per_group_out) * per_group_in
    with torch.no_grad():
        weights = conv.weight[filter_index].detach().to("cpu", torch.float32).numpy().copy()
        bias = None if conv.bias is None else float(conv.bias[filter_index])
    return KernelSlices(
        layer=layer,
        filter=int(filter_index),
        weights=weights,
        input_channels=tuple(range(first, first + per_group_in)),
        bias=bias,
        groups=int(conv.groups),
    )


def filter_response(loaded: LoadedModel, image: np.ndarray, layer: str, filter_index: int) -> np.ndarray:
    """Filter ``filter_index``'s output map on ``image`` (one forward pass through vizlib.activations).

    Pages that already hold the layer's activations take the channel from there instead.

    Raises:
        FilterError: Not a conv layer, or no such filter.
    """
    conv = _conv(loaded.model, layer)
    if not 0 <= filter_index < conv.out_channels:
        raise FilterError(f"{layer} has filters 0 to {conv.out_channels - 1}; there is no filter {filter_index}.")
    out = activations.extract(loaded, image, [layer])[layer]
    return out[filter_index].numpy()
