"""Feature maps: every channel of any layer on the chosen image, one channel up close, the network at a glance."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from ui.layer_cache import fields_of, figure, layer_activations
from ui.shared import current_image, current_image_key, current_model
from vizlib import activations, receptive_field
from vizlib import feature_maps as fm
from vizlib.figures import feature_maps as ffm

SORTS = {"Channel order": None, "Mean activation": "mean", "Max activation": "max"}
SCALES = {"Shared (whole layer)": "shared", "Per channel": "channel"}
OVERVIEW_K = 8


def _shape(shape: tuple[int, ...]) -> str:
    return " × ".join(map(str, shape))


@st.cache_data(max_entries=64, show_spinner=False)
def _montage_png(
    model_name: str, pretrained: bool, image_key: str, layer: str, sort: str | None, scale: str, colormap: str,
    top_k: int | None, _acts: fm.LayerActivations,
) -> tuple[bytes, fm.MontageLayout, tuple[int, ...]]:
    """The montage as PNG bytes, its layout and the channel of each tile (re-encoded only when an option changes)."""
    values = _acts[layer]
    order = None
    if top_k is not None:
        order = [c for c, _ in fm.top_channels(values, top_k, sort or "mean")]
    elif sort is not None:
        order = fm.rank_channels(values, sort)
    pic = fm.montage(values, order=order, scale=scale, colormap=colormap)
    return pic.png(), pic.layout, pic.channels


def _overview_png(model_name: str, pretrained: bool, image_key: str, by: str, colormap: str, acts) -> bytes:
    """The network overview as one PNG, drawn and encoded once per (model, image, ranking, colormap) for everyone."""
    return figure(("fm_overview", model_name, pretrained, image_key, by, colormap), lambda: fm.encode_png(
        fm.overview_picture(fm.network_overview(acts, k=OVERVIEW_K, by=by), colormap=colormap).image, filters=False))


def _receptive_fields(loaded) -> Mapping[str, receptive_field.ReceptiveField]:
    """Every layer's receptive field (from the architecture: no weights needed); none where it can't be traced."""
    try:
        return fields_of(loaded, every_layer=True)
    except receptive_field.ReceptiveFieldError:
        return {}


def _pick_layer(acts: fm.LayerActivations, model_name: str) -> activations.LayerInfo:
    """Stage, then layer within the stage; each stage remembers its own choice."""
    groups = fm.layers_by_stage(acts.layers)
    default = acts.info(fm.default_layer(acts.layers))
    stages = list(groups)
    left, right = st.columns([1, 2])
    stage = left.selectbox(
        "Stage",
        stages,
        index=stages.index(default.stage),
        key=f"fm_stage::{model_name}",
        format_func=lambda s: f"{s} — {_shape(groups[s][-1].output_shape)}",
    )
    names = [row.name for row in groups[stage]]
    index = names.index(default.name) if default.name in names else len(names) - 1
    rows = {row.name: row for row in groups[stage]}
    layer = right.selectbox(
        "Layer",
        names,
        index=index,
        key=f"fm_layer::{model_name}::{stage}",
        format_func=lambda n: f"{n} · {rows[n].type} · {_shape(rows[n].output_shape)}",
    )
    return rows[layer]


def _goto(acts: fm.LayerActivations, model_name: str) -> None:
    """Open the layer and channel another page asked for (``st.session_state["fm_goto"]``), once."""
    goto = st.session_state.pop("fm_goto", None)
    stage = next((s for s, rows in fm.layers_by_stage(acts.layers).items()
                  if goto and goto["layer"] in [r.name for r in rows]), None)
    if stage is not None:
        st.session_state[f"fm_stage::{model_name}"] = stage
        st.session_state[f"fm_layer::{model_name}::{stage}"] = goto["layer"]
        st.session_state[f"fm_channel::{goto['layer']}"] = goto["channel"]


def _options() -> dict:
    a, b, c = st.columns(3)
    sort = a.radio("Order of the tiles", list(SORTS), key="fm_sort", horizontal=True)
    scale = b.radio("Colour scale", list(SCALES), key="fm_scale", horizontal=True)
    colormap = c.radio("Colormap", list(fm.COLORMAPS), key="fm_colormap", horizontal=True)
    return {"sort": SORTS[sort], "scale": SCALES[scale], "colormap": colormap}


def _montage_section(acts: fm.LayerActivations, info: activations.LayerInfo, opts: dict, key: tuple) -> None:
    values = acts[info.name]
    png, layout, _ = _montage_png(*key, info.name, opts["sort"], opts["scale"], opts["colormap"], None, acts)
    order = {None: "channel order", "mean": "strongest mean first", "max": "strongest maximum first"}[opts["sort"]]
    st.image(png, width="content", output_format="PNG")
    st.caption(
        f"All {values.shape[0]} channels of **{info.name}** ({info.type}, {values.shape[1]}×{values.shape[2]} each), "
        f"{order}, row by row: {layout.rows} rows × {layout.columns} columns, {layout.width}×{layout.height} px. "
        + ("One colour scale for the whole layer: bright means strong compared with every other channel."
           if opts["scale"] == "shared" else "Each channel on its own scale, from its minimum to its maximum.")
    )
    left, right = st.columns(2)
    left.download_button("Montage (PNG)", png, file_name=f"{info.name}_montage.png", mime="image/png",
                         key="fm_download_png", on_click="ignore")
    right.download_button("Activations (.npy)", lambda: fm.encode_npy(values), file_name=f"{info.name}.npy",
                          mime="application/octet-stream", key="fm_download_npy", on_click="ignore")


def _channel_section(acts: fm.LayerActivations, info: activations.LayerInfo, opts: dict, image, key: tuple) -> None:
    values = acts[info.name]
    summary = fm.layer_summary(values)
    ranked = [int(c) for c in fm.rank_channels(values, opts["sort"] or "mean")]
    choices = ranked if opts["sort"] else list(range(values.shape[0]))
    channel = st.selectbox(
        "Channel",
        choices,
        index=choices.index(ranked[0]),
        key=f"fm_channel::{info.name}",
        format_func=lambda c: f"channel {c} — mean {summary.mean[c]:.3g}, max {summary.max[c]:.3g}",
    )
    stats = fm.channel_stats(values, channel)
    shared = opts["scale"] == "shared"
    zmin, zmax = (summary.low, summary.high) if shared else (stats.min, stats.max)
    a, b, c, d = st.columns(4)
    a.metric("Sparsity", f"{stats.sparsity:.1%}", help="Fraction of values ≤ 0: what a ReLU sets to zero.")
    b.metric("Mean", f"{stats.mean:.4g}")
    c.metric("Max", f"{stats.max:.4g}")
    d.metric("Rank by " + (opts["sort"] or "mean"), f"{ranked.index(channel) + 1} of {len(ranked)}")
    left, right = st.columns(2)
    shown = (*key, info.name, channel, opts["colormap"], shared)
    left.plotly_chart(
        figure(("fm_heatmap", *shown), lambda: ffm.channel_heatmap(
            values[channel], colormap=opts["colormap"], zmin=zmin, zmax=zmax, title=f"{info.name}, channel {channel}")),
        key="fm_heatmap",
    )
    with right:
        opacity = st.slider("Opacity of the map", 0.0, 1.0, 0.6, 0.05, key="fm_opacity")
        st.plotly_chart(
            figure(("fm_overlay", *shown, opacity), lambda: ffm.channel_overlay(
                image, values[channel], opacity=opacity, colormap=opts["colormap"], zmin=zmin, zmax=zmax)),
            key="fm_overlay",
        )
    st.plotly_chart(figure(("fm_histogram", *key, info.name, channel),
                           lambda: ffm.histogram_figure(stats, title=f"Histogram of channel {channel}")),
                    key="fm_histogram")
    post_relu = info.type in ("ReLU", "ReLU6")
    st.caption(
        f"Sparsity {stats.sparsity:.1%}: "
        + ("the fraction of exact zeros after this ReLU." if post_relu else
           f"this {info.type} output is not passed through a ReLU yet; sparsity counts the values ≤ 0, "
           "the ones a ReLU would set to zero.")
        + f" Whole layer: {summary.layer_sparsity:.1%}."
    )


def _top_k_section(acts: fm.LayerActivations, info: activations.LayerInfo, opts: dict, key: tuple) -> None:
    values = acts[info.name]
    by = opts["sort"] or "mean"
    limit = min(64, values.shape[0])
    k = st.slider("How many", 1, limit, min(8, limit), key="fm_top_k") if limit > 1 else 1
    top = fm.top_channels(values, k, by)
    png, layout, channels = _montage_png(*key, info.name, by, opts["scale"], opts["colormap"], k, acts)
    left, right = st.columns([2, 1])
    left.image(png, width="content", output_format="PNG")
    left.caption(f"The {k} strongest channels by spatial {by}, strongest first: {', '.join(map(str, channels))}.")
    right.plotly_chart(figure(("fm_scores", *key, info.name, by, k), lambda: ffm.scores_figure(top, by=by)),
                       key="fm_scores")


#: The layer table's expander: its open state, kept for the page's reruns.
TABLE_KEY = "fm_layer_table_open"


def _table_section(loaded, info: activations.LayerInfo) -> None:
    """Every layer in a data grid, drawn only once the student opens it: on a first visit
    the costliest single element for the browser to draw (benchmarks/bench_browser_pages.py)."""
    box = st.expander(f"Every layer of the network in a table ({len(activations.layer_table(loaded))} layers), "
                      "drawn when you open it", key=TABLE_KEY, on_change="rerun")
    with box:
        if box.open:
            rows = fm.layer_rows(activations.layer_table(loaded), receptive_fields=_receptive_fields(loaded))
            st.dataframe(rows, hide_index=True, key="fm_layer_table", height=360)
            st.caption(f"Every layer that runs, in order. The layer shown above is **{info.name}**. Receptive "
                       "field: the input pixels one unit of the layer sees (see the Receptive fields page).")


st.title("Feature maps")
st.markdown(
    "Every channel of a layer is a **feature map**: how strongly one learned filter responds at each place of "
    "your image. Early layers respond to edges and colours, later ones to textures, parts and whole objects."
)
loaded = current_model()
image = current_image()
image_key = current_image_key()
try:
    acts = layer_activations(loaded, image_key, image)
except activations.ExtractionError as exc:
    st.error(f"{exc} Pick another model in the sidebar.")
    st.stop()
cache_key = (loaded.name, loaded.pretrained, image_key)
_goto(acts, loaded.name)
info = _pick_layer(acts, loaded.name)
opts = _options()

st.subheader("All channels")
_montage_section(acts, info, opts, cache_key)
st.subheader("One channel up close")
_channel_section(acts, info, opts, image, cache_key)
st.subheader("The strongest channels")
_top_k_section(acts, info, opts, cache_key)
st.subheader("The network at a glance")
by = st.radio("Strongest by", list(fm.SORT_KEYS), key="fm_overview_by", horizontal=True,
              format_func=lambda s: f"spatial {s}")
with st.container(key="fm_overview"):
    st.image(_overview_png(*cache_key, by, opts["colormap"], acts), width="content", output_format="PNG")
st.caption(
    f"One row per stage: its last layer's {OVERVIEW_K} strongest channels on your image (ranked by their spatial "
    f"{by}), each on its own colour scale. Read top to bottom: small edge and colour detectors become "
    "coarser maps that respond to parts and objects."
)
st.subheader("Layer table")
_table_section(loaded, info)
