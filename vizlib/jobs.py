"""Expensive work for a whole class: a bounded, fair job queue with progress, queue positions and cancel.

One student's slow request (Score-CAM, a feature visualization, a training run) must not stall everybody
else. A :class:`JobQueue` runs such work on a fixed number of worker threads, in arrival order, with at most
one unfinished job per *owner* (a session): a class of thirty pressing the same button gets thirty places in
one queue, each shown its position, and the server keeps serving page switches meanwhile.

Work that is the same for everyone is shared: jobs submitted with the same ``key`` while one is still queued
or running attach to that one task, and it is cancelled only when every owner has cancelled.

The job's function receives a :class:`Progress` to report how far it got; every report is also the point
where a cancel takes effect (it raises :class:`JobCancelled` inside the job).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vizlib.concurrency import COMPUTE_SLOTS

__all__ = [
    "Job",
    "JobBusyError",
    "JobCancelled",
    "JobError",
    "JobQueue",
    "JobStatus",
    "Latest",
    "Progress",
    "QueueFullError",
]

T = TypeVar("T")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
_FINISHED = frozenset({DONE, FAILED, CANCELLED})


class JobError(Exception):
    """Base class of the queue's refusals; the message is a sentence for the page."""


class JobBusyError(JobError):
    """The owner already has a job that has not finished."""


class QueueFullError(JobError):
    """Too many jobs are waiting already."""


class JobCancelled(Exception):
    """Raised inside a job when it was cancelled, and by :meth:`Job.result` for a cancelled job."""


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job, for a progress bar.

    Attributes:
        state: ``"queued"``, ``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``.
        position: For a queued job, how many jobs wait ahead of it (0: it starts next); else ``None``.
        fraction: Progress reported by the job, 0..1.
        message: The job's last progress message.
        error: For a failed job, its exception's message.
    """

    state: str
    position: int | None
    fraction: float
    message: str
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in _FINISHED


class _Task:
    def __init__(self, task_id: int, key: Hashable | None, fn: Callable[[Progress], Any], label: str) -> None:
        self.id = task_id
        self.key = key
        self.fn = fn
        self.label = label
        self.state = QUEUED
        self.fraction = 0.0
        self.message = ""
        self.result: Any = None
        self.error: BaseException | None = None
        self.owners = 0
        self.cancel_requested = threading.Event()
        self.finished = threading.Event()


class Progress:
    """What a job's function gets: report progress, and learn about a cancel."""

    def __init__(self, task: _Task) -> None:
        self._task = task

    def __call__(self, fraction: float, message: str = "") -> None:
        """Report ``fraction`` (0..1) done; raises :class:`JobCancelled` if the job was cancelled."""
        self._task.fraction = min(max(float(fraction), 0.0), 1.0)
        if message:
            self._task.message = message
        self.check()

    @property
    def cancelled(self) -> bool:
        """Whether every owner has cancelled this job."""
        return self._task.cancel_requested.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` if the job was cancelled."""
        if self.cancelled:
            raise JobCancelled(f"{self._task.label or 'The job'} was cancelled.")


class Job(Generic[T]):
    """One owner's handle on a queued or running task."""

    def __init__(self, queue: JobQueue, task: _Task, owner: str) -> None:
        self._queue = queue
        self._task = task
        self.owner = owner
        self._detached = False

    @property
    def label(self) -> str:
        return self._task.label

    @property
    def key(self) -> Hashable | None:
        return self._task.key

    def status(self) -> JobStatus:
        """Where the job is now."""
        return self._queue._status(self)

    def done(self) -> bool:
        """Whether the job has finished (or this owner cancelled it)."""
        return self._detached or self._task.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job finishes; ``True`` if it did within ``timeout`` seconds."""
        return self._detached or self._task.finished.wait(timeout)

    def result(self, timeout: float | None = None) -> T:
        """The job's return value, waiting for it.

        Raises:
            JobCancelled: The job was cancelled.
            TimeoutError: It did not finish within ``timeout`` seconds.
            Exception: Whatever the job's function raised.
        """
        if self._detached:
            raise JobCancelled(f"{self.label or 'The job'} was cancelled.")
        if not self._task.finished.wait(timeout):
            raise TimeoutError(f"{self.label or 'The job'} has not finished yet.")
        if self._task.state == CANCELLED:
            raise JobCancelled(f"{self.label or 'The job'} was cancelled.")
        if self._task.state == FAILED:
            assert self._task.error is not None
            raise self._task.error
        return self._task.result

    def cancel(self) -> None:
        """Give up this owner's interest; the task stops (at its next progress report) once nobody wants it."""
        self._queue._detach(self)


class JobQueue:
    """A fixed pool of worker threads running jobs in arrival order, at most one unfinished job per owner.

    Args:
        name: Names the worker threads (for profiles and logs).
        workers: How many jobs run at once.
        max_waiting: How many tasks may wait; beyond it :meth:`submit` refuses with :class:`QueueFullError`.
        nice: The worker threads' scheduling niceness, added to the process's (Linux sets it per thread): a
            positive value lets the operating system give the cores to the page requests first whenever both
            want them, and the queue's work the cores they leave. 0 leaves them as they are.
    """

    def __init__(self, name: str, *, workers: int = 1, max_waiting: int = 100, nice: int = 0) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}.")
        self.name = name
        self.workers = workers
        self.max_waiting = max_waiting
        self.nice = nice
        self._cond = threading.Condition(threading.Lock())
        self._waiting: deque[_Task] = deque()
        self._by_key: dict[Hashable, _Task] = {}
        self._by_owner: dict[str, Job[Any]] = {}
        self._threads: list[threading.Thread] = []
        self._ids = itertools.count(1)
        self._running = 0

    # ------------------------------------------------------------------------------------------ public

    def submit(
        self, owner: str, fn: Callable[[Progress], T], *, key: Hashable | None = None, label: str = ""
    ) -> Job[T]:
        """Queue ``fn(progress)`` for ``owner``.

        Args:
            owner: Who asks (a session id); each owner may have one unfinished job.
            fn: The work. It should call ``progress(fraction, message)`` now and then.
            key: Jobs with equal keys share one task while it is queued or running.
            label: What the job is, for messages ("Score-CAM of resnet18").

        Returns:
            This owner's handle on the job.

        Raises:
            JobBusyError: ``owner`` already has an unfinished job.
            QueueFullError: Too many jobs wait already.
        """
        with self._cond:
            mine = self._by_owner.get(owner)
            if mine is not None and not mine.done():
                raise JobBusyError(
                    f"You already have a job in progress ({mine.label or 'a computation'}): "
                    "wait for it or cancel it first."
                )
            task = self._by_key.get(key) if key is not None else None
            if task is None or task.state in _FINISHED:
                if len(self._waiting) >= self.max_waiting:
                    raise QueueFullError(
                        f"{len(self._waiting)} jobs are waiting already; please try again in a minute."
                    )
                task = _Task(next(self._ids), key, fn, label)
                self._waiting.append(task)
                if key is not None:
                    self._by_key[key] = task
                self._start_workers()
                self._cond.notify()
            task.owners += 1
            job: Job[T] = Job(self, task, owner)
            self._by_owner[owner] = job
            return job

    def current(self, owner: str) -> Job[Any] | None:
        """``owner``'s latest job (finished or not), or ``None``."""
        with self._cond:
            return self._by_owner.get(owner)

    def forget(self, owner: str) -> None:
        """Cancel ``owner``'s job if unfinished and drop its handle (a session that ended)."""
        job = self.current(owner)
        if job is not None:
            job.cancel()
        with self._cond:
            self._by_owner.pop(owner, None)

    def counts(self) -> tuple[int, int]:
        """``(running, waiting)`` tasks now."""
        with self._cond:
            return self._running, len(self._waiting)

    # ---------------------------------------------------------------------------------------- internals

    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-worker-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        COMPUTE_SLOTS.exempt_thread()
        if self.nice:
            _lower_priority(self.nice)
        while True:
            with self._cond:
                while not self._waiting:
                    self._cond.wait()
                task = self._waiting.popleft()
                task.state = RUNNING
                self._running += 1
            try:
                if task.cancel_requested.is_set():
                    raise JobCancelled
                task.result = task.fn(Progress(task))
                task.state = DONE
                task.fraction = 1.0
            except JobCancelled:
                task.state = CANCELLED
            except BaseException as exc:  # the job's own failure is its owner's to see, not the worker's
                task.error = exc
                task.state = FAILED
            finally:
                with self._cond:
                    self._running -= 1
                    if task.key is not None and self._by_key.get(task.key) is task:
                        del self._by_key[task.key]
                task.fn = _done_fn  # drop references the work held
                task.finished.set()

    def _detach(self, job: Job[Any]) -> None:
        with self._cond:
            if job._detached:
                return
            job._detached = True
            task = job._task
            task.owners -= 1
            if self._by_owner.get(job.owner) is job:
                del self._by_owner[job.owner]
            if task.owners > 0 or task.state in _FINISHED:
                return
            task.cancel_requested.set()
            if task.state == QUEUED:
                self._waiting.remove(task)
                task.state = CANCELLED
                if task.key is not None and self._by_key.get(task.key) is task:
                    del self._by_key[task.key]
                task.finished.set()

    def _status(self, job: Job[Any]) -> JobStatus:
        task = job._task
        with self._cond:
            if job._detached:
                return JobStatus(CANCELLED, None, task.fraction, task.message)
            position = None
            if task.state == QUEUED:
                position = next(i for i, waiting in enumerate(self._waiting) if waiting is task)
            error = f"{task.error}" if task.error is not None else None
            return JobStatus(task.state, position, task.fraction, task.message, error)


class Latest(Generic[T]):
    """A thread-safe box for a job's latest partial result: the job publishes, a page polls.

    ``version`` counts the values set, so a reader can tell whether anything new arrived.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._version = 0

    def set(self, value: T) -> None:
        """Publish ``value`` (replacing the previous one)."""
        with self._lock:
            self._value = value
            self._version += 1

    def get(self) -> T | None:
        """The latest value, ``None`` before the first."""
        with self._lock:
            return self._value

    @property
    def version(self) -> int:
        """How many values were published."""
        with self._lock:
            return self._version


def _lower_priority(nice: int) -> None:
    """Make the calling thread ``nice`` steps nicer (Linux: per thread); nothing where that is not possible."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: the work still runs, just not nicer
        pass


def _done_fn(progress: Progress) -> None:  # pragma: no cover - never called
    raise RuntimeError("finished task run twice")
