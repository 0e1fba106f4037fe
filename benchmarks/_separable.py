"""Timing a separable kernel applied as one 2-D pass against two 1-D passes (used by bench_kernels and its test)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from vizlib.kernels.filtering import _CV_BORDERS, Border, Color, FilterInputError, _prepare
from vizlib.kernels.separable import NotSeparableError, separate

__all__ = [
    "SeparableTiming",
    "time_separable",
]


@dataclass(frozen=True)
class SeparableTiming:
    """Median wall time of one filtering, full 2-D against two 1-D passes, on the same image."""

    full_ms: float
    separable_ms: float
    max_abs_difference: float
    repeats: int
    full_multiplications: int
    separable_multiplications: int

    @property
    def speedup(self) -> float:
        """``full_ms / separable_ms``."""
        return self.full_ms / self.separable_ms if self.separable_ms > 0 else float("inf")


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def time_separable(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    border: Border = "zero",
    color: Color = "gray",
    repeats: int = 20,
) -> SeparableTiming:
    """Time a separable kernel both ways: OpenCV ``filter2D`` (k x k) and ``sepFilter2D`` (k + k).

    Only the filtering is timed (the image is converted to float32 once, before). OpenCV itself
    switches ``filter2D`` to a DFT for kernels of 11x11 and more. Thread count is left as it is.

    Args:
        image: As for :func:`apply`.
        kernel: A rank-one, odd-sized kernel.
        border: As for :func:`apply`.
        color: As for :func:`apply`.
        repeats: Timed runs of each way (the median is reported), at least 1.

    Returns:
        A :class:`SeparableTiming`.

    Raises:
        NotSeparableError: The kernel has rank above one.
        KernelError: The kernel is otherwise unusable.
        FilterInputError: The image, an option or ``repeats`` is unusable.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise FilterInputError(f"repeats must be a whole number of at least 1; got {repeats!r}.")
    x, k = _prepare(image, kernel, "correlate", border, color, 1.0, 0.0)
    x = x.astype(np.float32, copy=False)
    split = separate(k)
    if not split.separable:
        raise NotSeparableError(
            f"The kernel has rank {split.rank}, so it can't be split into a column and a row filter; "
            "choose a rank-one kernel such as Sobel, a box blur or a Gaussian."
        )
    column = split.column.astype(np.float32)
    row = split.row.astype(np.float32)
    cv_border = _CV_BORDERS[border]

    def full() -> np.ndarray:
        return cv2.filter2D(x, cv2.CV_32F, k, borderType=cv_border)

    def two_pass() -> np.ndarray:
        return cv2.sepFilter2D(x, cv2.CV_32F, row, column, borderType=cv_border)

    difference = float(np.max(np.abs(full() - two_pass())))
    return SeparableTiming(
        full_ms=_median_ms(full, repeats),
        separable_ms=_median_ms(two_pass, repeats),
        max_abs_difference=difference,
        repeats=repeats,
        full_multiplications=split.full_multiplications,
        separable_multiplications=int(split.separable_multiplications),
    )
