"""The server does not pay a full garbage collection per script run (about 200 ms with the models loaded)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
import tomllib
from streamlit.testing.v1 import AppTest

from tests.conftest import APP

ROOT = Path(APP).parent


def test_streamlit_does_not_collect_after_every_run():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


@pytest.mark.slow
def test_loading_a_shared_model_freezes_the_long_lived_objects():
    from ui import shared
    from ui.shared import shared_model

    gc.unfreeze()
    shared._FROZEN.clear()
    shared_model.clear()
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    frozen = gc.get_freeze_count()
    assert frozen > 100_000  # the modules and the model, at least
    gc.collect(2)
    # a full collection now traverses only what was made after the freeze: a small part of the heap
    assert len(gc.get_objects()) < frozen / 2, (len(gc.get_objects()), frozen)


@pytest.mark.slow
def test_the_startup_freeze_happens_once_and_an_evicted_model_is_freed():
    """A model the cache evicts, with the traced graphs vizlib made for it (reference cycles), is collected."""
    from ui import shared
    from vizlib import activations, images, models

    gc.unfreeze()
    shared._FROZEN.clear()
    shared.shared_model.clear()
    shared.shared_model(models.DEFAULT_MODEL, True)
    frozen_after_start = gc.get_freeze_count()
    assert frozen_after_start > 100_000

    probe = shared.shared_model("resnet18", False)
    image = images.load_gallery_image("cat")
    activations.extract(probe, image, activations.conv_layers(probe)[:4])  # a traced graph that holds conv1
    conv = weakref.ref(probe.model.conv1)
    del probe
    for name in ("alexnet", "googlenet", "mobilenet_v3_large", "efficientnet_b0"):  # 4 entries: resnet18 leaves
        shared.shared_model(name, False)
    assert gc.get_freeze_count() <= frozen_after_start  # later loads froze nothing (frozen objects may die)
    gc.collect()
    assert conv() is None, "the evicted model is still alive"
    shared.shared_model.clear()
