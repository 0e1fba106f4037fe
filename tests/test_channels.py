"""vizlib.channels: dataset examples are the strongest units over the photos, cut exactly to their receptive
field; the channel ranking equals activation x gradient computed directly with autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import make_loaded, tiny_convnet
from vizlib import activations, channels
from vizlib import receptive_field as rf
from vizlib.channels import bundled_photos


@pytest.fixture
def net32():
    return make_loaded(tiny_convnet(7), 32, mean=0.5, std=0.25)


def test_receptive_patch_is_the_box_crop_with_grey_outside(rng):
    picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    field = rf.ReceptiveField(size=10, stride=2, padding=3, output_size=14, input_size=32, extent=((0, 31), (0, 31)))
    (top, bottom), (left, right) = field.box(5, 6)
    np.testing.assert_array_equal(channels.receptive_patch(picture, field, 5, 6),
                                  picture[top : bottom + 1, left : right + 1])
    corner = channels.receptive_patch(picture, field, 0, 0)  # the box starts 3 px before the picture
    assert corner.shape == (10, 10, 3)
    assert (corner[:3] == 128).all() and (corner[:, :3] == 128).all()
    np.testing.assert_array_equal(corner[3:, 3:], picture[:7, :7])


def test_dataset_examples_are_the_strongest_units_cut_to_their_field(net32, rng):
    layer, channel = "3", 4
    mine = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    photos = list(bundled_photos()) + [("your image", mine)]
    peaks = []
    for _, photo in photos:
        values = activations.extract(net32, photo, [layer])[layer][channel]
        peaks.append(float(values.max()))
    examples = channels.dataset_examples(net32, layer, channel, k=4, extra=("your image", mine))
    expected = np.argsort(-np.asarray(peaks), kind="stable")[:4]
    assert [e.name for e in examples] == [photos[i][0] for i in expected]
    field = rf.receptive_field(net32.model, layer, 32)
    for example, i in zip(examples, expected, strict=True):
        values = activations.extract(net32, photos[i][1], [layer])[layer][channel]
        row, col = np.unravel_index(int(values.argmax()), values.shape)
        assert example.unit == (row, col) and example.score == pytest.approx(peaks[i], rel=1e-4)
        assert example.box == field.box(row, col)
        assert example.patch.shape[:2] == field.size_hw
        np.testing.assert_array_equal(example.patch, channels.receptive_patch(net32.resize(photos[i][1]), field, row,
                                                                               col))
    assert channels.cached_bank(net32, layer) is not None  # the bundled photos' bank is kept per layer


def test_a_pooled_layer_has_no_patches_and_says_so_before_any_search(net32):
    """The global pooling "5" has no patch to cut: the sentence comes before a search of the photos, and is the one
    the search itself raises; a convolution has patches."""
    assert channels.no_patches_reason(net32, "3") is None
    reason = channels.no_patches_reason(net32, "5")
    assert reason == "5 pools the whole image: its units have no place to cut a patch from."
    assert channels.cached_bank(net32, "5") is None
    with pytest.raises(rf.ReceptiveFieldError) as raised:
        channels.channel_bank(net32, "5")
    assert str(raised.value) == reason


def test_ranking_equals_activation_times_gradient_by_autograd(net32, rng):
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    target = 3
    layer, top = channels.rank_channels(net32, image, target, layer="3", k=6)
    x = net32.preprocess(image)
    a = net32.model[:4](x).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(net32.model[4:](a)[0, target], a)
    scores = (a * grad).sum(dim=(2, 3))[0].detach().numpy()
    order = np.argsort(-scores, kind="stable")
    assert layer == "3"
    assert [c.channel for c in top] == list(order[:6])
    np.testing.assert_allclose([c.score for c in top], scores[order[:6]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(top[0].activation, a[0, order[0]].detach().numpy(), rtol=1e-6)
    fires = channels.where_it_fires(image, top[0].activation)
    assert fires.shape == image.shape and fires.dtype == np.uint8


def test_last_block_is_a_module_name_feature_visualization_accepts(lite0):
    assert channels.last_block_module(lite0) == "_bn1"  # the head's ReLU6 is the stem's module run again
    assert channels.last_block_module(make_loaded(tiny_convnet(), 8)) == "4"


class _TwoBranches(torch.nn.Module):
    """Two 2-channel convolutions side by side, concatenated: 4 channels, none of its leaves has 4."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(channels, 2, 1), torch.nn.Conv2d(channels, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


def test_feature_maps_layer_is_a_listed_layer_with_the_blocks_channels():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()),  # "0": a block of leaves
        torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.Conv2d(4, 6, 1)),  # "1": ends with 6 channels
        _TwoBranches(6),  # "2": two 2-channel branches concatenated: 4 channels
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 3),
    )
    loaded = make_loaded(net, 8)
    listed = [row.name for row in activations.layer_table(loaded) if len(row.output_shape) == 3]
    assert listed == ["0.0", "0.1", "1.0", "1.1", "2.a", "2.b", "3", "4"]
    assert channels.feature_maps_layer(loaded, "1.0") == "1.0"  # listed: itself
    assert channels.feature_maps_layer(loaded, "0") == "0.1"  # the block's last leaf
    assert channels.feature_maps_layer(loaded, "1") == "1.1"
    assert channels.feature_maps_layer(loaded, "2") == "3"  # no 4-channel leaf inside: the next listed one
    assert channels.feature_maps_layer(loaded, "nothing") == "nothing"


def test_feature_maps_layer_of_resnets_last_block():
    from vizlib import models

    resnet = models.load_model("resnet18", pretrained=False, device="cpu")
    block = channels.last_block_module(resnet)
    assert block == "layer4"
    assert channels.feature_maps_layer(resnet, block) == "layer4.1.bn2"  # 512 channels, as layer4's output
