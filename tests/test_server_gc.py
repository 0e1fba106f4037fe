"""The server does not pay a full garbage collection per script run (about 200 ms with the models loaded)."""

from __future__ import annotations

import gc
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
    from ui.shared import shared_model

    gc.unfreeze()
    shared_model.clear()
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    frozen = gc.get_freeze_count()
    assert frozen > 100_000  # the modules and the model, at least
    gc.collect(2)
    # a full collection now traverses only what was made after the freeze: a small part of the heap
    assert len(gc.get_objects()) < frozen / 2, (len(gc.get_objects()), frozen)
