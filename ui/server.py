"""Streamlit's own server, tuned for a class: settings that Streamlit has no option for.

* **Config files polled every few seconds, not five times a second.** Streamlit's server polls each
  ``config.toml`` it could read (the user's and the app's) every 0.2 s to reload its settings when they change,
  whatever ``server.fileWatcherType`` says: half of an idle server's CPU on this machine (2 of 4 ms a second,
  BENCHMARKS.md). A classroom server's settings do not change while it runs; ``CNN_LENS_CONFIG_POLL_S`` (default
  5 s) is how long a change may take to be seen.
"""

from __future__ import annotations

import os

__all__ = ["CONFIG_POLL_S", "slow_config_polling"]

#: Seconds between two looks at Streamlit's config files (Streamlit's own: 0.2).
CONFIG_POLL_S = 5.0


def slow_config_polling(seconds: float | None = None) -> float | None:
    """Make Streamlit's config-file watchers look every ``seconds`` (default ``CNN_LENS_CONFIG_POLL_S`` or 5 s).

    The watchers read the period before every look, so the running ones slow down too. Returns the period set,
    or ``None`` where this Streamlit has no such setting (then nothing changes).

    Raises:
        ValueError: ``seconds`` is not positive.
    """
    if seconds is None:
        seconds = float(os.environ.get("CNN_LENS_CONFIG_POLL_S", CONFIG_POLL_S))
    if not seconds > 0:
        raise ValueError(f"The config polling period must be positive, got {seconds}.")
    try:
        from streamlit.watcher import polling_path_watcher
    except ImportError:  # pragma: no cover - a Streamlit without the module
        return None
    if not hasattr(polling_path_watcher, "_POLLING_PERIOD_SECS"):
        return None
    polling_path_watcher._POLLING_PERIOD_SECS = seconds
    return seconds
