"""Filtering an image with a hand-designed kernel, and the gradient (magnitude and direction) from two kernels.

Semantics of :func:`apply` (the tests check them against ``torch.nn.functional.conv2d``):

* **Values.** The image is converted to float32 *without rescaling* (a uint8 photo keeps 0..255).
  With ``color="gray"`` an RGB image is first reduced to luma ``0.299 R + 0.587 G + 0.114 B``
  (ITU-R BT.601, the weights of OpenCV's ``RGB2GRAY``) and the result is ``H x W``; with
  ``color="per_channel"`` the kernel runs on R, G and B independently (a depthwise convolution)
  and the result is ``H x W x 3``.
* **Operation.** ``mode="correlate"`` is cross-correlation, exactly what a convolution layer
  computes: ``out[y, x] = scale * sum_ij k[i, j] * img[y + i - r, x + j - c] + bias`` with
  ``(r, c)`` the kernel's centre. ``mode="convolve"`` is true convolution: the same with the kernel
  rotated by 180 degrees. No clipping: negative and >255 responses are kept.
* **Size and border.** The output has the input's size ("same" padding). Outside the image the
  ``border`` supplies the values: ``"zero"`` (0, as ``padding=k//2`` in a conv layer), ``"reflect"``
  (mirror without repeating the edge pixel, ``dcb|abcd|cba``; OpenCV's ``BORDER_REFLECT_101`` and
  torch's ``"reflect"``) or ``"replicate"`` (repeat the edge pixel, ``aaa|abcd|ddd``).
  :func:`crop_valid` cuts a result down to the "valid" part that never touched the border.

Kernels are odd-sized (so they have a centre) and at most :data:`MAX_KERNEL_SIZE` on a side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from vizlib.kernels.presets import PRESETS

__all__ = [
    "BORDERS",
    "COLORS",
    "MAX_KERNEL_SIZE",
    "MODES",
    "EvenKernelError",
    "FilterError",
    "FilterInputError",
    "Gradient",
    "KernelError",
    "KernelShapeError",
    "KernelTooLargeError",
    "KernelValueError",
    "apply",
    "crop_valid",
    "gradient",
    "gradient_from_responses",
]

Mode = Literal["correlate", "convolve"]
Border = Literal["zero", "reflect", "replicate"]
Color = Literal["gray", "per_channel"]

MODES: tuple[str, ...] = ("correlate", "convolve")
BORDERS: tuple[str, ...] = ("zero", "reflect", "replicate")
COLORS: tuple[str, ...] = ("gray", "per_channel")
#: Largest accepted kernel side, in pixels.
MAX_KERNEL_SIZE = 31

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_CV_BORDERS = {"zero": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


class FilterError(ValueError):
    """Base class: something given to this module can't be used; the message says what to change."""


class KernelError(FilterError):
    """The kernel itself is unusable."""


class KernelShapeError(KernelError):
    """The kernel is not a non-empty 2-D grid of numbers."""


class EvenKernelError(KernelShapeError):
    """The kernel has an even side, so it has no centre pixel to anchor the output on."""


class KernelValueError(KernelError):
    """The kernel holds NaN, infinity, non-numbers, or (where a direction is needed) only zeros."""


class KernelTooLargeError(KernelError):
    """The kernel is larger than :data:`MAX_KERNEL_SIZE`, or larger than the image."""


class FilterInputError(FilterError):
    """The image, the weight tensor or an option is unusable."""


# --------------------------------------------------------------------------------------------- checks


def _check_kernel(kernel: object, *, need_odd: bool) -> np.ndarray:
    """Validate a kernel and return it as a float64 C-contiguous copy."""
    if isinstance(kernel, torch.Tensor):
        kernel = kernel.detach().cpu().numpy()
    try:
        arr = np.array(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise KernelValueError(
            "The kernel must hold only numbers in a rectangular grid; check for empty or text cells."
        ) from None
    if arr.ndim != 2 or arr.size == 0:
        raise KernelShapeError(
            f"The kernel must be a non-empty 2-D grid (rows x columns); got an array of shape {arr.shape}."
        )
    if max(arr.shape) > MAX_KERNEL_SIZE:
        raise KernelTooLargeError(
            f"The kernel is {arr.shape[0]}x{arr.shape[1]}; the largest accepted side is {MAX_KERNEL_SIZE}. "
            "Use a smaller kernel."
        )
    if not np.all(np.isfinite(arr)):
        raise KernelValueError("The kernel contains NaN or infinity; replace those cells with numbers.")
    if need_odd and (arr.shape[0] % 2 == 0 or arr.shape[1] % 2 == 0):
        raise EvenKernelError(
            f"The kernel is {arr.shape[0]}x{arr.shape[1]}; filtering needs an odd number of rows and columns "
            "(3x3, 5x5, ...) so the kernel has a centre pixel."
        )
    return np.ascontiguousarray(arr)


def _check_options(mode: str, border: str, color: str, scale: float, bias: float) -> None:
    for name, value, allowed in (("mode", mode, MODES), ("border", border, BORDERS), ("color", color, COLORS)):
        if value not in allowed:
            raise FilterInputError(f"Unknown {name} {value!r}; choose one of {', '.join(allowed)}.")
    for name, value in (("scale", scale), ("bias", bias)):
        if not isinstance(value, int | float | np.floating | np.integer) or not np.isfinite(value):
            raise FilterInputError(f"{name} must be a finite number; got {value!r}.")


def _prepare_image(image: object, color: str, kernel_shape: tuple[int, int]) -> np.ndarray:
    """Validate an image; return ``H x W`` (gray) or ``H x W x 3`` (per channel), float32 or uint8."""
    arr = np.asarray(image)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise FilterInputError(f"The image must hold numbers; got dtype {arr.dtype}.")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise FilterInputError(
            f"The image must be H x W (gray) or H x W x 3 (RGB); got shape {arr.shape}. "
            "Convert RGBA or other layouts to RGB first."
        )
    if arr.shape[0] < kernel_shape[0] or arr.shape[1] < kernel_shape[1]:
        raise KernelTooLargeError(
            f"The image is {arr.shape[0]}x{arr.shape[1]} pixels, smaller than the "
            f"{kernel_shape[0]}x{kernel_shape[1]} kernel; use a larger image or a smaller kernel."
        )
    if arr.dtype == np.uint8 and (arr.ndim == 2 or color == "per_channel"):
        # filter2D reads uint8 and writes float32 with the same numbers as a float32 copy would give;
        # skipping the copy avoids a second frame-sized allocation, which page faults made costly.
        return np.ascontiguousarray(arr)
    x = arr.astype(np.float32, copy=False)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise FilterInputError("The image contains NaN or infinity; only finite pixel values can be filtered.")
    if x.ndim == 3 and color == "gray":
        x = x @ _LUMA
    return np.ascontiguousarray(x)


def _prepare(
    image: object, kernel: object, mode: str, border: str, color: str, scale: float, bias: float
) -> tuple[np.ndarray, np.ndarray]:
    _check_options(mode, border, color, scale, bias)
    k = _check_kernel(kernel, need_odd=True)
    if mode == "convolve":
        k = k[::-1, ::-1]
    k = k * float(scale)
    if np.max(np.abs(k)) > np.finfo(np.float32).max:
        raise KernelValueError("The kernel times the scale is too large for float32; use a smaller scale.")
    k = np.ascontiguousarray(k, dtype=np.float32)
    return _prepare_image(image, color, k.shape), k


# ------------------------------------------------------------------------------------------ filtering


def apply(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    mode: Mode = "correlate",
    border: Border = "zero",
    color: Color = "gray",
    scale: float = 1.0,
    bias: float = 0.0,
) -> np.ndarray:
    """Filter an image with a kernel through OpenCV's ``filter2D`` (see the module docstring).

    Args:
        image: ``H x W`` or ``H x W x 3`` array of numbers (uint8 RGB photo or floats).
        kernel: Odd-sized 2-D kernel, at most :data:`MAX_KERNEL_SIZE` on a side.
        mode: ``"correlate"`` (as a conv layer) or ``"convolve"`` (kernel rotated by 180 degrees).
        border: ``"zero"``, ``"reflect"`` or ``"replicate"``.
        color: ``"gray"`` (luma, ``H x W`` result) or ``"per_channel"`` (``H x W x 3`` for RGB input).
        scale: Factor applied to the weighted sum.
        bias: Added after scaling.

    Returns:
        float32 array of the input's height and width, unclipped.

    Raises:
        KernelError: The kernel is not 2-D, is even-sized, holds NaN/inf, or is too large.
        FilterInputError: The image or an option is unusable.
    """
    x, k = _prepare(image, kernel, mode, border, color, scale, bias)
    return cv2.filter2D(x, cv2.CV_32F, k, delta=float(bias), borderType=_CV_BORDERS[border])


def crop_valid(result: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The part of a same-size result whose window never left the image ("valid" convolution).

    An ``n x n`` image and a ``k x k`` kernel give ``(n - k + 1) x (n - k + 1)``, whatever the border.

    Args:
        result: Output of :func:`apply` (``H x W`` or ``H x W x C``).
        kernel: The kernel that produced it (only its shape is used).

    Returns:
        A view of ``result`` without the ``k // 2`` border rows and columns.
    """
    kh, kw = np.shape(kernel)[:2]
    return result[kh // 2 : result.shape[0] - kh // 2, kw // 2 : result.shape[1] - kw // 2]


# ------------------------------------------------------------------------------------------- gradients


@dataclass(frozen=True, eq=False)
class Gradient:
    """Responses to a pair of derivative kernels and the gradient they describe.

    ``orientation`` is ``atan2(gy, gx)`` in radians, in ``[-pi, pi]``, with x to the right and y down.
    With the x/y presets here (positive left column / top row) it points from bright towards dark.
    """

    gx: np.ndarray
    gy: np.ndarray
    magnitude: np.ndarray
    orientation: np.ndarray


def gradient_from_responses(gx: np.ndarray, gy: np.ndarray) -> Gradient:
    """Magnitude ``sqrt(gx^2 + gy^2)`` and orientation ``atan2(gy, gx)`` from two responses.

    Args:
        gx: Response to the x (vertical-edge) kernel.
        gy: Response to the y (horizontal-edge) kernel, same shape.

    Returns:
        A :class:`Gradient` with float32 arrays.

    Raises:
        FilterInputError: The shapes differ.
    """
    gx = np.asarray(gx, dtype=np.float32)
    gy = np.asarray(gy, dtype=np.float32)
    if gx.shape != gy.shape:
        raise FilterInputError(f"gx and gy must have the same shape; got {gx.shape} and {gy.shape}.")
    gx, gy = np.ascontiguousarray(gx), np.ascontiguousarray(gy)
    magnitude = cv2.magnitude(gx.reshape(-1), gy.reshape(-1)).reshape(gx.shape) if gx.size else gx.copy()
    return Gradient(gx=gx, gy=gy, magnitude=magnitude, orientation=np.arctan2(gy, gx))


def gradient(
    image: np.ndarray,
    kernel_x: np.ndarray | None = None,
    kernel_y: np.ndarray | None = None,
    *,
    mode: Mode = "correlate",
    border: Border = "zero",
    color: Color = "gray",
) -> Gradient:
    """Filter with a pair of kernels (Gx, Gy) and combine them into magnitude and orientation.

    Args:
        image: As for :func:`apply`.
        kernel_x: The x-derivative kernel; Sobel x when omitted.
        kernel_y: The y-derivative kernel; the transpose of ``kernel_x`` when omitted.
        mode: As for :func:`apply`.
        border: As for :func:`apply`.
        color: As for :func:`apply`.

    Returns:
        A :class:`Gradient`.

    Raises:
        KernelError: A kernel is unusable.
        FilterInputError: The image or an option is unusable.
    """
    kx = PRESETS["sobel_x"] if kernel_x is None else kernel_x
    ky = _check_kernel(kx, need_odd=True).T if kernel_y is None else kernel_y
    gx = apply(image, kx, mode=mode, border=border, color=color)
    gy = apply(image, ky, mode=mode, border=border, color=color)
    return gradient_from_responses(gx, gy)


# ----------------------------------------------------------------------------------------- separable


# --------------------------------------------------------------------------------- designed vs learned


