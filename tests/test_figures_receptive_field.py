"""Tests for vizlib.figures.receptive_field: what each figure carries (values, boxes, padding, paths)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import picture_pixels
from vizlib import receptive_field as R
from vizlib.figures import receptive_field as FR


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, (3, 5), padding=(1, 2)),
        nn.ReLU(), nn.Conv2d(2, 2, 3, stride=2, padding=1),
    ).eval()  # fmt: skip


def _rf(size: int, stride: int, padding: int, out: int, inp: int = 16) -> R.ReceptiveField:
    return R.ReceptiveField(size, stride, padding, out, inp, ((0, inp - 1), (0, inp - 1)))


def _image(h: int = 16, w: int = 16) -> np.ndarray:
    return (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)


def _trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


def test_growth_figure_plots_sizes_strides_and_the_input_size() -> None:
    fields = R.receptive_fields(_net(), 16)
    fig = FR.growth_figure(fields, title="tiny")
    assert fig.layout.title.text == "tiny"
    height, width, stride = _trace(fig, "size (height)"), _trace(fig, "size (width)"), _trace(fig, "stride")
    assert list(height.y) == [3, 4, 8, 12] and list(width.y) == [3, 4, 12, 16]
    assert list(stride.y) == [1, 2, 2, 4] and list(stride.x) == [1, 2, 3, 4]
    assert "<b>3</b>" in stride.customdata[2] and "padding 3×5" in stride.customdata[2]
    assert "size 8×12" in height.customdata[2]
    line = next(t for t in fig.data if t.name.startswith("input"))
    assert list(line.y) == [16, 16]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"


def test_growth_figure_square_model_has_one_size_line_and_linear_option() -> None:
    fields = {"a": _rf(3, 1, 1, 16), "b": _rf(7, 2, 3, 8)}
    fig = FR.growth_figure(fields, log_y=False)
    assert [t.name for t in fig.data] == ["size", "stride", "input (16 px)"]
    assert fig.layout.yaxis.type == "linear"
    with pytest.raises(ValueError, match="No receptive fields"):
        FR.growth_figure({})


def test_comparison_figure_uses_relative_depth() -> None:
    one = {"a": _rf(3, 1, 1, 16), "b": _rf(5, 1, 2, 16)}
    four = {str(i): _rf(3 + 2 * i, 1, 1 + i, 16) for i in range(4)}
    fig = FR.comparison_figure({"short": one, "long": four})
    sizes = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in sizes] == ["short", "long"]
    np.testing.assert_allclose(sizes[0].x, [0.5, 1.0])
    np.testing.assert_allclose(sizes[1].x, [0.25, 0.5, 0.75, 1.0])
    assert list(sizes[1].y) == [3, 5, 7, 9]
    assert len(fig.data) == 4 and fig.data[1].legendgroup == "short"
    with pytest.raises(ValueError, match="at least one"):
        FR.comparison_figure({})


def test_box_figure_draws_padding_apart_from_the_image_part() -> None:
    rf = _rf(7, 2, 3, 8)  # unit (0, 0) sees rows/cols -3..3: 3 of them padding
    fig = FR.box_figure(_image(), rf, (0, 0), title="unit")
    padding, inside = _trace(fig, "padding (zeros)"), _trace(fig, "receptive field on the image")
    assert padding.fill == "toself" and padding.fillpattern.shape == "/"
    xs = [v for v in padding.x if v is not None]
    assert min(xs) == -3.5 and max(xs) == 3.5  # the box's left edge, in pixel-edge coordinates
    assert (min(inside.x), max(inside.x), min(inside.y), max(inside.y)) == (-0.5, 3.5, -0.5, 3.5)
    assert fig.layout.xaxis.range[0] < -3.5 and fig.layout.yaxis.range[1] < -3.5  # y axis points down
    assert "rows -3…3" in inside.hovertemplate


def test_box_figure_interior_unit_has_no_padding_and_scales_to_the_image() -> None:
    rf = _rf(5, 2, 2, 8)
    image = _image(32, 64)
    fig = FR.box_figure(image, rf, (3, 3))  # image twice the input's height, four times its width
    np.testing.assert_array_equal(picture_pixels(fig.data[0]), image)
    assert fig.data[0].hovertemplate.startswith("x=%{x}, y=%{y}")
    assert all(t.name != "padding (zeros)" for t in fig.data)
    inside = _trace(fig, "receptive field on the image")
    # input pixels 4..8 -> image x from 4*4-0.5 to 9*4-0.5, y from 4*2-0.5 to 9*2-0.5
    assert (min(inside.x), max(inside.x), min(inside.y), max(inside.y)) == (15.5, 35.5, 7.5, 17.5)
    with pytest.raises(ValueError, match="outside"):
        FR.box_figure(_image(), rf, (8, 0))
    with pytest.raises(ValueError, match="RGB"):
        FR.box_figure(np.zeros((16, 16)), rf, (0, 0))


def test_erf_figure_overlays_both_maps_with_the_theoretical_box() -> None:
    net = _net()
    erf = R.effective_receptive_field(net, "5", torch.randn(1, 1, 16, 16), n_random=2)
    fig = FR.erf_figure(_image(), erf, opacity=0.4)
    heats = [t for t in fig.data if t.type == "heatmap"]
    assert len(heats) == 2 and [t.type for t in fig.data].count("image") == 2
    for picture in (t for t in fig.data if t.type == "image"):
        np.testing.assert_array_equal(picture_pixels(picture), _image())
    np.testing.assert_array_equal(np.asarray(heats[0].z), erf.image_map)
    np.testing.assert_array_equal(np.asarray(heats[1].z), erf.random_map)
    assert heats[0].opacity == 0.4 and (heats[0].zmin, heats[0].zmax) == (0.0, 1.0)
    assert [a.text for a in fig.layout.annotations] == ["on this image", "average over 2 random inputs"]
    (top, bottom), (left, right) = erf.theoretical.clipped_box(*erf.unit)
    box = next(t for t in fig.data if t.name == "theoretical receptive field")
    assert (min(box.x), max(box.x), min(box.y), max(box.y)) == (left - 0.5, right + 0.5, top - 0.5, bottom + 0.5)


def test_erf_figure_random_only_and_bad_opacity() -> None:
    erf = R.effective_receptive_field(_net(), "3", None, n_random=1, input_size=16, in_channels=1)
    fig = FR.erf_figure(_image(), erf)
    assert [t.type for t in fig.data].count("heatmap") == 1
    with pytest.raises(ValueError, match="opacity"):
        FR.erf_figure(_image(), erf, opacity=2)


def test_dilation_figure_draws_the_paths_into_the_output_unit() -> None:
    stack = R.conv_stack_1d([2, 2], [2, 2], [1, 2], output_unit=0)
    fig = FR.dilation_figure(stack)
    edges = fig.data[0]
    assert edges.name == "connections" and list(edges.x).count(None) == 6  # 2 + 4 connections
    levels = fig.data[1:]
    assert len(levels) == 3
    inputs = levels[0]
    active = [i for i, c in enumerate(inputs.marker.color) if c == FR.COLORS["unit"]]
    assert active == [0, 1, 4, 5]
    assert list(inputs.text[:6]) == ["1", "1", "", "", "1", "1"]
    assert "spans 6 inputs" in fig.layout.title.text and "4 connected" in fig.layout.title.text
    assert list(fig.layout.yaxis.ticktext)[2] == "layer 2: k=2, s=2, d=2 → RF 6"
    # every unit sits at the centre of its own receptive field
    assert list(levels[1].x[:2]) == [0.5, 2.5] and levels[2].x[0] == 2.5


def test_dilation_grid_figure_counts_paths_in_2d() -> None:
    stack = R.conv_stack_1d([3, 3])
    fig = FR.dilation_grid_figure(stack)
    z = np.asarray(fig.data[0].z)
    np.testing.assert_array_equal(z, np.outer(stack.paths, stack.paths))
    assert z.max() == 9 and np.count_nonzero(z) == 25
    assert "5×5" in fig.layout.title.text


def test_unit_picker_figure_marks_every_unit_and_frames_the_chosen_one() -> None:
    maps = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    fig = FR.unit_picker_figure(maps, (1, 2), title="pick")
    heat, marks = fig.data
    np.testing.assert_array_equal(np.asarray(heat.z), maps.mean(axis=0))
    custom = np.asarray(marks.customdata)
    assert custom.shape == (12, 2) and marks.marker.opacity == 0
    np.testing.assert_array_equal(custom[6], [1, 2])  # unit (1, 2) is the 7th, row by row
    assert marks.marker.color[6] == maps[:, 1, 2].mean() and "%{marker.color" in marks.hovertemplate
    assert (list(marks.x[:5]), list(marks.y[:5])) == ([0, 1, 2, 3, 0], [0, 0, 0, 0, 1])
    (frame,) = fig.layout.shapes
    assert (frame.x0, frame.x1, frame.y0, frame.y1) == (1.5, 2.5, 0.5, 1.5)
    assert fig.layout.clickmode == "event+select" and fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]
    one = FR.unit_picker_figure(maps, (0, 0), channel=1)
    np.testing.assert_array_equal(np.asarray(one.data[0].z), maps[1])
    np.testing.assert_array_equal(FR.unit_picker_figure(maps[0], (2, 3)).data[0].z, maps[0])
    for bad, kwargs, match in [((3, 0), {}, "outside"), ((0, 0), {"channel": 2}, "channel"),
                               ((0, 0), {"maps": np.zeros(4)}, "C x h x w")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            FR.unit_picker_figure(kwargs.pop("maps", maps), bad, **kwargs)


def test_clicked_unit_reads_lists_typed_arrays_and_ignores_the_rest() -> None:
    assert FR.clicked_unit({"points": [{"customdata": [1.0, 2.0, 0.5]}]}, (3, 4)) == (1, 2)
    assert FR.clicked_unit({"points": [{"customdata": {"0": 2, "1": 3, "2": 0.1}}]}, (3, 4)) == (2, 3)
    last = {"points": [{"customdata": [0, 0, 1]}, {"customdata": [2, 1, 1]}]}
    assert FR.clicked_unit(last, (3, 4)) == (2, 1)
    for nothing in (None, {}, {"points": []}, {"points": [{"x": 1}]}, {"points": [{"customdata": [3, 0, 1]}]},
                    {"points": [{"customdata": ["a", "b"]}]}):  # fmt: skip
        assert FR.clicked_unit(nothing, (3, 4)) is None
