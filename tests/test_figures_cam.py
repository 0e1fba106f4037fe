"""vizlib.figures.cam: the overlay figure (value on hover, opacity, colours) and the side-by-side figure."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import picture_pixels
from vizlib.figures.cam import colorscale, methods_figure, overlay_figure
from vizlib.overlay import colorize


def _image_and_map(h: int = 6, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    image = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    cam = np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w)
    return image, cam


def test_overlay_figure_has_image_and_map_with_value_on_hover():
    image, cam = _image_and_map()
    fig = overlay_figure(image, cam, colormap="viridis", opacity=0.3, title="Grad-CAM")
    picture, heat = fig.data
    assert picture.type == "image" and heat.type == "heatmap"
    np.testing.assert_array_equal(picture_pixels(picture), image)  # lossless PNG, decoded by the browser
    assert picture.z is None and picture.hoverinfo == "skip"
    np.testing.assert_allclose(np.asarray(heat.z, dtype=np.float32), cam)
    assert heat.opacity == 0.3 and heat.zmin == 0 and heat.zmax == 1
    assert "%{z" in heat.hovertemplate and heat.meta == "value"
    assert fig.layout.title.text == "Grad-CAM"
    assert fig.layout.yaxis.autorange == "reversed"


def test_colorscale_matches_the_png_overlay_colours():
    scale = colorscale("jet", steps=3)
    assert [t for t, _ in scale] == [0.0, 0.5, 1.0]
    r, g, b = colorize(np.array([[1.0]]), "jet")[0, 0]
    assert scale[-1][1] == f"rgb({r},{g},{b})"


def test_large_images_are_subsampled_with_true_coordinates():
    image, cam = _image_and_map(100, 900)
    fig = overlay_figure(image, cam, max_side=300)
    heat = fig.data[1]
    assert np.asarray(heat.z).shape == (34, 300)
    assert list(heat.x[:3]) == [0, 3, 6] and fig.data[0].dx == 3 and fig.data[0].dy == 3
    np.testing.assert_array_equal(picture_pixels(fig.data[0]), image[::3, ::3])


def test_methods_figure_one_panel_per_map_with_scores():
    image, cam = _image_and_map()
    maps = {"gradcam": cam, "layercam": 1 - cam, "cam": cam * 0.5, "saliency": cam}
    fig = methods_figure(
        image, maps, titles={"gradcam": "Grad-CAM"}, scores={"gradcam": 0.123, "layercam": -0.05}, columns=3
    )
    heats = [t for t in fig.data if t.type == "heatmap"]
    assert len(heats) == 4 and len([t for t in fig.data if t.type == "image"]) == 4
    assert [t.showscale for t in heats] == [True, False, False, False]
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "Grad-CAM<br><sub>faithfulness +0.123</sub>"
    assert titles[1] == "layercam<br><sub>faithfulness -0.050</sub>" and titles[2] == "cam"
    np.testing.assert_allclose(np.asarray(heats[1].z, dtype=np.float32), 1 - cam)
    assert fig.layout.yaxis4.scaleanchor == "x4"  # second row, first panel: square pixels


def test_figure_errors_are_clear():
    image, cam = _image_and_map()
    with pytest.raises(ValueError, match="differs from the image"):
        overlay_figure(image, cam[:3])
    with pytest.raises(ValueError, match="opacity"):
        overlay_figure(image, cam, opacity=2)
    with pytest.raises(ValueError, match="Unknown colormap"):
        overlay_figure(image, cam, colormap="nope")
    with pytest.raises(ValueError, match="at least one method"):
        methods_figure(image, {})
