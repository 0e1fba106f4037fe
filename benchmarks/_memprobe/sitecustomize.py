"""A memory probe for the app's server process (benchmarks/bench_memory.py puts this folder on its PYTHONPATH).

Python imports ``sitecustomize`` at start-up; this one starts a daemon thread that waits for request files in
``$CNN_LENS_MEMPROBE`` (``req-<name>``) and answers each with ``<name>.json``: where the process's memory is,
by owner (Streamlit's caches, the app's own caches, sessions' state, media files, uploads), every numpy array
and torch tensor alive, glibc malloc's own accounting and /proc's. A request ``trim-<name>`` runs
``malloc_trim(0)`` first and reports both sides. Only for measurements: the app never imports it.
"""

from __future__ import annotations

import os

if os.environ.get("CNN_LENS_MEMPROBE"):
    import threading

    def _start() -> None:
        import memprobe  # the module next to this file

        threading.Thread(target=memprobe.serve, args=(os.environ["CNN_LENS_MEMPROBE"],), daemon=True,
                         name="memprobe").start()

    _start()
