"""Held-out digits: the canvas drawing as an image, the digits no training saw, and how the network does on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vizlib.digits.data import DigitsDataError
from vizlib.digits.view import DigitsViewError
from vizlib.models import LoadedModel

__all__ = [
    "HeldoutDigits",
    "canvas_to_image",
    "classify_heldout",
    "load_heldout",
]


@dataclass(frozen=True, eq=False)
class HeldoutDigits:
    """Prepared test-split digits shipped with the tests.

    Attributes:
        images: ``uint8 [N, 28, 28]``, white ink on black, prepared like MNIST.
        labels: ``int64 [N]``, the true digits.
        indices: ``int64 [N]``, each digit's position in OpenCV's ``digits.png``.
    """

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> np.ndarray:
        """Digit ``i`` as an HxWx3 uint8 RGB image, the form every vizlib model takes."""
        return np.repeat(self.images[i][:, :, None], 3, axis=2)


def canvas_to_image(rgba: np.ndarray) -> np.ndarray:
    """A drawing canvas's RGBA pixels as an HxWx3 uint8 RGB image on white.

    Transparent pixels become white, so strokes on a transparent canvas and strokes on a white
    background give the same picture.

    Args:
        rgba: ``HxWx4`` (or ``HxWx3``) uint8.

    Returns:
        ``HxWx3`` uint8.

    Raises:
        DigitsViewError: Not an ``HxWx3``/``HxWx4`` uint8 array.
    """
    arr = np.asarray(rgba)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8 or 0 in arr.shape[:2]:
        raise DigitsViewError(f"A canvas image is HxWx4 (or HxWx3) uint8; got {arr.dtype} of shape {arr.shape}.")
    if arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    alpha = arr[:, :, 3:].astype(np.float32) / 255.0
    rgb = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def load_heldout(path: str | Path | None = None) -> HeldoutDigits:
    """Load the prepared test-split digits shipped in ``vizlib/digits/digits_heldout.npz``.

    Args:
        path: The ``.npz``; ``None`` for the shipped one.

    Returns:
        The digits.

    Raises:
        DigitsDataError: The file is missing or does not hold ``images``, ``labels`` and ``indices``.
    """
    from vizlib.digits.train import DEFAULT_HELDOUT

    path = Path(DEFAULT_HELDOUT if path is None else path)
    if not path.is_file():
        raise DigitsDataError(f"The held-out digits {path} are missing; `python -m vizlib.digits.train` writes them.")
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels, indices = data["images"], data["labels"], data["indices"]
    except (KeyError, ValueError, OSError) as exc:
        raise DigitsDataError(f"{path} is not a held-out digits file ({exc}).") from exc
    if images.dtype != np.uint8 or images.ndim != 3 or not len(images) == len(labels) == len(indices):
        raise DigitsDataError(f"{path} holds images of shape {images.shape} ({images.dtype}); expected uint8 "
                              "[N, 28, 28] with N labels and indices.")
    return HeldoutDigits(images, labels.astype(np.int64), indices.astype(np.int64))


def classify_heldout(loaded: LoadedModel, heldout: HeldoutDigits) -> np.ndarray:
    """The model's class probabilities for every held-out digit, through the model's own preprocessing.

    Each digit goes through ``loaded.preprocess`` exactly as the page sends it (so a digit listed as
    misclassified is misclassified on the page too), then one batched forward pass.

    Args:
        loaded: The digits model.
        heldout: From :func:`load_heldout`.

    Returns:
        ``float32 [N, num_classes]``.
    """
    if len(heldout) == 0:
        return np.zeros((0, len(loaded.categories)), dtype=np.float32)
    batch = torch.cat([loaded.preprocess(heldout.image(i)) for i in range(len(heldout))])
    with loaded.shared(), torch.no_grad():
        logits = loaded.model(batch)
    return torch.softmax(logits.double(), dim=1).float().cpu().numpy()
