"""Tests of vizlib.figures.digits: the network figure's cells and clicks, probabilities, steps, a unit's sources."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vizlib import models
from vizlib.digits import LeNet5, Unit, digit_flow, digits_categories, unit_sources
from vizlib.figures import digits as DF


@pytest.fixture(scope="module")
def loaded() -> models.LoadedModel:
    torch.manual_seed(1)
    model = LeNet5(channels=(3, 6), hidden=(8, 7)).eval()
    spec = models.get_spec(models.DIGITS_MODEL)
    return models.LoadedModel(models.DIGITS_MODEL, model, torch.device("cpu"), digits_categories(), spec, True)


@pytest.fixture(scope="module")
def flow(loaded):
    canvas = np.full((200, 200, 3), 255, dtype=np.uint8)
    cv2.circle(canvas, (100, 100), 60, (0, 0, 0), thickness=14)
    return digit_flow(loaded, canvas)


def _traces(fig, stage_number):
    """The heatmap and the marker trace of one stage (two traces per stage before the output bars)."""
    return fig.data[2 * stage_number], fig.data[2 * stage_number + 1]


def test_every_marker_sits_on_its_units_value_and_clicks_back(flow):
    fig = DF.network_figure(flow)
    assert len(fig.data) == 2 * (len(flow.stages) - 1) + 1
    for number, stage in enumerate(flow.stages[:-1]):
        heat, marks = _traces(fig, number)
        assert heat.type == "heatmap" and marks.type == "scatter"
        custom = np.asarray(marks.customdata)
        assert custom.shape == (stage.size, 1 + len(stage.shape))
        assert (custom[:, 0] == number).all()
        values = flow.activations[stage.name]
        z = np.asarray(heat.z)
        for j in [0, stage.size // 2, stage.size - 1]:
            index = tuple(int(v) for v in custom[j, 1:])
            cell = z[int(marks.y[j]), int(marks.x[j])]
            assert cell == pytest.approx(float(values[index]))
            assert float(marks.marker.color[j]) == pytest.approx(float(values[index]))
            as_list = {"points": [{"customdata": custom[j].tolist()}]}
            as_dict = {"points": [{"customdata": {str(k): int(v) for k, v in enumerate(custom[j])}}]}
            assert DF.clicked_unit(flow.stages, as_list) == Unit(stage.name, index)
            assert DF.clicked_unit(flow.stages, as_dict) == Unit(stage.name, index)
        assert np.isnan(z).sum() == z.size - stage.size  # the rest are gaps between tiles


def test_output_bars_are_the_probabilities(flow):
    bars = DF.network_figure(flow).data[-1]
    assert bars.type == "bar" and list(bars.x) == list(flow.categories)
    np.testing.assert_allclose(bars.y, flow.probabilities, rtol=1e-6)
    assert bars.marker.color[flow.predicted] == DF.ACCENT
    assert DF.clicked_unit(flow.stages, {"points": [{"customdata": [len(flow.stages) - 1, 3]}]}) == Unit("fc3", (3,))


def test_clicks_on_nothing_usable(flow):
    assert DF.clicked_unit(flow.stages, None) is None
    assert DF.clicked_unit(flow.stages, {"points": []}) is None
    assert DF.clicked_unit(flow.stages, {"points": [{"x": 1}]}) is None
    assert DF.clicked_unit(flow.stages, {"points": [{"customdata": [99, 0, 0, 0]}]}) is None
    assert DF.clicked_unit(flow.stages, {"points": [{"customdata": [1, 0, 40, 0]}]}) is None


def test_selection_frames_the_patch_and_the_unit(loaded, flow):
    sources = unit_sources(loaded, flow, Unit("conv2", (2, 3, 4)), k=4)
    fig = DF.network_figure(flow, selected=sources)
    shapes = fig.layout.shapes
    top, left, bottom, right = sources.patch
    on_input = [s for s in shapes if s.xref == "x"]
    assert len(on_input) == 1
    assert (on_input[0].x0, on_input[0].x1, on_input[0].y0, on_input[0].y1) == (
        left - 0.5, right - 0.5, top - 0.5, bottom - 0.5)
    assert len([s for s in shapes if s.xref == "x3"]) == 4  # the four strongest sources, on pool1 (stage 3)
    conv2 = [s for s in shapes if s.xref == "x4"]  # the unit itself, outlined on conv2 (stage 4)
    assert len(conv2) == 1
    _, marks = _traces(fig, 3)
    custom = np.asarray(marks.customdata)
    j = int(np.flatnonzero((custom[:, 1:] == (2, 3, 4)).all(1))[0])
    assert (conv2[0].x0 + 0.5, conv2[0].y0 + 0.5) == (marks.x[j], marks.y[j])


def test_probabilities_figure(flow):
    fig = DF.probabilities_figure(flow)
    (bars,) = fig.data
    assert list(bars.x) == [str(d) for d in range(10)]
    assert list(bars.y) == pytest.approx(flow.probabilities.tolist())
    assert bars.text[flow.predicted] == f"{flow.probabilities[flow.predicted]:.1%}"


def test_preprocessing_figure_and_caption(flow):
    steps = flow.steps
    fig = DF.preprocessing_figure(steps)
    titles = [a.text for a in fig.layout.annotations]
    h, w = steps.cropped.shape
    assert titles[0].startswith("1 · ink") and f"{h}×{w}" in titles[1]
    assert "20" in titles[2] and "28×28" in titles[3]
    np.testing.assert_array_equal(fig.data[3].z, steps.result)
    np.testing.assert_array_equal(fig.data[2].z, steps.scaled)
    (box,) = fig.layout.shapes
    t, left, b, r = steps.bbox
    assert (box.x0, box.y0, box.x1, box.y1) == (left - 0.5, t - 0.5, r - 0.5, b - 0.5)
    caption = DF.steps_caption(steps)
    assert f"rows {t}–{b - 1}, cols {left}–{r - 1}" in caption and "13.5" in caption


def test_sources_figure_lists_the_strongest_first(loaded, flow):
    sources = unit_sources(loaded, flow, Unit("fc2", (1,)), k=5)
    fig = DF.sources_figure(sources)
    (bars,) = fig.data
    assert list(bars.x) == [s.contribution for s in sources.sources][::-1]  # the strongest on top
    assert list(bars.y) == [DF.unit_label(s.unit) for s in sources.sources][::-1]


def test_patch_figure_panels(loaded, flow):
    conv = unit_sources(loaded, flow, Unit("conv2", (1, 5, 5)))
    fig = DF.patch_figure(flow, conv)
    assert len(fig.data) == 4
    products = (conv.kernel * conv.window).reshape(conv.kernel.shape[0], -1).sum(1)
    ch = int(np.argmax(np.abs(products)))
    np.testing.assert_allclose(fig.data[1].z, conv.window[ch])
    np.testing.assert_allclose(fig.data[2].z, conv.kernel[ch])
    np.testing.assert_allclose(fig.data[3].z, conv.window[ch] * conv.kernel[ch], rtol=1e-6)
    assert len(DF.patch_figure(flow, unit_sources(loaded, flow, Unit("pool2", (0, 1, 1)))).data) == 2
    assert len(DF.patch_figure(flow, unit_sources(loaded, flow, Unit("fc1", (0,)))).data) == 1


def test_unit_labels():
    assert DF.unit_label(Unit("conv1", (3, 10, 12))) == "conv1 map 3, row 10, col 12"
    assert DF.unit_label(Unit("fc1", (5,))) == "fc1 unit 5"
    assert DF.unit_label(Unit("input", (0, 4, 7))) == "input pixel row 4, col 7"
