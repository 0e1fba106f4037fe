"""Live partial results: vizlib.jobs.Latest, and ui.jobs.background(live=...) drawing them while a job runs."""

from __future__ import annotations

import threading

from streamlit.testing.v1 import AppTest

from vizlib.jobs import Latest

GATE = threading.Event()


def test_latest_keeps_the_last_value_and_counts():
    box: Latest[int] = Latest()
    assert box.get() is None and box.version == 0
    threads = [threading.Thread(target=lambda i=i: [box.set(i * 100 + k) for k in range(100)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert box.version == 400
    assert box.get() % 100 == 99  # some thread's last value


def _app() -> None:
    import streamlit as st

    from ui.jobs import background
    from vizlib.jobs import JobQueue, Latest

    if "queue" not in st.session_state:
        st.session_state["queue"] = JobQueue("ui-live-test", workers=1)
        st.session_state["box"] = Latest()
    box, gate = st.session_state["box"], st.session_state["gate"]

    def work(progress):
        box.set("half way")
        while not gate.wait(0.01):
            progress(0.5, "working")
        return "done"

    result = background(st.session_state["queue"], "live", 1, work, label="Work", start_label="Go",
                        live=lambda: st.write(f"live={box.get()}"))
    st.write(f"result={result}")


def test_background_draws_the_partial_result_while_running():
    GATE.clear()
    at = AppTest.from_function(_app, default_timeout=30)
    at.session_state["gate"] = GATE
    at.run()
    assert "live=half way" not in [m.value for m in at.markdown]
    at.button[0].click().run()
    job = at.session_state["job:live"]["job"]
    for _ in range(100):
        if at.session_state["box"].get() is not None:
            break
        threading.Event().wait(0.05)
    at.run()
    assert "live=half way" in [m.value for m in at.markdown]
    GATE.set()
    assert job.wait(5)
    at.run()
    values = [m.value for m in at.markdown]
    assert "result=done" in values and not any(v.startswith("live=") for v in values)
