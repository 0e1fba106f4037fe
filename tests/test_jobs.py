"""The bounded job queue (vizlib.jobs) and the locked LRU cache (vizlib.caching)."""

from __future__ import annotations

import threading

import pytest

from vizlib.caching import LRUCache
from vizlib.jobs import JobBusyError, JobCancelled, JobQueue, QueueFullError


def _gate_job(gate: threading.Event, started: threading.Event | None = None, value: object = "ok"):
    def fn(progress):
        progress(0.5, "waiting at the gate")
        if started is not None:
            started.set()
        while not gate.wait(0.01):
            progress(0.5, "waiting at the gate")
        return value

    return fn


def test_runs_in_arrival_order_and_reports_positions():
    queue = JobQueue("t", workers=1)
    gate, started = threading.Event(), threading.Event()
    first = queue.submit("a", _gate_job(gate, started, 1), label="first")
    assert started.wait(5)
    second = queue.submit("b", _gate_job(gate, value=2))
    third = queue.submit("c", _gate_job(gate, value=3))
    assert first.status().state == "running" and first.status().position is None
    assert (second.status().state, second.status().position) == ("queued", 0)
    assert (third.status().state, third.status().position) == ("queued", 1)
    assert first.status().message == "waiting at the gate"
    gate.set()
    assert [first.result(5), second.result(5), third.result(5)] == [1, 2, 3]
    assert third.status().state == "done" and third.status().fraction == 1.0


def test_one_unfinished_job_per_owner():
    queue = JobQueue("t", workers=1)
    gate = threading.Event()
    job = queue.submit("a", _gate_job(gate))
    with pytest.raises(JobBusyError, match="already have a job"):
        queue.submit("a", _gate_job(gate))
    gate.set()
    assert job.result(5) == "ok"
    assert queue.submit("a", lambda p: 7).result(5) == 7  # finished: the owner may ask again


def test_cancel_running_job_stops_it_at_the_next_progress_report():
    queue = JobQueue("t", workers=1)
    gate, started = threading.Event(), threading.Event()
    job = queue.submit("a", _gate_job(gate, started))
    assert started.wait(5)
    job.cancel()
    with pytest.raises(JobCancelled):
        job.result(5)
    after = queue.submit("b", lambda p: "next")  # the worker is free again
    assert after.result(5) == "next"
    assert job._task.state == "cancelled"


def test_cancel_queued_job_leaves_the_queue_and_moves_others_up():
    queue = JobQueue("t", workers=1)
    gate, started = threading.Event(), threading.Event()
    queue.submit("a", _gate_job(gate, started))
    assert started.wait(5)
    ran = []
    second = queue.submit("b", lambda p: ran.append("b"))
    third = queue.submit("c", lambda p: ran.append("c"))
    second.cancel()
    assert third.status().position == 0
    gate.set()
    third.result(5)
    assert ran == ["c"]
    assert second.status().state == "cancelled"


def test_same_key_shares_one_task_until_every_owner_cancels():
    queue = JobQueue("t", workers=1)
    calls = []
    gate, started = threading.Event(), threading.Event()

    def work(progress):
        calls.append(1)
        started.set()
        while not gate.wait(0.01):
            progress(0.1)
        return "shared"

    one = queue.submit("a", work, key=("vis", 3))
    two = queue.submit("b", work, key=("vis", 3))
    assert started.wait(5)
    one.cancel()  # b still wants it: it goes on
    gate.set()
    assert two.result(5) == "shared"
    assert calls == [1]
    with pytest.raises(JobCancelled):
        one.result(0)


def test_failure_reaches_the_owner_and_the_worker_survives():
    queue = JobQueue("t", workers=1)

    def boom(progress):
        raise ValueError("bad layer")

    job = queue.submit("a", boom)
    with pytest.raises(ValueError, match="bad layer"):
        job.result(5)
    assert job.status().state == "failed" and job.status().error == "bad layer"
    assert queue.submit("a", lambda p: 1).result(5) == 1


def test_queue_is_bounded():
    queue = JobQueue("t", workers=1, max_waiting=2)
    gate, started = threading.Event(), threading.Event()
    queue.submit("a", _gate_job(gate, started))
    assert started.wait(5)
    queue.submit("b", _gate_job(gate))
    queue.submit("c", _gate_job(gate))
    with pytest.raises(QueueFullError, match="waiting already"):
        queue.submit("d", _gate_job(gate))
    gate.set()


def test_workers_run_jobs_side_by_side():
    queue = JobQueue("t", workers=2)
    both = threading.Barrier(3, timeout=5)

    def meet(progress):
        both.wait()
        return True

    jobs = [queue.submit(owner, meet) for owner in ("a", "b")]
    both.wait()  # only passes if both jobs run at once
    assert all(job.result(5) for job in jobs)


def test_lru_cache_keeps_the_most_recent():
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and len(cache) == 2
    assert cache.put("a", 99) == 1  # the first value stored wins


def test_lru_cache_survives_concurrent_use():
    cache: LRUCache[int, int] = LRUCache(8)
    errors = []

    def hammer(seed: int) -> None:
        try:
            for i in range(2000):
                key = (i * 7 + seed) % 20
                assert cache.get_or_create(key, lambda k=key: k * 2) == key * 2
        except BaseException as exc:  # pragma: no cover - the failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and len(cache) <= 8


def _own_niceness() -> int:
    import os

    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_nice_queue_runs_its_work_at_a_lower_priority_than_the_requests():
    base = _own_niceness()
    nice = JobQueue("nice", workers=1, nice=7).submit("a", lambda progress: _own_niceness()).result(10)
    plain = JobQueue("plain", workers=1).submit("a", lambda progress: _own_niceness()).result(10)
    assert nice == min(19, base + 7)
    assert plain == base
    assert _own_niceness() == base  # the asking thread (a page request) keeps its priority
