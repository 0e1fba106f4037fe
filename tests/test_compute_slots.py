"""vizlib.concurrency.ComputeSlots: at most N passes at once, first come first served, re-entrant; requests'
passes take a slot, the job queues' workers do not."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from tests.conftest import make_loaded
from vizlib import concurrency, jobs, models
from vizlib.concurrency import ComputeSlots


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_no_more_than_the_slots_run_at_once():
    gate = ComputeSlots(2)
    inside, peak, lock = 0, 0, threading.Lock()

    def work():
        nonlocal inside, peak
        with gate.slot():
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak == 2
    assert gate.busy == 0 and gate.waiting == 0


def test_waiting_threads_enter_in_the_order_they_asked():
    gate = ComputeSlots(1)
    order: list[int] = []
    release = threading.Event()

    def holder():
        with gate.slot():
            release.wait(5)

    def waiter(i: int):
        with gate.slot():
            order.append(i)

    first = threading.Thread(target=holder)
    first.start()
    _wait_for(lambda: gate.busy == 1)
    waiters = []
    for i in range(5):
        t = threading.Thread(target=waiter, args=(i,))
        t.start()
        _wait_for(lambda i=i: gate.waiting == i + 1)  # each one queued before the next asks
        waiters.append(t)
    release.set()
    for t in [first, *waiters]:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_a_thread_inside_enters_again_without_a_second_slot():
    gate = ComputeSlots(1)
    with gate.slot(), gate.slot():  # would wait for ever if it needed a second slot
        assert gate.busy == 1
    assert gate.busy == 0


def test_an_error_inside_gives_the_slot_back():
    gate = ComputeSlots(1)
    with pytest.raises(RuntimeError), gate.slot():
        raise RuntimeError("boom")
    assert gate.busy == 0
    done = threading.Event()
    t = threading.Thread(target=lambda: (gate.slot().__enter__(), done.set()))
    t.start()
    assert done.wait(2)


def test_zero_slots_and_a_bad_setting_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="at least 1"):
        ComputeSlots(0)
    monkeypatch.setenv("CNN_LENS_COMPUTE_SLOTS", "two")
    with pytest.raises(ValueError, match="CNN_LENS_COMPUTE_SLOTS must be a whole number"):
        concurrency._default_slots()
    monkeypatch.setenv("CNN_LENS_COMPUTE_SLOTS", "3")
    assert concurrency._default_slots() == 3


def _tiny() -> models.LoadedModel:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 3))
    return make_loaded(net, 16)


def test_a_request_pass_waits_for_a_free_slot(monkeypatch):
    gate = ComputeSlots(1)
    monkeypatch.setattr("vizlib.inference.COMPUTE_SLOTS", gate)
    loaded = _tiny()
    image = torch.zeros(16, 16, 3, dtype=torch.uint8).numpy()
    result: list = []
    with gate.slot():  # another request holds the only slot
        t = threading.Thread(target=lambda: result.append(models.classify(loaded, image)))
        t.start()
        _wait_for(lambda: gate.waiting == 1)
        time.sleep(0.05)
        assert result == []  # still waiting
    t.join(5)
    assert len(result) == 1 and len(result[0].top) == 3


def test_a_job_queue_worker_runs_its_passes_without_a_slot(monkeypatch):
    gate = ComputeSlots(1)
    monkeypatch.setattr("vizlib.inference.COMPUTE_SLOTS", gate)
    monkeypatch.setattr("vizlib.jobs.COMPUTE_SLOTS", gate)
    loaded = _tiny()
    image = torch.zeros(16, 16, 3, dtype=torch.uint8).numpy()
    queue = jobs.JobQueue("test-slots", workers=1)
    with gate.slot():  # every slot taken by requests: the queued job still runs
        job = queue.submit("owner", lambda progress: models.classify(loaded, image))
        _wait_for(lambda: job.status().state in ("done", "failed", "cancelled"), timeout=10)
    assert job.status().state == "done", job.status()
