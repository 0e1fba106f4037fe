"""What every page shares: the page list, the sidebar, the cached shared models and the chosen image.

Models are loaded once per process with ``st.cache_resource`` and shared read-only by all sessions
(vizlib's locks make that safe). The chosen image lives in each session's own ``st.session_state``;
uploaded bytes are decoded in memory and never written to disk.
"""

from __future__ import annotations

import gc
import hashlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from ui import user_model
from vizlib import images, models
from vizlib.devices import collect_fallbacks, describe_device
from vizlib.serving import display_jpeg

T = TypeVar("T")

#: Largest decoded image kept per session (longer side, pixels).
SESSION_IMAGE_SIDE = 1024
#: Longest side of the sidebar's thumbnail, pixels (the sidebar is about 300 CSS pixels wide; twice that for
#: sharp screens).
SIDEBAR_SIDE = 600


@dataclass(frozen=True)
class PageInfo:
    """One page of the app, in the classroom order the home page recommends."""

    path: str
    title: str
    icon: str
    blurb: str

    @property
    def url_path(self) -> str:
        """The page's URL path, e.g. ``feature-maps``.

        It deliberately differs from the file's stem (``feature_maps``): Streamlit still knows the legacy
        ``pages/`` directory convention, and a URL equal to a file stem could run that file without the
        router (no sidebar) on a server's first run and in AppTest reruns.
        """
        return self.title.lower().replace(" ", "-")


HOME = PageInfo("pages/home.py", "Welcome", ":material/home:", "Your image and what the network says it is.")
#: The lesson pages, in classroom order (why convolutions -> convolution -> architectures -> edges -> filters ->
#: feature maps -> RF -> CAM -> look closer -> channels -> digits).
LESSONS: list[PageInfo] = [
    PageInfo("pages/training_lab.py", "Why convolutions", ":material/model_training:",
             "Train an MLP and a CNN side by side on Fashion-MNIST: weights, curves, filters, shifts."),
    PageInfo("pages/convolution.py", "Convolution arithmetic", ":material/grid_on:",
             "Padding, stride, dilation, pooling and transposed convolution, step by step."),
    PageInfo("pages/architecture.py", "Architectures and cost", ":material/account_tree:",
             "LeNet to ResNet: every layer's parameters and multiply-accumulates, building blocks, exercises."),
    PageInfo("pages/edges.py", "Edge detectors", ":material/filter_b_and_w:",
             "Edit a kernel and watch it filter your image or your camera live."),
    PageInfo("pages/filters.py", "Learned filters", ":material/apps:",
             "First-layer filters before and after training; any deeper kernel."),
    PageInfo("pages/feature_maps.py", "Feature maps", ":material/layers:",
             "Every channel of every layer on your image."),
    PageInfo("pages/receptive_fields.py", "Receptive fields", ":material/center_focus_strong:",
             "What part of the image one unit sees: theoretical and effective."),
    PageInfo("pages/cam.py", "Class activation maps", ":material/local_fire_department:",
             "Why did the network say \"cat\"? CAM, Grad-CAM and friends."),
    PageInfo("pages/look_closer.py", "Look closer", ":material/visibility:",
             "Cover part of the image, shift and turn it: what changes the prediction?"),
    PageInfo("pages/channels.py", "What a channel wants", ":material/psychology:",
             "Photo patches and an optimised picture for one channel; the channels behind a prediction."),
    PageInfo("pages/digits.py", "Draw a digit", ":material/draw:",
             "Draw a digit and watch it flow through a LeNet-5 trained here."),
]
_ROOT = Path(__file__).resolve().parent.parent


def available_lessons() -> list[PageInfo]:
    """The lessons whose page file is present, in classroom order."""
    return [lesson for lesson in LESSONS if (_ROOT / lesson.path).is_file()]


#: Where a session keeps its ``st.Page`` objects (see :func:`app_pages`).
_PAGES_KEY = "app_pages"


def app_pages() -> list[Any]:
    """The app's ``st.Page`` objects (home first, then the lessons), made once per session.

    ``st.Page`` resolves and checks its file and hashes its path when it is made: thirteen of them on every rerun
    were about 1.6 ms of a session's script thread per rerun. A session's reruns run one at a time, so it keeps its
    own: they are not shared between sessions, because ``st.navigation`` marks the page it picks as runnable on the
    object itself.
    """
    pages = st.session_state.get(_PAGES_KEY)
    if pages is None:
        home = st.Page(HOME.path, title=HOME.title, icon=HOME.icon, url_path=HOME.url_path, default=True)
        pages = [home] + [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path)
                          for p in available_lessons()]
        st.session_state[_PAGES_KEY] = pages
    return pages


def _image_key(image: Any) -> str:
    return hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()[:16]


def set_image(image: Any, label: str, image_key: str | None = None) -> None:
    """Make ``image`` (HxWx3 uint8) this session's chosen image (``image_key``: its key, when already known)."""
    if image_key is None:
        image = images.fit_image(image, SESSION_IMAGE_SIDE)
        image_key = _image_key(image)
        image.flags.writeable = False  # shared with the caches' results; a page that would draw on it copies it
    st.session_state["image"] = image
    st.session_state["image_label"] = label
    st.session_state["image_key"] = image_key
    st.session_state.pop("image_lost", None)


@st.cache_resource(max_entries=16, show_spinner=False)
def gallery_image(key: str) -> tuple[np.ndarray, str]:
    """A gallery photo as a session keeps it (longer side at most ``SESSION_IMAGE_SIDE``) and its image key.

    Decoded and hashed once per process and shared read-only by every session that shows it: every new student
    starts on the first one.
    """
    image = images.fit_image(images.load_gallery_image(key), SESSION_IMAGE_SIDE)
    image.flags.writeable = False
    return image, _image_key(image)


def _choose_gallery(key: str, label: str) -> None:
    image, image_key = gallery_image(key)
    set_image(image, label, image_key)


def current_image() -> Any:
    """This session's chosen image (HxWx3 uint8 RGB, read-only), the gallery cat until the user picks another."""
    if "image" not in st.session_state:
        first = images.gallery()[0]
        _choose_gallery(first.key, first.title)
    return st.session_state["image"]


def current_image_key() -> str:
    current_image()
    return st.session_state["image_key"]


# ------------------------------------------------------------------------------------------- models


_FROZEN = threading.Event()


def freeze_startup_objects() -> bool:
    """Move everything alive now out of the garbage collector's sight, once per process.

    Called after the first model has loaded: the imported modules (torch, torchvision, plotly, streamlit) and
    the default model live as long as the process, and a full collection that no longer walks them costs far
    under a millisecond instead of about 230 ms (benchmarks/bench_server_costs.py). Only once: a model loaded
    later stays collectable, so when the model cache evicts it, it (and its traced graphs, which hold
    reference cycles) is freed.

    Returns:
        Whether this call froze (``False``: an earlier call already did).
    """
    if _FROZEN.is_set():
        return False
    _FROZEN.set()
    gc.collect()
    gc.freeze()
    return True


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_shared_model(name: str, pretrained: bool) -> models.LoadedModel:
    loaded = models.load_model(name, pretrained=pretrained)
    h, w = loaded.input_size
    warm = np.zeros((max(h, 28), max(w, 28), 3), np.uint8)
    warm[4:-4, warm.shape[1] // 2 - 2 : warm.shape[1] // 2 + 2] = 255  # a stroke: the digits model needs ink
    models.classify(loaded, warm)  # warm-up: the first pass pays one-time setup
    freeze_startup_objects()
    return loaded


#: The shared models already loaded, for as long as something uses them: every rerun of every session asks for its
#: model, and ``st.cache_resource``'s lookup (hashing the arguments, its spinner and replay machinery) cost more
#: than a dictionary's. A model the cache let go stays here only while a session still holds it.
_SHARED: weakref.WeakValueDictionary[tuple[str, bool], models.LoadedModel] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_model(name: str, pretrained: bool) -> models.LoadedModel:
    """Any registry model, loaded once per process (warmed up) and shared read-only by every session.

    ``shared_model.clear()`` forgets every loaded model (tests).
    """
    loaded = _SHARED.get((name, pretrained))
    if loaded is None:
        loaded = _load_shared_model(name, pretrained)  # one load per process, other sessions wait for it
        with _SHARED_LOCK:
            _SHARED[(name, pretrained)] = loaded
    return loaded


def _clear_shared_models() -> None:
    with _SHARED_LOCK:
        _SHARED.clear()
    _load_shared_model.clear()


shared_model.clear = _clear_shared_models  # type: ignore[attr-defined]


def current_model_name() -> str:
    return st.session_state.get("model_name", models.DEFAULT_MODEL)


def current_model() -> models.LoadedModel:
    """The session's model: a registry model (loaded once per process, shared read-only by every session) or
    the session's own (see :mod:`ui.user_model`)."""
    own = user_model.resolve(current_model_name())
    return own if own is not None else shared_model(current_model_name(), True)


def untrained_model(name: str | None = None) -> models.LoadedModel:
    """The same architecture with its (seeded) random initialisation (a user model's: its registry architecture)."""
    return shared_model(user_model.architecture_of(name or current_model_name()), False)


def _ensure_weights(name: str) -> bool:
    """Download the weights of ``name`` if needed, with a progress bar. False (and a warning) if impossible."""
    if models.weights_status(name) != "download":
        return True
    spec = models.get_spec(name)
    bar = st.sidebar.progress(0.0, text=f"Downloading {spec.title} weights…")

    def progress(done: int, total: int) -> None:
        fraction = done / total if total else 0.0
        bar.progress(min(fraction, 1.0), text=f"Downloading {spec.title}: {done / 2**20:.0f} of {total / 2**20:.0f} MB")

    try:
        models.fetch_weights(name, progress=progress)
    except models.ModelError as exc:
        bar.empty()
        st.sidebar.warning(f"{exc}\n\nCarrying on with {models.get_spec(models.DEFAULT_MODEL).title}.")
        return False
    bar.empty()
    return True


def with_notices(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn`` and show this session the device notices it caused (a CPU fallback after GPU out-of-memory).

    The notices are collected in a context variable of this session's thread (vizlib.devices.collect_fallbacks),
    never through process-wide state: sessions run side by side in threads.
    """
    with collect_fallbacks() as notices:
        result = fn(*args, **kwargs)
    for notice in notices:
        st.toast(notice, icon=":material/memory:")
    return result


# ------------------------------------------------------------------------------------------- sidebar


def _model_label(name: str) -> str:
    status = models.weights_status(name)
    suffix = {"bundled": "", "on disk": "", "download": " — downloads on first use"}[status]
    return models.get_spec(name).title + suffix


#: The models the sidebar offers: those that take any photo. The small teaching networks (the digits LeNet)
#: see a 28x28 re-centred crop, so the photo pages' promises (maps over the photo, faithfulness, CAM inputs)
#: would not hold for them: they live on their own pages.
PICKER_DATASET = "ImageNet"


def _load_failed(name: str) -> str | None:
    return st.session_state.get("model_failures", {}).get(name)


def _remember_failure(name: str, message: str) -> None:
    st.session_state.setdefault("model_failures", {})[name] = message


def _sidebar_model() -> None:
    user_model.take_pending_choice()
    own = user_model.session_model()
    names = models.list_models(PICKER_DATASET) + ([own.name] if own is not None else [])
    labels = {own.name: user_model.label(own)} if own is not None else {}
    choice = st.sidebar.selectbox(
        "Model", names, key="model_choice", format_func=lambda n: labels.get(n) or _model_label(n)
    )
    if own is not None and choice == own.name:
        st.session_state["model_name"] = own.name
        st.sidebar.caption(f":material/memory: Running on **{describe_device(own.device)}**")
        return
    name = choice
    failed = _load_failed(choice)
    if failed is not None:  # said once when it happened; not retried on every rerun (a download waits 30 s)
        st.sidebar.caption(f":material/error: {models.get_spec(choice).title} could not be loaded in this session.")
        name = models.DEFAULT_MODEL
    elif not _ensure_weights(choice):
        _remember_failure(choice, "weights unavailable")
        name = models.DEFAULT_MODEL
    try:
        current = shared_model(name, True)
    except models.ModelError as exc:
        _remember_failure(name, str(exc))
        st.sidebar.error(f"{exc}\n\nCarrying on with {models.get_spec(models.DEFAULT_MODEL).title}.")
        name = models.DEFAULT_MODEL
        current = shared_model(name, True)
    st.session_state["model_name"] = name
    st.sidebar.caption(f":material/memory: Running on **{describe_device(current.device)}**")


def _sidebar_image() -> None:
    source = st.sidebar.radio("Image", ["Gallery", "Upload", "Camera"], key="image_source", horizontal=True)
    if source != "Gallery" and "image" not in st.session_state:
        # A fresh session that already says "Upload"/"Camera": the browser reconnected to a server that
        # doesn't hold its session (a replica stopped behind the proxy, or the server restarted) and brought
        # its widgets back, not its image.
        st.session_state["image_lost"] = True
        # the uploader the browser brought back still lists the old file, which this server never received, and
        # would ignore the same file chosen again: a fresh uploader instead
        st.session_state["upload_key"] = "upload_again"
    if source == "Gallery":
        entries = {g.key: g for g in images.gallery()}
        key = st.sidebar.selectbox(
            "Sample photo", list(entries), key="gallery_key", format_func=lambda k: entries[k].title
        )
        if st.session_state.get("image_origin") != f"gallery:{key}":
            _choose_gallery(key, entries[key].title)
            st.session_state["image_origin"] = f"gallery:{key}"
            st.session_state.pop("image_error", None)
        item = entries[key]
        st.sidebar.caption(f"{item.license} · {item.author or item.source}")
    elif source == "Upload":
        # No `type=` filter: Streamlit would answer a wrong extension with an exception instead of a sentence;
        # load_image reads the content, whatever the name, and explains what it can't use.
        upload = st.sidebar.file_uploader(
            "Your image (JPEG, PNG, GIF, BMP, TIFF, WebP)", key=st.session_state.get("upload_key", "upload"),
            max_upload_size=images.MAX_BYTES // 2**20,
        )
        if upload is not None:
            _take_bytes(f"upload:{upload.file_id}", upload.getvalue(), upload.name)
    else:
        shot = st.sidebar.camera_input("Camera snapshot", key="camera")
        if shot is not None:
            _take_bytes(f"camera:{shot.file_id}", shot.getvalue(), "camera snapshot")
    if st.session_state.get("image_lost"):
        st.sidebar.info("The server that held your session changed or restarted and did not keep your image: "
                        "choose your image again. Until then the pages show the sample photo.",
                        icon=":material/sync_problem:")
    current_image()
    # encoded once per image at the sidebar's size, not on every rerun (vizlib.serving.pictures)
    thumbnail = display_jpeg(st.session_state["image"], SIDEBAR_SIDE, key=st.session_state["image_key"])
    st.sidebar.image(thumbnail, caption=st.session_state.get("image_label"), width="stretch", output_format="JPEG")


def _take_bytes(origin: str, data: bytes, label: str) -> None:
    """Decode new bytes once; on bad input show why and keep the previous image."""
    if st.session_state.get("image_origin") == origin:
        return
    try:
        decoded = images.load_image(data, SESSION_IMAGE_SIDE)  # a large JPEG decodes at a reduced scale
    except images.ImageError as exc:
        st.session_state["image_error"] = (origin, str(exc))
    else:
        set_image(decoded, label)
        st.session_state.pop("image_error", None)
    st.session_state["image_origin"] = origin


def draw_navigation(pages: list[Any]) -> None:
    """The app's page list at the top of the sidebar, in classroom order (``pages``: ``st.Page`` objects)."""
    nav = st.sidebar.container(key="app_nav")
    for page in pages:
        nav.page_link(page, label=page.title, icon=page.icon)
    st.sidebar.divider()


#: The sidebar's choices that :func:`switch_page` carries over (widgets whose default is their first option).
_SIDEBAR_KEYS = ("model_choice", "image_source", "gallery_key", "own_open")
_KEPT = "sidebar_kept"


def switch_page(page: str) -> None:
    """``st.switch_page`` that keeps the sidebar's choices.

    A page switched from the server (not by a link the browser follows) arrives without the browser's widget
    values, and Streamlit then forgets them all: the model picker would fall back to the default model and an
    uploaded image to the sample photo. The choices are kept in plain session state and put back before the
    sidebar is drawn.
    """
    st.session_state[_KEPT] = {key: st.session_state[key] for key in _SIDEBAR_KEYS if key in st.session_state}
    st.switch_page(page)


def draw_sidebar() -> None:
    """The shared sidebar: model picker, image source and device badge."""
    for key, value in st.session_state.pop(_KEPT, {}).items():
        st.session_state[key] = value
    _sidebar_model()
    user_model.section()
    _sidebar_image()
    error = st.session_state.get("image_error")
    if error:
        st.sidebar.error(f"{error[1]} The previous image is still in use.")
