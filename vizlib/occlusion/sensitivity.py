"""The occlusion-sensitivity map: how much covering each place lowers a class's probability."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from vizlib.models import LoadedModel, run_with_cpu_fallback
from vizlib.occlusion.patch import OcclusionError, _check_fill, fill_value

__all__ = ["BATCH", "sensitivity", "window_count"]

#: Occluded copies per forward pass.
BATCH = 32

ProgressFn = Callable[[float, str], None]


def window_count(input_size: tuple[int, int], patch: int, stride: int) -> int:
    """How many patch positions the sliding window takes on an input of ``input_size`` (as Captum slides)."""
    h, w = input_size
    return ((h - patch) // stride + 1) * ((w - patch) // stride + 1)


def _check(loaded: LoadedModel, target: int, patch: int, stride: int) -> None:
    h, w = loaded.input_size
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise OcclusionError(f"The target must be a class index (an int), got {type(target).__name__}.")
    if not 0 <= int(target) < len(loaded.categories):
        raise OcclusionError(
            f"Class index {int(target)} is out of range: {loaded.name} has classes 0 to {len(loaded.categories) - 1}."
        )
    if not 1 <= patch <= min(h, w):
        raise OcclusionError(f"The patch must be 1 to {min(h, w)} pixels (the network's input), got {patch}.")
    if not 1 <= stride <= patch:
        raise OcclusionError(
            f"The stride must be 1 to the patch size ({patch}) so every pixel is covered, got {stride}."
        )


def sensitivity(
    loaded: LoadedModel,
    image: np.ndarray,
    target: int,
    *,
    patch: int = 32,
    stride: int = 16,
    fill: str = "grey",
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """The drop of ``target``'s probability when each place of the image is covered.

    A ``patch x patch`` square (in the network's input pixels, ``loaded.input_size``) slides over the picture
    the network sees with ``stride``; each position is filled (:data:`vizlib.occlusion.FILLS`) and the class's
    softmax probability measured, :data:`BATCH` positions per forward pass (Captum's ``Occlusion``). A pixel's
    value is the mean drop over the positions that covered it: positive where covering it hurts the class,
    negative where covering it helps.

    Args:
        loaded: A registry model (shared read-only: only plain forward passes).
        image: ``H x W x 3`` uint8 RGB.
        target: The class index.
        patch: Side of the square, in network-input pixels.
        stride: Step between positions (at most ``patch``).
        fill: ``"grey"``, ``"black"`` or ``"blur"``.
        progress: Called as ``progress(fraction, message)`` after each batch (it may raise to cancel).

    Returns:
        ``H x W`` float32 at the image's size (bilinear from the input's grid).

    Raises:
        OcclusionError: Bad target, patch, stride or fill.
        ValueError: Not an RGB uint8 image.
    """
    from captum.attr import Occlusion

    _check(loaded, target, patch, stride)
    _check_fill(fill)
    x = loaded.preprocess(image)
    baseline = loaded.preprocess(fill_value(loaded.resize(image), fill))
    evaluations = -(-window_count(loaded.input_size, patch, stride) // BATCH) + 1
    channels = x.shape[1]

    def run(lm: LoadedModel) -> torch.Tensor:
        done = [0]

        def forward(batch: torch.Tensor) -> torch.Tensor:
            with lm.shared():
                probs = torch.softmax(lm.model(batch).float(), dim=1)
            done[0] += 1
            if progress is not None:
                progress(min(done[0] / evaluations, 1.0), f"{min(done[0], evaluations)} of {evaluations} batches")
            return probs

        xs, base = x.to(lm.device), baseline.to(lm.device)
        with torch.no_grad():
            return Occlusion(forward).attribute(
                xs, sliding_window_shapes=(channels, patch, patch), strides=(channels, stride, stride),
                baselines=base, target=int(target), perturbations_per_eval=BATCH,
            )

    attribution = run_with_cpu_fallback(loaded, run)
    grid = attribution[0, 0].detach().float().cpu().numpy()  # every channel of a pixel is covered together
    h, w = image.shape[:2]
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
