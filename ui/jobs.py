"""Expensive work from a page, run in a shared :class:`vizlib.jobs.JobQueue` with a progress bar and a cancel.

A page calls :func:`background` with a key that names the work (model, image, parameters) and a function
taking a :class:`vizlib.jobs.Progress`. The first call shows a start button (or starts at once); while the job
waits or runs, a small fragment redraws its place in the queue or its progress every half second, with a
Cancel button, without rerunning the rest of the page; when it is done the whole page reruns once and
:func:`background` returns the result (kept in the session until the key changes).

Each session is one owner: at most one unfinished job per session per queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import streamlit as st

from vizlib.jobs import Job, JobCancelled, JobError, JobQueue, Progress

__all__ = ["background", "session_owner"]

T = TypeVar("T")

_POLL_SECONDS = 0.5


def session_owner() -> str:
    """This session's owner id for job queues (random, kept in the session)."""
    if "job_owner" not in st.session_state:
        st.session_state["job_owner"] = uuid.uuid4().hex
    return st.session_state["job_owner"]


def _slot(name: str) -> str:
    return f"job:{name}"


def background(
    queue: JobQueue,
    name: str,
    key: Hashable,
    fn: Callable[[Progress], T],
    *,
    label: str,
    start_label: str | None = None,
    share: bool = False,
    live: Callable[[], None] | None = None,
) -> T | None:
    """The result of ``fn`` for ``key``, computed in ``queue``; ``None`` while it is not ready.

    Args:
        queue: The process-wide queue the work runs in.
        name: The slot on the page (one result per slot per session, e.g. ``"scorecam"``).
        key: What the work is; a new key forgets the old result.
        fn: The work; it reports progress through its argument.
        label: What the work is, in words ("Score-CAM on ResNet-18").
        start_label: A button to press first; ``None`` starts the work at once.
        share: Let sessions asking for an equal ``key`` at the same time share one computation.
        live: Draws the job's partial results (e.g. read from a :class:`vizlib.jobs.Latest` the job fills);
            called under the progress bar each time it is redrawn, while the job waits or runs.

    Returns:
        The result once done, else ``None`` (the page shows the button, the queue place or the progress).
    """
    slot = _slot(name)
    state = st.session_state.get(slot)
    if state is not None and state["key"] == key and "result" in state:
        return state["result"]
    job: Job[Any] | None = state["job"] if state is not None and state["key"] == key else None
    if state is not None and state["key"] != key:
        if state.get("job") is not None and not state["job"].done():
            state["job"].cancel()
        st.session_state.pop(slot, None)
    if job is None:
        if start_label is not None and not st.button(start_label, key=f"{slot}:start"):
            return None
        try:
            job = queue.submit(session_owner(), fn, key=(name, key) if share else None, label=label)
        except JobError as exc:
            st.warning(str(exc), icon=":material/hourglass_top:")
            return None
        st.session_state[slot] = {"key": key, "job": job}
    if job.done():
        return _collect(slot, job)
    _progress_fragment(slot, job, live)
    return None


def _collect(slot: str, job: Job[Any]) -> Any:
    try:
        result = job.result(0)
    except JobCancelled:
        st.session_state.pop(slot, None)
        st.info(f"{job.label} was cancelled.", icon=":material/cancel:")
        return None
    except Exception as exc:  # the job's own error, as a sentence
        st.session_state.pop(slot, None)
        st.error(f"{job.label} failed: {exc}")
        return None
    st.session_state[slot]["result"] = result
    st.session_state[slot]["job"] = None
    return result


@st.fragment(run_every=_POLL_SECONDS)
def _progress_fragment(slot: str, job: Job[Any], live: Callable[[], None] | None = None) -> None:
    status = job.status()
    if status.finished:
        st.rerun(scope="app")
    if status.state == "queued":
        ahead = status.position or 0
        text = f"{job.label}: waiting, {ahead} job{'s' if ahead != 1 else ''} ahead of you"
        st.progress(0.0, text=text)
    else:
        text = f"{job.label}: {status.message}" if status.message else job.label
        st.progress(status.fraction, text=f"{text} ({status.fraction:.0%})")
    if st.button("Cancel", key=f"{slot}:cancel", icon=":material/cancel:"):
        job.cancel()
        st.session_state.pop(slot, None)
        st.rerun(scope="app")
    if live is not None:
        live()
