"""Convolution as a matrix: a 1-D convolution and its transpose written as matrix products."""

from __future__ import annotations

import numpy as np

from vizlib.conv_arithmetic.sizes import InvalidParameterError, output_size

__all__ = [
    "conv1d_matrix",
    "conv_transpose1d_matrix",
]


def _as_1d_kernel(kernel: object) -> np.ndarray:
    w = np.asarray(kernel, dtype=np.float64)
    if w.ndim != 1 or w.size < 1:
        raise InvalidParameterError(f"The 1D kernel must be a non-empty list of numbers, got shape {w.shape}.")
    return w


def conv1d_matrix(n: int, kernel: object, s: int = 1, p: int = 0, d: int = 1) -> np.ndarray:
    """The matrix ``K`` with ``K @ x == conv1d(x, kernel)`` for every input ``x`` of length ``n``.

    Row ``j`` holds the kernel at the columns its taps touch; taps on padding are dropped.
    Its transpose is the matrix of the matching transposed convolution (see :func:`conv_transpose1d_matrix`).

    Args:
        n: Input length.
        kernel: 1D kernel.
        s, p, d: Stride, padding, dilation.

    Returns:
        Shape ``(output_size(n, k, s, p, d), n)``.

    Raises:
        ConvArithmeticError: Invalid parameters or an empty output.
    """
    w = _as_1d_kernel(kernel)
    o = output_size(n, w.size, s, p, d)
    matrix = np.zeros((o, n))
    for j in range(o):
        for a, wa in enumerate(w):
            col = j * s + a * d - p
            if 0 <= col < n:
                matrix[j, col] += wa
    return matrix


def conv_transpose1d_matrix(
    n: int, kernel: object, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0
) -> np.ndarray:
    """The matrix ``T`` with ``T @ x == conv_transpose1d(x, kernel)`` for every input of length ``n``.

    ``T`` is ``conv1d_matrix(m, kernel, s, p, d).T`` where ``m`` is the transposed output length,
    whenever that convolution maps ``m`` back to ``n`` (e.g. the lecture's ``6 -> 4 -> 6``).

    Args:
        n: Input length of the transposed convolution.
        kernel: 1D kernel.
        s, p, d: Stride, padding, dilation.
        output_padding: Extra cells at the end of the output.

    Returns:
        Shape ``(output_size(n, k, s, p, d, transposed=True, output_padding=...), n)``.

    Raises:
        ConvArithmeticError: Invalid parameters or an empty output.
    """
    w = _as_1d_kernel(kernel)
    m = output_size(n, w.size, s, p, d, transposed=True, output_padding=output_padding)
    matrix = np.zeros((m, n))
    for j in range(n):
        for a, wa in enumerate(w):
            row = j * s + a * d - p
            if 0 <= row < m:
                matrix[row, j] += wa
    return matrix
