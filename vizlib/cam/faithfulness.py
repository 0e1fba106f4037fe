"""Faithfulness of a class activation map: does blurring what it highlights hurt the class more than chance?

For each map, the most highlighted ``fraction`` of the picture the network sees is blurred away and
the drop in the target's softmax probability is measured; the same is done for ``n_random`` random
regions of the same area (smooth random blobs, the shape CAMs have, not scattered pixels). The
score is the map's drop minus the mean random drop: above 0 the map points at evidence the network
uses, near 0 it does no better than chance. All images go through the network in batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vizlib.cam.graph import CAMError
from vizlib.models import LoadedModel, run_with_cpu_fallback

__all__ = ["Faithfulness", "blur_top", "faithfulness", "top_mask"]

_BATCH = 32
_RANDOM_GRID = 7  # random blobs: uniform noise on a 7x7 grid, upsampled like a CAM


@dataclass(frozen=True)
class Faithfulness:
    """How the target's probability changes when part of the image is blurred away.

    Attributes:
        probability: On the image as it is.
        top: With the map's most highlighted ``fraction`` blurred.
        random: Mean over random regions of the same area.
        fraction: The share of the image blurred.
    """

    probability: float
    top: float
    random: float
    fraction: float

    @property
    def drop_top(self) -> float:
        """Probability lost when the highlighted region is blurred."""
        return self.probability - self.top

    @property
    def drop_random(self) -> float:
        """Probability lost, on average, when a random region is blurred."""
        return self.probability - self.random

    @property
    def score(self) -> float:
        """``drop_top - drop_random``: positive when the map finds what the network relies on."""
        return self.drop_top - self.drop_random


def top_mask(values: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``round(fraction * size)`` largest values (ties: first in row-major order)."""
    flat = values.ravel()
    k = int(round(fraction * flat.size))
    mask = np.zeros(flat.size, bool)
    mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask.reshape(values.shape)


def blur_top(picture: np.ndarray, mask: np.ndarray, blurred: np.ndarray | None = None) -> np.ndarray:
    """``picture`` with the pixels under ``mask`` replaced by a strong Gaussian blur of the picture."""
    if blurred is None:
        blurred = _blur(picture)
    return np.where(mask[..., None], blurred, picture)


def _blur(picture: np.ndarray) -> np.ndarray:
    sigma = max(picture.shape[:2]) / 16
    return cv2.GaussianBlur(picture, (0, 0), sigmaX=sigma, sigmaY=sigma)


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if values.shape == (h, w):
        return values.astype(np.float32)
    shrink = values.shape[0] > h or values.shape[1] > w
    return cv2.resize(values.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _random_masks(size: tuple[int, int], fraction: float, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        top_mask(_resize(rng.random((_RANDOM_GRID, _RANDOM_GRID)).astype(np.float32), size), fraction) for _ in range(n)
    ]


def faithfulness(
    loaded: LoadedModel,
    image: np.ndarray,
    target: int,
    maps: Mapping[str, np.ndarray],
    *,
    fraction: float = 0.2,
    n_random: int = 8,
    seed: int = 0,
) -> dict[str, Faithfulness]:
    """Blur each map's most highlighted ``fraction`` of the image and compare with random regions.

    Args:
        loaded: A model from :func:`vizlib.models.load_model`.
        image: ``H x W x 3`` uint8 RGB, as given to :func:`vizlib.cam.compute`.
        target: The class index the maps explain.
        maps: ``{name: H x W map}`` (any size; resized to the network input).
        fraction: Share of the image blurred, in (0, 1).
        n_random: Random regions averaged for the baseline (shared by every map of the call).
        seed: Seed of the random regions.

    Returns:
        ``{name: Faithfulness}`` in the order of ``maps``.

    Raises:
        CAMError: ``fraction``, ``n_random``, ``target`` or a map is out of range or malformed.
    """
    if not 0 < fraction < 1:
        raise CAMError(f"fraction must be between 0 and 1 (exclusive), got {fraction}.")
    if n_random < 1:
        raise CAMError(f"n_random must be at least 1, got {n_random}.")
    if not 0 <= int(target) < len(loaded.categories):
        raise CAMError(f"Class index {target} is out of range: {loaded.name} has {len(loaded.categories)} classes.")
    for name, values in maps.items():
        if np.ndim(values) != 2 or not np.all(np.isfinite(values)):
            raise CAMError(f"The map {name!r} must be a finite 2-D array, got shape {np.shape(values)}.")
    picture = loaded.resize(image)
    if picture.shape[2] == 1:  # gray-input models: preprocess() wants RGB and turns it gray again
        picture = np.repeat(picture, 3, axis=2)
    size = picture.shape[:2]
    blurred = _blur(picture)
    masks = [top_mask(_resize(np.asarray(v), size), fraction) for v in maps.values()]
    masks += _random_masks(size, fraction, n_random, seed)
    pictures = [picture] + [blur_top(picture, m, blurred) for m in masks]

    def run(lm: LoadedModel) -> np.ndarray:
        probs = []
        for start in range(0, len(pictures), _BATCH):
            x = torch.cat([lm.preprocess(p) for p in pictures[start : start + _BATCH]])
            with lm.shared(), torch.no_grad():
                logits = lm.model(x)
            probs.append(torch.softmax(logits.float(), dim=1)[:, int(target)].cpu().numpy())
        return np.concatenate(probs)

    probs = run_with_cpu_fallback(loaded, run)
    p0, p_maps, p_random = float(probs[0]), probs[1 : 1 + len(maps)], probs[1 + len(maps) :]
    random = float(np.mean(p_random))
    return {
        name: Faithfulness(probability=p0, top=float(p), random=random, fraction=fraction)
        for name, p in zip(maps, p_maps, strict=True)
    }
