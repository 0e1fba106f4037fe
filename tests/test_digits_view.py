"""Tests of vizlib.digits.view: stages, exact input patches, a digit's flow and what feeds each unit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vizlib import models
from vizlib.digits import (
    DigitsDataError,
    DigitsViewError,
    EmptyDrawingError,
    LeNet5,
    Unit,
    canvas_to_image,
    classify_heldout,
    digit_flow,
    digits_categories,
    drawing_steps,
    input_patch,
    load_heldout,
    network_stages,
    unit_sources,
)

SIZE = 28


def _small_lenet(seed: int = 0) -> LeNet5:
    torch.manual_seed(seed)
    model = LeNet5(channels=(3, 4), hidden=(6, 5)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _as_digits_model(model: nn.Module) -> models.LoadedModel:
    """Wrap ``model`` with the digits registry entry, so it gets the digits preprocessing."""
    spec = models.get_spec(models.DIGITS_MODEL)
    return models.LoadedModel(models.DIGITS_MODEL, model, torch.device("cpu"), digits_categories(), spec, True)


def _stroke_image() -> np.ndarray:
    canvas = np.full((140, 140, 3), 255, dtype=np.uint8)
    cv2.line(canvas, (40, 20), (100, 20), (0, 0, 0), thickness=10)
    cv2.line(canvas, (100, 20), (55, 120), (0, 0, 0), thickness=10)
    return canvas


@pytest.fixture(scope="module")
def small() -> models.LoadedModel:
    return _as_digits_model(_small_lenet())


@pytest.fixture(scope="module")
def flow(small):
    return digit_flow(small, _stroke_image())


def _forward_by_hand(model: LeNet5, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every intermediate of LeNet5 with plain functional calls, pre- and post-activation."""
    out = {}
    out["conv1_pre"] = F.conv2d(x, model.conv1.weight, model.conv1.bias, padding=2)
    out["conv1"] = out["conv1_pre"].clamp_min(0)
    out["pool1"] = F.max_pool2d(out["conv1"], 2)
    out["conv2_pre"] = F.conv2d(out["pool1"], model.conv2.weight, model.conv2.bias)
    out["conv2"] = out["conv2_pre"].clamp_min(0)
    out["pool2"] = F.max_pool2d(out["conv2"], 2)
    out["fc1_pre"] = F.linear(out["pool2"].flatten(1), model.fc1.weight, model.fc1.bias)
    out["fc1"] = out["fc1_pre"].clamp_min(0)
    out["fc2_pre"] = F.linear(out["fc1"], model.fc2.weight, model.fc2.bias)
    out["fc2"] = out["fc2_pre"].clamp_min(0)
    out["fc3"] = F.linear(out["fc2"], model.fc3.weight, model.fc3.bias)
    return {k: v[0] for k, v in out.items()}


# --- stages ------------------------------------------------------------------------------------


def test_stages_of_the_shipped_architecture():
    stages = network_stages(LeNet5())
    assert [s.name for s in stages] == ["input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]
    assert [s.output for s in stages] == ["", "relu1", "pool1", "relu2", "pool2", "relu3", "relu4", "fc3"]
    assert [s.kind for s in stages] == ["input", "conv", "pool", "conv", "pool", "dense", "dense", "dense"]
    assert [s.shape for s in stages] == [
        (1, 28, 28), (16, 28, 28), (16, 14, 14), (32, 10, 10), (32, 5, 5), (120,), (84,), (10,),
    ]  # fmt: skip
    assert [(s.kernel, s.stride, s.padding) for s in stages[1:5]] == [(5, 1, 2), (2, 2, 0), (5, 1, 0), (2, 2, 0)]
    assert stages[1].title == "conv1 + ReLU" and stages[-1].title == "fc3"


def test_stages_follow_the_model_sizes():
    stages = network_stages(_small_lenet())
    assert [s.shape for s in stages] == [(1, 28, 28), (3, 28, 28), (3, 14, 14), (4, 10, 10), (4, 5, 5), (6,), (5,),
                                         (10,)]


def test_unreadable_models_are_refused():
    with pytest.raises(DigitsViewError, match="BatchNorm2d"):
        network_stages(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    with pytest.raises(DigitsViewError, match="before any layer"):
        network_stages(nn.Sequential(nn.ReLU(), nn.Conv2d(1, 2, 3)))
    with pytest.raises(DigitsViewError, match="takes 3 channels"):
        network_stages(nn.Sequential(nn.Conv2d(3, 2, 3)))
    with pytest.raises(DigitsViewError, match="takes 10 features"):
        network_stages(nn.Sequential(nn.Flatten(), nn.Linear(10, 2)))


# --- input patches -----------------------------------------------------------------------------


def _clip(top: int, left: int, bottom: int, right: int) -> tuple[int, int, int, int]:
    return max(top, 0), max(left, 0), min(bottom, SIZE), min(right, SIZE)


@pytest.mark.parametrize("y,x", [(0, 0), (1, 3), (10, 12), (13, 13), (27, 27), (26, 0)])
def test_conv1_unit_sees_its_5x5_window_around_it(y, x):
    # conv1 has padding 2: unit (y, x) sees padded rows y..y+4, i.e. input rows y-2..y+2.
    stages = network_stages(LeNet5())
    assert input_patch(stages, Unit("conv1", (0, y, x))) == _clip(y - 2, x - 2, y + 3, x + 3)


@pytest.mark.parametrize("y,x", [(0, 0), (3, 5), (13, 13), (6, 0)])
def test_pool1_unit_sees_6x6(y, x):
    stages = network_stages(LeNet5())
    assert input_patch(stages, Unit("pool1", (5, y, x))) == _clip(2 * y - 2, 2 * x - 2, 2 * y + 4, 2 * x + 4)


@pytest.mark.parametrize("y,x", [(0, 0), (4, 2), (9, 9)])
def test_conv2_unit_sees_14x14(y, x):
    stages = network_stages(LeNet5())
    assert input_patch(stages, Unit("conv2", (31, y, x))) == _clip(2 * y - 2, 2 * x - 2, 2 * y + 12, 2 * x + 12)


@pytest.mark.parametrize("y,x", [(0, 0), (2, 3), (4, 4)])
def test_pool2_unit_sees_16x16(y, x):
    stages = network_stages(LeNet5())
    assert input_patch(stages, Unit("pool2", (0, y, x))) == _clip(4 * y - 2, 4 * x - 2, 4 * y + 14, 4 * x + 14)


def test_unclipped_patch_sizes_are_5_6_14_16():
    stages = network_stages(LeNet5())
    for name, index, side in [("conv1", (0, 10, 10), 5), ("pool1", (0, 5, 5), 6), ("conv2", (0, 3, 3), 14),
                              ("pool2", (0, 2, 2), 16)]:
        top, left, bottom, right = input_patch(stages, Unit(name, index))
        assert (bottom - top, right - left) == (side, side), name


def test_dense_and_input_units():
    stages = network_stages(LeNet5())
    assert input_patch(stages, Unit("fc1", (7,))) == (0, 0, 28, 28)
    assert input_patch(stages, Unit("input", (0, 4, 9))) == (4, 9, 5, 10)
    with pytest.raises(DigitsViewError, match="not one of them"):
        input_patch(stages, Unit("conv2", (0, 10, 0)))
    with pytest.raises(DigitsViewError, match="No stage called"):
        input_patch(stages, Unit("conv3", (0, 0, 0)))


def _dependence_box(model: nn.Module, stop: str, index: tuple[int, ...]) -> tuple[tuple[int, ...], bool]:
    """Brute force: which input pixels change unit ``index`` of child ``stop`` (gradient on a positive net)."""
    x = torch.rand(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) + 0.5
    x.requires_grad_(True)
    h = x
    for name, module in model.named_children():
        h = module(h)
        if name == stop:
            break
    h[(0, *index)].backward()
    mask = x.grad[0, 0].abs() > 0
    rows, cols = np.flatnonzero(mask.any(1).numpy()), np.flatnonzero(mask.any(0).numpy())
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    full = bool(mask[box[0] : box[2], box[1] : box[3]].all())
    return box, full


def test_patches_match_brute_force_dependence():
    # Same geometry, but average pooling and positive weights: every pixel in the field has a gradient.
    model = LeNet5(channels=(2, 2))
    model.pool1, model.pool2 = nn.AvgPool2d(2), nn.AvgPool2d(2)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.1)
    stages = network_stages(model)
    cases = [("conv1", "relu1", (1, 0, 0)), ("conv1", "relu1", (0, 12, 27)), ("pool1", "pool1", (0, 13, 1)),
             ("conv2", "relu2", (1, 0, 9)), ("conv2", "relu2", (0, 5, 5)), ("pool2", "pool2", (1, 0, 4)),
             ("pool2", "pool2", (0, 2, 2))]
    for stage, stop, index in cases:
        box, full = _dependence_box(model, stop, index)
        assert box == input_patch(stages, Unit(stage, index)), (stage, index)
        assert full


# --- the flow ----------------------------------------------------------------------------------


def test_flow_matches_a_forward_pass_by_hand(small, flow):
    steps = drawing_steps(_stroke_image())
    np.testing.assert_array_equal(flow.steps.result, steps.result)
    np.testing.assert_array_equal(flow.activations["input"][0], steps.result)
    expected = _forward_by_hand(small.model, torch.from_numpy(steps.result)[None, None])
    for name in ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]:
        np.testing.assert_allclose(flow.activations[name], expected[name].numpy(), rtol=1e-5, atol=1e-6)
    probs = torch.softmax(expected["fc3"].double(), 0).numpy()
    np.testing.assert_allclose(flow.probabilities, probs, rtol=1e-5)
    assert flow.predicted == int(np.argmax(probs))
    assert flow.categories == tuple(str(d) for d in range(10))


def test_empty_canvas_is_refused(small):
    with pytest.raises(EmptyDrawingError, match="empty"):
        digit_flow(small, np.full((100, 100, 3), 255, dtype=np.uint8))


# --- what feeds a unit -------------------------------------------------------------------------


@pytest.mark.parametrize("index", [(0, 0, 0), (2, 9, 14), (1, 27, 3)])
def test_conv1_sources_are_kernel_times_input(small, flow, index):
    c, y, x = index
    expected = _forward_by_hand(small.model, torch.from_numpy(flow.steps.result)[None, None])
    got = unit_sources(small, flow, Unit("conv1", index), k=None)
    top, left, bottom, right = got.patch
    assert got.total == (bottom - top) * (right - left)  # only taps inside the input
    w = small.model.conv1.weight[c, 0].numpy()
    img = flow.steps.result
    for s in got.sources:
        _, yy, xx = s.unit.index
        assert s.unit.stage == "input" and top <= yy < bottom and left <= xx < right
        assert s.weight == pytest.approx(float(w[yy - y + 2, xx - x + 2]))
        assert s.activation == pytest.approx(float(img[yy, xx]))
        assert s.contribution == pytest.approx(s.weight * s.activation)
    assert got.bias == pytest.approx(float(small.model.conv1.bias[c]))
    assert got.pre_activation == pytest.approx(float(expected["conv1_pre"][index]), abs=1e-5)
    assert got.value == pytest.approx(max(got.pre_activation, 0.0), abs=1e-5)
    assert sum(s.contribution for s in got.sources) + got.bias == pytest.approx(got.pre_activation, abs=1e-5)
    np.testing.assert_array_equal(got.kernel, small.model.conv1.weight[c].numpy())


def test_conv2_sources_sum_to_the_pre_activation(small, flow):
    expected = _forward_by_hand(small.model, torch.from_numpy(flow.steps.result)[None, None])
    for index in [(0, 0, 0), (3, 4, 7)]:
        got = unit_sources(small, flow, Unit("conv2", index), k=None)
        assert got.total == 3 * 25
        assert got.pre_activation == pytest.approx(float(expected["conv2_pre"][index]), abs=1e-5)
        assert {s.unit.stage for s in got.sources} == {"pool1"}
        c, y, x = index
        for s in got.sources:
            i, yy, xx = s.unit.index
            assert s.weight == pytest.approx(float(small.model.conv2.weight[c, i, yy - y, xx - x]))
            assert s.activation == pytest.approx(float(flow.activations["pool1"][i, yy, xx]))


def test_max_pool_source_is_the_winner(small, flow):
    conv1 = flow.activations["conv1"]
    for index in [(0, 3, 4), (2, 6, 5), (1, 0, 13)]:
        c, y, x = index
        got = unit_sources(small, flow, Unit("pool1", index), k=None)
        assert got.total == 4 and got.bias == 0.0
        assert {s.unit.index for s in got.sources} == {(c, 2 * y + dy, 2 * x + dx) for dy in (0, 1) for dx in (0, 1)}
        assert sorted(s.weight for s in got.sources) == [0.0, 0.0, 0.0, 1.0]
        winner = got.sources[0]
        assert winner.weight == 1.0 and winner.activation == pytest.approx(conv1[c, 2 * y : 2 * y + 2,
                                                                                  2 * x : 2 * x + 2].max())
        assert got.pre_activation == pytest.approx(got.value)
        np.testing.assert_array_equal(got.window[0], conv1[c, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2])


def test_dense_sources_follow_the_flatten_order_and_rank(small, flow):
    expected = _forward_by_hand(small.model, torch.from_numpy(flow.steps.result)[None, None])
    got = unit_sources(small, flow, Unit("fc1", (4,)), k=None)
    assert got.total == 4 * 5 * 5
    weights = small.model.fc1.weight[4].numpy()
    for s in got.sources:
        c, y, x = s.unit.index
        assert s.unit.stage == "pool2"
        assert s.weight == pytest.approx(float(weights[c * 25 + y * 5 + x]))
        assert s.activation == pytest.approx(float(flow.activations["pool2"][c, y, x]))
    assert got.pre_activation == pytest.approx(float(expected["fc1_pre"][4]), abs=1e-5)
    strengths = [abs(s.contribution) for s in got.sources]
    assert strengths == sorted(strengths, reverse=True)
    top3 = unit_sources(small, flow, Unit("fc1", (4,)), k=3)
    assert top3.sources == got.sources[:3] and top3.total == got.total
    by_weight = unit_sources(small, flow, Unit("fc1", (4,)), k=5, by="weight")
    assert [abs(s.weight) for s in by_weight.sources] == sorted(np.abs(weights).tolist(), reverse=True)[:5]


def test_output_unit_is_its_logit(small, flow):
    got = unit_sources(small, flow, Unit("fc3", (flow.predicted,)), k=None)
    assert got.total == 5 and {s.unit.stage for s in got.sources} == {"fc2"}
    assert got.value == pytest.approx(got.pre_activation, abs=1e-5)
    assert got.value == pytest.approx(float(flow.activations["fc3"][flow.predicted]))


def test_bad_requests(small, flow):
    with pytest.raises(DigitsViewError, match="Sort sources"):
        unit_sources(small, flow, Unit("fc1", (0,)), by="size")
    with pytest.raises(DigitsViewError, match="not one of them"):
        unit_sources(small, flow, Unit("fc1", (6,)))
    got = unit_sources(small, flow, Unit("input", (0, 5, 6)))
    assert got.sources == () and got.value == pytest.approx(float(flow.steps.result[5, 6]))


# --- inputs ------------------------------------------------------------------------------------


def test_canvas_to_image_composites_on_white():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (0, 0, 0, 255)  # opaque black stroke
    rgba[0, 1] = (0, 0, 0, 51)  # faint edge: 20% black over white
    rgba[1, 2] = (200, 100, 0, 255)
    out = canvas_to_image(rgba)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 1].tolist() == [204, 204, 204]
    assert out[0, 2].tolist() == [255, 255, 255]  # transparent -> white
    assert out[1, 2].tolist() == [200, 100, 0]
    with pytest.raises(DigitsViewError, match="HxWx4"):
        canvas_to_image(np.zeros((4, 4), dtype=np.uint8))


def test_a_transparent_canvas_reads_like_its_alpha():
    rgba = np.zeros((120, 120, 4), dtype=np.uint8)
    cv2.line(rgba, (30, 20), (80, 100), (0, 0, 0, 255), thickness=9)
    np.testing.assert_allclose(drawing_steps(canvas_to_image(rgba)).result, drawing_steps(rgba).result, atol=1e-5)


def test_heldout_loader(tmp_path):
    held = load_heldout()
    assert len(held) == 500 and held.images.shape == (500, 28, 28) and held.images.dtype == np.uint8
    rgb = held.image(3)
    assert rgb.shape == (28, 28, 3) and np.array_equal(rgb[:, :, 1], held.images[3])
    with pytest.raises(DigitsDataError, match="missing"):
        load_heldout(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", images=held.images)
    with pytest.raises(DigitsDataError, match="not a held-out digits file"):
        load_heldout(tmp_path / "bad.npz")


def test_classify_heldout_matches_one_at_a_time():
    loaded = models.load_model(models.DIGITS_MODEL, device="cpu")
    held = load_heldout()
    probs = classify_heldout(loaded, held)
    assert probs.shape == (500, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert (probs.argmax(1) == held.labels).mean() >= 0.97
    wrong = np.flatnonzero(probs.argmax(1) != held.labels)
    assert len(wrong) >= 1  # the page lists these
    for i in [0, 77, *wrong[:2]]:
        assert models.classify(loaded, held.image(int(i)), 1).indices[0] == probs[i].argmax()
