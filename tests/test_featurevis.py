"""vizlib.featurevis: the optimised picture beats every bundled photo at exciting its channel (small model),
is reproducible, leaves the model untouched, and is computed once per key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import make_loaded, tiny_convnet
from vizlib import activations, featurevis
from vizlib.channels import bundled_photos
from vizlib.featurevis import service
from vizlib.featurevis.augment import random_view
from vizlib.featurevis.param import FourierImage


@pytest.fixture
def net32():
    return make_loaded(tiny_convnet(5), 32, mean=0.5, std=0.25)


def _channel_mean(loaded, image: np.ndarray, layer: str, channel: int) -> float:
    return float(activations.extract(loaded, image, [layer])[layer][channel].mean())


@pytest.mark.parametrize(("layer", "channel"), [("3", 1), ("4", 3)])  # the second convolution, and after its ReLU
def test_optimised_picture_excites_its_channel_more_than_any_bundled_photo(net32, layer, channel):
    picture = featurevis.visualize(net32, layer, channel, size=32, steps=256, seed=0)
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8
    best_photo = max(_channel_mean(net32, photo, layer, channel) for _, photo in bundled_photos())
    assert len(bundled_photos()) > 40
    assert _channel_mean(net32, picture, layer, channel) > best_photo


def test_same_seed_same_picture_and_the_model_is_untouched(net32):
    before = {k: v.clone() for k, v in net32.model.state_dict().items()}
    a = featurevis.visualize(net32, "4", 1, size=24, steps=5, seed=3)
    b = featurevis.visualize(net32, "4", 1, size=24, steps=5, seed=3)
    c = featurevis.visualize(net32, "4", 1, size=24, steps=5, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for k, v in net32.model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert not any(p.requires_grad for p in net32.model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks for m in net32.model.modules())


def test_fourier_picture_starts_near_grey_and_views_keep_the_shape():
    image = FourierImage((40, 40), torch.Generator().manual_seed(0))
    rgb = image.rgb()
    assert rgb.shape == (1, 3, 40, 40) and float((rgb.detach() - 0.5).abs().max()) < 0.05
    view = random_view(rgb, torch.Generator().manual_seed(1))
    assert view.shape == rgb.shape
    rgb.sum().backward()
    assert image.spectrum.grad is not None and image.spectrum.grad.abs().sum() > 0


def test_bad_requests_are_sentences(net32):
    with pytest.raises(ValueError, match="channels 0 to 5"):
        featurevis.visualize(net32, "4", 6, size=16, steps=1)
    with pytest.raises(activations.ExtractionError, match="no layer named"):
        featurevis.visualize(net32, "nope", 0, size=16, steps=1)
    with pytest.raises(ValueError, match="size must be 8"):
        featurevis.visualize(net32, "4", 0, size=4, steps=1)


def test_cached_picture_is_computed_once_per_key(net32, monkeypatch):
    calls = []
    real = service.visualize

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "visualize", counting)
    service.CACHE.clear()
    first = featurevis.visualize_cached(net32, "4", 2, size=16, steps=2)
    again = featurevis.visualize_cached(net32, "4", 2, size=16, steps=2)
    assert again is first and len(calls) == 1 and not first.flags.writeable
    assert featurevis.cached(net32, "4", 2, size=16, steps=2) is first
    assert featurevis.cached(net32, "4", 3, size=16, steps=2) is None
    service.CACHE.clear()
