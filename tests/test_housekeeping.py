"""vizlib.serving.housekeeping: dead reference cycles collected and malloc trimmed between requests."""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
import pytest

from vizlib.serving import housekeeping, process
from vizlib.serving.housekeeping import Housekeeper


class _Run:
    """Stands for a page run: its "globals" hold a big array and, through a cached function, themselves."""

    def __init__(self) -> None:
        self.acts = np.ones((256, 256, 16), np.float32)  # 4 MB, like a layer's activations
        self.cycle = {"globals": self}


def _dead_cycle_in_oldest_generation() -> weakref.ref:
    run = _Run()
    ref = weakref.ref(run)
    gc.collect(1)  # alive now: survives the young collections into the oldest generation
    del run  # dead from here on, but only a full collection finds it
    return ref


@pytest.fixture
def no_automatic_gc():
    """No collection but the test's own: Python's automatic one off, the process's housekeeper (started by an
    earlier AppTest of app.py in this test process) held between its ticks."""
    was = gc.isenabled()
    gc.disable()
    running = process.housekeeper()
    if running is not None:
        running._lock.acquire()
    yield
    if running is not None:
        running._lock.release()
    if was:
        gc.enable()


def test_a_dead_cycle_in_the_oldest_generation_waits_for_a_full_collection(no_automatic_gc):
    ref = _dead_cycle_in_oldest_generation()
    gc.collect(1)  # what Python's own young collections do
    assert ref() is not None  # still held: this is what piled up in the server


def test_tick_collects_the_dead_cycle_and_counts_it(no_automatic_gc):
    keeper = Housekeeper(every=1.0, free_bytes=lambda: 0)
    ref = _dead_cycle_in_oldest_generation()
    done = keeper.tick()
    assert ref() is None
    assert done["collected"] >= 2  # the run and its dict at least
    stats = keeper.stats()
    assert (stats.rounds, stats.collections, stats.trims) == (1, 1, 0)
    assert stats.unreachable == done["collected"] and stats.cpu_s >= 0


def test_tick_collects_only_when_something_reached_the_oldest_generation():
    calls = []
    keeper = Housekeeper(every=1.0, pending=lambda: False, collect=lambda: calls.append(1) or 0, free_bytes=lambda: 0)
    assert keeper.tick() == {"collected": None, "trimmed": None}
    assert calls == []


def test_tick_trims_only_above_the_threshold():
    trims, free = [], [10 * 2**20]
    keeper = Housekeeper(every=1.0, trim_above=64 * 2**20, pending=lambda: False, free_bytes=lambda: free[0],
                         trim=lambda: trims.append(1) or True)
    assert keeper.tick()["trimmed"] is None
    free[0] = 200 * 2**20
    assert keeper.tick()["trimmed"] == 200 * 2**20
    assert trims == [1] and keeper.stats().trims == 1


def test_tick_trims_again_only_when_more_was_freed_since_the_last_trim():
    """glibc's free count does not drop after a trim (the pages are given back, the chunks stay free): trimming
    whenever it is high trimmed every round, and made every reused page fault in again."""
    trims, free = [], [200 * 2**20]
    keeper = Housekeeper(every=1.0, trim_above=64 * 2**20, pending=lambda: False, free_bytes=lambda: free[0],
                         trim=lambda: trims.append(free[0]) or True)
    assert keeper.tick()["trimmed"] == 200 * 2**20
    assert keeper.tick()["trimmed"] is None  # the same 200 MB free: already given back
    free[0] = 250 * 2**20
    assert keeper.tick()["trimmed"] is None  # 50 MB more: under the threshold
    free[0] = 280 * 2**20
    assert keeper.tick()["trimmed"] == 280 * 2**20  # 80 MB freed since the trim
    free[0] = 100 * 2**20  # reused: those pages are resident again
    assert keeper.tick()["trimmed"] is None
    free[0] = 170 * 2**20  # 70 MB freed again since then
    assert keeper.tick()["trimmed"] == 170 * 2**20
    assert trims == [200 * 2**20, 280 * 2**20, 170 * 2**20] and keeper.stats().trims == 3


def test_stats_time_each_round_and_keep_the_costliest():
    costs = iter([0.0, 0.05])

    def collect():
        cost = next(costs)
        time.sleep(0.05)  # wall time, no CPU
        end = time.thread_time() + cost
        while time.thread_time() < end:  # CPU
            pass
        return 0

    keeper = Housekeeper(every=1.0, pending=lambda: True, collect=collect, free_bytes=lambda: 0)
    keeper.tick()
    keeper.tick()
    stats = keeper.stats()
    assert stats.rounds == 2 and stats.wall_s >= 0.15
    assert 0.05 <= stats.longest_cpu_s <= stats.cpu_s < stats.wall_s


def test_glibc_accounting_answers():
    assert housekeeping.malloc_free_bytes() >= 0
    assert isinstance(housekeeping.malloc_trim(), bool)


def test_the_thread_ticks_and_stops():
    ticked = []
    keeper = Housekeeper(every=0.01, pending=lambda: ticked.append(1) or False, free_bytes=lambda: 0)
    thread = keeper.start()
    assert keeper.start() is thread  # once
    for _ in range(500):
        if len(ticked) >= 3:
            break
        thread.join(0.01)
    keeper.stop()
    assert len(ticked) >= 3 and not thread.is_alive()


@pytest.mark.parametrize("every, trim_above", [(0, 1), (-1, 1), (1, -1)])
def test_bad_settings_are_refused(every, trim_above):
    with pytest.raises(ValueError):
        Housekeeper(every, trim_above)


def test_configure_process_starts_housekeeping_from_the_environment(monkeypatch):
    monkeypatch.setattr(process, "_done", False)
    monkeypatch.setattr(process, "_housekeeper", None)
    monkeypatch.setenv("CNN_LENS_TORCH_THREADS", "0")
    monkeypatch.setenv("CNN_LENS_MALLOC_ARENAS", "0")
    monkeypatch.setenv("CNN_LENS_MALLOC_KEEP_MB", "0")
    monkeypatch.setenv("CNN_LENS_HOUSEKEEPING_S", "30")
    monkeypatch.setenv("CNN_LENS_TRIM_MB", "16")
    assert process.configure_process() == {"housekeeping_s": 30.0}
    keeper = process.housekeeper()
    try:
        assert keeper.every == 30.0 and keeper.trim_above == 16 * 2**20
        assert keeper._thread is not None and keeper._thread.is_alive()
    finally:
        keeper.stop()
