"""Process-wide settings for a server that runs many sessions' model passes at once.

* **One intra-op thread per torch call** (``CNN_LENS_TORCH_THREADS``, default 1). Streamlit runs every
  session's script in its own thread, and each thread that calls torch gets its own pool of intra-op
  threads: five sessions at once on a 2-core machine made ten busy threads that spin while they wait for
  each other. With one thread per call, concurrent sessions use the cores without that waste
  (``benchmarks/bench_load.py --compare``); one student's passes (tens of milliseconds) hardly notice.
* **Few malloc arenas** (``CNN_LENS_MALLOC_ARENAS``, default 2). glibc gives each busy thread its own arena
  and returns little of it to the system: with thirty sessions' threads the server's resident memory grew
  by gigabytes of free-but-kept pages. Two arenas keep it near what is really in use.
* **Large blocks reused, not mapped afresh** (``CNN_LENS_MALLOC_KEEP_MB``, default 64): glibc hands blocks of
  128 KB and more out as fresh ``mmap`` pages (its threshold rises only as such blocks are freed, and a block of the
  same size again is mapped again) and gives the top of a heap back as soon as 128 KB is free there. A new image's
  activations, gradients and pictures then touch thousands of zero-filled pages per request (a class activation map
  pass: about 3,000 page faults; ``benchmarks/bench_malloc.py``). Blocks up to 32 MB (glibc's own ceiling for
  that threshold) now come from the heap, and up to this many MB stay free at a heap's top for the next request;
  the housekeeping thread's trims still give freed memory back.
* **Housekeeping every half minute** (``CNN_LENS_HOUSEKEEPING_S``, default 30; ``CNN_LENS_TRIM_MB``, default 64):
  a full garbage collection when objects reached the oldest generation, and ``malloc_trim`` when malloc holds
  more than that newly freed (:mod:`vizlib.serving.housekeeping`): dead page runs and freed activations go back to
  the system while the class works, not hours later. A full collection holds the interpreter lock for tens of ms
  with a class connected; every 30 s kept the same memory as every 10 s (BENCHMARKS.md) for a third of the pauses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

import torch

from vizlib.serving.housekeeping import Housekeeper

__all__ = ["configure_process", "housekeeper"]

_M_ARENA_MAX = -8  # mallopt parameter numbers in glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's upper bound for its dynamic mmap threshold (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit systems)
MMAP_THRESHOLD = 32 * 2**20
_done = False
_lock = threading.Lock()
_housekeeper: Housekeeper | None = None


def _mallopt(*settings: tuple[int, int]) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return all(bool(libc.mallopt(param, value)) for param, value in settings)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False


def _set_arenas(count: int) -> bool:
    return _mallopt((_M_ARENA_MAX, count))


def _keep_free(keep_bytes: int) -> bool:
    """Blocks up to :data:`MMAP_THRESHOLD` from the heap, and up to ``keep_bytes`` kept free at a heap's top."""
    return _mallopt((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, keep_bytes))


def configure_process() -> dict[str, int]:
    """Apply the settings once per process (later calls do nothing); returns what was set.

    Environment:
        CNN_LENS_TORCH_THREADS: torch intra-op threads per call (0 leaves torch's default).
        CNN_LENS_MALLOC_ARENAS: glibc malloc arenas (0 leaves glibc's default).
        CNN_LENS_MALLOC_KEEP_MB: MB of free memory a heap keeps at its top, with blocks up to 32 MB from the heap
            (0 leaves glibc's dynamic thresholds).
        CNN_LENS_HOUSEKEEPING_S: seconds between housekeeping rounds (0: none).
        CNN_LENS_TRIM_MB: trim malloc when it keeps more than this many MB free.
    """
    global _done, _housekeeper
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
        keep_mb = float(os.environ.get("CNN_LENS_MALLOC_KEEP_MB", "64"))
        if keep_mb > 0 and _keep_free(int(keep_mb * 2**20)):
            applied["malloc_keep_mb"] = keep_mb
        every = float(os.environ.get("CNN_LENS_HOUSEKEEPING_S", "30"))
        if every > 0:
            _housekeeper = Housekeeper(every, int(float(os.environ.get("CNN_LENS_TRIM_MB", "64")) * 2**20))
            _housekeeper.start()
            applied["housekeeping_s"] = every
        return applied


def housekeeper() -> Housekeeper | None:
    """The process's :class:`~vizlib.serving.housekeeping.Housekeeper` (``None`` before :func:`configure_process`
    or with ``CNN_LENS_HOUSEKEEPING_S=0``)."""
    return _housekeeper
