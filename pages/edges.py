"""Edge detectors: edit a kernel, see it filter the chosen image and the camera live, compare with learned filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ui.shared import current_image, current_model
from vizlib import kernels as K
from vizlib.figures import kernels as KF
from vizlib.kernels import live
from vizlib.models import LoadedModel

try:  # the live stream is optional: without it the page filters the chosen image instead
    import av
    from streamlit_webrtc import WebRtcMode, webrtc_streamer
except ImportError:  # pragma: no cover - exercised where the package is missing
    webrtc_streamer = None

SIZES = {"3x3": 3, "5x5": 5}
MODE_LABELS = {
    "correlate": "Cross-correlation (what a conv layer computes)",
    "convolve": "Convolution (kernel flipped)",
}
BORDER_LABELS = {"zero": "Zeros (padding=k//2)", "reflect": "Reflect", "replicate": "Replicate the edge"}
COLOR_LABELS = {"gray": "Grayscale", "per_channel": "Each RGB channel"}
DISPLAY_LABELS = {
    "auto": "Auto (|response| for edge kernels)",
    "clip": "Clip to 0..255",
    "absolute": "|response|",
    "offset": "128 + response / 2",
}
TOP_K = 8


# ------------------------------------------------------------------------------------------ kernel state


def _fit(kernel: np.ndarray, size: int) -> np.ndarray:
    """Centre ``kernel`` in a ``size x size`` grid: zero-pad a smaller one, keep the middle of a larger one."""
    out = np.zeros((size, size), dtype=np.float64)
    k = np.nan_to_num(np.asarray(kernel, dtype=np.float64))
    n = min(size, k.shape[0])
    dst, src = (size - n) // 2, (k.shape[0] - n) // 2
    out[dst : dst + n, dst : dst + n] = k[src : src + n, src : src + n]
    return out


def _load(kernel: np.ndarray) -> None:
    """Make ``kernel`` the grid's new starting point (a fresh editor)."""
    st.session_state["edges_base"] = np.asarray(kernel, dtype=np.float64)
    st.session_state["edges_grid_version"] = st.session_state.get("edges_grid_version", 0) + 1


def _on_preset() -> None:
    preset = K.PRESETS[st.session_state["edges_preset"]]
    st.session_state["edges_size"] = f"{preset.shape[0]}x{preset.shape[1]}"
    _load(preset)


def _on_size() -> None:
    current = st.session_state.get("edges_kernel", st.session_state["edges_base"])
    _load(_fit(current, SIZES[st.session_state["edges_size"]]))


def _kernel_editor() -> np.ndarray:
    """The preset picker, size and the editable grid; returns the kernel as edited (NaN in empty cells)."""
    if "edges_base" not in st.session_state:
        st.session_state.setdefault("edges_preset", "sobel_x")
        st.session_state.setdefault("edges_size", "3x3")
        _load(K.PRESETS[st.session_state["edges_preset"]])
    st.selectbox("Preset", list(K.PRESETS), key="edges_preset", format_func=K.PRESET_LABELS.get, on_change=_on_preset)
    left, right = st.columns([1, 1])
    left.radio("Size", list(SIZES), key="edges_size", horizontal=True, on_change=_on_size)
    right.button("Reset to preset", on_click=_on_preset, width="stretch")
    base = st.session_state["edges_base"]
    columns = [str(j) for j in range(base.shape[1])]
    edited = st.data_editor(
        pd.DataFrame(base, columns=columns),
        key=f"edges_grid_{st.session_state['edges_grid_version']}",
        num_rows="fixed",
        width="stretch",
        column_config={c: st.column_config.NumberColumn(c, format="%.4g") for c in columns},
    )
    kernel = edited.to_numpy(dtype=np.float64, na_value=np.nan)
    st.session_state["edges_kernel"] = kernel
    return kernel


def _options() -> dict[str, Any]:
    """Scale, bias and the filtering options, as keyword arguments of vizlib.kernels.apply."""
    left, right = st.columns(2)
    scale = left.number_input("Scale", value=1.0, step=0.1, format="%.4g", key="edges_scale")
    bias = right.number_input("Bias", value=0.0, step=1.0, format="%.4g", key="edges_bias")
    mode = st.radio("Operation", list(MODE_LABELS), format_func=MODE_LABELS.get, key="edges_mode")
    left, right = st.columns(2)
    border = left.selectbox("Border", list(BORDER_LABELS), format_func=BORDER_LABELS.get, key="edges_border")
    color = right.selectbox("Colour", list(COLOR_LABELS), format_func=COLOR_LABELS.get, key="edges_color")
    return {"mode": mode, "border": border, "color": color, "scale": float(scale), "bias": float(bias)}


# ------------------------------------------------------------------------------------------ sections


def _image_section(image: np.ndarray, result: np.ndarray, kernel: np.ndarray, options: dict[str, Any]) -> None:
    left, right = st.columns(2)
    left.plotly_chart(KF.input_figure(image), key="edges_input")
    right.plotly_chart(KF.response_figure(result, title="Result"), key="edges_result")
    st.subheader("Gradient: |Gx|, |Gy| and the magnitude")
    kx = kernel * options["scale"]
    grad = K.gradient(image, kx, kx.T, mode=options["mode"], border=options["border"], color=options["color"])
    st.plotly_chart(KF.gradient_figure(grad), key="edges_gradient")
    st.caption(
        "Gx is your kernel (times the scale), Gy its transpose: for Sobel x that is Sobel y. "
        "The magnitude is sqrt(Gx² + Gy²): edges of every direction at once."
    )
    split = K.separate(kernel)
    if split.separable and split.rank == 1:
        st.caption(
            f"Separable: column {np.round(split.column, 4).tolist()} times row {np.round(split.row, 4).tolist()} — "
            f"{split.separable_multiplications} multiplications per pixel instead of {split.full_multiplications}."
        )
    else:
        st.caption(f"Not separable (rank {split.rank}): all {split.full_multiplications} multiplications per pixel.")


@st.cache_data(max_entries=8, show_spinner=False)
def _first_layer(model_name: str, _loaded: LoadedModel) -> np.ndarray:
    with _loaded.shared():
        return K.first_conv_weight(_loaded.model).numpy()


def _learned_section(kernel: np.ndarray, options: dict[str, Any]) -> None:
    st.subheader("Designed vs learned")
    loaded = current_model()
    try:
        weight = _first_layer(loaded.name, loaded)
    except K.FilterError as exc:
        st.info(str(exc))
        return
    # The layer cross-correlates: compare the kernel it would need to do what this page does.
    effective = (kernel[::-1, ::-1] if options["mode"] == "convolve" else kernel) * options["scale"]
    try:
        matches = K.match_filters(weight, effective, top_k=min(TOP_K, weight.shape[0]))
    except K.KernelValueError as exc:
        st.info(str(exc))
        return
    out, inp, kh, kw = weight.shape
    st.markdown(
        f"The first convolution layer of **{loaded.spec.title}** has {out} filters of {inp}x{kh}x{kw}, "
        "learned from data, not designed. Summed over the colour channels (the filter each one applies to "
        "a gray picture), these are the most similar to your kernel (cosine similarity; −1 is the same "
        "pattern with bright and dark swapped)."
    )
    st.plotly_chart(KF.matches_figure(effective, matches), key="edges_matches")
    table = pd.DataFrame({"Filter": matches.indices, "Cosine similarity": np.round(matches.similarities, 3)})
    st.dataframe(table, hide_index=True, key="edges_match_table")


# ------------------------------------------------------------------------------------------ live


def _live_filter() -> live.LiveFilter:
    """This session's holder, shared with the video thread (created once per session)."""
    if "edges_live" not in st.session_state:
        st.session_state["edges_live"] = live.LiveFilter()
    return st.session_state["edges_live"]


def _frame_callback(holder: live.LiveFilter) -> Callable[[av.VideoFrame], av.VideoFrame]:
    """The video callback: filter each camera frame with whatever the holder has now."""

    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        try:
            pixels, layout = live.video_frame_layout(holder.process(frame.to_ndarray(format="rgb24")))
        except K.FilterError:  # e.g. a camera frame smaller than the kernel: show it unfiltered
            return frame
        filtered = av.VideoFrame.from_ndarray(pixels, format=layout)
        filtered.pts, filtered.time_base = frame.pts, frame.time_base
        return filtered

    return callback


def _readout(holder: live.LiveFilter) -> None:
    stats = holder.stats()
    a, b, c = st.columns(3)
    a.metric("Frames per second", f"{stats.fps:.1f}")
    b.metric("ms per frame", f"{stats.mean_ms:.1f}", help="Time the server spends filtering one frame.")
    c.metric("Frame size", "—" if stats.frame_size is None else f"{stats.frame_size[0]}x{stats.frame_size[1]}")


def _use_camera_snapshot() -> None:
    st.session_state["image_source"] = "Camera"


def _still_fallback(image: np.ndarray, holder: live.LiveFilter, reason: str) -> None:
    st.info(
        f"{reason} Instead, the chosen image is filtered the way the live stream would show it. "
        "For a camera snapshot, pick Camera as the image source in the sidebar."
    )
    st.button("Use a camera snapshot", on_click=_use_camera_snapshot, key="edges_snapshot")
    try:  # an image smaller than the stream's kernel (a 1x1 upload): the sentence, not a traceback
        frame = live.render_frame(image, holder.settings)
    except K.FilterError as exc:
        st.warning(str(exc), icon=":material/error:")
        return
    st.image(frame, caption="Filtered as a video frame", width="stretch")


def _live_section(image: np.ndarray, kernel: np.ndarray, options: dict[str, Any], usable: bool) -> None:
    """The camera stream filtered with the current kernel; an unusable kernel leaves the last good one running."""
    st.subheader("Live: your camera")
    display = st.selectbox("Show the response as", list(DISPLAY_LABELS), format_func=DISPLAY_LABELS.get,
                           key="edges_display")
    holder = _live_filter()
    if usable:
        holder.update(kernel, display=display, **options)
    reason = live.why_no_live_video(st.context.url, webrtc_installed=webrtc_streamer is not None)
    if reason is not None:
        _still_fallback(image, holder, reason)
        return
    if "edges_callback" not in st.session_state:
        st.session_state["edges_callback"] = _frame_callback(holder)
    try:  # a floor for the camera's send rate: else a busy server holds it to 10-15 frames/s at 640x480
        rates = live.camera_bitrate_from_env()
        if rates is not None:
            live.request_camera_bitrate(*rates)
    except ValueError as exc:  # a deployment's bad setting: stream with the browser's own pacing
        st.warning(f"{exc}. The camera streams at the rate the browser picks.", icon=":material/speed:")
    ctx = webrtc_streamer(
        key="edges_webrtc",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration={"iceServers": []},  # no STUN server from the internet: this machine and its network
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
        video_frame_callback=st.session_state["edges_callback"],
        # In the WebRTC event loop, not a worker thread: a frame costs a few ms here, while handing each one
        # to another thread and back cost far more (measured: 30 against 10 filtered frames/s at 640x480).
        async_processing=False,
    )
    playing = bool(ctx.state.playing)
    if playing and not st.session_state.get("edges_was_playing"):
        holder.reset_stats()
    st.session_state["edges_was_playing"] = playing
    st.fragment(_readout, run_every=1.0 if playing else None)(holder)
    st.caption(
        "Press START and allow the camera. Edits to the kernel and the options reach the running stream on "
        "the next frame. No picture after a few seconds? The browser may have no camera, or the network "
        "between it and this server may block WebRTC (no relay servers are used)."
    )
    with st.expander("No live video? Filter the chosen image instead"):
        _still_fallback(image, holder, "Live video needs a camera and a direct network path to this server.")


# ------------------------------------------------------------------------------------------ page

st.title("Edge detectors")
st.markdown(
    "A kernel is a small grid of weights. Slide it over the image, multiply and add: that is one "
    "channel of a convolution layer. Edit the weights, pick a preset, and watch what it picks out."
)

image = current_image()
controls, side = st.columns([3, 2])
with controls:
    kernel = _kernel_editor()
    options = _options()
try:
    result, error = K.apply(image, kernel, **options), None
except K.FilterError as exc:
    result, error = None, str(exc)
with side:
    if error is None:
        st.plotly_chart(KF.kernel_figure(kernel * options["scale"], title="Kernel × scale"), key="edges_grid_chart")
    # Drawn before any error stops the page, so a half-typed kernel never tears down a running stream.
    _live_section(image, kernel, options, usable=error is None)
if error is not None:
    st.error(error)
    st.stop()

_image_section(image, result, kernel, options)
_learned_section(kernel, options)
