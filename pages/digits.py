"""Draw a digit: watch it flow through a LeNet-5 trained by this project, and see what feeds any unit.

The page always uses the digits model, whatever the sidebar has chosen.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from ui.shared import shared_model, with_notices
from vizlib import digits as DV
from vizlib import models
from vizlib.digits import DigitsDataError, EmptyDrawingError
from vizlib.figures import digits as DF

try:  # the canvas is a component from PyPI; without it the page still shows the test-split examples
    from streamlit_drawable_canvas import st_canvas
except ImportError:  # pragma: no cover - exercised where the package is missing
    st_canvas = None

SOURCES = ["Draw", "Test-split example"]
EXAMPLE_SETS = {"all": "All 500", "wrong": "Only the ones the model gets wrong"}
RANKINGS = {"contribution": "weight × activation", "weight": "|weight|"}
CANVAS_SIDE = 280
TOP_K = 10
_UNIT_KEYS = {3: ("digits_unit_c", "digits_unit_y", "digits_unit_x"), 1: ("digits_unit_i",)}
_AXIS_LABELS = {"digits_unit_c": "Map", "digits_unit_y": "Row", "digits_unit_x": "Col", "digits_unit_i": "Unit"}


# ------------------------------------------------------------------------------------------ cached work


def _digits_model() -> models.LoadedModel:
    return shared_model(models.DIGITS_MODEL, True)


@st.cache_resource(show_spinner=False)
def _heldout() -> DV.HeldoutDigits:
    return DV.load_heldout()


@st.cache_data(max_entries=4, show_spinner=False)
def _heldout_probabilities(model_name: str) -> np.ndarray:
    return DV.classify_heldout(_digits_model(), _heldout())


@st.cache_data(max_entries=64, show_spinner=False)
def _flow(model_name: str, image_key: str, _image: np.ndarray) -> DV.DigitFlow:
    return DV.digit_flow(_digits_model(), _image)


def _key(image: np.ndarray) -> str:
    return hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ inputs


def _clear() -> None:
    st.session_state["digits_canvas_version"] = st.session_state.get("digits_canvas_version", 0) + 1


def _drawing() -> np.ndarray | None:
    """The canvas with its buttons; the drawing as an RGB image, or ``None`` while nothing came back."""
    if st_canvas is None:
        st.warning("The drawing canvas needs the `streamlit-drawable-canvas` package "
                   "(`pip install streamlit-drawable-canvas`). Pick a test-split example meanwhile.")
        return None
    pen = st.slider("Pen width", 8, 40, 20, key="digits_pen")
    version = st.session_state.get("digits_canvas_version", 0)
    result = st_canvas(
        stroke_width=pen, stroke_color="#000000", background_color="#FFFFFF", height=CANVAS_SIDE,
        width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True, key=f"digits_canvas_{version}",
    )
    st.button("Clear the canvas", icon=":material/delete:", on_click=_clear, key="digits_clear")
    st.caption("Hover the canvas for its toolbar: **undo**, **redo** and the **bin** (clear). "
               "The network updates each time you lift the pen.")
    data = result.image_data
    return None if data is None else DV.canvas_to_image(data)


def _example(heldout: DV.HeldoutDigits, probs: np.ndarray) -> np.ndarray | None:
    """The test-split picker; the chosen digit as an RGB image."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != heldout.labels)
    which = st.radio("Show", list(EXAMPLE_SETS), key="digits_examples", format_func=EXAMPLE_SETS.get,
                     horizontal=True)
    pool = wrong if which == "wrong" else np.arange(len(heldout))
    st.caption(f"The model gets {len(heldout) - len(wrong)} of these {len(heldout)} test digits right; "
               f"it never saw any of them in training.")
    if len(pool) == 0:
        st.info("The model gets every one of these right.")
        return None

    def label(i: int) -> str:
        return (f"#{i}: a {heldout.labels[i]} — the model says {predicted[i]} ({probs[i].max():.0%})"
                f"{'  ✗' if predicted[i] != heldout.labels[i] else ''}")

    i = st.selectbox("Example", [int(i) for i in pool], key=f"digits_example_{which}", format_func=label)
    st.image(np.kron(heldout.images[i], np.ones((8, 8), dtype=np.uint8)), width=224,
             caption=f"Test digit #{i} (digits.png cell {heldout.indices[i]}), true label {heldout.labels[i]}")
    return heldout.image(i)


# ------------------------------------------------------------------------------------------ the unit


def _on_click() -> None:
    stages = st.session_state.get("digits_stages")
    event = st.session_state.get("digits_network")
    if not stages or not event:
        return
    unit = DF.clicked_unit(stages, event.get("selection"))
    if unit is not None:
        _select(unit)


def _select(unit: DV.Unit) -> None:
    st.session_state["digits_stage_pick"] = unit.stage
    for key, value in zip(_UNIT_KEYS[len(unit.index)], unit.index, strict=True):
        st.session_state[key] = int(value)


def _chosen_unit(flow: DV.DigitFlow) -> DV.Unit:
    """The unit in the pickers' state (clamped to the stage); the predicted class at first."""
    if "digits_stage_pick" not in st.session_state:
        _select(DV.Unit(flow.stages[-1].name, (flow.predicted,)))
    names = [s.name for s in flow.stages]
    if st.session_state["digits_stage_pick"] not in names:
        st.session_state["digits_stage_pick"] = names[-1]
    stage = flow.stage(st.session_state["digits_stage_pick"])
    index = []
    for key, n in zip(_UNIT_KEYS[len(stage.shape)], stage.shape, strict=True):
        value = min(max(int(st.session_state.get(key, 0)), 0), n - 1)
        st.session_state[key] = value
        index.append(value)
    return DV.Unit(stage.name, tuple(index))


def _unit_pickers(flow: DV.DigitFlow) -> str:
    stage = flow.stage(st.session_state["digits_stage_pick"])
    keys = _UNIT_KEYS[len(stage.shape)]
    columns = st.columns([2] + [1] * len(keys) + [2])
    titles = {s.name: DF.stage_label(s) for s in flow.stages}
    columns[0].selectbox("Layer", list(titles), key="digits_stage_pick", format_func=titles.get)
    for column, key, n in zip(columns[1:-1], keys, stage.shape, strict=True):
        column.number_input(_AXIS_LABELS[key], min_value=0, max_value=n - 1, step=1, key=key)
    return columns[-1].radio("Rank inputs by", list(RANKINGS), key="digits_rank", format_func=RANKINGS.get)


def _describe(flow: DV.DigitFlow, sources: DV.UnitSources) -> str:
    stage = flow.stage(sources.unit.stage)
    name = DF.unit_label(sources.unit)
    t, left, b, r = sources.patch
    sees = f"It sees input rows {t}–{b - 1}, cols {left}–{r - 1} ({b - t}×{r - left} pixels)."
    if stage.kind == "input":
        return f"**{name}** = {sources.value:.3f}: a pixel of the prepared digit, fed by nothing."
    if stage.kind == "pool":
        return (f"**{name}** = {sources.value:.3f}, the largest of the {sources.total} values under its "
                f"{stage.kernel}×{stage.kernel} window. {sees}")
    total = f"Σ weight × activation over its {sources.total} inputs + bias {sources.bias:.3f}"
    relu = stage.output != stage.name  # a ReLU (or another pointwise layer) follows
    formula = f"ReLU({total}) = ReLU({sources.pre_activation:.3f})" if relu else total
    if stage is flow.stages[-1]:
        i = sources.unit.index[0]
        return (f"**{name}**: the logit of digit **{flow.categories[i]}** = {formula} = {sources.value:.3f}; "
                f"after the softmax, probability {flow.probabilities[i]:.1%}. {sees}")
    return f"**{name}** = {formula} = {sources.value:.3f}. {sees}"


# ------------------------------------------------------------------------------------------ page

st.title("Draw a digit")
st.markdown(
    "Draw a digit and watch it flow through **LeNet-5**, a small convolutional network this project trained "
    "on OpenCV's 5,000 handwritten digits: two convolutions with pooling, then three dense layers."
)

try:
    loaded = _digits_model()
except (models.ModelError, ValueError) as exc:
    st.error(f"The digits model could not be loaded: {exc}")
    st.stop()
st.caption(f":material/info: This page always uses {loaded.spec.title}, whatever the sidebar's model.")

left, right = st.columns([1, 1.3], gap="large")
with left:
    source = st.radio("Input", SOURCES, key="digits_source", horizontal=True)
    image = None
    if source == "Draw":
        image = _drawing()
    else:
        try:
            heldout = _heldout()
            image = _example(heldout, with_notices(_heldout_probabilities, loaded.name))
        except DigitsDataError as exc:
            st.error(str(exc))

flow = None
if image is not None:
    try:
        flow = with_notices(_flow, loaded.name, _key(image), image)
    except EmptyDrawingError:
        flow = None

with right:
    if flow is None:
        st.info(":material/draw: **Draw a digit** on the canvas (any of 0–9, as large as you like), or pick an "
                "example from the test split. The network's answer and every layer appear here as soon as "
                "there is ink.")
    else:
        best = flow.predicted
        st.metric("Predicted digit", flow.categories[best], f"{flow.probabilities[best]:.1%} sure",
                  delta_color="off")
        st.plotly_chart(DF.probabilities_figure(flow), key="digits_probs", config={"displayModeBar": False})

if flow is not None:
    st.subheader("1 · Prepared like MNIST")
    st.plotly_chart(DF.preprocessing_figure(flow.steps), key="digits_steps", config={"displayModeBar": False})
    st.caption(DF.steps_caption(flow.steps))

    st.subheader("2 · The whole network")
    st.caption("Every unit of every layer on this digit (brighter = stronger). Hover a unit to read it; "
               "**click** one to see what feeds it below. Orange: the chosen unit and its input patch; "
               "pink: its strongest inputs.")
    st.session_state["digits_stages"] = flow.stages
    unit = _chosen_unit(flow)
    rank = st.session_state.get("digits_rank", "contribution")
    sources = DV.unit_sources(loaded, flow, unit, k=TOP_K, by=rank)
    st.plotly_chart(DF.network_figure(flow, selected=sources), key="digits_network", on_select=_on_click,
                    selection_mode="points", config={"displayModeBar": False})

    st.subheader("3 · What feeds this unit")
    _unit_pickers(flow)
    st.markdown(_describe(flow, sources))
    stage = flow.stage(unit.stage)
    if stage.spatial and stage.kind != "input":
        patch_column, sources_column = st.columns([1.4, 1])
        patch_column.plotly_chart(DF.patch_figure(flow, sources), key="digits_patch",
                                  config={"displayModeBar": False})
        sources_column.plotly_chart(DF.sources_figure(sources), key="digits_sources",
                                    config={"displayModeBar": False})
    elif stage.kind != "input":
        st.plotly_chart(DF.sources_figure(sources), key="digits_sources", config={"displayModeBar": False})
