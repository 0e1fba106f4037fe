"""ui.server: Streamlit's config-file watchers slowed down for a classroom server."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.watcher import polling_path_watcher

from tests.conftest import APP
from ui import server


@pytest.fixture
def restore_period():
    before = polling_path_watcher._POLLING_PERIOD_SECS
    yield
    polling_path_watcher._POLLING_PERIOD_SECS = before


def test_the_period_comes_from_the_argument_or_the_environment(restore_period, monkeypatch):
    assert server.slow_config_polling(2.5) == 2.5
    assert polling_path_watcher._POLLING_PERIOD_SECS == 2.5
    monkeypatch.setenv("CNN_LENS_CONFIG_POLL_S", "7")
    assert server.slow_config_polling() == 7.0
    assert polling_path_watcher._POLLING_PERIOD_SECS == 7.0
    monkeypatch.delenv("CNN_LENS_CONFIG_POLL_S")
    assert server.slow_config_polling() == server.CONFIG_POLL_S


@pytest.mark.parametrize("bad", [0, -1.0])
def test_a_bad_period_is_refused(restore_period, bad):
    with pytest.raises(ValueError, match="positive"):
        server.slow_config_polling(bad)


def test_the_app_slows_the_polling(restore_period):
    polling_path_watcher._POLLING_PERIOD_SECS = 0.2  # Streamlit's own
    AppTest.from_file(APP, default_timeout=120).run()
    assert polling_path_watcher._POLLING_PERIOD_SECS == server.CONFIG_POLL_S
