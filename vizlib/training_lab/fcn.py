"""The fully convolutional net on a larger canvas: one pass, a class for every location.

A net trained on 28x28 crops whose last layers are convolutions (a 1x1 convolution, then global average
pooling) can run on a canvas of any size: drop the pooling and it gives a class map, one prediction per
location of the last feature map (every 4 pixels here), computed in one forward pass instead of one pass
per window. :func:`dense_as_conv` makes the same point for the CNN: its dense layer over the 7x7 maps *is*
a 7x7 convolution, which then slides too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vizlib.training_lab.data import normalise
from vizlib.training_lab.nets import FashionCNN

__all__ = ["STRIDE", "ClassMap", "Placement", "class_map", "compose_canvas", "dense_as_conv", "random_layout"]

#: Pixels between two neighbouring locations of the class map (two 2x2 poolings).
STRIDE = 4


@dataclass(frozen=True)
class Placement:
    """One item on the canvas: a ``uint8 [28, 28]`` image with its top-left corner at ``(top, left)``."""

    image: np.ndarray
    top: int
    left: int
    label: int | None = None


def compose_canvas(size: tuple[int, int], items: Sequence[Placement]) -> np.ndarray:
    """A black ``uint8 [height, width]`` canvas with the items pasted in (brighter pixel wins where they overlap).

    Raises:
        ValueError: An item falls outside the canvas, or the canvas is smaller than one item.
    """
    height, width = size
    if height < 28 or width < 28:
        raise ValueError(f"The canvas must be at least 28x28 pixels, got {height}x{width}.")
    canvas = np.zeros((height, width), np.uint8)
    for item in items:
        h, w = item.image.shape
        if item.top < 0 or item.left < 0 or item.top + h > height or item.left + w > width:
            raise ValueError(
                f"An item at ({item.top}, {item.left}) of {h}x{w} does not fit on a {height}x{width} canvas."
            )
        region = canvas[item.top : item.top + h, item.left : item.left + w]
        np.maximum(region, item.image, out=region)
    return canvas


def random_layout(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int, size: tuple[int, int] = (84, 140)
) -> list[Placement]:
    """``count`` different images at random places of a grid of 28x28 cells (jittered, never overlapping).

    Raises:
        ValueError: More items than cells.
    """
    rows, cols = size[0] // 28, size[1] // 28
    if not 1 <= count <= rows * cols:
        raise ValueError(f"Choose between 1 and {rows * cols} items for a {size[0]}x{size[1]} canvas.")
    rng = np.random.default_rng(seed)
    cells = rng.choice(rows * cols, size=count, replace=False)
    picks = rng.choice(len(images), size=count, replace=False)
    spare_y, spare_x = size[0] - rows * 28, size[1] - cols * 28
    items = []
    for cell, pick in zip(cells, picks, strict=True):
        r, c = divmod(int(cell), cols)
        top = r * 28 + int(rng.integers(0, spare_y + 1)) if spare_y else r * 28
        left = c * 28 + int(rng.integers(0, spare_x + 1)) if spare_x else c * 28
        items.append(Placement(images[pick], top, left, int(labels[pick])))
    return items


@dataclass(frozen=True)
class ClassMap:
    """The FCN's answer at every location of a canvas.

    Attributes:
        probabilities: ``float32 [classes, rows, cols]``: softmax over classes at each location.
        centres_y: Canvas row (pixels) of the centre of each map row.
        centres_x: Canvas column (pixels) of the centre of each map column.
        stride: Pixels between neighbouring locations.
    """

    probabilities: np.ndarray
    centres_y: np.ndarray
    centres_x: np.ndarray
    stride: int

    @property
    def best(self) -> np.ndarray:
        """``int [rows, cols]``: the most likely class at each location."""
        return self.probabilities.argmax(0)

    @property
    def confidence(self) -> np.ndarray:
        """``float [rows, cols]``: that class's probability."""
        return self.probabilities.max(0)


def class_map(model: nn.Module, canvas: np.ndarray) -> ClassMap:
    """Run a fully convolutional net once over a ``uint8 [H, W]`` canvas (H, W multiples of 4 ideally).

    Args:
        model: A :class:`FashionFCN` (or anything with ``class_map(x)``), in eval mode; not modified.
        canvas: The grey canvas, white items on black like Fashion-MNIST.

    Raises:
        TypeError: The net has no class map (a dense layer fixes its input size).
    """
    if not hasattr(model, "class_map"):
        raise TypeError(f"{type(model).__name__} has no class map: only a fully convolutional net slides.")
    with torch.no_grad():
        logits = model.class_map(normalise(canvas[None]))[0]
    probabilities = torch.softmax(logits, 0).numpy().astype(np.float32)
    rows, cols = probabilities.shape[1:]
    offset = float(getattr(model, "map_offset", (STRIDE - 1) / 2))
    centres_y = np.arange(rows) * STRIDE + offset
    centres_x = np.arange(cols) * STRIDE + offset
    return ClassMap(probabilities, centres_y, centres_x, STRIDE)


class _SlidingCNN(nn.Module):
    map_offset = 13.5  # the centre of the first 28x28 window

    def __init__(self, cnn: FashionCNN) -> None:
        super().__init__()
        self.body = cnn
        fc = cnn.fc
        maps = cnn.conv2.out_channels
        self.head = nn.Conv2d(maps, fc.out_features, kernel_size=7)
        with torch.no_grad():
            self.head.weight.copy_(fc.weight.reshape(fc.out_features, maps, 7, 7))
            self.head.bias.copy_(fc.bias)

    def class_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_map(x).mean((2, 3))


def dense_as_conv(cnn: FashionCNN) -> nn.Module:
    """The CNN with its dense layer rewritten as the equal 7x7 convolution (a copy; ``cnn`` is untouched).

    On a 28x28 input it gives exactly the CNN's logits; on a larger canvas it slides, every 4 pixels, and its
    ``class_map`` gives one prediction per 28x28 window.
    """
    import copy

    return _SlidingCNN(copy.deepcopy(cnn)).eval()

