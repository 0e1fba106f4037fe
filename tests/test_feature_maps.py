"""Tests for vizlib.feature_maps: the montage's tiles and colour scale, rankings, statistics, the overview."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vizlib import activations
from vizlib import feature_maps as fm
from vizlib import receptive_field as R
from vizlib.activations import LayerInfo

WHITE = np.array([255, 255, 255], dtype=np.uint8)


def _levels_image(levels: np.ndarray, upscale: int, colormap: str = "viridis") -> np.ndarray:
    """What a tile must look like: each level through the LUT, repeated ``upscale`` times each way."""
    return fm.colormap_lut(colormap)[levels].repeat(upscale, axis=0).repeat(upscale, axis=1)


def _separators(m: fm.Montage) -> np.ndarray:
    mask = np.ones(m.image.shape[:2], dtype=bool)
    for i in range(m.layout.count):
        top, left, bottom, right = m.layout.tile_box(i)
        mask[top:bottom, left:right] = False
    return mask


# ------------------------------------------------------------------------------------------- colours


def test_luts_are_the_published_maps_and_get_lighter():
    viridis, cividis = fm.colormap_lut("viridis"), fm.colormap_lut("cividis")
    assert viridis.shape == (256, 3) and viridis.dtype == np.uint8
    np.testing.assert_array_equal(viridis[0], [68, 1, 84])  # matplotlib's viridis ends
    np.testing.assert_array_equal(viridis[255], [253, 231, 37])
    for lut in (viridis, cividis):
        luma = lut.astype(float) @ [0.299, 0.587, 0.114]
        assert np.all(np.diff(luma) > -1.0) and luma[-1] - luma[0] > 150  # lightness rises: readable in gray
    assert not viridis.flags.writeable
    with pytest.raises(fm.FeatureMapError, match="viridis, cividis"):
        fm.colormap_lut("jet")


# ------------------------------------------------------------------------------------------- montage


def test_tile_i_is_channel_i_on_the_shared_scale(rng):
    values = rng.integers(0, 256, (7, 3, 4)).astype(np.float32)
    values[0, 0, 0], values[6, 2, 3] = 0, 255  # the layer's range is exactly 0..255: level == value
    m = fm.montage(values, upscale=3, columns=3)
    assert m.layout == fm.MontageLayout(count=7, rows=3, columns=3, tile_height=9, tile_width=12, gap=1, upscale=3)
    assert m.image.shape == (3 * 9 + 2, 3 * 12 + 2, 3) and m.image.dtype == np.uint8
    assert m.channels == tuple(range(7))
    for i in range(7):
        top, left, bottom, right = m.layout.tile_box(i)
        np.testing.assert_array_equal(m.image[top:bottom, left:right], _levels_image(values[i].astype(int), 3))
    assert (m.image[_separators(m)] == WHITE).all()  # separators and the two empty cells of the last row
    np.testing.assert_array_equal(m.lo, np.zeros(7))
    np.testing.assert_array_equal(m.hi, np.full(7, 255.0))


def test_per_channel_scale_uses_each_channels_own_range(rng):
    steps = rng.integers(0, 256, (3, 4, 4))
    steps[:, 0, 0], steps[:, 3, 3] = 0, 255
    lo, hi = np.array([-5.0, 0.0, 100.0]), np.array([5.0, 0.001, 612.0])
    values = (lo[:, None, None] + (hi - lo)[:, None, None] * steps / 255.0).astype(np.float32)
    m = fm.montage(values, scale="channel", upscale=1, colormap="cividis")
    for i in range(3):
        top, left, bottom, right = m.layout.tile_box(i)
        np.testing.assert_array_equal(m.image[top:bottom, left:right], _levels_image(steps[i], 1, "cividis"))
    np.testing.assert_allclose(m.lo, lo, rtol=1e-6)
    np.testing.assert_allclose(m.hi, hi, rtol=1e-6)


def test_levels_round_half_up_and_constant_channels_draw_at_zero():
    values = np.zeros((2, 1, 4), dtype=np.float32)
    values[0, 0] = [0.0, 0.5, 1.5, 255.0]  # -> levels 0, 1, 2, 255 (floor(x + 0.5))
    values[1, 0] = 7.0  # constant: level 0 on its own scale
    shared = fm.montage(values, upscale=1, columns=2)
    np.testing.assert_array_equal(shared.image[0, :4], fm.colormap_lut()[[0, 1, 2, 255]])
    per_channel = fm.montage(values, scale="channel", upscale=1, columns=2)
    np.testing.assert_array_equal(per_channel.image[0, 5:9], fm.colormap_lut()[[0, 0, 0, 0]])


def test_order_picks_tiles_but_the_shared_scale_stays_the_whole_layer():
    values = np.stack([np.full((2, 2), v, dtype=np.float32) for v in (0.0, 51.0, 255.0)])
    m = fm.montage(values, order=[1, 0], upscale=1)
    assert m.channels == (1, 0)
    np.testing.assert_array_equal(m.image[0, 0], fm.colormap_lut()[51])
    np.testing.assert_array_equal(m.image[0, 3], fm.colormap_lut()[0])
    with pytest.raises(fm.FeatureMapError, match="between 0 and 2"):
        fm.montage(values, order=[3])


def test_non_finite_values_are_drawn_as_zero():
    values = np.array([[[np.nan, 10.0], [np.inf, 0.0]]], dtype=np.float32)
    m = fm.montage(values, upscale=1)
    lut = fm.colormap_lut()
    np.testing.assert_array_equal(m.image[:, :, :], lut[[[0, 255], [0, 0]]])


def test_torch_tensors_are_accepted():
    values = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    np.testing.assert_array_equal(fm.montage(values).image, fm.montage(values.numpy()).image)


@pytest.mark.parametrize(
    ("shape", "scale"),
    [((0, 3, 3), "shared"), ((3, 3), "shared"), ((2, 3, 3), "log")],
)
def test_bad_montage_input_says_what_to_do(shape, scale):
    with pytest.raises(fm.FeatureMapError):
        fm.montage(np.zeros(shape, dtype=np.float32), scale=scale)


def test_automatic_layout_is_square_readable_and_fits_streamlit():
    small = fm.montage_layout(512, 7, 7)
    assert (small.upscale, small.columns, small.rows) == (4, 23, 23)
    assert small.width == small.height == 23 * 28 + 22
    big = fm.montage_layout(64, 112, 112)
    assert (big.upscale, big.columns, big.width) == (1, 8, 8 * 112 + 7)
    wide = fm.montage_layout(64, 224, 224)  # VGG's first layers: columns capped at the width limit
    assert wide.width <= fm.MAX_MONTAGE_WIDTH and wide.columns == 6 and wide.rows == 11
    many = fm.montage_layout(2048, 7, 7)
    assert many.width <= fm.MAX_MONTAGE_WIDTH and many.rows * many.columns >= 2048
    for i in (0, 5, 511):
        top, left, _, _ = small.tile_box(i)
        assert small.tile_at(top, left) == i and small.tile_at(top + 27, left + 27) == i
    assert small.tile_at(28, 0) is None  # a separator row


def test_montage_is_fast_enough_for_a_layer_switch(rng):
    # The 50 ms targets are measured in benchmarks/bench_extraction.py; this only guards against a
    # per-channel Python loop creeping back in (which takes ~10x longer on 2048 channels).
    import time

    values = rng.random((2048, 7, 7), dtype=np.float32)
    fm.montage(values)
    start = time.perf_counter()
    fm.montage(values, scale="channel")
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------------------------- ranking


def test_rank_by_mean_and_by_max_with_stable_ties():
    maps = np.zeros((4, 2, 2), dtype=np.float32)
    maps[0] = [[1, 1], [1, 1]]  # mean 1,    max 1
    maps[1] = [[0, 0], [0, 8]]  # mean 2,    max 8
    maps[2] = [[1, 1], [1, 1]]  # mean 1,    max 1 (ties with channel 0)
    maps[3] = [[3, 3], [3, -1]]  # mean 2,   max 3 (ties with channel 1 on the mean)
    np.testing.assert_array_equal(fm.rank_channels(maps, "mean"), [1, 3, 0, 2])
    np.testing.assert_array_equal(fm.rank_channels(maps, "max"), [1, 3, 0, 2])
    np.testing.assert_array_equal(fm.rank_channels(maps, "mean", descending=False), [0, 2, 1, 3])
    assert fm.top_channels(maps, 2, "max") == ((1, 8.0), (3, 3.0))
    np.testing.assert_allclose(fm.channel_scores(maps, "mean"), [1, 2, 1, 2])
    with pytest.raises(fm.FeatureMapError, match="mean, max"):
        fm.rank_channels(maps, "median")
    with pytest.raises(fm.FeatureMapError, match="at least 1"):
        fm.top_channels(maps, 0)


def test_ranking_matches_a_plain_python_sort(rng):
    maps = rng.standard_normal((50, 5, 6)).astype(np.float32)
    expected = sorted(range(50), key=lambda c: -float(np.mean(maps[c], dtype=np.float64)))
    np.testing.assert_array_equal(fm.rank_channels(maps, "mean"), expected)


# ------------------------------------------------------------------------------------------- statistics


def test_channel_stats_sparsity_and_histogram():
    maps = np.zeros((2, 2, 5), dtype=np.float32)
    maps[1] = [[0, 0, 1, 2, 3], [-1, 4, 0, 5, 6]]  # 4 of 10 values <= 0
    stats = fm.channel_stats(maps, 1, bins=7)
    assert stats.channel == 1
    assert stats.sparsity == pytest.approx(0.4)
    assert (stats.min, stats.max, stats.mean) == (-1.0, 6.0, pytest.approx(2.0))
    assert stats.std == pytest.approx(np.std(maps[1]))
    assert stats.counts.sum() == 10 and len(stats.edges) == 8
    np.testing.assert_array_equal(stats.counts, [1, 3, 1, 1, 1, 1, 2])
    assert fm.channel_stats(maps, 0).sparsity == 1.0  # all zeros: a dead ReLU channel
    with pytest.raises(fm.FeatureMapError, match="channels 0 to 1"):
        fm.channel_stats(maps, 2)


def test_layer_summary_is_per_channel():
    maps = np.array([[[0, 1], [2, 3]], [[-4, 0], [0, 8]]], dtype=np.float32)
    s = fm.layer_summary(maps)
    np.testing.assert_allclose(s.mean, [1.5, 1.0])
    np.testing.assert_allclose(s.max, [3, 8])
    np.testing.assert_allclose(s.sparsity, [0.25, 0.75])
    assert (s.low, s.high, s.layer_sparsity) == (-4.0, 8.0, 0.5)


# ------------------------------------------------------------------------------------------- the layers


def _info(name: str, stage: str, shape: tuple[int, ...], type_: str = "Conv2d") -> LayerInfo:
    return LayerInfo(name=name, type=type_, stage=stage, output_shape=shape, params=0, depth=name.count(".") + 1)


def test_overview_one_row_per_stage_with_the_truly_strongest_channels(rng):
    table = [
        _info("conv1", "conv1", (6, 8, 8)),
        _info("layer1.0.conv", "layer1", (6, 8, 8)),
        _info("layer1.0.relu", "layer1", (6, 8, 8), "ReLU"),
        _info("layer1.0.bn", "layer1", (6, 8, 8), "BatchNorm2d"),  # after the activation: not the one shown
        _info("layer2.0.conv", "layer2", (10, 4, 4)),  # no activation in the stage: its last spatial layer
        _info("pool", "pool", (10, 1, 1), "AdaptiveAvgPool2d"),  # no spatial map: no row
        _info("fc", "fc", (5,), "Linear"),
    ]
    maps = {row.name: rng.standard_normal(row.output_shape).astype(np.float32) for row in table[:-1]}
    rows = fm.network_overview(maps, table, k=3)
    assert [(r.stage, r.layer) for r in rows] == [("conv1", "conv1"), ("layer1", "layer1.0.relu"),
                                                  ("layer2", "layer2.0.conv")]
    for row in rows:
        means = {c: float(maps[row.layer][c].mean()) for c in range(maps[row.layer].shape[0])}
        strongest = sorted(means, key=means.get, reverse=True)[:3]
        assert row.channels == tuple(strongest)
        assert row.scores == pytest.approx([means[c] for c in strongest])
        np.testing.assert_array_equal(row.maps, maps[row.layer][strongest])
    by_max = fm.network_overview(maps, table, k=2, by="max")
    peak = maps["layer2.0.conv"].reshape(10, -1).max(axis=1)
    assert by_max[2].channels == tuple(np.argsort(-peak, kind="stable")[:2])


def test_overview_splits_a_flat_stack_after_each_downsampling_pool(rng):
    table = [
        _info("features.0", "features", (4, 16, 16)),
        _info("features.1", "features", (4, 16, 16), "ReLU"),
        _info("features.2", "features", (4, 8, 8), "MaxPool2d"),
        _info("features.3", "features", (8, 8, 8)),
        _info("features.4", "features", (8, 8, 8), "MaxPool2d"),  # stride 1: no split
        _info("features.5", "features", (8, 4, 4), "MaxPool2d"),
        _info("avgpool", "avgpool", (8, 4, 4), "AdaptiveAvgPool2d"),
    ]
    maps = {row.name: rng.random(row.output_shape, dtype=np.float32) for row in table}
    rows = fm.network_overview(maps, table, k=20)
    assert [(r.stage, r.layer) for r in rows] == [
        ("features", "features.1"), ("features (2)", "features.5"), ("avgpool", "avgpool")
    ]
    assert len(rows[0].channels) == 4  # k larger than the layer: all channels


def test_compute_activations_runs_one_forward_pass(tiny_loaded, monkeypatch, rng):
    activations.layer_table(tiny_loaded)  # its own forward pass on zeros, cached per model
    calls = []
    real = activations.run_extractor
    monkeypatch.setattr(activations, "run_extractor", lambda *a, **k: calls.append(1) or real(*a, **k))
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    acts = fm.compute_activations(tiny_loaded, image)
    assert len(calls) == 1
    assert [row.name for row in acts.layers] == ["0", "1", "2", "3", "4", "5"]  # flatten and linear are 1-D
    expected = activations.extract(tiny_loaded, image, ["0", "4"])
    np.testing.assert_array_equal(acts["0"], expected["0"].numpy())
    np.testing.assert_array_equal(acts["4"], expected["4"].numpy())
    assert not acts["0"].flags.writeable
    assert acts.info("3").output_shape == (6, 2, 2)
    assert acts.nbytes == sum(4 * int(np.prod(r.output_shape)) for r in acts.layers)
    with pytest.raises(fm.FeatureMapError, match="layer table"):
        acts["7"]
    rows = fm.network_overview(acts, k=2)
    assert [r.stage for r in rows] == ["0", "1", "2", "3", "4"]  # the 1x1 pool has no row


def test_layer_grouping_default_layer_and_display_rows(tiny_loaded):
    table = activations.layer_table(tiny_loaded)
    groups = fm.layers_by_stage(table)
    assert list(groups) == ["0", "1", "2", "3", "4", "5"]
    assert fm.default_layer(table) == "1"  # the first ReLU
    rows = fm.layer_rows(table)
    assert list(rows[0]) == ["Layer", "Stage", "Type", "Output shape", "Parameters"]
    assert rows[0] == {"Layer": "0", "Stage": "0", "Type": "Conv2d", "Output shape": "4 × 8 × 8",
                       "Parameters": 4 * 3 * 9 + 4}
    assert rows[-1]["Output shape"] == "5"
    # the receptive-field column, by hand: 3x3 conv (pad 1), 2x2 max pool, 3x3 conv, global pool, flatten, linear
    with_rf = fm.layer_rows(table, receptive_fields=R.receptive_fields(tiny_loaded, 8, every_layer=True))
    assert list(with_rf[0]) == ["Layer", "Stage", "Type", "Output shape", "Parameters", "Receptive field"]
    assert [r["Receptive field"] for r in with_rf] == [
        "3 px, stride 1", "3 px, stride 1", "4 px, stride 2", "8 px, stride 2", "8 px, stride 2",
        "whole image", "whole image", "whole image",
    ]  # fmt: skip
    assert [{k: v for k, v in r.items() if k != "Receptive field"} for r in with_rf] == rows  # others unchanged
    oblong = R.ReceptiveField((7, 1), 1, (3, 0), 8, 8, ((0, 7), (0, 7)))
    assert fm.layer_rows(table[:2], receptive_fields={"0": oblong})[0]["Receptive field"] == "7×1 px, stride 1"
    assert fm.layer_rows(table[:2], receptive_fields={"0": oblong})[1]["Receptive field"] is None  # no entry
    with pytest.raises(fm.FeatureMapError, match="no layer with a"):
        fm.default_layer([_info("fc", "fc", (5,), "Linear")])


# ------------------------------------------------------------------------------------------- downloads


def test_png_and_npy_round_trip(rng):
    values = rng.standard_normal((5, 4, 3)).astype(np.float32)
    image = fm.montage(values).image
    decoded = cv2.imdecode(np.frombuffer(fm.encode_png(image), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(decoded, image)
    import io

    loaded = np.load(io.BytesIO(fm.encode_npy(torch.from_numpy(values))), allow_pickle=False)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values)
    with pytest.raises(fm.FeatureMapError, match="uint8 RGB"):
        fm.encode_png(values)


@pytest.mark.parametrize("settings", [{"filters": False}, {"filters": "sub", "rle": True}, {"rle": True},
                                      {"filters": "sub"}, {"compression": 6}])
def test_every_png_setting_is_lossless(rng, settings):
    photo = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    raw = fm.encode_png(photo, **settings)
    decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(decoded, photo)


def test_png_filter_settings_are_checked(rng):
    with pytest.raises(ValueError, match="'sub'"):
        fm.encode_png(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), filters="paeth")


def _png_pixels(raw: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.mark.parametrize("scale, colormap, count", [("shared", "viridis", 7), ("channel", "cividis", 9),
                                                     ("shared", "cividis", 1)])
def test_montage_png_is_a_palette_png_of_the_same_pixels(rng, scale, colormap, count):
    values = rng.standard_normal((count, 5, 6)).astype(np.float32)  # 30 values a tile: most levels unused
    pic = fm.montage(values, scale=scale, colormap=colormap, columns=3)
    raw = pic.png()
    assert raw[25] == 3  # IHDR's colour type: palette
    np.testing.assert_array_equal(_png_pixels(raw), pic.image)
    indices, palette = pic.indexed
    np.testing.assert_array_equal(palette[indices], pic.image)


def test_montage_png_is_a_palette_png_even_when_every_level_is_used():
    """The colormaps have fewer than 256 distinct colours (OpenCV's viridis 254): the separator always fits."""
    values = np.arange(256, dtype=np.float32).reshape(1, 16, 16)  # every level once
    pic = fm.montage(np.concatenate([values, values, values]), scale="shared", columns=2)  # an empty cell too
    raw = pic.png()
    assert raw[25] == 3
    np.testing.assert_array_equal(_png_pixels(raw), pic.image)


def test_montage_png_falls_back_to_rgb_when_the_colours_overflow_a_palette(monkeypatch):
    import importlib

    montage_module = importlib.import_module("vizlib.feature_maps.montage")  # the package re-exports the function

    rainbow = np.stack([np.arange(256), np.arange(256)[::-1], np.full(256, 7)], axis=1).astype(np.uint8)
    monkeypatch.setattr(montage_module, "colormap_lut", lambda name: rainbow)  # 256 colours + the separator
    values = np.arange(256, dtype=np.float32).reshape(1, 16, 16)
    pic = fm.montage(np.concatenate([values, values]), scale="shared")
    assert pic.indexed is None
    raw = pic.png()
    assert raw[25] == 2  # RGB
    np.testing.assert_array_equal(_png_pixels(raw), pic.image)


def test_palette_form_is_made_only_when_asked_for(rng, tiny_loaded, monkeypatch):
    """The network overview pastes each row montage's RGB image: it never builds the palette form, which
    ``png()`` (and ``indexed``) still make, once a montage, with the same pixels."""
    import importlib

    montage_module = importlib.import_module("vizlib.feature_maps.montage")
    made = []
    real = montage_module._indexed
    monkeypatch.setattr(montage_module, "_indexed", lambda *a: made.append(1) or real(*a))
    acts = fm.compute_activations(tiny_loaded, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    rows = fm.network_overview(acts, k=2)
    assert fm.overview_picture(rows).image.size and made == []
    pic = fm.montage(rng.standard_normal((7, 5, 6)).astype(np.float32), columns=3)
    assert made == []
    raw = pic.png()
    assert made == [1] and raw[25] == 3  # a palette PNG
    np.testing.assert_array_equal(_png_pixels(raw), pic.image)
    indices, palette = pic.indexed
    assert pic.png() == raw and made == [1]  # made once, kept
    np.testing.assert_array_equal(palette[indices], pic.image)


def test_indexed_png_checks_its_input(rng):
    from vizlib.encoding import encode_indexed_png

    palette = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="past the palette"):
        encode_indexed_png(np.full((2, 2), 4, np.uint8), palette)
    with pytest.raises(ValueError, match="uint8 indices"):
        encode_indexed_png(np.zeros((2, 2), np.int32), palette)
    with pytest.raises(ValueError, match="palette"):
        encode_indexed_png(np.zeros((2, 2), np.uint8), np.zeros((257, 3), np.uint8))
