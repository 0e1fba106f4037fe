"""The process-wide job queue for expensive work (Score-CAM, Integrated Gradients, faithfulness scores, ...).

One bounded pool for the whole server, so a class pressing the same slow button gets places in one queue
instead of each starting its own long computation; page switches keep their cores meanwhile.
"""

from __future__ import annotations

import os

import streamlit as st

from vizlib.jobs import JobQueue

__all__ = ["QUEUE_NICE", "heavy_queue", "score_queue"]

#: How much nicer the queues' worker threads run than the page requests (CNN_LENS_QUEUE_NICE, default 10): a
#: running Score-CAM gets the cores the class's page switches leave, instead of an equal share.
QUEUE_NICE = max(0, min(19, int(os.environ.get("CNN_LENS_QUEUE_NICE", "10"))))


@st.cache_resource(show_spinner=False)
def heavy_queue() -> JobQueue:
    """The queue every page's expensive work runs in (``CNN_LENS_JOB_WORKERS`` workers, default 1)."""
    workers = max(1, int(os.environ.get("CNN_LENS_JOB_WORKERS", "1")))
    return JobQueue("heavy", workers=workers, max_waiting=200, nice=QUEUE_NICE)


@st.cache_resource(show_spinner=False)
def score_queue() -> JobQueue:
    """A second, separate queue for work of about a second (faithfulness scores), so that it never waits
    behind a classmate's minute of Score-CAM (``CNN_LENS_SCORE_WORKERS`` workers, default 1)."""
    workers = max(1, int(os.environ.get("CNN_LENS_SCORE_WORKERS", "1")))
    return JobQueue("scores", workers=workers, max_waiting=200, nice=QUEUE_NICE)
