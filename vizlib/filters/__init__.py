"""Learned filters, the filters lesson: first-layer filters as images, deeper kernels, 1x1 and depthwise convolutions.

Modules: :mod:`~vizlib.filters.weights` (a layer's weights, the filter grid, kernel slices, one filter's response)
and :mod:`~vizlib.filters.kinds` (convolution kinds, their costs, depthwise-pointwise pairs).
Figures: :mod:`vizlib.figures.filters`.
"""

from __future__ import annotations

from vizlib.filters.kinds import (
    ConvCost,
    ConvInfo,
    SeparablePair,
    conv_catalogue,
    conv_cost,
    separable_pairs,
)
from vizlib.filters.weights import (
    NORMALISATIONS,
    FilterError,
    FilterGrid,
    KernelSlices,
    conv_weight,
    filter_grid,
    filter_response,
    first_conv,
    kernel_slices,
)

__all__ = [
    "NORMALISATIONS",
    "ConvCost",
    "ConvInfo",
    "FilterError",
    "FilterGrid",
    "KernelSlices",
    "SeparablePair",
    "conv_catalogue",
    "conv_cost",
    "conv_weight",
    "filter_grid",
    "filter_response",
    "first_conv",
    "kernel_slices",
    "separable_pairs",
]
