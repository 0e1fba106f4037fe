"""ui.layer_cache.layer_activations: what a page keeps does not keep the activations alive after its run.

Streamlit keeps every widget's metadata for the whole session, and with it the page run's globals (through the
functions the page defined), so a page's ``acts`` outlives its run; the arrays must not.
"""

from __future__ import annotations

import gc
import threading
import weakref
from types import MappingProxyType, SimpleNamespace

import numpy as np
import pytest

from ui import layer_cache
from vizlib import feature_maps


@pytest.fixture
def computed(monkeypatch):
    """compute_activations replaced by a fake that makes a 4 MB layer and records every call."""
    calls: list[weakref.ref] = []

    def fake(loaded, image):
        value = np.full((16, 256, 256), float(image[0, 0, 0]), np.float32)
        value.flags.writeable = False
        acts = feature_maps.LayerActivations(loaded.name, (), MappingProxyType({"layer": value}))
        calls.append(weakref.ref(acts))
        return acts

    monkeypatch.setattr(layer_cache.feature_maps, "compute_activations", fake)
    layer_cache.clear()
    yield calls
    layer_cache.clear()


LOADED = SimpleNamespace(name="fake-model", pretrained=True)


def _run(image_key: str, value: int, kept: list, during=None) -> None:
    """One page run in its own thread (as Streamlit's script thread): keeps what it got, like page globals."""

    def page() -> None:
        acts = layer_cache.layer_activations(LOADED, image_key, np.full((4, 4, 3), value, np.uint8))
        kept.append(acts)
        if during is not None:
            during(acts)

    thread = threading.Thread(target=page)
    thread.start()
    thread.join()


def test_a_finished_run_keeps_nothing_alive_once_the_cache_lets_go(computed):
    kept: list = []
    _run("a", 3, kept)
    assert len(computed) == 1 and computed[0]() is not None  # the cache holds it
    layer_cache.clear()  # evicted (as by newer images)
    gc.collect()
    assert computed[0]() is None  # the page's globals (kept) no longer hold the 4 MB
    assert kept[0]["layer"][0, 0, 0] == 3  # and still answer: fetched again
    assert len(computed) == 2


def test_a_run_keeps_its_activations_while_it_runs(computed):
    kept: list = []

    def evict_then_read(acts):
        layer_cache.clear()
        gc.collect()
        assert computed[0]() is not None  # held by this run's thread
        assert acts["layer"][0, 0, 0] == 7
        assert len(computed) == 1  # not computed again

    _run("b", 7, kept, during=evict_then_read)


def test_the_same_image_is_computed_once_for_every_session(computed):
    kept: list = []
    for _ in range(3):
        _run("c", 5, kept)
    assert len(computed) == 1
    assert [acts["layer"][0, 0, 0] for acts in kept] == [5, 5, 5]
    assert kept[0].nbytes == 16 * 256 * 256 * 4 and list(kept[0].maps) == ["layer"]


def test_a_thread_holds_at_most_a_few_images(computed):
    kept: list = []

    def many(_acts):
        for i in range(layer_cache.HELD_PER_THREAD + 3):
            layer_cache.layer_activations(LOADED, f"d{i}", np.full((4, 4, 3), i, np.uint8))
        layer_cache.clear()
        gc.collect()
        alive = sum(ref() is not None for ref in computed)
        assert alive == layer_cache.HELD_PER_THREAD

    _run("d-first", 1, kept, during=many)
