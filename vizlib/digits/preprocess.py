"""MNIST-style preprocessing: a digit or a drawing prepared the way the LeNet-5 digits network sees it.

The network sees a 28x28 single-channel image in [0, 1], white ink on black, prepared like MNIST:
crop to the ink, scale the longest side to 20 px keeping the aspect ratio, and paste into a 28x28
field so that the centre of mass of the ink sits at the centre. The same preprocessing is applied
to the training digits (see :mod:`vizlib.digits.train`) and to a drawing, so the two match.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = [
    "DIGIT_BOX",
    "INPUT_SIZE",
    "DrawingError",
    "DrawingSteps",
    "EmptyDrawingError",
    "digits_preprocess",
    "drawing_steps",
    "preprocess_drawing",
]

#: Side of the square image the network takes, in pixels.
INPUT_SIZE = 28
#: The longest side of the ink after scaling, in pixels (MNIST's 20 px box).
DIGIT_BOX = 20


# Ink weaker than this (after normalising the strongest ink to 1) does not count for the bounding box.
_INK_THRESHOLD = 0.1
# A canvas whose strongest ink is below this (on the 0..1 scale) counts as empty.
_EMPTY_LEVEL = 0.05


class DrawingError(ValueError):
    """The drawing can't be used as input; the message says why."""


class EmptyDrawingError(DrawingError):
    """The drawing has no ink."""


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawingSteps:
    """The stages of MNIST-style preprocessing, for display.

    Attributes:
        ink: ``float32 [H, W]`` in [0, 1]: the input as ink strength (white ink on black,
            strongest ink scaled to 1).
        bbox: ``(top, left, bottom, right)`` of the ink in ``ink`` (bottom/right exclusive);
            ``None`` when there is no ink.
        cropped: ``float32``: ``ink`` cropped to ``bbox`` (``0x0`` when empty).
        scaled: ``float32``: ``cropped`` scaled so its longest side is 20 px (``0x0`` when empty).
        centre_of_mass: ``(row, col)`` of the ink's centre of mass in ``scaled``.
        offset: ``(row, col)`` where ``scaled``'s top-left corner was placed in ``result``.
        result: ``float32 [28, 28]`` in [0, 1]: what the network sees (all zeros when empty).
    """

    ink: np.ndarray
    bbox: tuple[int, int, int, int] | None
    cropped: np.ndarray
    scaled: np.ndarray
    centre_of_mass: tuple[float, float]
    offset: tuple[int, int]
    result: np.ndarray

    @property
    def empty(self) -> bool:
        """Whether the drawing had no ink."""
        return self.bbox is None


def _to_unit_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.number):
        raise DrawingError(f"The drawing has pixel type {arr.dtype}; pass uint8 or float values.")
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise DrawingError("The drawing contains NaN or infinite values.")
    if out.size and out.max() > 1.0:
        out = out / 255.0
    return np.clip(out, 0.0, 1.0)


def _ink_map(image: np.ndarray) -> np.ndarray:
    """Turn a grey, RGB or RGBA drawing into ink strength in [0, 1] (ink high, background 0)."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise DrawingError(
            f"A drawing must be HxW grey, HxWx3 RGB or HxWx4 RGBA; got an array of shape {arr.shape}."
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DrawingError(f"The drawing has no pixels (shape {arr.shape}).")
    values = _to_unit_float(arr)
    if values.ndim == 3 and values.shape[2] == 4:
        alpha = values[:, :, 3]
        if alpha.min() < 1.0:
            # Strokes on a transparent layer (a drawing canvas): opacity is the ink.
            return np.ascontiguousarray(alpha)
        values = values[:, :, :3]
    grey = values @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if values.ndim == 3 else values
    border = np.concatenate([grey[0, :], grey[-1, :], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    # Dark ink on a light background is turned round; either way the background goes to 0.
    ink = background - grey if background > 0.5 else grey - background
    return np.clip(ink, 0.0, 1.0).astype(np.float32)


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    total = float(img.sum())
    rows = np.arange(img.shape[0], dtype=np.float64)
    cols = np.arange(img.shape[1], dtype=np.float64)
    return (
        float(img.sum(axis=1) @ rows / total),
        float(img.sum(axis=0) @ cols / total),
    )


def _place_offset(com: float, length: int) -> int:
    """Top-left position that puts ``com`` at the field's centre, kept so the ink stays inside."""
    centre = (INPUT_SIZE - 1) / 2.0
    offset = int(np.floor(centre - com + 0.5))
    return min(max(offset, 0), INPUT_SIZE - length)


def drawing_steps(image: np.ndarray) -> DrawingSteps:
    """Prepare a drawing like MNIST and keep every stage.

    Crops to the ink, scales the longest side to 20 px (keeping the aspect ratio), and pastes it
    into a 28x28 field so that the ink's centre of mass is at the centre (shifted less where the
    ink would otherwise leave the field). An empty canvas gives an all-zero result with
    ``empty == True`` rather than an error.

    Args:
        image: ``HxW`` grey, ``HxWx3`` RGB or ``HxWx4`` RGBA; uint8 or float in [0, 1]. Dark ink on
            a light background and light ink on a dark one both work; with RGBA whose alpha is
            not fully opaque the alpha channel is taken as the ink.

    Returns:
        The stages; ``result`` is ``float32 [28, 28]`` in [0, 1], white ink on black.

    Raises:
        DrawingError: If the array has an unusable shape or type.
    """
    ink = _ink_map(image)
    peak = float(ink.max())
    if peak < _EMPTY_LEVEL:
        none = np.zeros((0, 0), dtype=np.float32)
        centre = (INPUT_SIZE - 1) / 2.0
        return DrawingSteps(
            ink=ink,
            bbox=None,
            cropped=none,
            scaled=none,
            centre_of_mass=(centre, centre),
            offset=(0, 0),
            result=np.zeros((INPUT_SIZE, INPUT_SIZE), dtype=np.float32),
        )
    ink = ink / peak
    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    bbox = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    cropped = ink[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    h, w = cropped.shape
    factor = DIGIT_BOX / max(h, w)
    new_h = min(DIGIT_BOX, max(1, int(round(h * factor))))
    new_w = min(DIGIT_BOX, max(1, int(round(w * factor))))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(cropped, (new_w, new_h), interpolation=interpolation)
    scaled = np.clip(scaled, 0.0, 1.0).astype(np.float32).reshape(new_h, new_w)
    if float(scaled.sum()) <= 0.0:
        scaled = np.ones_like(scaled)
    com = _centre_of_mass(scaled)
    offset = (_place_offset(com[0], new_h), _place_offset(com[1], new_w))
    result = np.zeros((INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    result[offset[0] : offset[0] + new_h, offset[1] : offset[1] + new_w] = scaled
    return DrawingSteps(
        ink=ink,
        bbox=bbox,
        cropped=np.ascontiguousarray(cropped, dtype=np.float32),
        scaled=scaled,
        centre_of_mass=com,
        offset=offset,
        result=result,
    )


def preprocess_drawing(rgba_or_gray: np.ndarray) -> np.ndarray:
    """Prepare a drawing for the digits network like MNIST (see :func:`drawing_steps`).

    Args:
        rgba_or_gray: ``HxW`` grey, ``HxWx3`` RGB or ``HxWx4`` RGBA; uint8 or float in [0, 1].

    Returns:
        ``float32 [28, 28]`` in [0, 1], white ink on black.

    Raises:
        EmptyDrawingError: If there is no ink.
        DrawingError: If the array has an unusable shape or type.
    """
    steps = drawing_steps(rgba_or_gray)
    if steps.empty:
        raise EmptyDrawingError("The canvas is empty: draw a digit (or pick an example) first.")
    return steps.result


def digits_preprocess(image: np.ndarray) -> torch.Tensor:
    """Turn an image (e.g. HxWx3 uint8 RGB) into the digits network's input batch.

    Args:
        image: Anything :func:`preprocess_drawing` takes.

    Returns:
        ``float32 Tensor[1, 1, 28, 28]`` on the CPU.

    Raises:
        EmptyDrawingError: If the image has no ink (a blank, uniform image).
        DrawingError: If the array has an unusable shape or type.
    """
    return torch.from_numpy(preprocess_drawing(image)).reshape(1, 1, INPUT_SIZE, INPUT_SIZE)


# ----------------------------------------------------------------------------------------------
# Checkpoint
# ----------------------------------------------------------------------------------------------


