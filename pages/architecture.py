"""Architectures and their cost: the models on one chart, a model's anatomy, building blocks, exercises."""

from __future__ import annotations

import streamlit as st

from ui.shared import current_model_name
from vizlib import models
from vizlib.architecture import anatomy as A
from vizlib.architecture import blocks as B
from vizlib.architecture import catalog as C
from vizlib.architecture import exercises as E
from vizlib.figures import architecture as FA

SECTIONS = ["Models and their anatomy", "Building blocks", "Exercises"]
MAX_SIDE = 4096
MAX_CHANNELS = 4096


# ------------------------------------------------------------------------------------------- cached work


@st.cache_resource(max_entries=12, show_spinner="Counting every layer (once per model for everyone)…")
def _anatomy(name: str) -> A.Anatomy:
    """A model's walk and stages, shared read-only by every session (frozen dataclasses)."""
    return A.architecture_anatomy(name)


@st.cache_resource(show_spinner=False)
def _points() -> list[C.ModelPoint]:
    return C.model_points()


# ------------------------------------------------------------------------------------------- models


def _chart() -> str:
    points = _points()
    names = models.list_models()
    if "arch_model" not in st.session_state:
        st.session_state["arch_model"] = current_model_name() if current_model_name() in names else names[0]
    st.caption("Every registry model trained on ImageNet: accuracy against compute, bubble area = parameters. "
               "Figures from torchvision's own weights metadata and, for EfficientNet-Lite0, its authors' README. "
               "**Click a bubble** to open that model's anatomy below.")  # fmt: skip
    # The click arrives as the chart's widget state; read it before drawing, so the chart shows the new choice.
    event = st.session_state.get("arch_chart")
    picked = [p.get("point_index") for p in (event.selection.points if event else [])]
    if not picked or picked[0] is None:
        st.session_state.pop("arch_clicked", None)  # deselected: the next click on any bubble counts again
    elif st.session_state.get("arch_clicked") != picked[0]:  # a new click; the menu below may change it later
        st.session_state["arch_clicked"] = picked[0]
        st.session_state["arch_model"] = points[int(picked[0])].name
    st.plotly_chart(FA.bubble_chart(points, st.session_state["arch_model"]), key="arch_chart", on_select="rerun",
                    selection_mode="points", width="stretch")  # fmt: skip
    return st.selectbox("Anatomy of", names, key="arch_model", format_func=lambda n: models.get_spec(n).title)


def _anatomy_view(name: str) -> None:
    try:
        anatomy = _anatomy(name)
    except Exception as exc:  # an untraceable model: one sentence, the rest of the page still works
        st.error(f"The layers of {name} can't be counted: {exc}")
        return
    cost = anatomy.cost
    point = C.model_point(name)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Parameters", f"{cost.params / 1e6:.2f} M")
    c2.metric("Multiply-accumulates", f"{cost.macs / 1e9:.3f} G")
    c3.metric("Layers", f"{cost.layers}")
    c4.metric("Input", "×".join(str(s) for s in cost.input_shape))
    if point is not None:
        st.caption(f"Counted here with torch's flop counter at {cost.input_shape[1]}×{cost.input_shape[2]}: "
                   f"{cost.params:,} parameters and {cost.macs:,} MACs. Published ({point.source}): "
                   f"{point.params:,} parameters, {point.macs:,} MACs, top-1 {point.top1:.1f}%.")  # fmt: skip
    note = C.PUBLISHED.get(name)
    if note is not None and note.note:
        st.caption(note.note)
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**By stage** (box width ∝ compute; orange arcs: residual shortcuts, dashed = projection; "
                    "green fans: inception branches)")  # fmt: skip
        st.plotly_chart(FA.stage_diagram(anatomy), key="arch_stages", width="stretch")
    with right:
        st.markdown("**Where the parameters and the compute go**")
        st.plotly_chart(FA.cost_split(cost), key="arch_split", width="stretch")
        conv_p, conv_m = cost.split["conv"]
        dense_p, dense_m = cost.split["dense"]
        st.markdown(f"Convolutions: **{conv_p / max(cost.params, 1):.0%}** of the parameters, "
                    f"**{conv_m / max(cost.macs, 1):.0%}** of the compute. Dense layers: "
                    f"**{dense_p / max(cost.params, 1):.0%}** of the parameters, "
                    f"**{dense_m / max(cost.macs, 1):.0%}** of the compute.")  # fmt: skip
    st.markdown("**Every layer** in the order it runs (the bar: its share of the model's multiply-accumulates)")
    table = A.cost_table(anatomy.rows)
    top = max((r["MACs %"] for r in table), default=1.0) or 1.0
    st.dataframe(table, key="arch_table", hide_index=True, height=420, column_config={
        "MACs %": st.column_config.ProgressColumn("MACs %", min_value=0.0, max_value=float(top), format="%.2f%%"),
        "params": st.column_config.NumberColumn("params", format="localized"),
        "MACs": st.column_config.NumberColumn("MACs", format="localized"),
    })  # fmt: skip


# ------------------------------------------------------------------------------------------- building blocks

#: label -> (function, [(field label, default, min, max)], how the values become arguments)
BLOCKS = {
    "Inception branch: naive vs 1×1-reduced": (
        B.inception_branch,
        [
            ("Input channels", 192, 1, MAX_CHANNELS),
            ("Input height = width", 28, 1, MAX_SIDE),
            ("Filters", 32, 1, MAX_CHANNELS),
            ("Kernel", 5, 1, 15),
            ("Reduce to (1×1 filters)", 16, 1, MAX_CHANNELS),
        ],
        lambda v: {"in_shape": (v[0], v[1], v[1]), "out_channels": v[2], "kernel": v[3], "reduce_to": v[4]},
    ),
    "One 5×5 or 7×7 vs stacked 3×3": (
        B.stacked_3x3,
        [
            ("Channels (in and out)", 64, 1, MAX_CHANNELS),
            ("Height = width", 56, 1, MAX_SIDE),
            ("Large kernel", 7, 3, 15),
        ],
        lambda v: {"channels": v[0], "size": v[1], "kernel": v[2]},
    ),
    "Spatially separable (Sobel)": (
        B.spatially_separable,
        [("Image height = width", 100, 1, MAX_SIDE), ("Kernel", 3, 1, 15)],
        lambda v: {"size": v[0], "kernel": v[1]},
    ),
    "Depthwise-separable (MobileNet)": (
        B.depthwise_separable,
        [
            ("Input channels", 32, 1, MAX_CHANNELS),
            ("Height = width", 112, 1, MAX_SIDE),
            ("Filters", 64, 1, MAX_CHANNELS),
            ("Kernel", 3, 1, 15),
        ],
        lambda v: {"in_shape": (v[0], v[1], v[1]), "out_channels": v[2], "kernel": v[3]},
    ),
    "Residual: identity vs projection shortcut": (
        B.residual_shortcut,
        [
            ("Input channels", 64, 1, MAX_CHANNELS),
            ("Height = width", 56, 1, MAX_SIDE),
            ("Output channels", 128, 1, MAX_CHANNELS),
            ("Stride", 2, 1, 8),
        ],
        lambda v: {"in_shape": (v[0], v[1], v[1]), "out_channels": v[2], "stride": v[3]},
    ),
    "Flatten + dense vs global average pooling": (
        B.gap_vs_flatten,
        [("Feature maps", 256, 1, MAX_CHANNELS), ("Map height = width", 100, 1, MAX_SIDE), ("Classes", 10, 1, 100_000)],
        lambda v: {"channels": v[0], "size": v[1], "classes": v[2]},
    ),
    "1-D convolution on a sequence": (
        B.conv1d_sequence,
        [
            ("Channels per step (e.g. embedding size)", 64, 1, MAX_CHANNELS),
            ("Sequence length", 100, 1, 100_000),
            ("Filters", 128, 1, MAX_CHANNELS),
            ("Kernel", 5, 1, 99),
        ],
        lambda v: {"channels": v[0], "length": v[1], "out_channels": v[2], "kernel": v[3]},
    ),
    "3-D convolution on a clip or volume": (
        B.conv3d_clip,
        [
            ("Channels", 3, 1, MAX_CHANNELS),
            ("Frames (depth)", 16, 1, 1024),
            ("Height = width", 112, 1, MAX_SIDE),
            ("Filters", 64, 1, MAX_CHANNELS),
            ("Kernel", 3, 1, 15),
        ],
        lambda v: {"in_shape": (v[0], v[1], v[2], v[2]), "out_channels": v[3], "kernel": v[4]},
    ),
}


def _blocks() -> None:
    label = st.selectbox("Building block", list(BLOCKS), key="arch_block")
    fn, fields, to_args = BLOCKS[label]
    slug = list(BLOCKS).index(label)
    with st.form(f"arch_block_form_{slug}"):
        st.markdown("**Try other sizes**")
        cols = st.columns(len(fields))
        values = [int(col.number_input(f, lo, hi, default, step=1, key=f"arch_b{slug}_{i}"))
                  for i, (col, (f, default, lo, hi)) in enumerate(zip(cols, fields, strict=True))]  # fmt: skip
        st.form_submit_button("Work it out")
    try:
        comparison = fn(**to_args(values))
    except ValueError as exc:
        st.error(f"{exc}")
        return
    st.subheader(comparison.title)
    cols = st.columns(len(comparison.options))
    for col, option in zip(cols, comparison.options, strict=True):
        with col:
            st.markdown(f"**{option.label}**")
            st.markdown("\n".join(f"- {step}" for step in option.steps))
            st.markdown(f"Total: **{option.params:,}** parameters, **{option.macs:,}** multiply-accumulates, "
                        f"output {' × '.join(str(s) for s in option.out_shape)}"
                        + (f", receptive field {option.receptive_field}" if option.receptive_field else "")
                        )  # fmt: skip
    st.info(comparison.summary)
    if fn is B.spatially_separable:
        col, row, full = B.sobel_outer()
        st.latex(r"\begin{bmatrix}" + r" \\ ".join(str(v) for v in col) + r"\end{bmatrix}\begin{bmatrix}"
                 + " & ".join(str(v) for v in row) + r"\end{bmatrix} = \begin{bmatrix}"
                 + r" \\ ".join(" & ".join(str(v) for v in r) for r in full) + r"\end{bmatrix}")  # fmt: skip
    st.plotly_chart(FA.comparison_bars(comparison), key="arch_block_bars", width="stretch")


# ------------------------------------------------------------------------------------------- exercises


def _exercises() -> None:
    c1, c2 = st.columns([1, 1])
    seed = int(c1.number_input("Set number (seed): the same number gives the same set", 0, 10**6, 1, key="arch_seed"))
    count = int(c2.slider("Questions", 2, 30, 12, key="arch_count"))
    questions = E.make_exercises(seed, count)
    d1, d2 = st.columns(2)
    d1.download_button("Download the sheet (Markdown)", E.exercise_sheet(questions, seed),
                       file_name=f"cnn-exercises-{seed}.md", mime="text/markdown", key="arch_sheet")  # fmt: skip
    d2.download_button("Download the answer key (Markdown)", E.answer_key(questions, seed),
                       file_name=f"cnn-exercises-{seed}-answers.md", mime="text/markdown", key="arch_key")  # fmt: skip
    for q in questions:
        st.markdown(f"**{q.number}.** *{q.level} · {q.kind}* — {q.prompt}")
        answer = st.text_input(f"Your answer to {q.number}", key=f"arch_answer_{seed}_{q.number}",
                               placeholder="e.g. 6 x 6 x 1, or 1,216, or 25.6M",
                               label_visibility="collapsed")  # fmt: skip
        if answer.strip():
            verdict = E.check_answer(q, answer)
            (st.success if verdict.correct else st.error)(verdict.message)


# ------------------------------------------------------------------------------------------- page

st.title("Architectures and their cost")
st.caption("LeNet → AlexNet → VGG → GoogLeNet → ResNet → MobileNet/EfficientNet: what each network and each "
           "building block costs in parameters and multiply-accumulates, counted by torch on the real models."
           )  # fmt: skip
section = st.radio("Section", SECTIONS, horizontal=True, key="arch_section", label_visibility="collapsed")
if section == SECTIONS[0]:
    _anatomy_view(_chart())
elif section == SECTIONS[1]:
    _blocks()
else:
    _exercises()
