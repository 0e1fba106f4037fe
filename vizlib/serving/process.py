"""Process-wide settings for a server that runs many sessions' model passes at once.

* **One intra-op thread per torch call** (``CNN_LENS_TORCH_THREADS``, default 1). Streamlit runs every
  session's script in its own thread, and each thread that calls torch gets its own pool of intra-op
  threads: five sessions at once on a 2-core machine made ten busy threads that spin while they wait for
  each other. With one thread per call, concurrent sessions use the cores without that waste
  (``benchmarks/bench_load.py --compare``); one student's passes (tens of milliseconds) hardly notice.
* **Few malloc arenas** (``CNN_LENS_MALLOC_ARENAS``, default 2). glibc gives each busy thread its own arena
  and returns little of it to the system: with thirty sessions' threads the server's resident memory grew
  by gigabytes of free-but-kept pages. Two arenas keep it near what is really in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

import torch

__all__ = ["configure_process"]

_M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h
_done = False
_lock = threading.Lock()


def _set_arenas(count: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, count))
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False


def configure_process() -> dict[str, int]:
    """Apply the settings once per process (later calls do nothing); returns what was set.

    Environment:
        CNN_LENS_TORCH_THREADS: torch intra-op threads per call (0 leaves torch's default).
        CNN_LENS_MALLOC_ARENAS: glibc malloc arenas (0 leaves glibc's default).
    """
    global _done
    with _lock:
        if _done:
            return {}
        _done = True
        applied = {}
        threads = int(os.environ.get("CNN_LENS_TORCH_THREADS", "1"))
        if threads > 0:
            torch.set_num_threads(threads)
            applied["torch_threads"] = threads
        arenas = int(os.environ.get("CNN_LENS_MALLOC_ARENAS", "2"))
        if arenas > 0 and _set_arenas(arenas):
            applied["malloc_arenas"] = arenas
        return applied
