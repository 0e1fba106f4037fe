"""Shift and rotation tests on tiny cases with hand-checked answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vizlib.training_lab import shift


def test_shift_images_moves_and_fills_black():
    img = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3)
    assert shift.shift_images(img, 1)[0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert shift.shift_images(img, -1, 1)[0].tolist() == [[0, 0, 0], [2, 3, 0], [5, 6, 0]]
    assert shift.shift_images(img, 3).sum() == 0
    assert shift.shift_images(img, 0).tolist() == img.tolist()


def test_rotate_images_quarter_turn_and_zero():
    img = np.zeros((1, 5, 5), np.uint8)
    img[0, 0, 2] = 200  # top middle
    turned = shift.rotate_images(img, 90)  # counter-clockwise: top middle -> left middle
    assert turned[0].argmax() == np.ravel_multi_index((2, 0), (5, 5))
    assert shift.rotate_images(img, 0).tolist() == img.tolist()


class _PixelAt(nn.Module):
    """Class 1 if the (normalised) pixel at (row 14, column 10) is bright, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x[:, 0, 14, 10] > 0).float()
        return torch.stack([1 - bright, bright], 1)


def test_robustness_on_a_pixel_reader():
    images = np.zeros((2, 28, 28), np.uint8)
    images[0, 14, 10:13] = 255  # a bar of 3 pixels starting at the reader's pixel: class 1
    labels = np.array([1, 0])
    curve = shift.robustness({"reader": _PixelAt()}, images, labels, amounts=[0, 1, 2, 3, -1])
    # shifted right by 1 or 2 the reader sees a black pixel (the bar moved on); left by 1 it sees the bar
    assert curve.accuracy["reader"] == (1.0, 0.5, 0.5, 0.5, 1.0)
    assert curve.images == 2 and curve.kind == "shift"
    assert curve.drop("reader") == 0.0


def test_default_amounts_and_progress():
    images = np.zeros((1, 28, 28), np.uint8)
    seen = []
    curve = shift.robustness({"r": _PixelAt()}, images, np.array([0]), kind="rotation",
                             progress=lambda f, m: seen.append(f))
    assert curve.amounts == shift.ROTATIONS and len(seen) == len(shift.ROTATIONS)
    with pytest.raises(ValueError, match="kind"):
        shift.robustness({}, images, np.array([0]), kind="zoom")


def test_drag_prediction_is_a_distribution_of_the_moved_image():
    image = np.zeros((28, 28), np.uint8)
    image[14, 11] = 255
    probs = shift.drag_prediction({"r": _PixelAt()}, image, -1)  # moved left: the bright pixel lands on (14, 10)
    assert probs["r"].argmax() == 1 and probs["r"].sum() == pytest.approx(1.0)
    assert shift.drag_prediction({"r": _PixelAt()}, image, 0)["r"].argmax() == 0
