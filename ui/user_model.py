"""The sidebar's "Your own model" section: a session's own weights, used by every page like a registry model.

The model lives only in this session's ``st.session_state`` (never in ``st.cache_resource``, never on disk) and
disappears with the session. Its name, ``user:<hash>``, keys every cache, so it never mixes with the registry
model of the same architecture or with another session's model. One model per session, bounded by
``vizlib.user_models.user_model_limit_bytes()`` (``$CNN_LENS_USER_MODEL_MB``).
"""

from __future__ import annotations

import streamlit as st

from vizlib import models, user_models

__all__ = ["architecture_of", "is_own", "label", "resolve", "section", "session_model", "take_pending_choice"]

_MODEL = "own_model"
_PENDING = "own_model_pending_choice"  # the model picker's next value, set before the picker is drawn
_ERROR = "own_model_error"
_ROUND = "own_model_round"  # part of the uploaders' keys: a new round empties them (the bytes are freed)


def session_model() -> models.LoadedModel | None:
    """This session's own model, if it loaded one."""
    return st.session_state.get(_MODEL)


def is_own(name: str) -> bool:
    """Whether ``name`` names a user's model rather than a registry entry."""
    return name.startswith(user_models.USER_PREFIX)


def resolve(name: str) -> models.LoadedModel | None:
    """The session's own model when ``name`` is its name, else ``None``."""
    own = session_model()
    return own if own is not None and own.name == name else None


def architecture_of(name: str) -> str:
    """The registry architecture behind ``name`` (``name`` itself for a registry model)."""
    own = resolve(name) if is_own(name) else None
    if own is not None:
        return own.spec.name
    return models.DEFAULT_MODEL if is_own(name) else name


def label(own: models.LoadedModel) -> str:
    """The model picker's label of a user's model."""
    return f"Your model: {own.spec.title}"


def take_pending_choice() -> None:
    """Apply a model choice made by this section; call before the model picker is drawn."""
    pending = st.session_state.pop(_PENDING, None)
    if pending is not None:
        st.session_state["model_choice"] = pending


def _floats(text: str, what: str) -> list[float] | None:
    text = text.strip()
    if not text:
        return None
    try:
        return [float(part) for part in text.replace(";", ",").replace(" ", ",").split(",") if part]
    except ValueError:
        raise user_models.PreprocessingError(f"The {what} must be numbers separated by commas.") from None


def _class_names(upload) -> list[str] | None:
    if upload is None:
        return None
    try:
        text = upload.getvalue().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise user_models.UserModelError(f"{upload.name} is not a UTF-8 text file of class names.") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _load(weights, architecture: str, names_file, count: int, mean: str, std: str, size: int) -> None:
    bar = st.progress(0.0, text="Reading the weights…")
    try:
        categories = _class_names(names_file)
        loaded = user_models.load_user_model(
            weights.getvalue(), architecture, categories if categories is not None else (count or None),
            filename=weights.name, mean=_floats(mean, "mean"), std=_floats(std, "std"), input_size=size or None,
            progress=lambda fraction, text: bar.progress(fraction, text=text),
        )
    except models.ModelError as exc:
        st.session_state[_ERROR] = f"{exc} Nothing changed."
        return
    finally:
        bar.empty()
    st.session_state[_MODEL] = loaded  # replaces any previous one: one model per session
    st.session_state[_PENDING] = loaded.name
    st.session_state[_ROUND] = st.session_state.get(_ROUND, 0) + 1
    st.session_state.pop(_ERROR, None)
    st.rerun()


def _forget() -> None:
    own = st.session_state.pop(_MODEL, None)
    if own is not None and st.session_state.get("model_choice") == own.name:
        st.session_state["model_choice"] = models.DEFAULT_MODEL


def section() -> None:
    """The "Your own model" section (behind a toggle): upload weights, pick the architecture, name the classes."""
    own = session_model()
    limit = user_models.user_model_limit_bytes()
    round_ = st.session_state.get(_ROUND, 0)
    # A toggle, not an expander: a collapsed expander still puts its uploaders in the page, and the sidebar's
    # image uploader should stay the only one until someone asks for this.
    if not st.sidebar.toggle("Your own model", key="own_open", help="Your weights for a registry architecture"):
        return
    with st.sidebar.container(border=True):
        weights = st.file_uploader(
            "Weights (.safetensors, or a state dict .pt / .pth)", key=f"own_weights_{round_}",
            max_upload_size=max(1, limit // 2**20),
        )
        names = models.list_models("ImageNet")  # the architectures of the photo pages (ui.shared.PICKER_DATASET)
        architecture = st.selectbox(
            "Architecture", names, key="own_arch", index=names.index("resnet18") if "resnet18" in names else 0,
            format_func=lambda n: models.get_spec(n).title,
        )
        names_file = st.file_uploader(
            "Class names (text file, one per line)", key=f"own_names_{round_}", max_upload_size=1
        )
        count = st.number_input("…or the number of classes (0: from the weights)", 0, 100_000, 0, key="own_count")
        st.caption("Preprocessing (empty: the architecture's)")
        left, right = st.columns(2)
        mean = left.text_input("Mean", key="own_mean", placeholder="0.485, 0.456, 0.406")
        std = right.text_input("Std", key="own_std", placeholder="0.229, 0.224, 0.225")
        size = st.number_input("Input size (px, 0: the architecture's)", 0, 1024, 0, key="own_size")
        if st.button("Load my model", key="own_load", disabled=weights is None, width="stretch"):
            _load(weights, architecture, names_file, int(count), mean, std, int(size))
        error = st.session_state.get(_ERROR)
        if error:
            st.error(error)
        if own is not None:
            used = user_models.model_bytes(own.model)
            st.caption(
                f"Loaded: **{own.spec.title}**, {len(own.categories)} classes, {used / 2**20:.0f} of "
                f"{limit / 2**20:.0f} MB. It is yours only and is gone when you close the tab."
            )
            st.button("Forget my model", key="own_forget", on_click=_forget)
