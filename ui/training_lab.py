"""Process-wide resources of the training lab page: its job queues, the reference nets and cached measurements.

The reference nets are loaded once per process from the registry and shared read-only (plain forward passes
under ``shared()``); the training queue runs one training job at a time (this server has 2 CPU cores), in
arrival order, one unfinished job per session; measurements every session would repeat (the shift and
rotation tests) are computed once, in a second one-worker queue, and kept for the process.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import numpy as np
import streamlit as st

from ui.queues import QUEUE_NICE
from vizlib import models
from vizlib.jobs import JobQueue, Progress
from vizlib.training_lab import registry, shift
from vizlib.training_lab.data import load_fashion
from vizlib.training_lab.nets import NETS

__all__ = [
    "SHIFT_TEST_IMAGES",
    "TRAIN_WORKERS",
    "eval_queue",
    "lab_models",
    "measured",
    "reference_runs",
    "robustness_job",
    "test_images",
    "training_queue",
]

#: Training jobs that run at once (2 shared CPU cores: one).
TRAIN_WORKERS = 1
#: Test images in the shift and rotation tests.
SHIFT_TEST_IMAGES = 1000


@st.cache_resource(show_spinner=False)
def training_queue() -> JobQueue:
    """The queue every session's training job waits in."""
    return JobQueue("training-lab", workers=TRAIN_WORKERS, max_waiting=60, nice=QUEUE_NICE)


@st.cache_resource(show_spinner=False)
def eval_queue() -> JobQueue:
    """The queue for the lab's shared measurements (shift and rotation tests)."""
    return JobQueue("training-lab-eval", workers=1, max_waiting=60, nice=QUEUE_NICE)


@st.cache_resource(show_spinner="Loading the four reference nets…")
def lab_models() -> dict[str, models.LoadedModel]:
    """The four reference nets from the registry, loaded once per process (CPU), shared read-only."""
    return {name: models.load_model(name, device="cpu") for name in NETS}


@st.cache_resource(show_spinner=False)
def reference_runs() -> dict:
    """The reference runs' curves, filters and accuracies from their model cards."""
    return registry.reference_runs()


@st.cache_resource(show_spinner=False)
def test_images() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 Fashion-MNIST test images and labels (read-only)."""
    return load_fashion("test")


@st.cache_resource(show_spinner=False)
def measured() -> dict:
    """Process-wide store of finished shared measurements, by key."""
    return {}


def robustness_job(kind: str) -> Callable[[Progress], shift.RobustnessCurve]:
    """The job that measures every reference net's accuracy under shifts or rotations (and stores it)."""
    loaded = lab_models()
    images, labels = test_images()
    store = measured()

    def run(progress: Progress) -> shift.RobustnessCurve:
        if kind in store:
            return store[kind]
        with ExitStack() as stack:
            for lm in loaded.values():
                stack.enter_context(lm.shared())
            nets = {name: lm.model for name, lm in loaded.items()}
            curve = shift.robustness(
                nets, images[:SHIFT_TEST_IMAGES], labels[:SHIFT_TEST_IMAGES], kind=kind, progress=progress
            )
        store[kind] = curve
        return curve

    return run
