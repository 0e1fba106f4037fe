"""Convolution arithmetic, the convolution lesson: output sizes, reference operators, step-by-step frames,
convolution as a matrix, checkerboards.

Modules: :mod:`~vizlib.conv_arithmetic.sizes` (output sizes and formulas), :mod:`~vizlib.conv_arithmetic.reference`
(numpy operators that match PyTorch), :mod:`~vizlib.conv_arithmetic.frames` (the animation frames),
:mod:`~vizlib.conv_arithmetic.matrix` (convolution as a matrix), :mod:`~vizlib.conv_arithmetic.checkerboard`
(transposed-convolution checkerboards) and :mod:`~vizlib.conv_arithmetic.export` (GIF/MP4 for slides, imported on
its own). Figures: :mod:`vizlib.figures.conv`.
"""

from __future__ import annotations

from vizlib.conv_arithmetic.checkerboard import (
    lecture_pattern,
    overlap_counts,
    transposed_upsample,
    upsampling_padding,
)
from vizlib.conv_arithmetic.frames import (
    ConvFrame,
    Frame,
    TransposedFrame,
    conv2d_frames,
    conv_transpose2d_frames,
    describe,
    pool2d,
    pool2d_frames,
)
from vizlib.conv_arithmetic.matrix import (
    conv1d_matrix,
    conv_transpose1d_matrix,
)
from vizlib.conv_arithmetic.reference import (
    LECTURE_INPUT,
    LECTURE_KERNEL,
    PoolMode,
    conv2d,
    conv_transpose2d,
    dilated_kernel,
)
from vizlib.conv_arithmetic.sizes import (
    ConvArithmeticError,
    Formula,
    InvalidParameterError,
    OutputTooSmallError,
    output_size,
    output_size_formula,
    pool_output_size,
)

__all__ = [
    "LECTURE_INPUT",
    "LECTURE_KERNEL",
    "ConvArithmeticError",
    "ConvFrame",
    "Formula",
    "Frame",
    "InvalidParameterError",
    "OutputTooSmallError",
    "PoolMode",
    "TransposedFrame",
    "conv1d_matrix",
    "conv2d",
    "conv2d_frames",
    "conv_transpose1d_matrix",
    "conv_transpose2d",
    "conv_transpose2d_frames",
    "describe",
    "dilated_kernel",
    "lecture_pattern",
    "output_size",
    "output_size_formula",
    "overlap_counts",
    "pool2d",
    "pool2d_frames",
    "pool_output_size",
    "transposed_upsample",
    "upsampling_padding",
]
