"""Why convolutions? Four Fashion-MNIST nets one idea apart: parameters, live training, first-layer filters,
shift tests and a fully convolutional class map. Every number on the page is computed, not typed."""

from __future__ import annotations

import streamlit as st

from ui import training_lab as lab
from ui.jobs import background
from vizlib.figures import training_lab as LF
from vizlib.jobs import Latest
from vizlib.training_lab import fcn, params, shift
from vizlib.training_lab.data import CLASSES, FashionDataError
from vizlib.training_lab.nets import NETS
from vizlib.training_lab.train import TrainConfig, train_nets

NAMES = LF.SHORT_NAMES
TRAIN_SIZES = [1_000, 2_000, 5_000, 10_000]
_INPUTS = ("lab_h", "lab_w", "lab_c", "lab_oh", "lab_ow", "lab_maps", "lab_k", "lab_bias")

st.title("Why convolutions?")
st.caption(
    "Four networks for 28x28 Fashion-MNIST, each one idea apart: fully connected → local windows → shared "
    "weights (convolution) → no dense layer at all (fully convolutional)."
)

# ------------------------------------------------------------------------------------------ parameters

st.header("1. How many weights?")


def _load_example(example: params.Example) -> None:
    (h, w, c), (oh, ow, m) = example.input_shape, example.output_shape
    for key, value in zip(_INPUTS, (h, w, c, oh, ow, m, example.kernel, example.bias), strict=True):
        st.session_state[key] = value
    st.session_state["lab_example"] = example.key


for key, value in zip(_INPUTS, (28, 28, 1, 28, 28, 8, 5, True), strict=True):
    st.session_state.setdefault(key, value)
cols = st.columns(len(params.EXAMPLES))
for col, example in zip(cols, params.EXAMPLES, strict=True):
    col.button(example.title, key=f"lab_ex_{example.key}", on_click=_load_example, args=(example,),
               width="stretch")
left, right = st.columns([2, 3])
with left:
    a, b, c = st.columns(3)
    a.number_input("Input height", 1, 100_000, key="lab_h")
    b.number_input("Input width", 1, 100_000, key="lab_w")
    c.number_input("Channels", 1, 1024, key="lab_c")
    a.number_input("Output height", 1, 100_000, key="lab_oh")
    b.number_input("Output width", 1, 100_000, key="lab_ow")
    c.number_input("Maps (units per position)", 1, 4096, key="lab_maps")
    a.number_input("Kernel (k x k)", 1, 99, key="lab_k")
    b.checkbox("Count biases", key="lab_bias")
s = st.session_state
comparison = params.compare((s.lab_h, s.lab_w, s.lab_c), (s.lab_oh, s.lab_ow, s.lab_maps), s.lab_k, s.lab_bias)
with right:
    m1, m2, m3 = st.columns(3)
    for col, (title, count) in zip((m1, m2, m3), (("Dense", comparison.dense),
                                                  ("Locally connected", comparison.local),
                                                  ("Convolution", comparison.conv)), strict=True):
        col.metric(title, f"{count.total:,}", help=f"{count.weights:,} weights + {count.biases:,} biases")
    st.plotly_chart(LF.params_figure(comparison), key="lab_params_fig")
units = s.lab_oh * s.lab_ow * s.lab_maps
ratio_local = comparison.dense.total / max(comparison.local.total, 1)
ratio_conv = comparison.local.total / max(comparison.conv.total, 1)


def _times(ratio: float) -> str:
    return f"{ratio:,.1f}" if ratio < 10 else f"{ratio:,.0f}"


if ratio_local >= 1.05:
    local_vs_dense = f"need {_times(ratio_local)}× fewer parameters than wiring every unit to every input"
elif ratio_local > 1 / 1.05:
    local_vs_dense = "need about as many parameters as wiring every unit to every input"
else:  # a window with more pixels than the whole input (a 99×99 kernel on a 28×28 image)
    local_vs_dense = (f"need {_times(1 / ratio_local)}× more parameters than wiring every unit to every input, "
                      "as each window has more pixels than the whole input")
st.markdown(
    f"{s.lab_h}×{s.lab_w}×{s.lab_c} = {s.lab_h * s.lab_w * s.lab_c:,} inputs into {units:,} units. "
    f"**Local windows** ({s.lab_k}×{s.lab_k}) {local_vs_dense}; **sharing** each window's weights across the "
    f"{s.lab_oh * s.lab_ow:,} positions divides by {_times(ratio_conv)} again. The convolution's count does not "
    "depend on the image size at all."
)
chosen = next((e for e in params.EXAMPLES if e.key == s.get("lab_example")), None)
if chosen is not None:
    quoted = ", ".join(f"{kind} {value:,}" for kind, value in chosen.quoted.items())
    st.info(f"**{chosen.title}** — {chosen.note} The lecture quotes: {quoted}.", icon=":material/school:")

# ------------------------------------------------------------------------------------------ the four nets

try:
    references = lab.reference_runs()
except (OSError, ValueError) as exc:
    references = {}
    st.warning(f"The reference runs' model cards can't be read ({exc}).")
st.subheader("The four networks")
rows = []
for name, (_, description) in NETS.items():
    run = references.get(name)
    rows.append({
        "net": NAMES[name], "layers": description,
        "parameters": f"{run.parameters:,}" if run else "—",
        "test accuracy": f"{run.test_accuracy:.2%}" if run and run.test_accuracy is not None else "—",
    })
st.dataframe(rows, hide_index=True, width="stretch")
if {"fashion_cnn", "fashion_mlp"} <= set(references):
    cnn, mlp = references["fashion_cnn"], references["fashion_mlp"]
    st.markdown(
        f"The reference CNN reaches **{cnn.test_accuracy:.1%}** on the 10,000 test images with "
        f"{cnn.parameters:,} parameters; the MLP {mlp.test_accuracy:.1%} with {mlp.parameters:,} "
        f"({mlp.parameters / cnn.parameters:.1f}× as many)."
    )

# ------------------------------------------------------------------------------------------ training

st.header("2. Train them yourself")
c1, c2, c3 = st.columns([3, 1, 2])
chosen_nets = c1.multiselect("Nets", list(NETS), default=list(NETS), format_func=NAMES.get, key="lab_nets")
epochs = c2.slider("Epochs", 1, 5, 1, key="lab_epochs")
train_size = c3.select_slider("Training images", TRAIN_SIZES, value=2_000, key="lab_size",
                              format_func=lambda n: f"{n:,}")
runs_shown = references
title = "Reference runs (60,000 images, trained by `python -m vizlib.training_lab.train`)"
if chosen_nets:
    config = TrainConfig(nets=tuple(n for n in NETS if n in chosen_nets), epochs=epochs, train_size=train_size,
                         test_size=2_000, points_per_epoch=10)
    live = s.get("lab_live")
    if live is None or live[0] != config:
        live = (config, Latest())
        s["lab_live"] = live
    holder = live[1]

    def _draw_live() -> None:
        partial = holder.get()
        if partial is not None and any(r.points for r in partial.runs.values()):
            st.plotly_chart(LF.curves_figure(partial.runs), key="lab_live_curves")

    def _train(progress):
        return train_nets(config, progress, holder.set, keep_models=False)

    try:
        result = background(lab.training_queue(), "lab_train", config, _train, label="Training",
                            start_label="Train", live=_draw_live)
    except FashionDataError as exc:
        result = None
        st.error(str(exc))
    if result is not None:
        runs_shown = result.runs
        title = f"Your run: {train_size:,} training images, {epochs} epoch(s), accuracy on 2,000 test images"
else:
    st.info("Choose at least one net to train.")
st.subheader(title)
if runs_shown:
    st.plotly_chart(LF.curves_figure(runs_shown), key="lab_curves")
    finals = {n: r.test_accuracy for n, r in runs_shown.items() if r.test_accuracy is not None}
    if finals:
        best = max(finals, key=finals.get)
        st.markdown(
            "Test accuracy: " + ", ".join(f"{NAMES[n]} **{a:.1%}**" for n, a in finals.items())
            + f". Best: {NAMES[best]}."
        )
    st.download_button("Curves (CSV)", LF.curves_csv(runs_shown), "training_curves.csv", "text/csv",
                       key="lab_csv")

# ------------------------------------------------------------------------------------------ filters

st.header("3. The first layer growing up")
with_filters = next((r for n, r in runs_shown.items() if n in ("fashion_cnn", "fashion_fcn") and r.filters), None)
if with_filters is None:
    with_filters = references.get("fashion_cnn")
if with_filters is not None and with_filters.filters:
    snaps = with_filters.filters
    st.caption(
        f"The {len(snaps[0].weights)} 5x5 filters of the {NAMES[with_filters.name]}'s first layer, "
        f"{len(snaps)} snapshots from the random start to the end of training (red positive, blue negative)."
    )
    f1, f2 = st.columns(2)
    f1.plotly_chart(LF.filters_animation(snaps), key="lab_filters_anim")
    f2.plotly_chart(LF.filters_strip(snaps), key="lab_filters_strip")
    st.download_button("Filter animation (GIF)", LF.filters_gif(snaps), "first_layer_filters.gif", "image/gif",
                       key="lab_gif")

# ------------------------------------------------------------------------------------------ shift test

try:  # sections 4 and 5 show test garments: without Debian's dataset-fashion-mnist, the sentence saying so
    test_set, missing_data = lab.test_images(), None
except FashionDataError as exc:
    test_set, missing_data = None, str(exc)

st.header("4. Move the garment")
if missing_data is not None:
    st.warning(missing_data, icon=":material/dataset:")
elif len(references) == len(NETS):
    kind = st.radio("Change", ["shift", "rotation"], horizontal=True, key="lab_kind")
    curve = lab.measured().get(kind) or background(
        lab.eval_queue(), f"lab_{kind}", kind, lab.robustness_job(kind), label=f"The {kind} test", share=True
    )
    if curve is not None:
        st.plotly_chart(LF.robustness_figure(curve), key="lab_shift_fig")
        worst = min(curve.accuracy, key=curve.drop)
        most = max(curve.accuracy, key=curve.drop)
        biggest = curve.amounts[-1]
        unit = "px" if kind == "shift" else "°"
        st.markdown(
            f"At {biggest}{unit} the nets keep: "
            + ", ".join(f"{NAMES[n]} {a[-1]:.0%}" for n, a in curve.accuracy.items())
            + f". The {NAMES[most]} loses most ({curve.drop(most):.0%} points), the {NAMES[worst]} least "
            f"({curve.drop(worst):.0%}). Shared weights make the feature maps move with the garment, but a dense "
            "layer on top reads them at fixed places; pooling and global average pooling add some tolerance."
            + (" None of the nets is invariant: every one loses accuracy." if all(
                curve.drop(n) > 0.01 for n in curve.accuracy) else "")
        )
    images, labels = test_set
    d1, d2, d3 = st.columns(3)
    index = d1.number_input("Test image", 0, len(images) - 1, 0, key="lab_img")
    dx = d2.slider("Drag right (px)", -8, 8, 0, key="lab_dx")
    dy = d3.slider("Drag down (px)", -8, 8, 0, key="lab_dy")
    loaded = lab.lab_models()
    image = images[index]
    moved = shift.shift_images(image[None], dx, dy)[0]
    nets = {n: lm.model for n, lm in loaded.items()}
    probs = shift.drag_prediction(nets, image, dx, dy)
    p1, p2 = st.columns([1, 4])
    p1.image(moved, caption=f"a {CLASSES[labels[index]]}", width=140, clamp=True)
    p2.plotly_chart(LF.drag_figure(probs, CLASSES, int(labels[index])), key="lab_drag_fig")
    answers = {n: CLASSES[int(p.argmax())] for n, p in probs.items()}
    said = ", ".join(f"{NAMES[n]}: **{a}**" for n, a in answers.items())
    st.markdown(f"Moved ({dx}, {dy}) px, each net says: {said}.")

# ------------------------------------------------------------------------------------------ FCN canvas

st.header("5. Slide it over a bigger picture")
if missing_data is not None:
    st.warning(missing_data, icon=":material/dataset:")
elif "fashion_fcn" in references:
    images, labels = test_set
    g1, g2, g3 = st.columns(3)
    count = g1.slider("Items", 1, 8, 4, key="lab_items")
    seed = g2.number_input("Layout", 0, 9999, 0, key="lab_seed", help="Another number, another random layout.")
    how = g3.radio("Net", ["Fully convolutional", "CNN, dense layer as a 7x7 convolution"], key="lab_fcn_net")
    items = fcn.random_layout(images, labels, count, int(seed))
    canvas = fcn.compose_canvas((84, 140), items)
    loaded = lab.lab_models()
    key = "fashion_fcn" if how.startswith("Fully") else "fashion_cnn"
    with loaded[key].shared():
        net = loaded[key].model if key == "fashion_fcn" else fcn.dense_as_conv(loaded[key].model)
        cmap = fcn.class_map(net, canvas)
    st.plotly_chart(LF.class_map_figure(canvas, cmap, CLASSES), key="lab_fcn_fig")
    rows, cols = cmap.best.shape
    st.markdown(
        f"One forward pass over the {canvas.shape[0]}×{canvas.shape[1]} canvas gives {rows}×{cols} = "
        f"{rows * cols} predictions, one every {cmap.stride} pixels, from weights trained on 28×28 crops. "
        "Items placed: " + ", ".join(CLASSES[i.label] for i in items) + "."
    )
