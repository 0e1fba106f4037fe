"""Look closer: cover part of the image and watch the classes change; shift, turn, scale and dim it."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from ui.jobs import background
from ui.layer_cache import ranking as shared_ranking
from ui.look_closer import class_picker, gradcam
from ui.queues import heavy_queue
from ui.shared import current_image, current_image_key, current_model, with_notices
from vizlib import invariance, models, occlusion
from vizlib.figures import look_closer as flc
from vizlib.figures.common import topk_bar

PATCHES = (16, 24, 32, 48, 64, 96)
#: The moving patch: its side in pixels at first, its smallest side, and the step of its size slider.
DEFAULT_PATCH, MIN_PATCH, PATCH_STEP = 48, 8, 4
STRIDES = (8, 16, 32)
SHIFTS = (8, 16, 32)


# ------------------------------------------------------------------------------------------- occlusion


def _largest_patch(input_size: tuple[int, int]) -> int:
    return max(PATCH_STEP * (min(input_size) // 2 // PATCH_STEP), MIN_PATCH)


def _pick_key(mouse: str) -> str:
    """The picture's widget key: a new one after each placement (and per mouse mode), so the next click or box
    starts afresh."""
    return f"lc_pick::{mouse}::{st.session_state.get('lc_pick_round', 0)}"


def _place(key: str, input_size: tuple[int, int]) -> None:
    """A click or a box on the picture moves (and sizes) the patch: set the sliders before they are drawn."""
    event = st.session_state.get(key)
    placed = flc.placed_patch(event.get("selection") if event else None, input_size,
                              st.session_state.get("lc_patch", DEFAULT_PATCH), min_patch=MIN_PATCH,
                              max_patch=_largest_patch(input_size), step=PATCH_STEP)
    if placed is not None:
        st.session_state["lc_x"], st.session_state["lc_y"], st.session_state["lc_patch"] = placed
        st.session_state["lc_pick_round"] = st.session_state.get("lc_pick_round", 0) + 1


@st.fragment
def _moving_patch(loaded: models.LoadedModel, image: np.ndarray) -> None:
    """The patch and the top 5: only this part reruns when the patch moves."""
    h, w = loaded.input_size
    largest = _largest_patch((h, w))
    st.session_state.setdefault("lc_patch", DEFAULT_PATCH)
    st.session_state["lc_patch"] = min(max(st.session_state["lc_patch"], MIN_PATCH), largest)
    left, right = st.columns([1, 1])
    picture = left.container()  # on top: the picture to place the patch on; the sliders under it fine-tune
    mouse = picture.radio("On the picture", list(flc.MOUSE_MODES), key="lc_mouse", horizontal=True,
                          format_func=lambda m: flc.MOUSE_MODES[m])
    with left:
        a, b = st.columns(2)
        if largest > MIN_PATCH:
            patch = a.slider("Patch size (px)", MIN_PATCH, largest, step=PATCH_STEP, key="lc_patch")
        else:  # a small input (a model of your own at 16 px): one size fits, and a slider needs two
            patch = MIN_PATCH
            a.caption(f"Patch size: {patch} px, the only size that fits the network's {w}×{h} input.")
        fill = b.radio("Cover with", list(occlusion.FILLS), key="lc_fill", horizontal=True,
                       format_func=lambda f: occlusion.FILLS[f])
        for name, side in (("lc_x", w), ("lc_y", h)):  # centred at first; a bigger patch may leave less room
            st.session_state.setdefault(name, (side - patch) // 2)
            st.session_state[name] = min(max(st.session_state[name], 0), side - patch)
        x = st.slider("Patch left edge (x)", 0, w - patch, key="lc_x")
        y = st.slider("Patch top edge (y)", 0, h - patch, key="lc_y")
    covered, prediction = with_notices(occlusion.covered_prediction, loaded, image, x, y, patch, fill)
    key = _pick_key(mouse)
    picture.plotly_chart(flc.patch_figure(covered, x, y, patch, mouse=mouse), key=key,
                         on_select=partial(_place, key, (h, w)), selection_mode=("points", "box"),
                         config={"displayModeBar": False})
    picture.caption("**Drag a box** over the picture: the patch covers it. **Click to move**: the patch's centre "
                    "goes where you click. The sliders below fine-tune it.")
    right.plotly_chart(topk_bar(prediction.top, "Top 5 with the patch"), key="lc_patch_top5")
    right.caption(f"The network sees a {w}×{h} picture; the patch covers {patch}×{patch} px of it at "
                  f"({x}, {y}). Forward pass: {prediction.seconds * 1000:.0f} ms.")


def _sensitivity_section(loaded: models.LoadedModel, image: np.ndarray, image_key: str,
                         ranking: models.Prediction) -> None:
    st.subheader("The occlusion map")
    st.markdown("Slide the patch over every place in turn and record how much the class's probability drops: "
                "red where covering hurts the class, blue where it helps. Beside it, Grad-CAM of the same class.")
    a, b, c, d = st.columns(4)
    with a:
        target = class_picker(loaded, ranking, f"lc_target::{loaded.name}::{image_key}")
    # only the sizes that fit the network's input (a model of your own may see 32x32 pictures)
    patches = [size for size in PATCHES if size <= min(loaded.input_size)] or [PATCHES[0]]
    patch = b.select_slider("Patch (px)", patches, value=max([p for p in patches if p <= 32], default=patches[0]),
                            key="lc_map_patch")
    stride = c.select_slider("Stride (px)", [s for s in STRIDES if s <= patch], value=min(16, patch),
                             key="lc_map_stride")
    fill = d.radio("Fill", list(occlusion.FILLS), key="lc_map_fill", format_func=lambda f: occlusion.FILLS[f])
    positions = occlusion.window_count(loaded.input_size, patch, stride)
    st.caption(f"{positions} patch positions, {occlusion.BATCH} per forward pass.")
    key = (loaded.name, loaded.pretrained, image_key, target, patch, stride, fill)
    drop = background(
        heavy_queue(), "occlusion", key,
        lambda progress: occlusion.sensitivity(loaded, image, target, patch=patch, stride=stride, fill=fill,
                                               progress=progress),
        label=f"Occlusion map of {loaded.categories[target]}", start_label="Compute the occlusion map", share=True,
    )
    if drop is None:
        return
    st.plotly_chart(
        flc.sensitivity_figure(image, drop, gradcam(loaded, image_key, image, target),
                               titles=(f"Occlusion: drop of {loaded.categories[target]}", "Grad-CAM")),
        key="lc_sensitivity_figure",
    )
    st.caption(f"Largest drop {float(drop.max()):+.3f}, largest rise {float(drop.min()):+.3f} (probability).")


# ------------------------------------------------------------------------------------------- invariance


@st.fragment
def _transform_sliders(loaded: models.LoadedModel, image: np.ndarray) -> None:
    a, b, c = st.columns(3)
    dx = a.slider("Shift right (px)", -64, 64, 0, key="lc_dx")
    dy = a.slider("Shift down (px)", -64, 64, 0, key="lc_dy")
    angle = b.slider("Rotate (°)", -180, 180, 0, 5, key="lc_angle")
    scale = b.slider("Scale (×)", 0.5, 2.0, 1.0, 0.05, key="lc_scale")
    dim = c.slider("Brightness (×)", 0.0, 1.5, 1.0, 0.05, key="lc_dim")
    flip = c.toggle("Mirror left-right", key="lc_flip")
    transform = invariance.Transform(dx=dx, dy=dy, angle=angle, scale=scale, flip=flip, dim=dim)
    st.session_state["lc_transform"] = transform
    moved = invariance.apply(loaded.resize(image), transform)
    prediction = with_notices(models.classify, loaded, moved)
    left, right = st.columns(2)
    left.image(moved, caption="What the network sees", width="stretch")
    right.plotly_chart(topk_bar(prediction.top, "Top 5"), key="lc_transform_top5")


def _sweep_section(loaded: models.LoadedModel, image: np.ndarray, image_key: str,
                   ranking: models.Prediction) -> None:
    st.subheader("Sweep one transform")
    a, b = st.columns([1, 2])
    kind = a.radio("Transform", list(invariance.KINDS), key="lc_sweep_kind", horizontal=True)
    low, high, steps = invariance.RANGES[kind]
    b.caption(f"{steps} values from {low:g} to {high:g} {invariance.KINDS[kind]}, {invariance.SWEEP_BATCH} images "
              "per forward pass; the other sliders stay as set above. The lines follow your image's top 5 classes.")
    base = st.session_state.get("lc_transform", invariance.Transform())
    classes = tuple(ranking.indices[:5])
    values = np.linspace(low, high, steps)
    key = (loaded.name, loaded.pretrained, image_key, kind, base)
    result = background(
        heavy_queue(), "sweep", key,
        lambda progress: invariance.sweep(loaded, image, kind, values, classes, base=base, progress=progress),
        label=f"Sweep of {kind}", start_label=f"Sweep {kind}", share=True,
    )
    if result is not None:
        names = [loaded.categories[c] for c in result.classes]
        st.plotly_chart(flc.sweep_figure(result.values, result.probabilities, names, kind=kind,
                                         unit=invariance.KINDS[kind]), key="lc_sweep_figure")


def _equivariance_section(loaded: models.LoadedModel, image: np.ndarray, image_key: str) -> None:
    st.subheader("Layer by layer: does the map move with the image?")
    st.markdown("Shift your image right and compare every layer's output with the unshifted one: once after "
                "moving the map back by the shift in its own units (*equivariance*: the map moved with the image), "
                "once as it is (*invariance*: the layer did not notice).")
    shifts = [size for size in SHIFTS if size < min(loaded.input_size)] or [SHIFTS[0]]  # less than the input
    shift = st.select_slider("Shift (px)", shifts, value=shifts[-1], key="lc_equi_shift")
    key = (loaded.name, loaded.pretrained, image_key, shift)
    rows = background(
        heavy_queue(), "equivariance", key,
        lambda progress: invariance.layer_equivariance(loaded, image, shift),
        label="Layer shifts", start_label="Measure every layer", share=True,
    )
    if rows:
        st.plotly_chart(flc.equivariance_figure([r.layer for r in rows], [r.aligned for r in rows],
                                                [r.unaligned for r in rows], [r.stride for r in rows], shift),
                        key="lc_equivariance_figure")
        st.caption(f"First layer: {rows[0].aligned:.3f} shifted back, {rows[0].unaligned:.3f} as is. "
                   f"Last: {rows[-1].aligned:.3f} / {rows[-1].unaligned:.3f}. A layer whose stride does not divide "
                   "the shift can only be moved back to the nearest unit.")


# ------------------------------------------------------------------------------------------- page

st.title("Look closer")
st.markdown("Zeiler & Fergus asked the network two questions: what happens when part of the image is covered, "
            "and what stays the same when the image moves? Ask them of the real network, on your image.")
loaded = current_model()
image = current_image()
image_key = current_image_key()
try:
    ranking = shared_ranking(loaded, image_key, image)
    cover_tab, move_tab = st.tabs(["Cover part of the image", "Shift, turn, scale"])
    with cover_tab:
        _moving_patch(loaded, image)
        _sensitivity_section(loaded, image, image_key, ranking)
    with move_tab:
        _transform_sliders(loaded, image)
        _sweep_section(loaded, image, image_key, ranking)
        _equivariance_section(loaded, image, image_key)
except ValueError as exc:  # the library's sentence, never a traceback
    st.error(f"{exc}", icon=":material/error:")
