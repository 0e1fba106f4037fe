"""Checkerboard artefacts of transposed convolution: how often each output cell is written, and how to avoid it."""

from __future__ import annotations

import numpy as np

from vizlib.conv_arithmetic.reference import _scatter
from vizlib.conv_arithmetic.sizes import InvalidParameterError, _check_int

__all__ = [
    "lecture_pattern",
    "overlap_counts",
    "transposed_upsample",
    "upsampling_padding",
]


def overlap_counts(
    n: int | tuple[int, int], k: int, s: int, p: int = 0, d: int = 1, output_padding: int = 0
) -> np.ndarray:
    """How many (input cell, kernel tap) products land on each output cell of a transposed convolution.

    Uneven counts are the checkerboard artefact: with kernel 3 and stride 2 the counts alternate
    1, 2, 1, 2 along each axis (1, 2 and 4 in 2D); with kernel 4 and stride 2 (kernel divisible by
    the stride) they are even away from the border.

    Args:
        n: Input size (square) or ``(H, W)``.
        k, s, p, d, output_padding: As in :func:`output_size` with ``transposed=True``.

    Returns:
        Integer array of the output's shape.

    Raises:
        ConvArithmeticError: Invalid parameters or an empty output.
    """
    h, w = (n, n) if isinstance(n, int | np.integer) else n
    h, w = _check_int("input height", h, 1), _check_int("input width", w, 1)
    k = _check_int("kernel size", k, 1)
    _, counts = _scatter(np.ones((h, w)), np.ones((k, k)), s, p, d, output_padding)
    return counts


def upsampling_padding(k: int, s: int) -> tuple[int, int]:
    """Padding and output padding that make a transposed convolution upsample exactly ``s`` times.

    Solves ``(n-1)s - 2p + k + output_padding = s n`` with the smallest ``p >= 0``.

    Args:
        k: Kernel size.
        s: Stride (the upsampling factor).

    Returns:
        ``(padding, output_padding)``, e.g. ``(1, 1)`` for k=3, s=2 and ``(1, 0)`` for k=4, s=2.
    """
    k, s = _check_int("kernel size", k, 1), _check_int("stride", s, 1)
    p = max(0, -(-(k - s) // 2))
    return p, 2 * p - (k - s)


def transposed_upsample(image: object, k: int, s: int = 2, *, max_side: int = 96) -> np.ndarray:
    """Upsample an image ``s`` times with a transposed convolution whose kernel is uniform.

    The image is first shrunk (Pillow, area filter) so its longer side is at most ``max_side``, then
    every channel goes through ``conv_transpose2d`` with a ``k x k`` kernel of ``s²/k²`` (average gain 1),
    padding from :func:`upsampling_padding`. Each output pixel is then the local colour times its
    overlap count times ``s²/k²``, so uneven overlap shows as a checkerboard.

    Args:
        image: HxW or HxWx3 uint8 (or float in 0..255) image.
        k: Kernel size.
        s: Stride, the upsampling factor.
        max_side: Longest side of the image before upsampling.

    Returns:
        ``(s*h, s*w, 3)`` uint8 RGB array (``h, w``: the shrunk size).

    Raises:
        ConvArithmeticError: Invalid parameters or an image that is not 2D/3-channel.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidParameterError(f"Expected an HxWx3 RGB image, got shape {arr.shape}.")
    arr = np.clip(arr[:, :, :3].astype(np.float64), 0, 255).astype(np.uint8)
    max_side = _check_int("largest side", max_side, 1)
    h, w = arr.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        arr = np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BOX))
    p, op = upsampling_padding(k, s)
    kernel = np.full((k, k), s * s / (k * k))
    channels = [_scatter(arr[:, :, ch].astype(np.float64), kernel, s, p, 1, op)[0] for ch in range(3)]
    return np.clip(np.rint(np.stack(channels, axis=2)), 0, 255).astype(np.uint8)


def lecture_pattern(n: int) -> np.ndarray:
    """The lectures' repeating 0..3 input pattern, ``n x n``; ``lecture_pattern(4)`` is :data:`LECTURE_INPUT`.

    Args:
        n: Size, at least 1.

    Returns:
        Integer array; entry ``(r, c)`` is ``((c - r) mod 4 + 1) mod 4``.
    """
    n = _check_int("pattern size", n, 1)
    r, c = np.indices((n, n))
    return ((c - r) % 4 + 1) % 4
