"""Convolution arithmetic: padding, stride, dilation, pooling and transposed convolution, step by step."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vizlib import conv_arithmetic as ca
from vizlib import images
from vizlib.conv_arithmetic import export
from vizlib.figures import conv as fc
from vizlib.figures.common import image_figure

MODES = {
    "Convolution": "conv",
    "Dilated convolution": "dilated",
    "Transposed convolution": "transposed",
    "Max pooling": "max",
    "Average pooling": "avg",
}
SPEEDS = {"0.5 steps/s": 0.5, "1 step/s": 1.0, "2 steps/s": 2.0, "4 steps/s": 4.0}
MAX_INPUT = 16


# ------------------------------------------------------------------------------------------ controls


def _int_slider(label: str, lo: int, hi: int, default: int, key: str, help: str | None = None) -> int:
    """A slider whose stored value is kept inside its (changing) range; a caption when the range is one value."""
    if lo >= hi:
        st.caption(f"{label}: **{lo}**" + (f" — {help}" if help else ""))
        return lo
    st.session_state[key] = int(min(max(st.session_state.get(key, default), lo), hi))
    return int(st.slider(label, lo, hi, key=key, help=help))


def _controls() -> dict:
    """Read the operation and its parameters from the widgets."""
    label = st.radio("Operation", list(MODES), horizontal=True, key="conv_mode")
    mode = MODES[label]
    pooling = mode in ("max", "avg")
    c1, c2, c3 = st.columns(3)
    with c1:
        n = _int_slider("Input size", 1, MAX_INPUT, 4 if mode == "transposed" else 5, "conv_n")
        k = _int_slider("Kernel size" if not pooling else "Window size", 1, 7, 3 if not pooling else 2, "conv_k")
    with c2:
        p_max = k // 2 if pooling else 6
        p_help = "PyTorch allows pooling padding up to half the window." if pooling else None
        p = _int_slider("Padding", 0, p_max, 0, f"conv_p_{'pool' if pooling else 'conv'}", p_help)
        s = _int_slider("Stride", 1, 4, 2 if pooling or mode == "transposed" else 1, f"conv_s_{mode}")
    with c3:
        if mode == "dilated":
            d = _int_slider("Dilation", 2, 4, 2, "conv_d_dilated")
        elif mode in ("transposed", "max"):
            d = _int_slider("Dilation", 1, 3, 1, f"conv_d_{mode}")
        else:
            d = 1
            st.caption("Dilation: **1**" + (" — average pooling has no dilation in PyTorch" if mode == "avg" else ""))
        op = 0
        if mode == "transposed":
            op = _int_slider(
                "Output padding", 0, max(s, d) - 1, 0, "conv_op", "Must be smaller than the stride or the dilation."
            )
        ceil_mode = pooling and st.checkbox("Ceil mode", key="conv_ceil", help="Round the output size up.")
        include_pad = mode != "avg" or st.checkbox("Count padding in the average", value=True, key="conv_incl")
    v1, v2 = st.columns([2, 1])
    values = v1.radio("Numbers", ["Lecture pattern", "Random integers"], horizontal=True, key="conv_values")
    seed = int(v2.number_input("Seed", 0, 9999, 0, key="conv_seed")) if values == "Random integers" else 0
    return {
        "mode": mode, "n": n, "k": k, "s": s, "p": p, "d": d, "op": op, "ceil": bool(ceil_mode),
        "include_pad": bool(include_pad), "values": values, "seed": seed,
    }  # fmt: skip


def _numbers(c: dict) -> tuple[np.ndarray, np.ndarray]:
    """The input and kernel: the lectures' pattern and kernel, or seeded random integers."""
    rng = np.random.default_rng(c["seed"])
    if c["values"] == "Lecture pattern":
        x = ca.lecture_pattern(c["n"])
        kernel = np.asarray(ca.LECTURE_KERNEL) if c["k"] == 3 else rng.integers(-1, 3, (c["k"], c["k"]))
        return x, kernel
    return rng.integers(0, 10, (c["n"], c["n"])), rng.integers(-2, 3, (c["k"], c["k"]))


def _frames(c: dict, x: np.ndarray, kernel: np.ndarray) -> tuple:
    if c["mode"] in ("conv", "dilated"):
        return ca.conv2d_frames(x, kernel, c["s"], c["p"], c["d"])
    if c["mode"] == "transposed":
        return ca.conv_transpose2d_frames(x, kernel, c["s"], c["p"], c["d"], c["op"])
    return ca.pool2d_frames(
        x, c["k"], c["s"], c["p"], c["d"], mode=c["mode"], ceil_mode=c["ceil"], count_include_pad=c["include_pad"]
    )


def _formula(c: dict) -> ca.Formula:
    kind = {"transposed": "transposed", "max": "pool", "avg": "pool"}.get(c["mode"], "conv")
    return ca.output_size_formula(
        c["n"], c["k"], c["s"], c["p"], c["d"], mode=kind, output_padding=c["op"], ceil_mode=c["ceil"]
    )


# ------------------------------------------------------------------------------------------ the player


def _on_step(delta: int | None, n: int, to: int | None = None) -> None:
    st.session_state["conv_step"] = to if to is not None else min(max(st.session_state["conv_step"] + delta, 1), n)
    st.session_state["conv_touched"] = True
    if st.session_state.get("conv_playing"):
        st.session_state["conv_playing"] = False
        st.session_state["conv_restart"] = True  # a full rerun turns the timer off


def _on_play() -> None:
    st.session_state["conv_playing"] = not st.session_state.get("conv_playing", False)
    if st.session_state["conv_playing"] and st.session_state.get("conv_step", 1) >= st.session_state["conv_n_frames"]:
        st.session_state["conv_step"] = 0  # play again from the start
    st.session_state["conv_touched"] = False


def _player(frames: tuple, signature: str, fps: float, loop: bool) -> None:
    """Play, pause and step through the frames; only this part reruns while playing."""
    n = len(frames)
    if st.session_state.get("conv_signature") != signature:
        st.session_state.update(conv_signature=signature, conv_step=1, conv_playing=False)
    st.session_state["conv_n_frames"] = n
    playing = bool(st.session_state.get("conv_playing")) and n > 1

    @st.fragment(run_every=1.0 / fps if playing else None)
    def player() -> None:
        if st.session_state.pop("conv_restart", False):
            st.rerun()
        step = st.session_state.get("conv_step", 1)
        shown, slider = st.session_state.pop("conv_slider_shown", None), st.session_state.get("conv_step_slider")
        if not st.session_state.get("conv_playing") and shown is not None and slider is not None and slider != shown:
            step = slider  # the user moved the slider (it is only drawn, and only read, while paused)
        if st.session_state.get("conv_playing") and not st.session_state.pop("conv_touched", False):
            step += 1
            if step > n:
                step = 1 if loop else n
                if not loop:
                    st.session_state.update(conv_step=n, conv_playing=False)
                    st.rerun()
        step = min(max(step, 1), n)
        st.session_state["conv_step"] = step
        frame = frames[step - 1]
        with st.container(horizontal=True, vertical_alignment="bottom"):
            for label, icon, args in [
                ("First", "first_page", (None, n, 1)),
                ("Back", "chevron_left", (-1, n)),
                ("Next", "chevron_right", (1, n)),
                ("Last", "last_page", (None, n, n)),
            ]:
                st.button(label, icon=f":material/{icon}:", key=f"conv_{label.lower()}", on_click=_on_step, args=args)
            if st.session_state.get("conv_playing"):
                # No slider while playing: the browser would send its stale value back on every tick.
                st.progress(step / n, text=f"Step {step} of {n}", width=320)
            elif n > 1:
                st.session_state["conv_step_slider"] = st.session_state["conv_slider_shown"] = step
                st.slider("Step", 1, n, key="conv_step_slider", width=320)
        st.markdown(f"**Step {step} of {n}** · `{ca.describe(frame)}`")
        figure = fc.frame_figure(frame, titled=False)
        st.plotly_chart(figure, key="conv_fig_frame", config={"displayModeBar": False})

    player()


def _animation_tab() -> None:
    c = _controls()
    try:
        formula = _formula(c)
        x, kernel = _numbers(c)
        frames = _frames(c, x, kernel)
    except ca.ConvArithmeticError as exc:
        st.error(f"{exc}", icon=":material/block:")
        return
    left, right = st.columns([3, 1])
    with left:
        st.latex(formula.general)
        st.latex(formula.filled)
    right.metric("Output size", f"{formula.value} × {formula.value}")
    if c["mode"] in ("max", "avg") and c["ceil"]:
        st.caption(
            "Ceil mode rounds up, but a window must start inside the input or its left padding; "
            "grey cells lie beyond the padding and never count."
        )

    with st.container(horizontal=True, vertical_alignment="bottom"):
        playing = bool(st.session_state.get("conv_playing"))
        st.button(
            "Pause" if playing else "Play",
            icon=":material/pause:" if playing else ":material/play_arrow:",
            key="conv_play",
            on_click=_on_play,
            type="primary",
        )
        speed = st.select_slider("Speed", list(SPEEDS), value="2 steps/s", key="conv_speed", width=220)
        loop = st.checkbox("Loop", key="conv_loop")
        fps = SPEEDS[speed]
        name = f"{c['mode']}_i{c['n']}_k{c['k']}_s{c['s']}_p{c['p']}_d{c['d']}"
        too_long = len(frames) > export.MAX_EXPORT_FRAMES
        why = (
            f"{len(frames)} steps is more than the {export.MAX_EXPORT_FRAMES} an export holds; "
            "use a smaller input or a larger stride."
            if too_long
            else "Encoded when you click: a few seconds for long animations."
        )
        st.download_button(
            "GIF for slides", data=lambda: export.frames_to_gif(frames, fps=fps), file_name=f"{name}.gif",
            mime="image/gif", on_click="ignore", icon=":material/download:", key="conv_gif", disabled=too_long,
            help=why,
        )  # fmt: skip
        st.download_button(
            "MP4 for slides", data=lambda: export.frames_to_mp4(frames, fps=fps), file_name=f"{name}.mp4",
            mime="video/mp4", on_click="ignore", icon=":material/movie:", key="conv_mp4", disabled=too_long,
            help=why,
        )  # fmt: skip
    signature = repr(sorted(c.items()))
    _player(frames, signature, fps, loop)
    st.caption(
        "Blue: padding. Orange: the cells the kernel touches; pale yellow: the holes a dilated kernel skips. "
        "Green: output cells computed so far."
    )


# ------------------------------------------------------------------------------------------ worked examples


def _worked_example(title: str, x: np.ndarray, stride: int) -> None:
    kernel = np.asarray(ca.LECTURE_KERNEL)
    frames = ca.conv2d_frames(x, kernel, s=stride)
    out = frames[-1].output
    st.subheader(title)
    st.latex(
        rf"{fc.latex_matrix(x)} \star {fc.latex_matrix(kernel)} = {fc.latex_matrix(out)}"
        + (rf"\quad(\text{{stride }} {stride})" if stride > 1 else "")
    )
    formula = ca.output_size_formula(x.shape[0], 3, stride)
    st.latex(formula.filled)
    st.code("\n".join(ca.describe(f) for f in frames), language=None)


def _numbers_tab() -> None:
    st.markdown(
        "The lectures' worked examples, computed the way a convolution layer does it (cross-correlation: "
        "the kernel is **not** flipped). Each output cell is the sum of the element-wise products."
    )
    _worked_example("4×4 input, 3×3 kernel, stride 1", ca.lecture_pattern(4), 1)
    _worked_example("The same kernel at stride 2 on the 7×7 pattern", ca.lecture_pattern(7), 2)


# ------------------------------------------------------------------------------------------ matrix view


def _matrix_tab() -> None:
    st.markdown(
        "A 1D convolution is a matrix product **y = K x**: row *j* of *K* holds the kernel where the window "
        "sits for output *j*. The transposed convolution multiplies by **Kᵀ**: it maps the output's shape back "
        "to the input's (not its values)."
    )
    c1, c2, c3, c4 = st.columns(4)
    n = int(c1.slider("Input length", 2, 12, 6, key="conv_mat_n"))
    text = c2.text_input("Kernel", "1, 2, 3", key="conv_mat_kernel")
    s = int(c3.slider("Stride", 1, 3, 1, key="conv_mat_s"))
    p = int(c4.slider("Padding", 0, 2, 0, key="conv_mat_p"))
    try:
        kernel = np.array([float(v) for v in text.replace(";", ",").split(",") if v.strip()])
    except ValueError:  # Python's "could not convert string to float" means nothing to a student
        kernel = np.empty(0)
    if kernel.size == 0:
        st.error("Type the kernel as numbers separated by commas, e.g. 1, 2, 3.")
        return
    try:
        K = ca.conv1d_matrix(n, kernel, s, p)
        m = K.shape[0]
        op = n - ca.output_size(m, kernel.size, s, p, transposed=True)
        KT = ca.conv_transpose1d_matrix(m, kernel, s, p, output_padding=op)
    except ValueError as exc:  # the sizes don't fit (a kernel longer than the padded input): the library's sentence
        st.error(str(exc))
        return
    x = np.arange(1, n + 1, dtype=np.float64)
    y = K @ x
    st.plotly_chart(fc.matvec_figure(K, x, y, title=f"Convolution: K x = y ({n} → {m})"), key="conv_fig_k")
    names = ("Kᵀ", "y", "Kᵀ y")
    title = f"Transposed convolution: Kᵀ y ({m} → {n})"
    st.plotly_chart(fc.matvec_figure(KT, y, KT @ y, names=names, title=title), key="conv_fig_kt")
    same = "equals" if np.array_equal(KT, K.T) else "differs from"
    st.caption(
        f"K is {m}×{n}; the transposed convolution's matrix {same} Kᵀ"
        + (f" (output padding {op} restores the length {n})" if op else "")
        + "."
    )


# ------------------------------------------------------------------------------------------ checkerboards


def _checkerboard_tab() -> None:
    st.markdown(
        "A transposed convolution adds overlapping copies of its kernel. When the kernel size is not divisible "
        "by the stride, some output cells receive more copies than their neighbours: a **checkerboard**."
    )
    c1, c2, c3 = st.columns(3)
    s = int(c1.slider("Stride", 2, 3, 2, key="conv_cb_s"))
    k_left = int(c2.slider("Left kernel", 1, 7, 3, key="conv_cb_k1"))
    k_right = int(c3.slider("Right kernel", 1, 7, 4, key="conv_cb_k2"))
    n = 6
    maps = []
    for k in (k_left, k_right):
        p, op = ca.upsampling_padding(k, s)
        maps.append(ca.overlap_counts(n, k, s, p, output_padding=op))
    titles = (f"Kernel {k_left}, stride {s}", f"Kernel {k_right}, stride {s}")
    st.plotly_chart(fc.checkerboard_figure(*maps, titles=titles), key="conv_fig_checkerboard")
    verdicts = [
        f"kernel {k}: {'even overlap inside (divisible by the stride)' if k % s == 0 else 'uneven: checkerboard'}"
        for k in (k_left, k_right)
    ]
    st.caption(f"Overlap counts of a {n}×{n} input upsampled {s}× — " + "; ".join(verdicts) + ".")

    st.subheader("On your image")
    image = st.session_state.get("image")  # the sidebar's choice; a bundled photo if there is none
    if image is None:
        image = images.load_gallery_image(images.gallery()[0].key)
    cols = st.columns(2)
    for i, (col, k, title) in enumerate(zip(cols, (k_left, k_right), titles, strict=True)):
        upsampled = ca.transposed_upsample(image, k, s, max_side=96)
        col.plotly_chart(image_figure(upsampled, title=f"{title}, uniform kernel"), key=f"conv_fig_upsampled_{i}")
    st.caption(
        "The image is shrunk to 96 pixels, then upsampled by a transposed convolution whose kernel is uniform "
        "(each weight s²/k²). Zoom in: the uneven overlap shows up as a grid pattern."
    )


st.title("Convolution arithmetic")
st.markdown(
    "How padding, stride and dilation set a convolution's output size, and how pooling and the transposed "
    "convolution work — one output cell at a time."
)
tabs = st.tabs(["Animation", "Show the numbers", "Convolution as a matrix", "Checkerboard artifacts"])
with tabs[0]:
    _animation_tab()
with tabs[1]:
    _numbers_tab()
with tabs[2]:
    _matrix_tab()
with tabs[3]:
    _checkerboard_tab()
