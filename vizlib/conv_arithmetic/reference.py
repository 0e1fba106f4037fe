"""Reference operators in plain numpy: convolution, transposed convolution and dilated kernels.

They follow PyTorch's conventions exactly: ``conv2d`` is a cross-correlation (the kernel is not flipped),
``conv_transpose2d`` scatters each input cell's scaled kernel into the output at stride ``s`` and then crops
``padding`` cells from every side, and pooling (``pool2d``, in :mod:`.frames`: the last of its frames) uses
PyTorch's floor/ceil rule. The tests check every result against torch.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vizlib.conv_arithmetic.sizes import InvalidParameterError, _check_int, output_size, pool_output_size

__all__ = [
    "LECTURE_INPUT",
    "LECTURE_KERNEL",
    "PoolMode",
    "conv2d",
    "conv_transpose2d",
    "dilated_kernel",
]


PoolMode = Literal["max", "avg"]


#: The lectures' worked example: this 4x4 input convolved with :data:`LECTURE_KERNEL` gives [[15, 16], [6, 15]].
LECTURE_INPUT: tuple[tuple[int, ...], ...] = ((1, 2, 3, 0), (0, 1, 2, 3), (3, 0, 1, 2), (2, 3, 0, 1))


#: The lectures' 3x3 kernel.
LECTURE_KERNEL: tuple[tuple[int, ...], ...] = ((2, 0, 1), (0, 1, 2), (1, 0, 2))


def _as_2d(name: str, array: object) -> np.ndarray:
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidParameterError(f"The {name} must be a non-empty 2D array, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"The {name} contains NaN or infinite values; use finite numbers.")
    return arr


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def dilated_kernel(kernel: object, d: int = 1) -> np.ndarray:
    """The kernel with ``d - 1`` zeros (holes) inserted between its taps.

    A convolution with ``dilated_kernel(w, d)`` and dilation 1 equals one with ``w`` and dilation ``d``.

    Args:
        kernel: A 2D kernel.
        d: Dilation, at least 1.

    Returns:
        An array of shape ``(d(kh-1)+1, d(kw-1)+1)``.
    """
    w = _as_2d("kernel", kernel)
    d = _check_int("dilation", d, 1)
    out = np.zeros((d * (w.shape[0] - 1) + 1, d * (w.shape[1] - 1) + 1))
    out[::d, ::d] = w
    return out


def conv2d(x: object, kernel: object, s: int = 1, p: int = 0, d: int = 1) -> np.ndarray:
    """2D cross-correlation with zero padding, as ``torch.nn.functional.conv2d`` on one channel.

    Args:
        x: Input, shape ``(H, W)``.
        kernel: Kernel, shape ``(kh, kw)``.
        s, p, d: Stride, padding, dilation.

    Returns:
        The output, float64.

    Raises:
        ConvArithmeticError: Invalid parameters or an empty output.
    """
    x, w = _as_2d("input", x), _as_2d("kernel", kernel)
    oh = output_size(x.shape[0], w.shape[0], s, p, d)
    ow = output_size(x.shape[1], w.shape[1], s, p, d)
    padded = np.pad(x, p)
    out = np.zeros((oh, ow))
    for a in range(w.shape[0]):
        for b in range(w.shape[1]):
            out += w[a, b] * padded[a * d : a * d + (oh - 1) * s + 1 : s, b * d : b * d + (ow - 1) * s + 1 : s]
    return out


def conv_transpose2d(
    x: object, kernel: object, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0
) -> np.ndarray:
    """2D transposed convolution, as ``torch.nn.functional.conv_transpose2d`` on one channel.

    Args:
        x: Input, shape ``(H, W)``.
        kernel: Kernel, shape ``(kh, kw)``.
        s, p, d: Stride, padding (cropped from each side), dilation.
        output_padding: Extra cells on the bottom and right.

    Returns:
        The output, float64.

    Raises:
        ConvArithmeticError: Invalid parameters or an empty output.
    """
    out, _ = _scatter(_as_2d("input", x), _as_2d("kernel", kernel), s, p, d, output_padding)
    return out


def _canvas_shape(
    in_shape: tuple[int, ...], k_shape: tuple[int, ...], s: int, p: int, d: int, out_shape: tuple[int, int]
) -> tuple[int, int]:
    """Cells a transposed convolution scatters into before cropping, plus any output-padding cells beyond."""
    return tuple(  # type: ignore[return-value]
        max((n - 1) * s + d * (k - 1) + 1, p + o) for n, k, o in zip(in_shape, k_shape, out_shape, strict=True)
    )


def _scatter(x: np.ndarray, w: np.ndarray, s: int, p: int, d: int, op: int) -> tuple[np.ndarray, np.ndarray]:
    """Transposed convolution and its overlap counts (how many products land on each output cell)."""
    oh = output_size(x.shape[0], w.shape[0], s, p, d, transposed=True, output_padding=op)
    ow = output_size(x.shape[1], w.shape[1], s, p, d, transposed=True, output_padding=op)
    canvas = np.zeros(_canvas_shape(x.shape, w.shape, s, p, d, (oh, ow)))
    counts = np.zeros(canvas.shape, dtype=np.int64)
    rows, cols = (x.shape[0] - 1) * s + 1, (x.shape[1] - 1) * s + 1
    for a in range(w.shape[0]):
        for b in range(w.shape[1]):
            canvas[a * d : a * d + rows : s, b * d : b * d + cols : s] += w[a, b] * x
            counts[a * d : a * d + rows : s, b * d : b * d + cols : s] += 1
    crop = (slice(p, p + oh), slice(p, p + ow))
    return canvas[crop], counts[crop]


def _pool_geometry(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, int]:
    """Output size and the size of the grid (padded input plus any ceil-mode overhang)."""
    o = pool_output_size(n, k, s, p, d, ceil_mode=ceil_mode)
    return o, max(n + 2 * p, (o - 1) * s + d * (k - 1) + 1)


