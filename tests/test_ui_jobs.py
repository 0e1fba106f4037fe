"""ui.jobs.background: a start button, the queue place, the result after a rerun, cancel and a failure."""

from __future__ import annotations

import threading

from streamlit.testing.v1 import AppTest

GATE = threading.Event()


def _app() -> None:
    import streamlit as st

    from ui.jobs import background
    from vizlib.jobs import JobQueue

    if "queue" not in st.session_state:
        st.session_state["queue"] = JobQueue("ui-test", workers=1)

    gate, fail = st.session_state["gate"], st.session_state.get("fail", False)

    def work(progress):
        while not gate.wait(0.01):
            progress(0.25, "counting")
        if fail:
            raise ValueError("no layer called x")
        return 42

    n = st.number_input("n", value=1)
    result = background(st.session_state["queue"], "answer", n, work, label="The answer", start_label="Compute")
    st.write(f"result={result}")


def test_start_progress_result_and_new_key():
    GATE.clear()
    at = AppTest.from_function(_app, default_timeout=30)
    at.session_state["gate"] = GATE
    at.run()
    assert [b.label for b in at.button] == ["Compute"]
    assert at.markdown[-1].value == "result=None"
    at.button[0].click().run()
    assert "Cancel" in [b.label for b in at.button]
    assert at.markdown[-1].value == "result=None"
    job = at.session_state["job:answer"]["job"]
    GATE.set()
    assert job.wait(5)
    at.run()
    assert at.markdown[-1].value == "result=42"
    at.number_input[0].set_value(2).run()  # new key: the old result is forgotten, the button is back
    assert at.markdown[-1].value == "result=None"
    assert [b.label for b in at.button] == ["Compute"]


def test_cancel_and_failure_are_sentences():
    GATE.clear()
    at = AppTest.from_function(_app, default_timeout=30)
    at.session_state["gate"] = GATE
    at.run()
    at.button[0].click().run()
    cancel = next(b for b in at.button if b.label == "Cancel")
    cancel.click().run()
    assert [b.label for b in at.button] == ["Compute"]
    at.session_state["fail"] = True
    at.button[0].click().run()
    job = at.session_state["job:answer"]["job"]
    GATE.set()
    assert job.wait(5)
    at.run()
    assert "The answer failed: no layer called x" in at.error[0].value
    assert not at.exception
