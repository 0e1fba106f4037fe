"""vizlib.cam.sanity: Spearman as pandas computes it, the top-down cascade, and the two answers known in
advance: a "randomisation" that changes nothing is flagged; real steps equal maps recomputed by hand."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import make_loaded, tiny_convnet
from vizlib import cam
from vizlib.cam import sanity as cam_sanity

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum")


def test_spearman_matches_pandas_ranks_with_ties(rng):
    a = rng.integers(0, 5, 200).astype(float)
    b = a + rng.normal(0, 2, 200)
    expected = pd.Series(a).rank().corr(pd.Series(b).rank())  # Pearson of average ranks (pandas' own ranking)
    assert cam_sanity.spearman(a, b) == pytest.approx(expected, abs=1e-12)
    assert cam_sanity.spearman(np.ones(5), b[:5]) == 0.0


def test_cascade_goes_top_down_and_ends_with_everything():
    groups = ["a", "b", "c", "d", "e"]
    assert cam_sanity.cascade(groups, 2) == [("e", "d"), ("e", "d", "c", "b", "a")]
    assert cam_sanity.cascade(groups, 9)[-1] == ("e", "d", "c", "b", "a") and len(cam_sanity.cascade(groups, 9)) == 5
    assert cam_sanity.parameter_groups(tiny_convnet()) == ["0", "3", "7"]


def test_randomisation_that_changes_nothing_is_flagged(rng):
    trained = make_loaded(tiny_convnet(0), 16)
    same = make_loaded(tiny_convnet(0), 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    check = cam_sanity.sanity_check(trained, same, image, 1, ("gradcam", "saliency"), "3", steps=3)
    assert len(check.steps) == 4
    for step in check.steps:
        assert step.correlation == pytest.approx({"gradcam": 1.0, "saliency": 1.0})
    assert check.flagged == ("gradcam", "saliency")


def test_each_step_equals_maps_of_a_model_randomised_by_hand(rng):
    trained = make_loaded(tiny_convnet(0), 16)
    untrained = make_loaded(tiny_convnet(1), 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    before = {k: v.clone() for k, v in trained.model.state_dict().items()}
    check = cam_sanity.sanity_check(trained, untrained, image, 2, ("gradcam",), "3", steps=3)
    reference = cam.compute(trained, image, 2, ("gradcam",), "3")["gradcam"]
    assert [s.randomized for s in check.steps] == [(), ("7",), ("7", "3"), ("7", "3", "0")]
    for step in check.steps:
        manual = copy.deepcopy(trained.model)
        state = {k: (untrained.model.state_dict()[k] if k.split(".")[0] in step.randomized else v)
                 for k, v in manual.state_dict().items()}
        manual.load_state_dict(state)
        expected = cam.compute(make_loaded(manual, 16), image, 2, ("gradcam",), "3")["gradcam"]
        np.testing.assert_allclose(step.maps["gradcam"], expected, atol=1e-6)
        assert step.correlation["gradcam"] == pytest.approx(cam_sanity.spearman(reference, expected), abs=1e-9)
    assert check.steps[0].correlation["gradcam"] == 1.0
    for k, v in trained.model.state_dict().items():  # the shared model was only read
        torch.testing.assert_close(v, before[k])
    assert check.mean_correlation("gradcam") == pytest.approx(
        np.mean([s.correlation["gradcam"] for s in check.steps[1:]]))


def test_a_model_with_its_own_head_is_randomised_with_a_head_of_its_own_shape(rng):
    """A user's model (3 classes) against the registry architecture untrained (5 classes): the head that does
    not fit is drawn anew at its own shape, seeded, with the trained head's spread; every other tensor is the
    untrained one; the whole check runs."""
    net = tiny_convnet(0)
    net[-1] = torch.nn.Linear(6, 3)
    trained = make_loaded(net, 16)
    untrained = make_loaded(tiny_convnet(1), 16)
    mine = {k: v.clone() for k, v in trained.model.state_dict().items()}
    state = cam_sanity._random_state(untrained.model.state_dict(), mine)
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in mine.items()}
    for key in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert torch.equal(state[key], untrained.model.state_dict()[key])
    for key in ("7.weight", "7.bias"):
        assert not torch.equal(state[key], mine[key])
        assert abs(float(state[key].std()) / float(mine[key].std()) - 1) < 0.8  # the same order of spread
    again = cam_sanity._random_state(untrained.model.state_dict(), mine)
    assert all(torch.equal(again[k], state[k]) for k in state)  # seeded
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    check = cam_sanity.sanity_check(trained, untrained, image, 2, ("gradcam",), "3", steps=2)
    assert check.steps[0].label == "trained" and len(check.steps) == 3
