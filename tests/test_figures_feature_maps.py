"""Tests for vizlib.figures.feature_maps: what each figure carries (values, scales, positions, labels).

The network overview is a picture now: tests/test_feature_maps_glance.py."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from tests.figure_check import checked
from vizlib import feature_maps as fm
from vizlib.figures import feature_maps as ffm


def _decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    raw = np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(raw, cv2.IMREAD_COLOR)[:, :, ::-1]


def test_channel_heatmap_values_scale_and_orientation():
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    fig = checked(ffm.channel_heatmap(values, colormap="cividis", zmin=-1.0, zmax=20.0, title="c"))
    heat = fig.data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), values)
    assert (heat.zmin, heat.zmax) == (-1.0, 20.0)
    assert heat.colorscale[0][1] != heat.colorscale[-1][1] and "value=%{z" in heat.hovertemplate
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.title.text == "c"
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        ffm.channel_heatmap(np.zeros((2, 2, 2)))


def test_overlay_cells_cover_the_whole_image():
    image = np.full((40, 80, 3), 200, dtype=np.uint8)
    values = np.arange(8, dtype=np.float32).reshape(2, 4)
    fig = checked(ffm.channel_overlay(image, values, opacity=0.3, max_side=20))
    picture, heat = fig.data
    assert picture.type == "image" and (picture.dx, picture.dy) == (4, 4)
    np.testing.assert_array_equal(_decode(picture.source), image[::4, ::4])
    np.testing.assert_allclose(heat.x, [9.5, 29.5, 49.5, 69.5])  # 20-pixel cells, centred
    np.testing.assert_allclose(heat.y, [9.5, 29.5])
    assert heat.opacity == 0.3
    assert tuple(np.asarray(heat.customdata)[1, 3]) == (3, 1)  # map x, map y on hover
    with pytest.raises(ValueError, match="opacity"):
        ffm.channel_overlay(image, values, opacity=1.5)


def test_histogram_marks_what_a_relu_zeroes():
    values = np.array([[[-1.5, -0.5, 0.5, 1.5]]], dtype=np.float32)
    stats = fm.channel_stats(values, 0, bins=4)  # edges -1.5, -0.75, 0, 0.75, 1.5
    bar = checked(ffm.histogram_figure(stats, title="h")).data[0]
    np.testing.assert_array_equal(bar.y, [1, 1, 1, 1])
    np.testing.assert_allclose(bar.x, [-1.125, -0.375, 0.375, 1.125])
    np.testing.assert_allclose(bar.width, [0.75] * 4)
    assert list(bar.marker.color) == ["#D55E00", "#D55E00", "#0072B2", "#0072B2"]


def test_scores_strongest_on_top():
    bar = checked(ffm.scores_figure([(5, 3.0), (2, 1.0)], by="max")).data[0]
    assert list(bar.y) == ["channel 2", "channel 5"] and list(bar.x) == [1.0, 3.0]


def test_checked_catches_a_spec_plotly_would_rewrite_or_refuse():
    from vizlib.figures.common import spec_figure

    with pytest.raises(AssertionError):
        checked(spec_figure({"data": [{"type": "bar", "x": [1]}], "layout": {"title": "a bare string"}}))
    with pytest.raises(ValueError):
        checked(spec_figure({"data": [{"type": "bar", "x": [1], "colour": "red"}], "layout": {}}))


def test_every_figure_of_the_page_is_a_valid_spec():
    values = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    stats = fm.channel_stats(values[None], 0)
    image = np.zeros((30, 25, 3), np.uint8)
    for fig in (ffm.channel_heatmap(values), ffm.channel_heatmap(values, zmin=0.0, zmax=1.0, title="t"),
                ffm.channel_overlay(image, values, title="o"), ffm.histogram_figure(stats),
                ffm.scores_figure([(1, 2.0)])):
        checked(fig)
