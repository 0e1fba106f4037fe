"""python -m vizlib.slides: each lesson's pictures are vizlib's arrays, pixel for pixel, with a progress bar."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vizlib import activations, cam, filters, images, models, overlay, slides
from vizlib import conv_arithmetic as C
from vizlib import feature_maps as fm


@pytest.fixture(scope="module")
def digits() -> models.LoadedModel:
    return models.load_model(models.DIGITS_MODEL, device="cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return images.load_gallery_image("cat")


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_every_lesson_writes_vizlib_pictures(digits, photo, tmp_path):
    stream = io.StringIO()
    written = slides.write_slides(digits, photo, tmp_path / "out", progress=slides.ProgressBar(6, stream))
    names = [p.name for p in written]
    assert all(p.is_file() and p.parent == tmp_path / "out" for p in written)
    seen = digits.resize(photo)
    factor = 448 // 28
    np.testing.assert_array_equal(_png(written[0]), np.repeat(np.repeat(seen, factor, 0), factor, 1))
    assert names[1] == "top5.png"
    layer = filters.first_conv(digits)
    grid = filters.filter_grid(filters.conv_weight(digits.model, layer), layer=layer, columns=8).image
    shown = _png(tmp_path / "out" / f"filters_{layer}.png")
    k = shown.shape[0] // grid.shape[0]
    np.testing.assert_array_equal(shown[::k, ::k], grid)
    convs = activations.conv_layers(digits)
    maps = activations.extract(digits, photo, [convs[0]])[convs[0]]
    montage = fm.montage(maps).image
    shown = _png(tmp_path / "out" / f"feature_maps_1_{convs[0]}.png")
    k = shown.shape[0] // montage.shape[0]
    np.testing.assert_array_equal(shown[::k, ::k], montage)
    target = models.classify(digits, seen, k=1).indices[0]
    blended = overlay.overlay(seen, cam.compute(digits, seen, target, ("gradcam",))["gradcam"], "jet", 0.5)
    shown = _png(tmp_path / "out" / "gradcam.png")
    np.testing.assert_array_equal(shown[::factor, ::factor], blended)
    gif = Image.open(tmp_path / "out" / "convolution_k3_p1_s2.gif")
    assert gif.n_frames == len(C.conv2d_frames(C.lecture_pattern(5), np.ones((3, 3)), s=2, p=1)) == 9
    assert names[-1] == "convolution_k3_p1_s2.gif"
    bar = stream.getvalue()
    assert bar.count("\r") == 6 and "6/6 convolution" in bar and bar.endswith("\n")
    assert "[" + "#" * 30 + "]" in bar


def test_receptive_field_box_is_drawn_where_vizlib_says(digits, photo, tmp_path):
    from vizlib import receptive_field as R

    (path, *_) = slides.write_slides(digits, photo, tmp_path, ["receptive-fields"])
    layer = activations.conv_layers(digits)[0]
    rf = R.receptive_fields(digits, digits.input_size)[layer]
    (top, bottom), (left, right) = rf.box(rf.output_hw[0] // 2, rf.output_hw[1] // 2)
    shown, k = _png(path), 448 // 28
    assert tuple(shown[top * k + 1, ((left + right) // 2) * k]) == (255, 200, 0)  # the top edge
    assert tuple(shown[(bottom + 1) * k - 2, ((left + right) // 2) * k]) == (255, 200, 0)  # the bottom edge
    assert tuple(shown[((top + bottom) // 2) * k, ((left + right) // 2) * k]) != (255, 200, 0)  # not filled


def test_command_line(tmp_path, capsys):
    out = tmp_path / "slides"
    status = slides.main(["--model", models.DIGITS_MODEL, "--image", "cat", "--out", str(out), "--device", "cpu",
                          "--lessons", "convolution", "predictions"])
    assert status == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["convolution_k3_p1_s2.gif", "picture.png", "top5.png"]
    assert captured.out.split() == [str(out / "convolution_k3_p1_s2.gif"), str(out / "picture.png"),
                                    str(out / "top5.png")]
    assert "2/2 predictions" in captured.err
    assert slides.main(["--model", "nope", "--out", str(out)]) == 2
    assert "error: Unknown model 'nope'" in capsys.readouterr().err
    assert slides.main(["--image", str(tmp_path / "missing.jpg"), "--out", str(out)]) == 2
    assert "neither a gallery photo" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        slides.main(["--lessons", "nope", "--out", str(out)])
    with pytest.raises(slides.SlidesError, match="choose from: predictions"):
        slides.write_slides(None, None, out, ["nope"])  # type: ignore[arg-type]
