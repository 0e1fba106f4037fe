"""Layer by layer: do the feature maps follow a shift of the image (equivariance) or ignore it (invariance)?

The image is shifted right by ``shift`` input pixels. A layer whose units are ``stride`` input pixels apart
should then show the same map moved by ``shift / stride`` units. Shifting the new map back by that many units
and comparing it with the original over the part both cover gives the *aligned* cosine similarity: near 1 the
layer is equivariant (it moved with the image). The *unaligned* similarity compares the maps as they are:
near 1 the layer did not notice the shift (invariant), as global pooling and the classifier should.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vizlib import receptive_field as rf
from vizlib.activations import conv_layers, layer_table, run_extractor
from vizlib.invariance.transforms import Transform, apply
from vizlib.models import LoadedModel

__all__ = ["LayerShift", "layer_equivariance", "shifted_cosine"]


@dataclass(frozen=True)
class LayerShift:
    """How one layer's output follows a horizontal shift of the image.

    Attributes:
        layer: The module name.
        stride: The layer's effective stride (input pixels between neighbouring units).
        units: How many units the map was shifted back (``round(shift / stride)``).
        aligned: Cosine similarity after shifting the map back, over the overlap.
        unaligned: Cosine similarity of the two maps as they are.
    """

    layer: str
    stride: int
    units: int
    aligned: float
    unaligned: float


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def shifted_cosine(original: torch.Tensor, shifted: torch.Tensor, units: int) -> float:
    """Cosine similarity of ``original`` and ``shifted`` (``... x h x w`` maps) after moving ``shifted`` back by
    ``units`` columns (the image moved right by that many of the layer's units); compared where both exist."""
    if units <= 0:
        return _cosine(original, shifted)
    if units >= original.shape[-1]:
        return float("nan")
    return _cosine(original[..., : original.shape[-1] - units], shifted[..., units:])


def _default_layers(loaded: LoadedModel) -> list[str]:
    linear = [row.name for row in layer_table(loaded) if row.type == "Linear"]
    return conv_layers(loaded) + linear[-1:]


def layer_equivariance(
    loaded: LoadedModel, image: np.ndarray, shift: int = 32, layers: Sequence[str] | None = None
) -> list[LayerShift]:
    """The aligned and unaligned cosine similarity of every layer's output under a ``shift`` px shift.

    Both pictures go through the network in one batch; the shifted one is the network's picture moved
    right with the uncovered strip filled by reflection, so no black border invents an edge.

    Args:
        loaded: A registry model (plain forward passes only).
        image: ``H x W x 3`` uint8.
        shift: Pixels to move the image right, in the network's input.
        layers: Module names; default every convolution, first to last, then the last fully connected layer.

    Returns:
        One :class:`LayerShift` per layer, in the order given.

    Raises:
        ValueError: A shift not smaller than the input's width.
        vizlib.receptive_field.ReceptiveFieldError: A layer's stride can't be determined.
    """
    h, w = loaded.input_size
    if not 0 < shift < w:
        raise ValueError(f"The shift must be 1 to {w - 1} pixels, got {shift}.")
    names = list(layers) if layers is not None else _default_layers(loaded)
    picture = loaded.resize(image)
    moved = apply(picture, Transform(dx=shift), border="reflect")
    batch = torch.cat([loaded.preprocess(picture), loaded.preprocess(moved)])
    outputs = run_extractor(loaded, batch, names)
    rows = []
    for name in names:
        field = rf.receptive_field(loaded, name, (h, w))
        stride = field.stride_hw[1]
        units = 0 if field.is_global else round(shift / stride)
        out = outputs[name].detach().float().cpu()
        rows.append(LayerShift(name, stride, units, shifted_cosine(out[0], out[1], units), _cosine(out[0], out[1])))
    return rows
