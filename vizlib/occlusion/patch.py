"""One patch over the picture the network sees: what it is filled with, and the prediction it leaves."""

from __future__ import annotations

import cv2
import numpy as np

from vizlib.models import LoadedModel, Prediction, classify

__all__ = ["FILLS", "OcclusionError", "cover", "covered_prediction", "fill_value"]

#: What covers the patch: mid grey, black, or the same place blurred (a softer occluder: colour stays).
FILLS: dict[str, str] = {"grey": "mid grey", "black": "black", "blur": "the image blurred"}
_BLUR_SIGMA = 8.0
_GREY = 128


class OcclusionError(ValueError):
    """Bad occlusion parameters; the message says which and what is allowed."""


def _check_fill(fill: str) -> str:
    if fill not in FILLS:
        raise OcclusionError(f"Unknown fill {fill!r}. Choose one of: {', '.join(FILLS)}.")
    return fill


def fill_value(image: np.ndarray, fill: str) -> np.ndarray:
    """The picture a patch is cut from: a constant image (grey or black) or the image blurred.

    Args:
        image: ``H x W x 3`` uint8.
        fill: A key of :data:`FILLS`.

    Returns:
        An ``H x W x 3`` uint8 array.
    """
    _check_fill(fill)
    if fill == "blur":
        return cv2.GaussianBlur(image, (0, 0), _BLUR_SIGMA, borderType=cv2.BORDER_REFLECT)
    return np.full_like(image, _GREY if fill == "grey" else 0)


def cover(image: np.ndarray, x: int, y: int, patch: int, fill: str = "grey") -> np.ndarray:
    """A copy of ``image`` with the ``patch x patch`` square whose top-left corner is ``(x, y)`` covered.

    The square is cut to the image where it reaches past an edge.

    Raises:
        OcclusionError: A patch smaller than one pixel or an unknown fill.
    """
    if patch < 1:
        raise OcclusionError(f"The patch must be at least 1 pixel wide, got {patch}.")
    out = image.copy()
    h, w = image.shape[:2]
    top, left = max(int(y), 0), max(int(x), 0)
    bottom, right = min(int(y) + patch, h), min(int(x) + patch, w)
    if bottom > top and right > left:
        out[top:bottom, left:right] = fill_value(image, fill)[top:bottom, left:right]
    return out


def covered_prediction(
    loaded: LoadedModel, image: np.ndarray, x: int, y: int, patch: int, fill: str = "grey", k: int = 5
) -> tuple[np.ndarray, Prediction]:
    """The network's picture of ``image`` with one patch covered, and its top-``k`` classes.

    Coordinates are in the network's input (``loaded.resize(image)``), where the patch size is meant.

    Returns:
        ``(covered picture, prediction)``.
    """
    covered = cover(loaded.resize(image), x, y, patch, fill)
    return covered, classify(loaded, covered, k)
