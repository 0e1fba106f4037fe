"""The Feature maps page through AppTest: what it shows, and that switching layer or channel runs no forward pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page
from tests.conftest import plotly_array as _array
from tests.conftest import plotly_figure as _figure
from vizlib import activations, images, models
from vizlib import feature_maps as fm
from vizlib import receptive_field as R

pytestmark = pytest.mark.slow

PAGE = "pages/feature_maps.py"
STAGE_KEY = f"fm_stage::{models.DEFAULT_MODEL}"
TABLE_KEY = "fm_layer_table_open"  # the layer table's expander


def _page() -> AppTest:
    return open_page(PAGE, timeout=180)


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.main.caption)


@pytest.fixture(scope="module")
def cat_activations() -> fm.LayerActivations:
    """What the page must show for the session's default photo (the gallery's first), computed here."""
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    photo = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    return fm.compute_activations(loaded, photo)


def _shown_pictures(monkeypatch) -> list[np.ndarray]:
    """Every picture the page hands Streamlit's media storage (st.image), decoded, in order."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    shown: list[np.ndarray] = []
    real = MemoryMediaFileStorage.load_and_get_id

    def recording(self, data, mimetype, *args, **kwargs):
        if mimetype == "image/png" and isinstance(data, bytes):
            shown.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1])
        return real(self, data, mimetype, *args, **kwargs)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return shown


def test_opens_on_the_default_layer_with_montage_channel_overview_and_table(cat_activations, monkeypatch):
    pictures = _shown_pictures(monkeypatch)
    at = _page()
    assert at.title[0].value == "Feature maps"
    layer = fm.default_layer(cat_activations.layers)
    assert (layer, at.selectbox(key=STAGE_KEY).value) == ("_swish", "_swish")
    values = cat_activations[layer]
    layout = fm.montage_layout(*values.shape)
    assert f"All {values.shape[0]} channels of **{layer}**" in _captions(at)
    assert f"{layout.width}×{layout.height} px" in _captions(at)
    assert len(at.main.get("image")) == 3  # the montage, the top-k montage and the network overview
    assert [b.label for b in at.get("download_button")] == ["Montage (PNG)", "Activations (.npy)"]
    # the channel shown first is the strongest by mean, with its exact values on the heatmap
    strongest = int(fm.rank_channels(values, "mean")[0])
    assert at.selectbox(key=f"fm_channel::{layer}").value == strongest
    heat = _figure(at, "fm_heatmap")["data"][0]
    np.testing.assert_array_equal(_array(heat["z"]), values[strongest])
    assert (heat["zmin"], heat["zmax"]) == pytest.approx((float(values.min()), float(values.max())))  # shared
    stats = fm.channel_stats(values, strongest)
    assert at.metric[0].label == "Sparsity" and at.metric[0].value == f"{stats.sparsity:.1%}"
    hist = _figure(at, "fm_histogram")["data"][0]
    np.testing.assert_array_equal(_array(hist["y"]), stats.counts)
    overlay = _figure(at, "fm_overlay")["data"]
    assert [t["type"] for t in overlay] == ["image", "heatmap"] and overlay[1]["opacity"] == 0.6
    # the overview: one picture, a row per stage with its truly strongest channels, as vizlib draws it
    rows = fm.network_overview(cat_activations, k=8)
    overview = fm.overview_picture(rows)
    assert len(overview.rows) == len(rows) == 21 and overview.rows[0].labels == tuple(f"#{c}" for c in rows[0].channels)
    (shown,) = [p for p in pictures if p.shape == overview.image.shape]
    # the page's forward pass may differ from this one in the last float bit: a colour level off by one, rarely
    assert np.mean(np.all(shown == overview.image, axis=-1)) > 0.9999
    assert np.abs(shown.astype(np.int16) - overview.image).max() <= 4
    # the layer table waits behind its labelled expander: nothing of it is sent until the student opens it
    (box,) = [e for e in at.main.expander if "Every layer" in e.label]
    assert "when you open it" in box.label and not at.dataframe
    at.session_state[TABLE_KEY] = True  # the student opens it
    at.run()
    assert not at.exception, at.exception
    # the layer table lists every layer that runs
    table = at.dataframe[0].value
    assert list(table.columns) == ["Layer", "Stage", "Type", "Output shape", "Parameters", "Receptive field"]
    assert len(table) > len(cat_activations.layers) and table.iloc[0]["Layer"] == "_conv_stem"
    # the receptive-field column: the exact numbers of the loaded model, for every layer
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    shown = dict(zip(table["Layer"], table["Receptive field"], strict=True))
    for layer in ("_conv_stem", "_blocks.4._depthwise_conv", "_blocks.15._project_conv"):
        rf = R.receptive_field(loaded, layer)
        assert shown[layer] == f"{rf.size} px, stride {rf.stride}", layer
    assert shown["_conv_stem"] == "3 px, stride 2" and shown["_fc"] == "whole image"


def test_switching_layer_channel_and_options_runs_no_new_forward_pass(monkeypatch):
    from ui import layer_cache as _layer_cache

    _layer_cache.clear()
    passes = []
    real = activations.run_extractor

    def counting(loaded, x, layers):
        if bool(x.abs().sum() > 0):  # layer_table's shape probe runs on a zero image: not a page's pass
            passes.append(len(layers))
        return real(loaded, x, layers)

    monkeypatch.setattr(activations, "run_extractor", counting)
    at = _page()
    assert len(passes) == 1 and passes[0] > 100  # one pass for every layer of the table
    at.selectbox(key=STAGE_KEY).set_value("_blocks.4").run()
    layer_key = f"fm_layer::{models.DEFAULT_MODEL}::_blocks.4"
    assert at.selectbox(key=layer_key).value == "_blocks.4._bn2"  # a stage opens on its output
    at.selectbox(key=layer_key).set_value("_blocks.4._depthwise_conv").run()
    at.selectbox(key="fm_channel::_blocks.4._depthwise_conv").set_value(17).run()
    at.radio(key="fm_sort").set_value("Max activation").run()
    at.radio(key="fm_scale").set_value("Per channel").run()
    at.slider(key="fm_opacity").set_value(0.2).run()
    assert not at.exception, at.exception
    assert len(passes) == 1
    assert "All 240 channels of **_blocks.4._depthwise_conv**" in _captions(at)


def test_sort_by_max_per_channel_scale_and_top_k(cat_activations):
    at = _page()
    at.selectbox(key=STAGE_KEY).set_value("_blocks.11").run()
    layer = f"fm_layer::{models.DEFAULT_MODEL}::_blocks.11"
    at.selectbox(key=layer).set_value("_blocks.11._swish").run()
    at.radio(key="fm_sort").set_value("Max activation").run()
    at.radio(key="fm_scale").set_value("Per channel").run()
    assert not at.exception, at.exception
    values = cat_activations["_blocks.11._swish"]
    by_max = [int(c) for c in fm.rank_channels(values, "max")]
    channel = at.selectbox(key="fm_channel::_blocks.11._swish")
    assert list(channel.options)[:3] == [channel.format_func(c) for c in by_max[:3]]
    chosen = int(fm.rank_channels(values, "mean")[0])
    assert channel.value == chosen  # re-sorting keeps the channel the user is looking at
    heat = _figure(at, "fm_heatmap")["data"][0]
    assert (heat["zmin"], heat["zmax"]) == pytest.approx((float(values[chosen].min()), float(values[chosen].max())))
    assert "strongest maximum first" in _captions(at) and "its own scale" in _captions(at)
    at.slider(key="fm_top_k").set_value(3).run()
    top = [c for c, _ in fm.top_channels(values, 3, "max")]
    assert f"The 3 strongest channels by spatial max, strongest first: {', '.join(map(str, top))}." in _captions(at)
    bars = _figure(at, "fm_scores")["data"][0]
    assert bars["y"] == [f"channel {c}" for c in top][::-1]


def test_a_model_that_cannot_be_traced_gets_a_message(monkeypatch):
    from ui import layer_cache as _layer_cache

    _layer_cache.clear()

    def refuse(loaded):
        raise activations.ExtractionError("MobileNetV3 can't be traced with torch.fx (test).")

    monkeypatch.setattr(activations, "layer_table", refuse)
    at = _page()
    assert "can't be traced" in at.error[0].value and "Pick another model" in at.error[0].value
    _layer_cache.clear()
