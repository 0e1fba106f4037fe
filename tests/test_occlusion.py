"""vizlib.occlusion: the map equals Captum's Occlusion on a small model and the hand-made drop; one patch exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from captum.attr import Occlusion

from tests.conftest import make_loaded, tiny_convnet
from vizlib import models, occlusion


@pytest.fixture
def net16() -> models.LoadedModel:
    return make_loaded(tiny_convnet(3), 16)


@pytest.fixture
def photo(rng) -> np.ndarray:
    return rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)


def _probs(loaded: models.LoadedModel):
    return lambda t: torch.softmax(loaded.model(t), dim=1)


@pytest.mark.parametrize(("patch", "stride", "fill", "base"), [(4, 2, "grey", 128.0), (6, 3, "black", 0.0)])
def test_map_equals_captum_occlusion(net16, photo, patch, stride, fill, base):
    target = int(models.classify(net16, photo).indices[0])
    got = occlusion.sensitivity(net16, photo, target, patch=patch, stride=stride, fill=fill)
    x = torch.from_numpy(photo.astype(np.float32).transpose(2, 0, 1))[None]  # the tiny net sees raw 0..255
    expected = Occlusion(_probs(net16)).attribute(
        x, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride), baselines=base, target=target)
    assert got.shape == (16, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected[0, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_non_overlapping_patches_give_the_probability_drop_by_hand(net16, photo):
    target = 2
    got = occlusion.sensitivity(net16, photo, target, patch=8, stride=8, fill="blur")
    p0 = models.classify(net16, photo, k=5)
    before = dict(zip(p0.indices, (p for _, p in p0.top), strict=True))[target]
    for y in (0, 8):
        for x in (0, 8):
            covered = photo.copy()
            covered[y : y + 8, x : x + 8] = cv2.GaussianBlur(photo, (0, 0), 8.0, borderType=cv2.BORDER_REFLECT)[
                y : y + 8, x : x + 8]
            after = dict(zip(*(lambda p: (p.indices, [q for _, q in p.top]))(models.classify(net16, covered, 5)),
                             strict=True))[target]
            np.testing.assert_allclose(got[y : y + 8, x : x + 8], before - after, atol=1e-6)


def test_map_comes_back_at_the_image_size_and_reports_progress(net16, rng):
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    calls = []
    got = occlusion.sensitivity(net16, image, 0, patch=4, stride=4, progress=lambda f, m: calls.append(f))
    assert got.shape == (24, 40)
    # 16 windows in one batch plus the unoccluded pass
    assert occlusion.window_count((16, 16), 4, 4) == 16 and calls == [0.5, 1.0]


def test_cancel_from_progress_stops_the_work(net16, photo):
    class Stop(Exception):
        pass

    def cancel(fraction, message):
        raise Stop

    with pytest.raises(Stop):
        occlusion.sensitivity(net16, photo, 0, patch=4, stride=2, progress=cancel)


def test_cover_and_clear_errors(photo):
    out = occlusion.cover(photo, 10, -2, 8, "grey")
    assert (out[0:6, 10:16] == 128).all()
    assert (out[6:, :] == photo[6:, :]).all() and (out[:, :10] == photo[:, :10]).all()
    assert (occlusion.cover(photo, 0, 0, 3, "black")[:3, :3] == 0).all()
    with pytest.raises(occlusion.OcclusionError, match="Unknown fill"):
        occlusion.cover(photo, 0, 0, 3, "pink")


def test_bad_parameters_are_sentences(net16, photo):
    with pytest.raises(occlusion.OcclusionError, match="stride must be 1 to the patch size"):
        occlusion.sensitivity(net16, photo, 0, patch=4, stride=8)
    with pytest.raises(occlusion.OcclusionError, match="patch must be 1 to 16"):
        occlusion.sensitivity(net16, photo, 0, patch=32, stride=8)
    with pytest.raises(occlusion.OcclusionError, match="out of range"):
        occlusion.sensitivity(net16, photo, 99)


def test_covered_prediction_is_the_classification_of_the_covered_picture(net16, photo):
    covered, prediction = occlusion.covered_prediction(net16, photo, 4, 4, 6, "grey")
    assert (covered[4:10, 4:10] == 128).all()
    assert prediction.top == models.classify(net16, covered).top
