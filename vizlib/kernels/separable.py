"""Separability: whether a kernel is the outer product of a column and a row, and those two factors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vizlib.kernels.filtering import KernelError, _check_kernel

__all__ = [
    "NotSeparableError",
    "Separation",
    "separate",
]


#: Singular values below this fraction of the largest count as zero in :func:`separate` (float32-level
#: noise, e.g. a binomial kernel stored in float32, must not make a kernel look inseparable).
_RANK_RTOL = 1e-6


class NotSeparableError(KernelError):
    """The kernel has rank above one, so it can't be split into a column and a row filter."""


@dataclass(frozen=True, eq=False)
class Separation:
    """Whether a kernel splits into a column filter followed by a row filter.

    ``kernel == np.outer(column, row)`` when :attr:`separable`. The row is scaled to small whole
    numbers where possible (Sobel x gives column ``[1, 2, 1]`` and row ``[1, 0, -1]``); the column
    carries the rest of the scale. Counts are multiplications per output pixel.
    """

    rank: int
    column: np.ndarray | None
    row: np.ndarray | None
    full_multiplications: int
    separable_multiplications: int | None

    @property
    def separable(self) -> bool:
        """True when the kernel has rank one (or is all zeros)."""
        return self.column is not None

    @property
    def saving(self) -> float | None:
        """How many times fewer multiplications the two 1-D passes need (``k^2 / 2k``)."""
        if self.separable_multiplications is None:
            return None
        return self.full_multiplications / self.separable_multiplications


def _nice_row(row: np.ndarray) -> np.ndarray:
    """Scale a row to small whole numbers where possible (first non-zero entry positive).

    Tries: smallest non-zero entry -> 1; whole-number entries divided by their common divisor;
    otherwise the largest entry -> 1.
    """
    magnitudes = np.abs(row)
    nonzero = magnitudes > 1e-12 * magnitudes.max()
    signed = row * np.sign(row[np.argmax(nonzero)])
    candidate = signed / magnitudes[nonzero].min()
    if _is_whole(candidate):
        return np.round(candidate)
    if _is_whole(signed):
        whole = np.round(signed)
        return whole / np.gcd.reduce(np.abs(whole).astype(np.int64))
    return signed / magnitudes.max()


def _is_whole(values: np.ndarray) -> bool:
    return bool(np.all(np.abs(values) < 2**31)) and np.allclose(values, np.round(values), rtol=0, atol=1e-9)


def separate(kernel: np.ndarray) -> Separation:
    """Split a rank-one kernel into its column and row factors.

    The rank counts singular values above 1e-6 of the largest, so float32 rounding doesn't count.

    Args:
        kernel: Any 2-D kernel (even sizes allowed), at most :data:`MAX_KERNEL_SIZE` on a side.

    Returns:
        A :class:`Separation`; ``column``, ``row`` and ``separable_multiplications`` are None when the
        rank is above one.

    Raises:
        KernelError: The kernel is not 2-D, holds NaN/inf, or is too large.
    """
    k = _check_kernel(kernel, need_odd=False)
    kh, kw = k.shape
    singular = np.linalg.svd(k, compute_uv=False)
    rank = int(np.sum(singular > _RANK_RTOL * singular[0])) if singular[0] > 0 else 0
    full = kh * kw
    if rank > 1:
        return Separation(rank, None, None, full, None)
    if rank == 0:
        return Separation(0, np.zeros(kh), np.zeros(kw), full, kh + kw)
    row = _nice_row(k[int(np.argmax(np.linalg.norm(k, axis=1)))])
    column = k @ row / (row @ row)
    return Separation(1, column, row, full, kh + kw)
