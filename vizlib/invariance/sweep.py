"""A whole range of one transform through the network, in batched forward passes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vizlib.invariance.transforms import KINDS, Transform, apply
from vizlib.models import LoadedModel, run_with_cpu_fallback

__all__ = ["SWEEP_BATCH", "Sweep", "sweep"]

#: Transformed copies per forward pass.
SWEEP_BATCH = 16

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Sweep:
    """The probabilities of some classes along one transform.

    Attributes:
        kind: The transform varied (a key of :data:`vizlib.invariance.KINDS`).
        values: The values it took, in order.
        classes: The class indices followed.
        probabilities: ``len(values) x len(classes)`` softmax probabilities.
        top1: The top class index at each value.
    """

    kind: str
    values: np.ndarray
    classes: tuple[int, ...]
    probabilities: np.ndarray
    top1: np.ndarray


def sweep(
    loaded: LoadedModel,
    image: np.ndarray,
    kind: str,
    values: Sequence[float],
    classes: Sequence[int],
    *,
    base: Transform | None = None,
    progress: ProgressFn | None = None,
) -> Sweep:
    """Classify the network's picture of ``image`` under ``base`` with ``kind`` set to each of ``values``.

    Args:
        loaded: A registry model (plain forward passes only).
        image: ``H x W x 3`` uint8.
        kind: ``"shift"``, ``"rotate"``, ``"scale"`` or ``"dim"``.
        values: The values of that transform.
        classes: Class indices whose probabilities to keep.
        base: The other sliders' transform, kept fixed (default: none).
        progress: ``progress(fraction, message)`` after each batch (it may raise to cancel).

    Returns:
        A :class:`Sweep`.

    Raises:
        ValueError: An unknown kind, no values, or a bad image.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown transform {kind!r}. Choose one of: {', '.join(KINDS)}.")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("Give at least one value to sweep.")
    picture = loaded.resize(image)
    base = base if base is not None else Transform()
    classes = tuple(int(c) for c in classes)

    def run(lm: LoadedModel) -> tuple[np.ndarray, np.ndarray]:
        probs, top = [], []
        for start in range(0, len(values), SWEEP_BATCH):
            chunk = values[start : start + SWEEP_BATCH]
            batch = torch.cat([lm.preprocess(apply(picture, base.vary(kind, v))) for v in chunk])
            with lm.shared(), torch.no_grad():
                p = torch.softmax(lm.model(batch).float(), dim=1).cpu()
            probs.append(p[:, list(classes)].numpy())
            top.append(p.argmax(dim=1).numpy())
            if progress is not None:
                done = start + len(chunk)
                progress(done / len(values), f"{done} of {len(values)} images")
        return np.concatenate(probs), np.concatenate(top)

    probabilities, top1 = run_with_cpu_fallback(loaded, run)  # type: ignore[misc]
    return Sweep(kind, values, classes, probabilities.astype(np.float32), top1.astype(np.int64))
