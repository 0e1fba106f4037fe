"""How each net copes with a garment that moved: accuracy against shift (0..8 px) and small rotations.

Shared weights make a convolution's feature maps move with the image; a dense head on top reads them at
fixed positions and undoes much of that; pooling and global average pooling add some tolerance. None of it
gives full invariance: these functions measure how much each net keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from vizlib.training_lab.data import normalise

__all__ = [
    "ROTATIONS",
    "SHIFTS",
    "RobustnessCurve",
    "drag_prediction",
    "rotate_images",
    "robustness",
    "shift_images",
]

#: Pixel shifts measured (to the right; with ``diagonal`` also down by the same amount).
SHIFTS: tuple[int, ...] = tuple(range(9))
#: Rotations measured, in degrees.
ROTATIONS: tuple[int, ...] = (-20, -15, -10, -5, 0, 5, 10, 15, 20)


def shift_images(images: np.ndarray, dx: int, dy: int = 0) -> np.ndarray:
    """Move ``uint8 [N, H, W]`` images by ``dx`` pixels right and ``dy`` down; uncovered pixels are 0 (black).

    What leaves the frame is lost, as when a camera moves.
    """
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out


def rotate_images(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate ``uint8 [N, H, W]`` images about their centre (bilinear, black outside), counter-clockwise."""
    if degrees == 0:
        return images.copy()
    h, w = images.shape[-2:]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    return np.stack([cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR) for img in images])


@dataclass(frozen=True)
class RobustnessCurve:
    """Accuracy of each net at each amount of change.

    Attributes:
        kind: ``"shift"`` (pixels right, and the same down when ``diagonal``) or ``"rotation"`` (degrees).
        amounts: The shifts or angles, in order.
        accuracy: Net name -> accuracy at each amount (0..1).
        images: How many test images were used.
    """

    kind: str
    amounts: tuple[int, ...]
    accuracy: dict[str, tuple[float, ...]]
    images: int

    def drop(self, name: str) -> float:
        """Accuracy lost between no change and the largest change, in points (0..1)."""
        acc = self.accuracy[name]
        return acc[self.amounts.index(0)] - acc[-1]


def _accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        predicted = model(normalise(images)).argmax(1).numpy()
    return float((predicted == labels).mean())


def robustness(
    nets: Mapping[str, nn.Module],
    images: np.ndarray,
    labels: np.ndarray,
    kind: str = "shift",
    amounts: Sequence[int] | None = None,
    diagonal: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> RobustnessCurve:
    """Accuracy of every net on ``images`` moved by each amount.

    Args:
        nets: Name -> network in eval mode (not modified; call inside the registry's ``shared()`` if shared).
        images: ``uint8 [N, 28, 28]`` test images.
        labels: Their classes.
        kind: ``"shift"`` or ``"rotation"``.
        amounts: Pixels or degrees (default :data:`SHIFTS` or :data:`ROTATIONS`).
        diagonal: For shifts, move down by the same amount as right.
        progress: Called as ``progress(fraction, message)`` after each amount.

    Raises:
        ValueError: Unknown kind.
    """
    if kind not in ("shift", "rotation"):
        raise ValueError(f"kind must be 'shift' or 'rotation', got {kind!r}.")
    amounts = tuple(amounts if amounts is not None else (SHIFTS if kind == "shift" else ROTATIONS))
    labels = np.asarray(labels)
    result: dict[str, list[float]] = {name: [] for name in nets}
    for i, amount in enumerate(amounts):
        if kind == "shift":
            moved = shift_images(images, amount, amount if diagonal else 0)
        else:
            moved = rotate_images(images, amount)
        for name, model in nets.items():
            result[name].append(_accuracy(model, moved, labels))
        if progress is not None:
            progress((i + 1) / len(amounts), f"{kind} {amount}")
    return RobustnessCurve(kind, amounts, {n: tuple(a) for n, a in result.items()}, len(images))


def drag_prediction(nets: Mapping[str, nn.Module], image: np.ndarray, dx: int, dy: int = 0) -> dict[str, np.ndarray]:
    """Each net's class probabilities (``float [10]``) for one ``uint8 [28, 28]`` image moved by ``(dx, dy)``."""
    moved = shift_images(image[None], dx, dy)
    out = {}
    with torch.no_grad():
        x = normalise(moved)
        for name, model in nets.items():
            out[name] = torch.softmax(model(x), 1)[0].numpy()
    return out
