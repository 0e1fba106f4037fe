"""The training lab's figures and downloads, from hand-made runs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from vizlib.figures import training_lab as LF
from vizlib.training_lab.fcn import ClassMap
from vizlib.training_lab.params import EXAMPLES
from vizlib.training_lab.shift import RobustnessCurve
from vizlib.training_lab.train import CurvePoint, FilterSnapshot, NetRun

RUN = NetRun("fashion_cnn", 11274, (CurvePoint(0.5, 1.25, 0.5), CurvePoint(1.0, 0.75, 0.625, 0.8125)))
SNAPS = tuple(FilterSnapshot(f"s{i}", i / 2, np.full((8, 5, 5), i - 1.0, np.float32)) for i in range(3))


def test_curves_csv_exact():
    assert LF.curves_csv({"fashion_cnn": RUN}) == (
        "net,epoch,train_loss,train_accuracy,test_accuracy\n"
        "fashion_cnn,0.5000,1.250000,0.500000,\n"
        "fashion_cnn,1.0000,0.750000,0.625000,0.812500\n"
    )


def test_curves_figure_has_loss_train_and_test_traces():
    fig = LF.curves_figure({"fashion_cnn": RUN, "fashion_mlp": RUN})
    assert len(fig.data) == 6
    assert list(fig.data[2].y) == [0.8125] and list(fig.data[0].y) == [1.25, 0.75]


def test_filter_tiles_layout_and_scale():
    weights = np.arange(2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2) - 4
    tiles = LF.filter_tiles(weights, columns=2)
    assert tiles.shape == (2, 5)
    assert np.isnan(tiles[:, 2]).all()
    np.testing.assert_allclose(tiles[:, :2], weights[0] / 4)
    np.testing.assert_allclose(tiles[:, 3:], weights[1] / 4)


def test_animation_strip_and_gif_have_one_frame_per_snapshot():
    assert len(LF.filters_animation(SNAPS).frames) == 3
    strip = LF.filters_strip(SNAPS)
    assert list(strip.layout.yaxis.ticktext) == ["s0", "s1", "s2"]
    gif = Image.open(io.BytesIO(LF.filters_gif(SNAPS)))
    assert gif.format == "GIF" and gif.n_frames == 3


def test_params_robustness_drag_and_class_map_figures():
    fig = LF.params_figure(EXAMPLES[2].comparison())
    assert list(fig.data[0].text) == ["4,026,613,760", "6,225,920", "380"]
    curve = RobustnessCurve("shift", (0, 1), {"fashion_cnn": (0.9, 0.8)}, 10)
    assert list(LF.robustness_figure(curve).data[0].y) == [0.9, 0.8]
    drag = LF.drag_figure({"fashion_cnn": np.eye(10)[3]}, [str(i) for i in range(10)], 3)
    assert drag.data[0].x[3] == "<b>3</b>"
    probs = np.zeros((10, 2, 3), np.float32)
    probs[7] = 1
    cmap = ClassMap(probs, np.array([1.5, 5.5]), np.array([1.5, 5.5, 9.5]), 4)
    fig = LF.class_map_figure(np.zeros((8, 12), np.uint8), cmap, [str(i) for i in range(10)])
    assert (np.asarray(fig.data[1].z) == 7).all()


def test_params_figure_carries_the_calculator_s_extremes():
    """100,000 x 100,000 x 1,024 inputs into 100,000 x 100,000 x 4,096 units: counts past 2**64 still serialize."""
    from vizlib.training_lab.params import compare

    comparison = compare((100_000, 100_000, 1024), (100_000, 100_000, 4096), 99)
    assert comparison.dense.weights > 2**64
    fig = LF.params_figure(comparison)
    sent = json.loads(fig.to_json())  # the app's engine (orjson) refused ints past 64 bits
    assert sent["data"][0]["x"][0] == pytest.approx(comparison.dense.weights, rel=1e-12)
    assert sent["data"][0]["text"][0] == f"{comparison.dense.total:,}"  # the exact count, as text
