"""Locks that let many sessions share one model safely.

Two facts shape this module:

* Plain inference (``no_grad``, eval mode, no hooks) on a shared model is safe to run from many
  threads at once, so it takes a *shared* lock.
* Anything that attaches to a model (a forward/backward hook, Captum's layer methods) changes what
  every other thread's forward pass does, so it takes that model's lock *exclusively*.
* A CPU runs a few model passes at once well; thirty at once (a class clicking together) only share the same
  cores more slowly, and each holds its intermediate tensors (all of a photo's activations are about 70 MB
  for EfficientNet-Lite0) until it ends. :data:`COMPUTE_SLOTS` lets as many passes run as there are cores,
  first come first served, and the others wait their turn.
* ``torch.fx`` symbolic tracing temporarily replaces ``torch.nn.Module.__call__`` for the whole
  process, so tracing any model must exclude every forward pass of every model: it takes
  :data:`GRAPH_LOCK` exclusively, while forward passes hold it shared.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["COMPUTE_SLOTS", "GRAPH_LOCK", "ComputeSlots", "RWLock"]


class RWLock:
    """A writer-preferring readers-writer lock (not re-entrant for writers).

    Many readers may hold it at once; a writer holds it alone. Once a writer waits, new readers
    wait too, so a stream of readers cannot starve it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._local = threading.local()
        self._readers = 0
        self._writer: int | None = None
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared for the duration of the ``with`` block."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # a writer may read what it holds exclusively
                reentrant = True
            else:
                reentrant = False
                nested = getattr(self._local, "depth", 0) > 0
                # a thread already reading may read again even while a writer waits (else it would deadlock)
                while self._writer is not None or (self._writers_waiting and not nested):
                    self._cond.wait()
                self._readers += 1
                self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            if not reentrant:
                with self._cond:
                    self._readers -= 1
                    self._local.depth -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock exclusively for the duration of the ``with`` block."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                raise RuntimeError("RWLock.write() is not re-entrant")
            if getattr(self._local, "depth", 0) > 0:
                raise RuntimeError("RWLock.write() called by a thread that holds read(): that would deadlock")
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()


#: Held shared by every forward pass in vizlib, exclusively while torch.fx traces a model.
GRAPH_LOCK = RWLock()


class ComputeSlots:
    """At most ``slots`` threads inside :meth:`slot` at once, admitted in the order they asked (first come, first
    served); a thread already inside enters again without a second slot.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}.")
        self.slots = slots
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[int] = collections.deque()
        self._inside = 0
        self._local = threading.local()
        self._next_ticket = 0

    @property
    def busy(self) -> int:
        """Threads inside now."""
        return self._inside

    @property
    def waiting(self) -> int:
        """Threads waiting for a slot now."""
        return len(self._queue)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the ``with`` block (waiting for it in turn)."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                ticket = self._next_ticket
                self._next_ticket += 1
                self._queue.append(ticket)
                try:
                    while self._queue[0] != ticket or self._inside >= self.slots:
                        self._cond.wait()
                    self._inside += 1
                finally:
                    self._queue.remove(ticket)
                    self._cond.notify_all()  # the next in line may fit too (or move up, if this one gave up)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._inside -= 1
                    self._cond.notify_all()


    def exempt_thread(self) -> None:
        """Let every pass of the calling thread run without a slot, for good (a bounded queue's worker: its queue
        already paces that work, and a long job must not keep a slot from the page requests)."""
        self._local.depth = getattr(self._local, "depth", 0) + 1


def _default_slots() -> int:
    value = os.environ.get("CNN_LENS_COMPUTE_SLOTS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"CNN_LENS_COMPUTE_SLOTS must be a whole number, got {value!r}.") from None
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


#: The model passes of requests (classify, all activations, the CAM methods, ...): as many at once as cores
#: (``CNN_LENS_COMPUTE_SLOTS`` overrides). Work in the bounded job queues does not take a slot.
COMPUTE_SLOTS = ComputeSlots(_default_slots())
