"""vizlib.invariance: transforms against numpy/torchvision references, batched sweeps against one-by-one
classification, and the per-layer cosine similarity checked by hand on tiny convolutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import make_loaded, tiny_convnet
from vizlib import invariance, models
from vizlib.invariance import Transform, apply
from vizlib.invariance.equivariance import shifted_cosine


@pytest.fixture
def img(rng) -> np.ndarray:
    return rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)


def test_whole_pixel_shift_flip_rotation_and_dim_are_exact(img):
    moved = apply(img, Transform(dx=3, dy=-2))
    np.testing.assert_array_equal(moved[:18, 3:], img[2:, :17])
    assert (moved[:, :3] == 0).all() and (moved[18:] == 0).all()
    np.testing.assert_array_equal(apply(img, Transform(flip=True)), img[:, ::-1])
    np.testing.assert_array_equal(apply(img, Transform(angle=90)), np.rot90(img))  # counter-clockwise
    np.testing.assert_array_equal(apply(img, Transform(angle=180, flip=True)), img[::-1])
    np.testing.assert_array_equal(apply(img, Transform(dim=0.5)), np.rint(img * 0.5).astype(np.uint8))
    assert apply(img, Transform()) is not img and (apply(img, Transform()) == img).all()


def test_zoom_and_rotation_match_torchvision_affine():
    from torchvision.transforms.functional import InterpolationMode, affine

    yy, xx = np.mgrid[0:48, 0:48]
    smooth = np.stack([xx * 5, yy * 5, (xx + yy) * 2], axis=2).astype(np.uint8)
    ours = apply(smooth, Transform(angle=30, scale=1.5)).astype(np.float32)
    ref = affine(torch.from_numpy(smooth).permute(2, 0, 1).float(), angle=-30.0, translate=[0, 0], scale=1.5,
                 shear=[0.0], interpolation=InterpolationMode.BILINEAR).permute(1, 2, 0).numpy()
    inner = (slice(12, 36), slice(12, 36))  # away from the borders, where the two pad differently
    assert np.abs(ours[inner] - ref[inner]).max() <= 1.0


def test_sweep_equals_classifying_each_transformed_picture(rng):
    loaded = make_loaded(tiny_convnet(1), 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    values = np.linspace(-8, 8, invariance.SWEEP_BATCH + 3)  # two batches
    base = Transform(angle=10)
    result = invariance.sweep(loaded, image, "shift", values, [0, 3], base=base)
    assert result.probabilities.shape == (len(values), 2)
    for i, v in enumerate(values):
        x = loaded.preprocess(apply(image, base.vary("shift", v)))
        p = torch.softmax(loaded.model(x), dim=1)[0]
        np.testing.assert_allclose(result.probabilities[i], p[[0, 3]].numpy(), atol=1e-6)
        assert result.top1[i] == int(p.argmax())
    with pytest.raises(ValueError, match="Unknown transform"):
        invariance.sweep(loaded, image, "shear", values, [0])


def test_shifted_cosine_by_hand():
    a = torch.tensor([[[1.0, 2.0, 3.0]]])
    b = torch.tensor([[[9.0, 1.0, 2.0]]])
    assert shifted_cosine(a, b, 1) == pytest.approx(1.0)
    assert shifted_cosine(a, b, 0) == pytest.approx((9 + 2 + 6) / (np.sqrt(14) * np.sqrt(86)))


def test_pointwise_conv_is_exactly_equivariant_and_strided_conv_matches_a_direct_computation(rng):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(2, 3))
    loaded = make_loaded(net, 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    rows = {r.layer: r for r in invariance.layer_equivariance(loaded, image, 4, layers=["0", "1", "4"])}
    assert rows["0"].aligned == pytest.approx(1.0, abs=1e-9) and rows["0"].units == 4
    x0 = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1))[None]
    x1 = torch.from_numpy(apply(image, Transform(dx=4), border="reflect").astype(np.float32).transpose(2, 0, 1))[None]
    a0, a1 = net[:2](x0)[0], net[:2](x1)[0]
    expected = F.cosine_similarity(a0[..., :6].flatten(), a1[..., 2:].flatten(), dim=0)
    assert rows["1"].stride == 2 and rows["1"].units == 2
    assert rows["1"].aligned == pytest.approx(float(expected), abs=1e-5)
    assert rows["1"].unaligned == pytest.approx(float(F.cosine_similarity(a0.flatten(), a1.flatten(), dim=0)), abs=1e-5)
    assert rows["4"].units == 0  # the classifier is global: compared as it is
    with pytest.raises(ValueError, match="shift must be 1 to 15"):
        invariance.layer_equivariance(loaded, image, 16)


def test_untrained_torchvision_model_runs_every_part():
    """ResNet-18 with its seeded random weights: occlusion, sweep, layer shifts, ranking, dataset bank, picture."""
    from vizlib import channels, featurevis, occlusion

    loaded = models.load_model("resnet18", pretrained=False, device="cpu")
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    drop = occlusion.sensitivity(loaded, image, 1, patch=112, stride=112)
    assert drop.shape == (64, 80)
    assert invariance.sweep(loaded, image, "rotate", [0, 90], [1]).probabilities.shape == (2, 1)
    rows = invariance.layer_equivariance(loaded, image, 32, layers=["conv1", "layer4.1.conv2"])
    assert [r.stride for r in rows] == [2, 32] and rows[0].aligned > 0.9
    layer, top = channels.rank_channels(loaded, image, 1, k=3)
    assert layer == "layer4" and len(top) == 3
    picture = featurevis.visualize(loaded, "layer1.0.conv1", 3, size=32, steps=2)
    assert picture.shape == (32, 32, 3)
