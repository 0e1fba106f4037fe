"""Geometric and photometric changes of the picture the network sees, one affine warp each."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

__all__ = ["KINDS", "RANGES", "Transform", "apply"]

#: The transforms a sweep can vary, with their unit.
KINDS: dict[str, str] = {"shift": "px", "rotate": "°", "scale": "×", "dim": "×"}
#: Default sweep range (low, high, steps) per kind.
RANGES: dict[str, tuple[float, float, int]] = {
    "shift": (-64.0, 64.0, 33),
    "rotate": (-180.0, 180.0, 37),
    "scale": (0.5, 2.0, 31),
    "dim": (0.0, 1.5, 31),
}


@dataclass(frozen=True)
class Transform:
    """One change of the picture, applied about its centre.

    Attributes:
        dx: Shift to the right, in pixels.
        dy: Shift down, in pixels.
        angle: Rotation, degrees counter-clockwise (as shown on screen).
        scale: Zoom factor (> 1 enlarges).
        flip: Mirror left-right first.
        dim: Brightness factor (0 black, 1 unchanged, > 1 brighter; clipped at 255).
    """

    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0
    scale: float = 1.0
    flip: bool = False
    dim: float = 1.0

    def vary(self, kind: str, value: float) -> Transform:
        """This transform with one kind of :data:`KINDS` set to ``value`` (a shift moves right)."""
        if kind == "shift":
            return replace(self, dx=float(value))
        if kind == "rotate":
            return replace(self, angle=float(value))
        if kind in ("scale", "dim"):
            return replace(self, **{kind: float(value)})
        raise ValueError(f"Unknown transform {kind!r}. Choose one of: {', '.join(KINDS)}.")

    @property
    def is_identity(self) -> bool:
        return self == Transform()


def _matrix(t: Transform, h: int, w: int) -> np.ndarray:
    """The 2x3 affine map from source to output pixels: flip, then rotate and scale about the centre, then shift."""
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    rotate = np.vstack([cv2.getRotationMatrix2D((cx, cy), t.angle, t.scale), [0.0, 0.0, 1.0]])
    flip = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if t.flip else np.eye(3)
    m = (rotate @ flip)[:2]
    m[0, 2] += t.dx
    m[1, 2] += t.dy
    return m


def apply(image: np.ndarray, t: Transform, *, border: str = "constant") -> np.ndarray:
    """``image`` moved by ``t``; uncovered places are black (``border="constant"``) or mirrored (``"reflect"``).

    Args:
        image: ``H x W x 3`` uint8.
        t: The transform.
        border: ``"constant"`` or ``"reflect"``.

    Returns:
        A new ``H x W x 3`` uint8 image (bilinear sampling; exact for whole-pixel shifts and flips).
    """
    if border not in ("constant", "reflect"):
        raise ValueError(f"border must be 'constant' or 'reflect', got {border!r}.")
    h, w = image.shape[:2]
    out = image
    if not (t.dx == t.dy == t.angle == 0 and t.scale == 1 and not t.flip):
        mode = cv2.BORDER_CONSTANT if border == "constant" else cv2.BORDER_REFLECT_101
        out = cv2.warpAffine(image, _matrix(t, h, w), (w, h), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0)
    if t.dim != 1.0:
        out = np.clip(np.rint(out.astype(np.float32) * t.dim), 0, 255).astype(np.uint8)
    return out if out is not image else image.copy()
