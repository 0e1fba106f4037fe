"""Hand-designed image kernels, the kernels lesson: presets, filtering, gradients, separability, designed vs learned.

Modules: :mod:`~vizlib.kernels.presets` (the preset kernels), :mod:`~vizlib.kernels.filtering` (:func:`apply`, its
exact semantics, gradients), :mod:`~vizlib.kernels.separable` (rank-1 kernels and their factors),
:mod:`~vizlib.kernels.learned` (a network's first-layer filters against the presets) and
:mod:`~vizlib.kernels.live` (the camera stream holder of the live edges page, imported on its own).
Figures: :mod:`vizlib.figures.kernels`.
"""

from __future__ import annotations

from vizlib.kernels.filtering import (
    BORDERS,
    COLORS,
    MAX_KERNEL_SIZE,
    MODES,
    EvenKernelError,
    FilterError,
    FilterInputError,
    Gradient,
    KernelError,
    KernelShapeError,
    KernelTooLargeError,
    KernelValueError,
    apply,
    crop_valid,
    gradient,
    gradient_from_responses,
)
from vizlib.kernels.learned import (
    FilterMatches,
    collapse_to_gray,
    first_conv_weight,
    match_filters,
)
from vizlib.kernels.presets import (
    PRESET_LABELS,
    PRESETS,
)
from vizlib.kernels.separable import (
    NotSeparableError,
    Separation,
    separate,
)

__all__ = [
    "BORDERS",
    "COLORS",
    "MAX_KERNEL_SIZE",
    "MODES",
    "PRESETS",
    "PRESET_LABELS",
    "EvenKernelError",
    "FilterError",
    "FilterInputError",
    "FilterMatches",
    "Gradient",
    "KernelError",
    "KernelShapeError",
    "KernelTooLargeError",
    "KernelValueError",
    "NotSeparableError",
    "Separation",
    "apply",
    "collapse_to_gray",
    "crop_valid",
    "first_conv_weight",
    "gradient",
    "gradient_from_responses",
    "match_filters",
    "separate",
]
