"""Tests for vizlib.feature_maps.glance: the network overview as one picture (tiles, scales, titles, numbers)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vizlib import feature_maps as fm
from vizlib.feature_maps import glance

WHITE = 255


def _ramp(h: int, w: int) -> np.ndarray:
    return np.arange(h * w, dtype=np.float32).reshape(h, w)


def _colours(values: np.ndarray, colormap: str = "viridis") -> np.ndarray:
    """By hand: each value's colour on its own min..max scale (level = floor(255 t + 0.5))."""
    lo, hi = float(values.min()), float(values.max())
    levels = np.floor(255 * (values.astype(np.float64) - lo) / (hi - lo) + 0.5).astype(np.int64)
    return fm.colormap_lut(colormap)[levels]


def _ink(region: np.ndarray) -> np.ndarray:
    """Pixels that are not white (text, tiles)."""
    return np.any(region != WHITE, axis=-1)


@pytest.fixture()
def two_rows() -> tuple[fm.OverviewRow, fm.OverviewRow]:
    # row 1: three 14x14 maps, the same ramp at three very different scales and offsets
    small = np.stack([_ramp(14, 14), 1000 * _ramp(14, 14) - 5, 0.001 * _ramp(14, 14) + 7])
    # row 2: two 112x112 maps, shown as every second value
    big = np.stack([_ramp(112, 112), -_ramp(112, 112)])
    return (
        fm.OverviewRow("a", "b", (9, 14, 14), (7, 1234, 56), (3.0, 2.0, 1.0), small),
        fm.OverviewRow("c", "d", (2, 112, 112), (0, 1), (2.0, 1.0), big),
    )


def test_tiles_lie_where_worked_out_by_hand_each_on_its_own_scale(two_rows):
    pic = fm.overview_picture(two_rows)
    image = pic.image
    # margin 4, title 20, tiles, labels 16, gap 10; 14x14 maps x4 and 112x112 maps every 2nd value: 56-px tiles
    assert image.shape[0] == 4 + (20 + 56 + 16) + 10 + (20 + 56 + 16) + 4
    ramp14 = _colours(_ramp(14, 14)).repeat(4, axis=0).repeat(4, axis=1)
    for j, left in enumerate((4, 62, 120)):  # gap 2 between 56-px tiles
        np.testing.assert_array_equal(image[24:80, left : left + 56], ramp14, err_msg=f"tile {j}")
    sampled = _ramp(112, 112)[::2, ::2]
    np.testing.assert_array_equal(image[126:182, 4:60], _colours(sampled))
    np.testing.assert_array_equal(image[126:182, 62:118], _colours(-sampled))
    # white between tiles, around them and after the last tile of each row
    assert (image[24:80, [60, 61, 118, 119]] == WHITE).all() and (image[24:80, 176:] == WHITE).all()
    assert (image[126:182, 118:] == WHITE).all() and (image[:, :4] == WHITE).all() and (image[-4:] == WHITE).all()
    assert (image[96:106] == WHITE).all()  # the gap between a row's channel numbers and the next title
    assert [r.tile_box(1) for r in pic.rows] == [(24, 62, 80, 118), (126, 62, 182, 118)]
    assert [r.stride for r in pic.rows] == [1, 2]


def test_the_default_tile_matches_the_old_figures_sampling(rng):
    """56-px tiles: a 112x112 map every second value, a 7x7 map each value as 8x8 pixels."""
    rows = (
        fm.OverviewRow("s1", "l1", (4, 112, 112), (0,), (1.0,), rng.random((1, 112, 112), dtype=np.float32)),
        fm.OverviewRow("s2", "l2", (4, 7, 7), (3,), (1.0,), rng.random((1, 7, 7), dtype=np.float32)),
    )
    pic = fm.overview_picture(rows, colormap="cividis")
    top, left, bottom, right = pic.rows[0].tile_box(0)
    np.testing.assert_array_equal(pic.image[top:bottom, left:right], _colours(rows[0].maps[0, ::2, ::2], "cividis"))
    top, left, bottom, right = pic.rows[1].tile_box(0)
    expected = _colours(rows[1].maps[0], "cividis").repeat(8, axis=0).repeat(8, axis=1)
    np.testing.assert_array_equal(pic.image[top:bottom, left:right], expected)


def test_width_is_the_widest_row_plus_margins():
    maps = np.stack([_ramp(14, 14) + c for c in range(8)])
    row = fm.OverviewRow("a", "b", (8, 14, 14), tuple(range(8)), (1.0,) * 8, maps)
    image = fm.overview_picture([row], tile=28).image
    assert image.shape == (4 + 20 + 28 + 16 + 4, 4 + 8 * 28 + 7 * 2 + 4, 3)


def _rendered(text: str, size: int) -> np.ndarray:
    """``text`` drawn with Pillow in the picture's font on its own: coverage cropped to the ink."""
    path = glance._font_file()
    font = ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)
    canvas = Image.new("L", (200, 40), 0)
    ImageDraw.Draw(canvas).text((10, 10), text, fill=255, font=font)
    cover = np.asarray(canvas)
    ys, xs = np.nonzero(cover)
    return cover[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _crop_ink(region: np.ndarray) -> np.ndarray:
    """The darkness of the text in ``region`` (255 - green channel), cropped to its ink."""
    dark = WHITE - region[:, :, 1].astype(np.int64)
    ys, xs = np.nonzero(dark)
    return dark[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def test_channel_numbers_are_drawn_centred_under_their_own_tiles(two_rows):
    pic = fm.overview_picture(two_rows)
    first = pic.rows[0]
    assert first.labels == ("#7", "#1234", "#56") and first.label_box == (80, 4, 96, 176)
    band = pic.image[80:96]
    for j, channel in enumerate((7, 1234, 56)):
        centre = 4 + 58 * j + 28
        half = 29  # half the distance between tile centres: a label stays under its own tile
        ink = _ink(band[:, centre - half : centre + half])
        xs = np.nonzero(ink.any(axis=0))[0] + centre - half
        assert abs((xs.min() + xs.max()) / 2 - (centre - 0.5)) <= 1.0, channel
        shown = _crop_ink(band[:, centre - half : centre + half])
        expected = _rendered(f"#{channel}", 11)
        assert shown.shape[1] == pytest.approx(expected.shape[1], abs=1), channel  # "#1234" is wider than "#7"
        assert shown.shape[0] == pytest.approx(expected.shape[0], abs=1), channel
    assert _ink(band[:, 176:]).sum() == 0
    # the ink is the text colour, where fully covered
    darkest = band.reshape(-1, 3)[np.argmin(band.sum(axis=-1))]
    assert tuple(darkest) == pytest.approx(glance.TEXT_COLOUR, abs=12)


def test_each_row_has_its_title_line_above_its_tiles(two_rows):
    pic = fm.overview_picture(two_rows)
    if glance._font_file():
        assert [r.title for r in pic.rows] == ["a · b · 9 × 14 × 14", "c · d · 2 × 112 × 112"]
    for row, (top, bottom) in zip(pic.rows, ((4, 24), (106, 126)), strict=True):
        assert row.title_box[:3] == (top, 4, bottom)
        ink = _ink(pic.image[top:bottom])
        xs = np.nonzero(ink.any(axis=0))[0]
        assert 4 <= xs.min() <= 6  # starts at the left margin
        shown, expected = _crop_ink(pic.image[top:bottom]), _rendered(row.title, 13)
        assert shown.shape == pytest.approx(expected.shape, abs=1)
    # the titles differ where their text differs: "a · b · 9" against "c · d · 2"
    assert not np.array_equal(pic.image[4:24, :40], pic.image[106:126, :40])


def test_each_text_is_drawn_once(two_rows):
    glance._text_ink.cache_clear()
    fm.overview_picture(two_rows)
    fm.overview_picture(two_rows, colormap="cividis")
    info = glance._text_ink.cache_info()
    # 2 titles + 5 labels drawn once; then only looked up (the titles twice a call: to size the row, to stamp)
    assert (info.misses, info.hits) == (7, 2 + 9)


def test_bad_input_gets_a_clear_error(two_rows):
    with pytest.raises(fm.FeatureMapError, match="No stages"):
        fm.overview_picture([])
    with pytest.raises(fm.FeatureMapError, match="tile"):
        fm.overview_picture(two_rows, tile=0)
    with pytest.raises(fm.FeatureMapError, match="colormap"):
        fm.overview_picture(two_rows, colormap="jet")


def test_the_picture_survives_png(two_rows):
    image = fm.overview_picture(two_rows).image
    raw = fm.encode_png(image, filters=False)
    decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(decoded, image)
