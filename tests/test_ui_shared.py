"""ui.shared: device notices reach the session that had them, and nothing but the app's pages is in pages/."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import torch

from tests.conftest import APP
from vizlib import models

ROOT = Path(APP).parent


def test_a_cpu_fallback_is_shown_to_its_own_session_only(tiny_loaded, monkeypatch):
    from ui import shared

    toasts: list[tuple[str, str]] = []
    monkeypatch.setattr(shared.st, "toast", lambda text, **kw: toasts.append((threading.current_thread().name, text)))
    gpu_like = dataclasses.replace(tiny_loaded, device=torch.device("meta"), lock=tiny_loaded.lock, cache={})
    b_inside, a_done = threading.Event(), threading.Event()

    def a_fn(lm):
        assert b_inside.wait(10)  # session b is inside its own with_notices when a falls back
        if lm.device.type != "cpu":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return 1

    def b_fn(lm):
        b_inside.set()
        assert a_done.wait(10)
        return 2

    def a() -> None:
        shared.with_notices(models.run_with_cpu_fallback, gpu_like, a_fn)
        a_done.set()

    threads = [threading.Thread(target=a, name="a"),
               threading.Thread(target=lambda: shared.with_notices(models.run_with_cpu_fallback, tiny_loaded, b_fn),
                                name="b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert toasts == [("a", f"The GPU ran out of memory; {tiny_loaded.name} ran on the CPU for this request.")]


def test_pages_holds_only_pages_of_the_app():
    from ui.shared import HOME, LESSONS

    registered = {Path(p.path).name for p in [HOME, *LESSONS]}
    present = {p.name for p in (ROOT / "pages").glob("*.py")}
    assert present == registered, present ^ registered


def test_streamlit_page_menu_is_hidden_and_the_app_draws_its_own():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showSidebarNavigation"] is False


def test_a_shared_model_is_looked_up_once_and_let_go_when_unused(tiny_loaded, monkeypatch):
    """Reruns get the loaded model from a dictionary; the loader runs again only once nothing holds the model."""
    import gc

    from ui import shared

    loads: list[tuple[str, bool]] = []

    def load(name: str, pretrained: bool) -> models.LoadedModel:
        loads.append((name, pretrained))
        return dataclasses.replace(tiny_loaded, cache={})

    monkeypatch.setattr(shared, "_load_shared_model", load)
    shared._SHARED.clear()
    first = shared.shared_model("tiny", True)
    assert shared.shared_model("tiny", True) is first
    assert shared.shared_model("tiny", False) is not first
    assert loads == [("tiny", True), ("tiny", False)]
    del first
    gc.collect()
    shared.shared_model("tiny", True)
    assert loads == [("tiny", True), ("tiny", False), ("tiny", True)]
    shared._SHARED.clear()


def test_a_session_makes_its_pages_once():
    """app.py asks for the pages on every rerun; st.Page objects are made on the session's first run only."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    pages = at.session_state["app_pages"]
    assert [p.title for p in pages][:2] == ["Welcome", "Why convolutions"]
    at.sidebar.selectbox(key="gallery_key").set_value("coffee").run()
    assert not at.exception, at.exception
    assert at.session_state["app_pages"] is pages
    assert all(a is b for a, b in zip(at.session_state["app_pages"], pages, strict=True))


def test_a_gallery_photo_is_fitted_and_hashed_once_and_shared_read_only(monkeypatch):
    """``gallery_image`` is itself the cached function (no wrapper): the photo as a session keeps it, its key."""
    import numpy as np

    from ui import shared
    from vizlib import images

    key = images.gallery()[0].key
    shared.gallery_image.clear()
    loads = []
    real = images.load_gallery_image
    monkeypatch.setattr(images, "load_gallery_image", lambda k: loads.append(k) or real(k))
    image, image_key = shared.gallery_image(key)
    again, again_key = shared.gallery_image(key)
    assert again is image and again_key == image_key and loads == [key]
    assert not image.flags.writeable and max(image.shape[:2]) <= shared.SESSION_IMAGE_SIDE
    assert image_key == shared._image_key(image)
    np.testing.assert_array_equal(image, images.fit_image(real(key), shared.SESSION_IMAGE_SIDE))
    assert "gallery photo" in shared.gallery_image.__doc__ and not hasattr(shared, "_gallery_image")
    shared.gallery_image.clear()
