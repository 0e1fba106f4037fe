"""Learned filters: the first layer before and after training, any deeper kernel, 1x1 and depthwise convolutions."""

from __future__ import annotations

import streamlit as st

from ui.layer_cache import layer_activations
from ui.shared import current_image, current_image_key, current_model, untrained_model
from vizlib import activations
from vizlib import filters as F
from vizlib.figures import feature_maps as ffm
from vizlib.figures import filters as FF

NORMALISATIONS = {"Each filter on its own": "filter", "The whole layer together": "global"}
KIND_LABELS = {"standard": "standard", "pointwise": "1x1 (pointwise)", "depthwise": "depthwise", "grouped": "grouped"}


@st.cache_data(max_entries=32, show_spinner=False)
def _grid(model_name: str, pretrained: bool, layer: str, normalisation: str, _loaded) -> F.FilterGrid:
    return F.filter_grid(F.conv_weight(_loaded.model, layer), layer=layer, normalisation=normalisation)


@st.cache_data(max_entries=16, show_spinner=False)
def _catalogue(model_name: str, _loaded) -> tuple[F.ConvInfo, ...]:
    shapes = {row.name: row.output_shape for row in activations.layer_table(_loaded)}
    return F.conv_catalogue(_loaded.model, shapes)


def _shape(shape) -> str:
    return " × ".join(map(str, shape)) if shape else "?"


def _first_layer_section(loaded, untrained) -> None:
    st.subheader("The first layer, before and after training")
    name = F.first_conv(loaded)
    label = st.radio("Brightness scale", list(NORMALISATIONS), key="filters_norm", horizontal=True)
    norm = NORMALISATIONS[label]
    trained_grid = _grid(loaded.name, True, name, norm, loaded)
    random_grid = _grid(untrained.name, False, name, norm, untrained)
    out, _, kh, kw = trained_grid.weights.shape
    left, right = st.columns(2)
    left.plotly_chart(FF.filter_grid_figure(trained_grid, title="Pretrained (ImageNet)"), key="filters_trained")
    right.plotly_chart(FF.filter_grid_figure(random_grid, title="Untrained (random initialisation)"),
                       key="filters_untrained")
    st.caption(
        f"**{name}** of {loaded.spec.title}: {out} filters of 3×{kh}×{kw}, each drawn as a {kh}×{kw} colour "
        "picture (its red, green and blue weights). "
        + ("Each filter is stretched from its own smallest to largest weight."
           if norm == "filter" else "One scale for all filters: faint filters look gray.")
        + " Hover a pixel for the raw weights. Training turns random noise into edge, colour and blob detectors."
    )


def _conv_label(info: F.ConvInfo) -> str:
    return (f"{info.name} · {KIND_LABELS[info.kind]} {info.kernel[0]}×{info.kernel[1]} · "
            f"{info.in_channels}→{info.out_channels}")


def _deeper_section(loaded, catalogue: tuple[F.ConvInfo, ...], image) -> None:
    st.subheader("Any deeper filter and what it finds in your image")
    by_name = {c.name: c for c in catalogue}
    names = list(by_name)
    left, right = st.columns([2, 1])
    layer = left.selectbox("Convolution", names, index=min(1, len(names) - 1), key=f"filters_layer::{loaded.name}",
                           format_func=lambda n: _conv_label(by_name[n]))
    info = by_name[layer]
    index = int(right.number_input("Filter", 0, info.out_channels - 1, 0, key=f"filters_index::{layer}"))
    slices = F.kernel_slices(loaded.model, layer, index)
    acts = layer_activations(loaded, current_image_key(), image)
    left, right = st.columns(2)
    left.plotly_chart(FF.kernel_slices_figure(slices, title=f"Filter {index}: one slice per input channel"),
                      key="filters_slices")
    right.plotly_chart(ffm.channel_heatmap(acts[layer][index], title=f"Its response on your image ({layer})"),
                       key="filters_response")
    first, last = slices.input_channels[0], slices.input_channels[-1]
    reads = f"input channel {first}" if first == last else f"input channels {first} to {last}"
    bias = "no bias" if slices.bias is None else f"bias {slices.bias:.4g}"
    st.caption(
        f"Filter {index} of **{layer}** has {len(slices.input_channels)} slice(s) of "
        f"{info.kernel[0]}×{info.kernel[1]} reading {reads}; {bias}. Its output at each place is the sum over "
        "the slices of each slice times the input channel's patch there (red weights excite, blue inhibit)."
    )


def _pointwise_text(pw: F.ConvInfo) -> str:
    three = F.conv_cost(pw.in_channels, pw.out_channels, (3, 3))
    return (
        f"**1x1 convolution** — `{pw.name}`: {pw.out_channels} filters of 1×1×{pw.in_channels}. It looks at one "
        f"pixel at a time and mixes the {pw.in_channels} channels into {pw.out_channels}: a fully connected layer "
        f"applied at every position. {pw.cost.params:,} parameters; a 3×3 convolution between the same channels "
        f"would need {three.params:,} ({three.params / pw.cost.params:.0f}×)."
    )


def _depthwise_section(loaded, catalogue: tuple[F.ConvInfo, ...]) -> None:
    st.subheader("1x1 and depthwise convolutions")
    counts = {kind: sum(c.kind == kind for c in catalogue) for kind in KIND_LABELS}
    cols = st.columns(4)
    for col, (kind, label) in zip(cols, KIND_LABELS.items(), strict=True):
        col.metric(label.capitalize(), counts[kind])
    pairs = F.separable_pairs(catalogue)
    pointwise = [c for c in catalogue if c.kind == "pointwise" and not c.in_squeeze_excitation]
    if not pairs:
        st.info(f"{loaded.spec.title} has no depthwise convolutions: every filter reads all its input channels. "
                "Pick EfficientNet-Lite0 or MobileNet v3 in the sidebar to see them.")
        if pointwise:
            st.markdown(_pointwise_text(pointwise[0]))
        return
    by_dw = {p.depthwise.name: p for p in pairs}
    choice = st.selectbox("Depthwise convolution", list(by_dw), key=f"filters_pair::{loaded.name}")
    pair = by_dw[choice]
    dw, pw = pair.depthwise, pair.pointwise
    k = f"{dw.kernel[0]}×{dw.kernel[1]}"
    st.markdown(
        f"**Depthwise convolution** — `{dw.name}`: groups = in_channels = {dw.in_channels}, so each of its "
        f"{dw.out_channels} filters is one {k} slice reading a single channel; nothing mixes channels. "
        f"{dw.cost.params:,} parameters, against {dw.standard.params:,} for a standard {k} convolution of the "
        f"same shape ({dw.standard.params // max(dw.cost.params, 1)}× more)."
    )
    st.markdown(_pointwise_text(pw))
    st.markdown(
        f"Together they are a **depthwise separable convolution**: {pair.cost.params:,} parameters where one "
        f"standard {k} convolution from {dw.in_channels} to {pw.out_channels} channels needs "
        f"{pair.standard.params:,} — {pair.param_ratio:.1%} of it (1/{pw.out_channels} + 1/{dw.kernel[0] ** 2})."
    )
    rows = [
        {"": f"standard {k}, {dw.in_channels}→{pw.out_channels}", "Parameters": pair.standard.params,
         "Multiplications per image": pair.standard.mults},
        {"": f"depthwise {k} ({dw.name})", "Parameters": dw.cost.params, "Multiplications per image": dw.cost.mults},
        {"": f"pointwise 1×1 ({pw.name})", "Parameters": pw.cost.params, "Multiplications per image": pw.cost.mults},
        {"": "depthwise + pointwise", "Parameters": pair.cost.params, "Multiplications per image": pair.cost.mults},
    ]
    left, right = st.columns([3, 2])
    left.dataframe(rows, hide_index=True, key="filters_costs")
    right.plotly_chart(FF.separable_cost_figure(pair), key="filters_cost_chart")
    st.caption(f"Output of {pw.name}: {_shape(pw.output_shape)}. Multiplications count one image at the model's "
               "input size; additions are about as many.")


st.title("Learned filters")
st.markdown(
    "A convolution layer is a bank of **filters** learned from data. The first layer's filters look at the "
    "colour image directly, so they can be drawn as small pictures; deeper filters read the feature maps "
    "before them."
)
loaded = current_model()
image = current_image()
try:
    untrained = untrained_model()
    _first_layer_section(loaded, untrained)
    catalogue = _catalogue(loaded.name, loaded)
    _deeper_section(loaded, catalogue, image)
    _depthwise_section(loaded, catalogue)
except (F.FilterError, activations.ExtractionError) as exc:
    st.error(f"{exc} Pick another model in the sidebar.")
