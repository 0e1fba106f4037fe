"""The fully convolutional class map: shape, positions, and the dense layer rewritten as a convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vizlib.training_lab import fcn
from vizlib.training_lab.data import normalise
from vizlib.training_lab.nets import build_net


@pytest.fixture
def nets():
    torch.manual_seed(3)
    return build_net("fashion_fcn").eval(), build_net("fashion_cnn").eval()


def test_class_map_shape_and_positions(nets):
    model, _ = nets
    canvas = np.zeros((84, 140), np.uint8)
    cmap = fcn.class_map(model, canvas)
    assert cmap.probabilities.shape == (10, 21, 35)
    assert cmap.centres_x[:3].tolist() == [1.5, 5.5, 9.5] and cmap.centres_y[-1] == 81.5
    np.testing.assert_allclose(cmap.probabilities.sum(0), 1.0, rtol=1e-5)
    assert cmap.best.shape == (21, 35)


def test_class_map_is_the_model_before_pooling(nets):
    model, _ = nets
    canvas = np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)
    cmap = fcn.class_map(model, canvas)
    with torch.no_grad():
        expected = torch.softmax(model.class_map(normalise(canvas[None]))[0], 0).numpy()
    np.testing.assert_allclose(cmap.probabilities, expected, rtol=1e-5)


def test_dense_as_conv_equals_the_cnn_on_28x28_and_slides(nets):
    _, cnn = nets
    sliding = fcn.dense_as_conv(cnn)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(sliding(x), cnn(x), rtol=1e-4, atol=1e-5)
    cmap = fcn.class_map(sliding, np.zeros((56, 84), np.uint8))
    assert cmap.probabilities.shape == (10, 8, 15)  # (14 - 7 + 1) x (21 - 7 + 1) windows
    assert cmap.centres_x[0] == 13.5
    assert sliding.body is not cnn  # a copy: the shared CNN is untouched


def test_the_plain_cnn_has_no_class_map(nets):
    with pytest.raises(TypeError, match="slides"):
        fcn.class_map(nets[1], np.zeros((28, 28), np.uint8))


def test_compose_canvas_and_layout():
    item = np.full((28, 28), 100, np.uint8)
    canvas = fcn.compose_canvas((56, 56), [fcn.Placement(item, 0, 28), fcn.Placement(item * 2, 28, 0)])
    assert canvas[:28, 28:].min() == 100 and canvas[28:, :28].min() == 200 and canvas[:28, :28].max() == 0
    with pytest.raises(ValueError, match="does not fit"):
        fcn.compose_canvas((56, 56), [fcn.Placement(item, 30, 30)])
    images = np.stack([np.full((28, 28), i, np.uint8) for i in range(1, 20)])
    items = fcn.random_layout(images, np.arange(19), 6, seed=1, size=(84, 140))
    boxes = {(i.top // 28, i.left // 28) for i in items}
    assert len(items) == 6 and len(boxes) == 6  # one per cell, never overlapping
    assert all(i.image[0, 0] == i.label + 1 for i in items)
    with pytest.raises(ValueError, match="between 1 and 15"):
        fcn.random_layout(images, np.arange(19), 16, seed=1)
