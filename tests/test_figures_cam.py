"""vizlib.figures.cam: the overlay figure (value on hover, opacity, colours) and the side-by-side figure."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import picture_pixels
from tests.figure_check import checked
from vizlib.figures.cam import HOVER_STEP, colorscale, hover_grid, is_smooth, methods_figure, overlay_figure
from vizlib.overlay import colorize, overlay


def _image_and_map(h: int = 6, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    image = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    cam = np.random.default_rng(0).random((h, w), dtype=np.float32)  # detail at every pixel, like Saliency
    return image, cam


def _smooth_map(h: int, w: int, grid: int = 7, seed: int = 1) -> np.ndarray:
    """A Grad-CAM-like map: a coarse grid resized bilinearly to the image and scaled to [0, 1]."""
    coarse = np.random.default_rng(seed).random((grid, grid), dtype=np.float32)
    m = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    return ((m - m.min()) / (m.max() - m.min())).astype(np.float32)


def test_overlay_figure_is_the_blended_picture_with_the_map_on_hover():
    image, cam = _image_and_map()
    fig = checked(overlay_figure(image, cam, colormap="viridis", opacity=0.3, title="Grad-CAM", label="Grad-CAM"))
    picture, heat = fig.data
    assert picture.type == "image" and heat.type == "heatmap"
    # what the student sees: the image with the map blended over it, exactly the PNG download's colours
    np.testing.assert_array_equal(picture_pixels(picture), overlay(image, cam, "viridis", 0.3))
    assert picture.z is None and picture.hoverinfo == "skip"
    # hover: every pixel's value of a detailed map, from a transparent layer that also carries the colour bar
    np.testing.assert_allclose(np.asarray(heat.z, dtype=np.float32), cam)
    assert list(heat.x) == list(range(8)) and list(heat.y) == list(range(6))
    assert heat.opacity == 0 and heat.zmin == 0 and heat.zmax == 1 and heat.showscale
    assert [list(step) for step in heat.colorscale] == colorscale("viridis")
    assert "%{z" in heat.hovertemplate and "%{x}" in heat.hovertemplate and heat.meta == "Grad-CAM"
    assert heat.colorbar.title.text == "Grad-CAM"
    assert fig.layout.title.text == "Grad-CAM"
    # upright, square pixels, framed on the picture; margins fixed so plotly draws the figure once
    assert list(fig.layout.yaxis.range) == [5.5, -0.5] and list(fig.layout.xaxis.range) == [-0.5, 7.5]
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.margin.autoexpand is False and fig.layout.margin.r >= 20 + 8 * len("Grad-CAM")


def test_opacity_zero_shows_the_image_and_one_the_map_alone():
    image, cam = _image_and_map()
    np.testing.assert_array_equal(picture_pixels(overlay_figure(image, cam, opacity=0.0).data[0]), image)
    np.testing.assert_array_equal(picture_pixels(overlay_figure(image, cam, opacity=1.0).data[0]),
                                  colorize(cam, "jet"))


def test_colorscale_matches_the_png_overlay_colours():
    scale = colorscale("jet", steps=3)
    assert [t for t, _ in scale] == [0.0, 0.5, 1.0]
    r, g, b = colorize(np.array([[1.0]]), "jet")[0, 0]
    assert scale[-1][1] == f"rgb({r},{g},{b})"


def test_large_images_are_subsampled_with_true_coordinates():
    image, cam = _image_and_map(100, 900)
    fig = overlay_figure(image, cam, max_side=300)
    picture, heat = fig.data
    assert np.asarray(heat.z).shape == (34, 300)
    assert list(heat.x[:3]) == [0, 3, 6] and picture.dx == 3 and picture.dy == 3
    np.testing.assert_array_equal(picture_pixels(picture), overlay(image[::3, ::3], cam[::3, ::3], "jet", 0.5))
    np.testing.assert_allclose(np.asarray(heat.z, dtype=np.float32), cam[::3, ::3])
    assert list(fig.layout.xaxis.range) == [-1.5, 898.5]


def test_a_smooth_map_is_recognised_and_a_detailed_one_is_not():
    smooth = _smooth_map(300, 451)
    assert is_smooth(smooth)
    assert is_smooth(_smooth_map(224, 224, grid=14))
    assert not is_smooth(_image_and_map(300, 451)[1])  # noise: Saliency's kind of map
    assert not is_smooth(_smooth_map(300, 451, grid=112))  # bends every few pixels: as detailed as drawn
    assert not is_smooth(np.minimum(smooth, 0.5) ** 2)  # curved between the grid lines
    assert is_smooth(np.zeros((5, 5), np.float32)) and is_smooth(np.zeros((1, 1), np.float32))


def test_hover_samples_a_smooth_map_more_sparsely_with_its_own_values():
    smooth = _smooth_map(300, 451)
    rows, cols = hover_grid(smooth, 2)
    assert list(rows) == list(range(0, 300, 2 * HOVER_STEP)) and list(cols) == list(range(0, 451, 2 * HOVER_STEP))
    image = np.zeros((300, 451, 3), np.uint8)
    fig = checked(methods_figure(image, {"gradcam": smooth, "saliency": _image_and_map(300, 451)[1]}, max_side=256))
    pictures = [t for t in fig.data if t.type == "image"]
    heats = [t for t in fig.data if t.type == "heatmap"]
    # the smooth map's hover values are the map's own at those pixels, and what is drawn keeps every drawn pixel
    np.testing.assert_array_equal(np.asarray(heats[0].z, dtype=np.float32), smooth[np.ix_(rows, cols)])
    assert list(heats[0].x) == list(cols) and list(heats[0].y) == list(rows)
    np.testing.assert_array_equal(picture_pixels(pictures[0]), overlay(image[::2, ::2], smooth[::2, ::2]))
    # Saliency keeps its full detail, drawn and on hover
    saliency = _image_and_map(300, 451)[1]
    np.testing.assert_array_equal(np.asarray(heats[1].z, dtype=np.float32), saliency[::2, ::2])
    np.testing.assert_array_equal(picture_pixels(pictures[1]), overlay(image[::2, ::2], saliency[::2, ::2]))
    assert all("%{z:.3f}" in h.hovertemplate for h in heats)


def test_methods_figure_one_panel_per_map_with_scores():
    image, cam = _image_and_map()
    maps = {"gradcam": cam, "layercam": 1 - cam, "cam": cam * 0.5, "saliency": cam}
    fig = checked(methods_figure(
        image, maps, titles={"gradcam": "Grad-CAM"}, scores={"gradcam": 0.123, "layercam": -0.05}, columns=3,
        opacity=0.4, colormap="magma",
    ))
    heats = [t for t in fig.data if t.type == "heatmap"]
    pictures = [t for t in fig.data if t.type == "image"]
    assert len(heats) == 4 and len(pictures) == 4
    assert [t.showscale for t in heats] == [True, False, False, False]
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "Grad-CAM<br><sub>faithfulness +0.123</sub>"
    assert titles[1] == "layercam<br><sub>faithfulness -0.050</sub>" and titles[2] == "cam"
    np.testing.assert_allclose(np.asarray(heats[1].z, dtype=np.float32), 1 - cam)
    np.testing.assert_array_equal(picture_pixels(pictures[1]), overlay(image, 1 - cam, "magma", 0.4))
    # each panel's traces on its own square-pixel axes, laid out as make_subplots would
    assert [(t.xaxis, t.yaxis) for t in heats] == [("x", "y"), ("x2", "y2"), ("x3", "y3"), ("x4", "y4")]
    assert fig.layout.yaxis4.scaleanchor == "x4" and fig.layout.xaxis4.anchor == "y4"
    assert list(fig.layout.xaxis2.domain) == [0.34, 0.66] and list(fig.layout.yaxis4.domain) == [0.0, 0.46]
    assert fig.layout.margin.autoexpand is False


def test_figure_errors_are_clear():
    image, cam = _image_and_map()
    with pytest.raises(ValueError, match="differs from the image"):
        overlay_figure(image, cam[:3])
    with pytest.raises(ValueError, match="opacity"):
        overlay_figure(image, cam, opacity=2)
    with pytest.raises(ValueError, match="Unknown colormap"):
        overlay_figure(image, cam, colormap="nope")
    with pytest.raises(ValueError, match="Unknown colormap"):
        methods_figure(image, {"a": cam}, colormap="nope")
    with pytest.raises(ValueError, match="at least one method"):
        methods_figure(image, {})
