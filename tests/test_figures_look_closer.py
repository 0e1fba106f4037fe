"""vizlib.figures.look_closer: the patch picture takes clicks and boxes, and the selection reads back as the
patch's place and size, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vizlib.figures import look_closer as flc

SIZE = (224, 224)


def test_patch_figure_has_a_grid_to_click_and_a_box_to_drag():
    picture = np.zeros((32, 40, 3), np.uint8)
    fig = flc.patch_figure(picture, 5, 6, 10, grid=8)
    points = fig.data[1]
    assert sorted(set(np.asarray(points.x).tolist())) == [4, 12, 20, 28, 36]
    assert sorted(set(np.asarray(points.y).tolist())) == [4, 12, 20, 28]
    assert len(points.x) == 5 * 4 and points.marker.opacity == 0
    assert fig.layout.dragmode == "select"  # the default: a drag draws a box
    assert fig.layout.xaxis.fixedrange and fig.layout.yaxis.fixedrange  # never zooms or pans
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.y0, rect.x1, rect.y1) == (4.5, 5.5, 14.5, 15.5)  # pixels 5..14 and 6..15, edges at ±0.5
    clicks = flc.patch_figure(picture, 5, 6, 10, mouse="click")
    assert clicks.layout.dragmode == "pan" and clicks.layout.clickmode == "event+select"
    with pytest.raises(ValueError, match="Unknown mouse mode"):
        flc.patch_figure(picture, 5, 6, 10, mouse="drag")


def test_a_click_centres_the_patch_on_the_point_and_keeps_its_size():
    click = {"points": [{"x": 12, "y": 12}, {"x": 100, "y": 60}], "box": [], "lasso": []}
    assert flc.placed_patch(click, SIZE, 48) == (100 - 24, 60 - 24, 48)  # the last point counts
    assert flc.placed_patch({"points": [{"x": 4, "y": 220}]}, SIZE, 48) == (0, 224 - 48, 48)  # kept inside
    assert flc.placed_patch({"points": [{"x": 101, "y": 61}]}, SIZE, 31) == (101 - 15, 61 - 15, 31)


def test_a_box_gives_the_square_on_its_longer_side_centred_on_it():
    box = {"points": [{"x": 200, "y": 200}], "box": [{"xref": "x", "yref": "y", "x": [70.1, 10.3], "y": [20, 50]}]}
    # longer side 59.8 -> 60 (a multiple of 4); centre (40.2, 35) -> pixels (40, 35); corner 30 px up-left
    assert flc.placed_patch(box, SIZE, 48) == (10, 5, 60)
    tiny = {"box": [{"x": [100, 101], "y": [100, 102]}]}
    assert flc.placed_patch(tiny, SIZE, 48, min_patch=8) == (101 - 4, 101 - 4, 8)
    huge = {"box": [{"x": [-20, 300], "y": [0, 10]}]}
    assert flc.placed_patch(huge, SIZE, 48, max_patch=112) == (140 - 56, 0, 112)  # the largest, kept inside


@pytest.mark.parametrize("selection", [None, {}, {"points": [], "box": [], "lasso": []},
                                       {"points": [{"x": None, "y": 3}]}, {"box": [{"x": [1], "y": [2, 3]}]}])
def test_nothing_usable_selected_is_none(selection):
    assert flc.placed_patch(selection, SIZE, 48) is None
