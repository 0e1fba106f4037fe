"""Designed vs learned: a network's first-layer filters, reduced to gray, matched against the preset kernels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vizlib.kernels.filtering import FilterInputError, KernelValueError, _check_kernel

__all__ = [
    "FilterMatches",
    "collapse_to_gray",
    "first_conv_weight",
    "match_filters",
]


def first_conv_weight(model: torch.nn.Module) -> torch.Tensor:
    """A detached CPU copy of the weight of the model's first ``Conv2d`` (in module order).

    Args:
        model: Any module; it is only read.

    Returns:
        Tensor of shape ``(out, in, kh, kw)``.

    Raises:
        FilterInputError: The model has no ``Conv2d``.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            return module.weight.detach().to("cpu", copy=True)
    raise FilterInputError("The model has no 2-D convolution layer, so there are no learned filters to compare.")


def collapse_to_gray(weight: np.ndarray | torch.Tensor) -> np.ndarray:
    """Sum a conv weight over its input channels: the filter each output applies to a gray image.

    For an input with R = G = B = I, ``sum_c W_c * I = (sum_c W_c) * I``, so the sum is exactly the
    kernel the layer applies to a grayscale picture.

    Args:
        weight: Array or tensor of shape ``(out, in, kh, kw)``.

    Returns:
        float64 array ``(out, kh, kw)``.

    Raises:
        FilterInputError: The shape is not 4-D, or the weights hold NaN/inf.
    """
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().to("cpu", torch.float64).numpy()
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4 or 0 in w.shape:
        raise FilterInputError(f"Expected a conv weight of shape (out, in, kh, kw); got shape {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise FilterInputError("The conv weight contains NaN or infinity.")
    return w.sum(axis=1)


@dataclass(frozen=True, eq=False)
class FilterMatches:
    """Learned filters ranked by cosine similarity to a designed kernel, best first.

    ``similarities`` are signed: -1 means the same pattern with the opposite polarity (for an edge
    detector, the same edge with bright and dark swapped). ``filters`` are the gray-collapsed learned
    filters at their own size, in ranked order.
    """

    indices: np.ndarray
    similarities: np.ndarray
    filters: np.ndarray
    ignore_sign: bool


def _resize(kernels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if kernels.shape[1:] == shape:
        return kernels
    return np.stack([cv2.resize(k, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) for k in kernels])


def match_filters(
    weight: np.ndarray | torch.Tensor,
    kernel: np.ndarray,
    *,
    top_k: int | None = 8,
    ignore_sign: bool = True,
) -> FilterMatches:
    """The learned filters most similar to a designed kernel (designed vs learned).

    Both sides are compared as gray kernels (:func:`collapse_to_gray`); the smaller side is resized
    (bilinear) up to the larger height and width. Similarity is the cosine of the flattened kernels;
    an all-zero learned filter scores 0. With ``ignore_sign`` the ranking uses ``|cos|``, so an
    inverted copy ranks as high as the kernel itself. Ties (to 12 decimals) keep channel order.

    Args:
        weight: First-layer conv weight ``(out, in, kh, kw)``.
        kernel: The designed 2-D kernel.
        top_k: How many to return; None for all.
        ignore_sign: Rank by absolute similarity.

    Returns:
        A :class:`FilterMatches`.

    Raises:
        KernelValueError: The kernel is all zeros (it has no pattern to compare).
        KernelError: The kernel is otherwise unusable.
        FilterInputError: The weight or ``top_k`` is unusable.
    """
    learned = collapse_to_gray(weight)
    k = _check_kernel(kernel, need_odd=False)
    if not np.any(k):
        raise KernelValueError("The kernel is all zeros, so it has no pattern to compare; set some cells.")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise FilterInputError(f"top_k must be a whole number of at least 1, or None; got {top_k!r}.")
    shape = (max(k.shape[0], learned.shape[1]), max(k.shape[1], learned.shape[2]))
    a = _resize(learned, shape).reshape(len(learned), -1)
    b = _resize(k[None], shape).reshape(-1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b)
    dots = a @ b
    safe = np.where(norms > 0, norms, 1.0)
    cos = np.where(norms > 0, dots / safe, 0.0)
    # Rounded so that equal scores computed along different BLAS paths tie exactly (channel order wins).
    score = np.round(np.abs(cos) if ignore_sign else cos, 12)
    order = np.argsort(-score, kind="stable")[:top_k]
    return FilterMatches(
        indices=order.astype(np.int64),
        similarities=cos[order],
        filters=learned[order],
        ignore_sign=ignore_sign,
    )
