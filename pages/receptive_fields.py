"""Receptive fields: what part of the image one unit sees (theoretical and effective), growth with depth, dilation."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from ui.jobs import background
from ui.layer_cache import architecture_fields, fields_of, layer_activations
from ui.queues import heavy_queue
from ui.shared import current_image, current_image_key, current_model
from vizlib import activations, models
from vizlib import receptive_field as R
from vizlib.figures import receptive_field as FR

#: Models compared by default (besides the current one), when registered.
COMPARE_DEFAULT = ("alexnet", "vgg16", "resnet50")
MAX_RANDOM = 32
DEFAULT_RANDOM = 8
MAX_DEMO_LAYERS = 6
#: The dilation demo's presets: (kernel sizes, strides, dilations).
PRESETS: dict[str, tuple[list[int], list[int], list[int]] | None] = {
    "Lecture: kernel 2, stride 2, two layers": ([2, 2], [2, 2], [1, 1]),
    "Lecture, dilation 2 in layer 2": ([2, 2], [2, 2], [1, 2]),
    "WaveNet: kernel 2, stride 1, dilations 1, 2, 4, 8": ([2, 2, 2, 2], [1, 1, 1, 1], [1, 2, 4, 8]),
    "No dilation: kernel 2, stride 1, four layers": ([2, 2, 2, 2], [1, 1, 1, 1], [1, 1, 1, 1]),
    "Custom": None,
}


# ------------------------------------------------------------------------------------------- cached work


def _text(value: int | tuple[int, int]) -> str:
    return str(value) if isinstance(value, int) else f"{value[0]} × {value[1]}"


# ------------------------------------------------------------------------------------------- one unit


def _pick_layer(fields: Mapping[str, R.ReceptiveField], rows: dict[str, activations.LayerInfo], model_name: str) -> str:
    """Stage, then a conv or pooling layer in it; the network's middle layer first."""
    groups: dict[str, list[str]] = {}
    for name in fields:
        groups.setdefault(rows[name].stage if name in rows else name.split(".")[0], []).append(name)
    default = list(fields)[len(fields) // 2]
    stages = list(groups)
    start = next(s for s, names in groups.items() if default in names)
    left, right = st.columns([1, 2])
    stage = left.selectbox(
        "Stage", stages, index=stages.index(start), key=f"rf_stage::{model_name}",
        format_func=lambda s: f"{s} — receptive field up to {max(max(fields[n].size_hw) for n in groups[s])} px",
    )
    names = groups[stage]

    def label(name: str) -> str:
        rf, kind = fields[name], rows[name].type if name in rows else ""
        glob = " · global" if rf.is_global else ""
        return f"{name} · {kind} · RF {_text(rf.size)} px · stride {_text(rf.stride)}{glob}"

    return right.selectbox(
        "Layer", names, index=names.index(default) if default in names else len(names) - 1,
        key=f"rf_layer::{model_name}::{stage}", format_func=label,
    )


def _unit_keys(model_name: str, layer: str) -> tuple[str, str]:
    return f"rf_row::{model_name}::{layer}", f"rf_col::{model_name}::{layer}"


def _on_click() -> None:
    """A click on the feature map sets the row and column inputs of the layer shown."""
    shown = st.session_state.get("rf_shown")
    event = st.session_state.get("rf_picker")
    if not shown or not event:
        return
    model_name, layer, shape = shown
    unit = FR.clicked_unit(event.get("selection"), shape)
    if unit is not None:
        row_key, col_key = _unit_keys(model_name, layer)
        st.session_state[row_key], st.session_state[col_key] = unit


def _pick_unit(rf: R.ReceptiveField, model_name: str, layer: str) -> tuple[int, int]:
    (h, w), keys = rf.output_hw, _unit_keys(model_name, layer)
    for key, n in zip(keys, (h, w), strict=True):
        st.session_state.setdefault(key, n // 2)
    left, right = st.columns(2)
    row = left.number_input(f"Row (0 to {h - 1})", 0, h - 1, key=keys[0], step=1)
    col = right.number_input(f"Column (0 to {w - 1})", 0, w - 1, key=keys[1], step=1)
    return int(row), int(col)


def _maps(loaded, image_key: str, image, layer: str):
    """The layer's activations on the image, or None when they can't be computed."""
    try:
        acts = layer_activations(loaded, image_key, image)
    except (activations.ExtractionError, ValueError):
        return None
    return acts[layer] if layer in {row.name for row in acts.layers} else None


def _describe_box(rf: R.ReceptiveField, unit: tuple[int, int], layer: str) -> str:
    (top, bottom), (left, right) = rf.box(*unit)
    (ct, cb), (cl, cr) = rf.clipped_box(*unit)
    (ih, iw), (kh, kw) = rf.input_hw, rf.size_hw
    inside = max(0, min(bottom, ih - 1) - max(top, 0) + 1) * max(0, min(right, iw - 1) - max(left, 0) + 1)
    padded = kh * kw - inside
    text = (
        f"Unit **({unit[0]}, {unit[1]})** of **{layer}** sees input rows **{top} to {bottom}** and columns "
        f"**{left} to {right}**: {kh} × {kw} pixels of the {ih} × {iw} picture the network gets. "
    )
    if padded:
        text += (
            f"**{padded:,} of those {kh * kw:,} pixels are padding** (hatched): zeros outside the picture. "
            f"On the picture itself: rows {ct} to {cb}, columns {cl} to {cr}."
        )
    else:
        text += "All of it lies on the picture: no padding."
    if rf.is_global:
        text += (
            " This layer's units are also **global**: global pooling (or a squeeze-and-excitation gate fed by it) "
            "makes every unit depend on every pixel; the box shows the local path only."
        )
    return text


def _unit_section(loaded, image, image_key: str, fields: Mapping[str, R.ReceptiveField]) -> None:
    try:
        rows = {row.name: row for row in activations.layer_table(loaded)}
    except activations.ExtractionError:
        rows = {}
    layer = _pick_layer(fields, rows, loaded.name)
    rf = fields[layer]
    a, b, c, d = st.columns(4)
    a.metric("Receptive field", f"{_text(rf.size)} px", help="Input pixels one unit depends on, per side.")
    b.metric("Stride", f"{_text(rf.stride)} px", help="How far the field moves from one unit to the next.")
    c.metric("Padding", f"{_text(rf.padding)} px", help="How far unit 0's field reaches before the first pixel.")
    d.metric("Feature map", f"{_text(rf.output_size)} units", help="Units per side at this input size.")
    maps = _maps(loaded, image_key, image, layer)
    channels = int(maps.shape[0]) if maps is not None else (rows[layer].output_shape[0] if layer in rows else 0)
    picker, picture_column = st.columns(2)
    with picker:
        unit = _pick_unit(rf, loaded.name, layer)
        channel = st.selectbox(
            "Channel", [None, *range(channels)], key=f"rf_channel::{loaded.name}::{layer}",
            format_func=lambda ch: "all channels (mean map, summed gradient)" if ch is None else f"channel {ch}",
        )
        if maps is not None:
            st.session_state["rf_shown"] = (loaded.name, layer, rf.output_hw)
            st.plotly_chart(
                FR.unit_picker_figure(maps, unit, channel=channel, title=f"{layer} on your image"),
                key="rf_picker", on_select=_on_click, selection_mode="points", config={"displayModeBar": False},
            )
            st.caption("**Click** a unit to pick it (or set its row and column above).")
    try:
        picture = loaded.resize(image)
    except ValueError as exc:
        st.warning(f"{exc} Choose another image in the sidebar.")
        return
    with picture_column:
        st.plotly_chart(FR.box_figure(picture, rf, unit, title="What the unit sees"), key="rf_box")
    st.markdown(_describe_box(rf, unit, layer))
    _erf_section(loaded, image, image_key, picture, layer, unit, channel)


def _erf_section(loaded, image, image_key: str, picture, layer: str, unit: tuple[int, int], channel) -> None:
    st.subheader("Effective receptive field")
    st.markdown(
        "Not every pixel of the box matters equally. The **effective receptive field** (Luo et al., 2016) is how "
        "much the unit changes when one input pixel changes (its gradient): on your image, and averaged over "
        "random noise images. It is concentrated in the middle, roughly Gaussian, and much smaller than the box."
    )
    left, right = st.columns([2, 1])
    n_random = left.slider("Random inputs to average (fewer: faster)", 0, MAX_RANDOM, DEFAULT_RANDOM,
                           key="rf_n_random")
    request = (loaded.name, image_key, layer, unit, channel, n_random)
    if right.button("Compute the effective receptive field", key="rf_erf_go", type="primary"):
        st.session_state["rf_erf_request"] = request
    if st.session_state.get("rf_erf_request") != request:
        st.info("Press the button to compute it (a few seconds for large networks on a CPU).")
        return
    # seconds of CPU on a large network: computed in the server's shared queue (its place, progress, Cancel)
    erf = background(
        heavy_queue(), "rf_erf", request,
        lambda progress: R.effective_receptive_field(loaded, layer, loaded.preprocess(image), unit, channel,
                                                     n_random=n_random),
        label="Back-propagating from the unit to every input pixel", share=True,
    )
    if erf is None:
        return
    st.plotly_chart(FR.erf_figure(picture, erf), key="rf_erf")
    a, b, c = st.columns(3)
    a.metric("Theoretical", f"{_text(erf.theoretical.size)} px")
    if erf.image_map is not None:
        b.metric("Effective, on your image", f"{R.effective_size(erf.image_map):.0f} px",
                 help="Side of the square holding 95% of the gradient.")
    if erf.random_map is not None:
        c.metric(f"Effective, {erf.n_random} random inputs", f"{R.effective_size(erf.random_map):.0f} px",
                 help="Side of the square holding 95% of the gradient.")


# ------------------------------------------------------------------------------------------- growth


def _growth_section(loaded, fields: Mapping[str, R.ReceptiveField]) -> None:
    st.subheader("Growth with depth")
    st.plotly_chart(FR.growth_figure(fields, title=loaded.spec.title), key="rf_growth")
    local = [rf for rf in fields.values() if not rf.is_global]
    if local:
        widest = max(local, key=lambda rf: max(rf.size_hw))
        st.caption(
            f"{len(fields)} convolution and pooling layers. The widest local field is {_text(widest.size)} px with "
            f"stride {_text(widest.stride)}, on a {_text(widest.input_size)} px input: each step of stride multiplies "
            "how fast later layers grow. Hover a point for the layer."
        )
    names = models.list_models()
    default = list(dict.fromkeys([loaded.spec.name, *(n for n in COMPARE_DEFAULT if n in names)]))
    chosen = st.multiselect("Models side by side", names, default=default, key="rf_compare",
                            format_func=lambda n: models.get_spec(n).title)
    if not chosen:
        st.info("Choose one or more models to compare.")
        return
    compared, summary = {}, []
    for name in chosen:
        try:
            table = architecture_fields(name)
        except R.ReceptiveFieldError as exc:
            st.warning(f"{models.get_spec(name).title}: {exc}")
            continue
        title = models.get_spec(name).title
        compared[title] = table
        widest = max((rf for rf in table.values() if not rf.is_global), key=lambda rf: max(rf.size_hw), default=None)
        summary.append({
            "Model": title,
            "Input (px)": _text(next(iter(table.values())).input_size),
            "Conv and pooling layers": len(table),
            "Widest local field (px)": _text(widest.size) if widest else "",
            "Its stride (px)": _text(widest.stride) if widest else "",
        })
    if compared:
        st.plotly_chart(FR.comparison_figure(compared), key="rf_comparison")
        st.dataframe(summary, hide_index=True, key="rf_compare_table")
        st.caption("Architectures only (no weights are needed or downloaded): depth is relative, so a 9-layer and a "
                   "100-layer network share one axis.")


# ------------------------------------------------------------------------------------------- dilation


def _demo_key(what: str, i: int) -> str:
    return f"rf_dil_{what}{i}"


def _apply_preset() -> None:
    preset = PRESETS.get(st.session_state.get("rf_dil_preset"))
    if preset is None:
        return
    ks, ss, ds = preset
    st.session_state["rf_dil_layers"] = len(ks)
    for i, values in enumerate(zip(ks, ss, ds, strict=True)):
        for what, value in zip("ksd", values, strict=True):
            st.session_state[_demo_key(what, i)] = value


def _to_custom() -> None:
    st.session_state["rf_dil_preset"] = "Custom"


def _stack_inputs() -> tuple[list[int], list[int], list[int]]:
    for i in range(MAX_DEMO_LAYERS):  # layers hidden by a smaller count lose their state: start them afresh
        for what, value in zip("ksd", (2, 1, 1), strict=True):
            st.session_state.setdefault(_demo_key(what, i), value)
    if "rf_dil_preset" not in st.session_state:
        st.session_state["rf_dil_preset"] = next(iter(PRESETS))
        _apply_preset()
    left, right = st.columns([2, 1])
    left.selectbox("Start from", list(PRESETS), key="rf_dil_preset", on_change=_apply_preset)
    n = right.slider("Layers", 1, MAX_DEMO_LAYERS, key="rf_dil_layers", on_change=_to_custom)
    ks, ss, ds = [], [], []
    for i in range(n):
        a, b, c = st.columns(3)
        ks.append(int(a.number_input(f"Layer {i + 1}: kernel", 1, 7, key=_demo_key("k", i), on_change=_to_custom)))
        ss.append(int(b.number_input(f"Layer {i + 1}: stride", 1, 4, key=_demo_key("s", i), on_change=_to_custom)))
        ds.append(int(c.number_input(f"Layer {i + 1}: dilation", 1, 16, key=_demo_key("d", i), on_change=_to_custom)))
    return ks, ss, ds


def _lecture_note() -> None:
    plain = R.receptive_field_growth([2, 2], [2, 2])[-1]
    torch_like = R.receptive_field_growth([2, 2], [2, 2], [1, 2])[-1]
    both = R.receptive_field_growth([2, 2], [2, 2], [2, 2])[-1]
    spread = R.receptive_field_growth([2, 2 * 2], [2, 2])[-1]
    wavenet = R.receptive_field_growth([2] * 4, None, [1, 2, 4, 8])
    linear = R.receptive_field_growth([2] * 4)
    st.markdown(
        f"**The lecture's example.** Kernel 2, stride 2, two layers: **{plain}** inputs. With dilation 2 in the "
        f"second layer, PyTorch (`Conv1d(kernel_size=2, stride=2, dilation=2)`) gives **{torch_like}**: a dilated "
        "kernel with k taps spans d·(k − 1) + 1 = 3 positions, its taps and the hole *between* them, so a layer-2 "
        f"unit reads two layer-1 units two apart; they cover {torch_like} inputs, 4 of them connected. The lecture's "
        f"**{spread}** comes from counting a dilated kernel as d·k = 4 positions wide (every tap followed by its "
        f"hole, the last hole included), the same as multiplying the undilated field by the dilation ({plain} × 2). "
        f"In PyTorch, {spread} is what a dense 4-tap kernel in layer 2 sees, not a dilated 2-tap one. Dilation 2 in "
        f"both layers gives {both}. This page always shows PyTorch's numbers."
    )
    st.markdown(
        f"**WaveNet** (kernel 2, stride 1, dilations 1, 2, 4, 8): {', '.join(map(str, wavenet))}, the field "
        f"doubles with every layer (exponential growth), while the same stack without dilation grows by one: "
        f"{', '.join(map(str, linear))}. Same weights, same depth."
    )


def _dilation_section() -> None:
    st.subheader("Dilation")
    st.markdown(
        "A **dilated** convolution spreads its taps apart, leaving holes: the field grows without extra weights. "
        "Choose a stack of 1-D convolutions (no padding) and follow one output unit back to the inputs it reads."
    )
    ks, ss, ds = _stack_inputs()
    try:
        stack = R.conv_stack_1d(ks, ss, ds)
    except ValueError as exc:
        st.warning(str(exc))
        return
    undilated = R.receptive_field_growth(ks, ss)
    a, b, c = st.columns(3)
    a.metric("Stack's receptive field", f"{stack.receptive_field} inputs")
    b.metric("Inputs connected", f"{len(stack.feeds[0])}", help="The rest fall in the dilation gaps.")
    c.metric("Without dilation", f"{undilated[-1]} inputs")
    st.markdown(
        f"After each layer: **{', '.join(map(str, stack.growth))}** "
        f"(without dilation: {', '.join(map(str, undilated))})."
    )
    st.plotly_chart(FR.dilation_figure(stack), key="rf_dilation")
    st.plotly_chart(FR.dilation_grid_figure(stack), key="rf_dilation_grid")
    st.caption("2-D: the same kernels along both axes. Each input pixel's shade is its number of paths to the "
               "output unit: the middle has the most, which is why the effective field is smaller than the box.")
    _lecture_note()


# ------------------------------------------------------------------------------------------- page

st.title("Receptive fields")
st.markdown(
    "A unit of a convolutional layer looks at only part of the image: its **receptive field**. Each convolution "
    "or pooling layer widens it; strides make later layers widen it faster. The numbers here are exact, computed "
    "from the network's graph (kernel, stride, padding and dilation of every layer, branches included)."
)
loaded = current_model()
image = current_image()
image_key = current_image_key()
try:
    fields = fields_of(loaded)
except R.ReceptiveFieldError as exc:
    st.error(f"{exc} Pick another model in the sidebar.")
    fields = {}

if fields:
    st.subheader("One unit and what it sees")
    _unit_section(loaded, image, image_key, fields)
    _growth_section(loaded, fields)
_dilation_section()
