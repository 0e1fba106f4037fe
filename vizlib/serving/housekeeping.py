"""Give memory back while a class comes and goes: collect garbage cycles and trim malloc, from one background thread.

Two things kept a class's memory long after the students had left (``benchmarks/bench_memory.py``, BENCHMARKS.md,
issue 15):

* **Page runs are reference cycles.** A page that defines an ``st.cache_data`` function makes a cycle on every run:
  the run's globals hold the cached wrapper, whose function's ``__globals__`` are those same globals, with
  everything the page kept in them (the Feature maps page: the whole image's activations, about 70 MB). Only a
  full collection frees such a cycle, and the app turns Streamlit's collection after every run off (its CPU, see
  ``.streamlit/config.toml``), so dead runs piled up until Python's own rare full collection: 1.1 to 1.7 GB of
  activations that no cache and no session held, after two waves of thirty students.
* **malloc keeps what was freed.** glibc hands freed heap pages back to the system only from the top of its heaps;
  pages freed in the middle (activations of many sizes, freed in any order) stay resident until ``malloc_trim``.

A :class:`Housekeeper` runs :meth:`Housekeeper.tick` every few seconds: a full collection only if objects reached
the oldest generation since the last one (none when the server is idle), then ``malloc_trim(0)`` only if malloc
holds more than a threshold of memory freed *since its last trim*. Its work is timed and counted
(:meth:`Housekeeper.stats`, with its costliest round); it costs the same whatever the number of students, never
anything per request.

Why "since its last trim": ``malloc_trim`` gives the pages back with ``madvise`` but leaves the chunks in malloc's
free lists, so malloc's free count does not drop after a trim. Trimming whenever that count was high trimmed on
every round, and each trim made every reused free page fault in again, zero-filled, in the requests that
followed (a class of ten waited longer with it than without, BENCHMARKS.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Housekeeper", "HousekeepingStats", "malloc_free_bytes", "malloc_trim"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim  # noqa: B018 - glibc only: absent elsewhere
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def malloc_free_bytes() -> int:
    """Bytes glibc's malloc holds free (in all arenas) but has not given back; 0 where malloc is not glibc's."""
    return int(_LIBC.mallinfo2().fordblks) if _LIBC is not None else 0


def malloc_trim() -> bool:
    """Give malloc's free pages back to the system (``malloc_trim(0)``); whether any were given back."""
    return bool(_LIBC.malloc_trim(0)) if _LIBC is not None else False


@dataclass
class HousekeepingStats:
    """What a :class:`Housekeeper` did so far.

    Attributes:
        rounds: Ticks run.
        collections: Full garbage collections run.
        unreachable: Objects those collections found unreachable.
        trims: ``malloc_trim`` calls.
        cpu_s: CPU seconds the ticks took (their own thread's time).
        wall_s: Wall-clock seconds the ticks took (on a busy server mostly waiting for the CPU and the interpreter
            lock, which requests hold meanwhile).
        longest_cpu_s: The CPU seconds of the costliest tick: about the longest a request can have waited on it (a
            collection holds the interpreter lock, a trim malloc's locks).
        last: What the last tick did (see :meth:`Housekeeper.tick`).
    """

    rounds: int = 0
    collections: int = 0
    unreachable: int = 0
    trims: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    longest_cpu_s: float = 0.0
    last: dict = field(default_factory=dict)


class Housekeeper:
    """Full garbage collections and malloc trims between requests, from one daemon thread.

    Args:
        every: Seconds between ticks.
        trim_above: Trim when malloc holds more than this many bytes more free than right after its last trim
            (or than at the start).
        pending: Whether objects reached the oldest generation since the last full collection (injectable for
            tests; default: ``gc.get_count()[2] > 0``).
        collect: Runs a full collection, returns the unreachable objects found (default ``gc.collect``).
        free_bytes: Bytes malloc keeps free (default :func:`malloc_free_bytes`).
        trim: Gives them back (default :func:`malloc_trim`).

    Raises:
        ValueError: ``every`` is not positive or ``trim_above`` is negative.
    """

    def __init__(
        self,
        every: float = 30.0,
        trim_above: int = 64 * 2**20,
        *,
        pending: Callable[[], bool] | None = None,
        collect: Callable[[], int] = gc.collect,
        free_bytes: Callable[[], int] = malloc_free_bytes,
        trim: Callable[[], bool] = malloc_trim,
    ) -> None:
        if every <= 0:
            raise ValueError(f"every must be positive, got {every}.")
        if trim_above < 0:
            raise ValueError(f"trim_above must be at least 0, got {trim_above}.")
        self.every, self.trim_above = every, trim_above
        self._pending = pending or (lambda: gc.get_count()[2] > 0)
        self._collect, self._free_bytes, self._trim = collect, free_bytes, trim
        self._stats = HousekeepingStats()
        self._trimmed_at = 0  # malloc's free bytes right after the last trim, or the least seen since
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> dict:
        """One round: a full collection if anything is pending, then a trim if enough memory was freed since the last.

        Returns:
            What it did: ``{"collected": unreachable objects or None, "trimmed": free bytes before or None}``.
        """
        start, wall = time.thread_time(), time.perf_counter()
        done: dict = {"collected": None, "trimmed": None}
        with self._lock:
            if self._pending():
                done["collected"] = self._collect()
            free = self._free_bytes()
            # Free memory reused since the last trim is resident again: only what was freed beyond the least seen
            # since then is new.
            self._trimmed_at = min(self._trimmed_at, free)
            if free - self._trimmed_at > self.trim_above:
                self._trim()
                done["trimmed"] = free
                self._trimmed_at = self._free_bytes()
            took, cpu = time.perf_counter() - wall, time.thread_time() - start
            s = self._stats
            s.rounds += 1
            s.collections += done["collected"] is not None
            s.unreachable += done["collected"] or 0
            s.trims += done["trimmed"] is not None
            s.cpu_s += cpu
            s.wall_s += took
            s.longest_cpu_s = max(s.longest_cpu_s, cpu)
            s.last = done
        return done

    def stats(self) -> HousekeepingStats:
        """A copy of what it did so far."""
        with self._lock:
            s = self._stats
            return HousekeepingStats(s.rounds, s.collections, s.unreachable, s.trims, s.cpu_s, s.wall_s,
                                     s.longest_cpu_s, dict(s.last))

    def start(self) -> threading.Thread:
        """Run :meth:`tick` every ``every`` seconds in a daemon thread (once; later calls return that thread)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cnn-lens-housekeeping", daemon=True)
                self._thread.start()
            return self._thread

    def stop(self) -> None:
        """Stop the thread after its current tick."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.tick()
