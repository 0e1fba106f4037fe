"""Class activation maps: which parts of the image made the network choose a class, by several methods side by side."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from ui.jobs import background
from ui.layer_cache import cam_maps, class_labels, figure
from ui.layer_cache import ranking as shared_ranking
from ui.queues import heavy_queue, score_queue
from ui.shared import (
    current_image,
    current_image_key,
    current_model,
    gallery_image,
    untrained_model,
)
from ui.user_model import architecture_of
from vizlib import activations, cam, images, models, overlay
from vizlib import feature_maps as fm
from vizlib.cam import sanity as cam_sanity
from vizlib.figures import cam as fcam
from vizlib.figures import look_closer as flc

#: Methods shown first: each takes well under a second on a CPU.
DEFAULT_METHODS = ("gradcam", "gradcam++", "layercam", "saliency")
#: Methods that take several seconds or more on a CPU, with what to expect.
SLOW = {
    "scorecam": "Score-CAM runs one masked forward pass per channel of the layer (hundreds on the last block): "
    "expect tens of seconds on a CPU, less on a narrow early layer.",
}
#: Methods over about a second of CPU: computed only when asked, in the server's shared job queue (one job per
#: student at a time, with its place in the queue, a progress bar and Cancel).
HEAVY = ("scorecam", "integrated_gradients")
METHODS_KEY = "cam_methods"
SAMPLE_KEY = "two_objects"
FRACTION = 0.2
OTHER = -1  # the "another class" choice of the target picker


# ------------------------------------------------------------------------------------------- cached work


@st.cache_data(max_entries=16, show_spinner=False)
def _layers(model_name: str, pretrained: bool, _loaded) -> list[str]:
    """The default layer (the last block) first, then every convolution in execution order."""
    default = cam.default_layer(_loaded)
    return [default] + [name for name in activations.conv_layers(_loaded) if name != default]


# ------------------------------------------------------------------------------------------- pickers


def _class_label(loaded: models.LoadedModel, index: int) -> str:
    return f"{loaded.categories[index]} (#{index})"


def _class_labels(loaded: models.LoadedModel, image_key: str, ranking: models.Prediction) -> tuple[str, ...]:
    """Every class's label with its probability on the image, by class index (made once per model and image: the
    class pickers list all of them on every run)."""

    def build() -> tuple[str, ...]:
        probs = dict(zip(ranking.indices, (p for _, p in ranking.top), strict=True))
        return tuple(f"{_class_label(loaded, i)} — {probs[i]:.2%}" for i in range(len(loaded.categories)))

    return class_labels(loaded, image_key, build)


def _pick_target(loaded: models.LoadedModel, ranking: models.Prediction, image_key: str) -> int:
    """One of the top 5, or any class of the model by a searchable name."""
    probs = dict(zip(ranking.indices, (p for _, p in ranking.top), strict=True))
    choices = list(ranking.indices[:5]) + [OTHER]
    pick = st.radio(
        "Explain the class",
        choices,
        key=f"cam_top5::{loaded.name}::{image_key}",
        format_func=lambda i: "Another class…" if i == OTHER else f"{loaded.categories[i]} — {probs[i]:.1%}",
    )
    if pick != OTHER:
        return int(pick)
    return int(
        st.selectbox(
            "Any class (type to search)",
            range(len(loaded.categories)),
            index=ranking.indices[0],
            key=f"cam_any::{loaded.name}",
            format_func=_class_labels(loaded, image_key, ranking).__getitem__,
        )
    )


def _pick_layer(loaded: models.LoadedModel) -> str:
    names = _layers(loaded.name, loaded.pretrained, loaded)
    return st.selectbox(
        "Layer (type to search)",
        names,
        key=f"cam_layer::{loaded.name}",
        format_func=lambda n: f"last block (default) · {n}" if n == names[0] else n,
        help="The layer whose activations and gradients explain the class. Grad-CAM and friends are usually "
        "read at the last convolutional block: coarse, but about whole objects.",
    )


#: The methods whose rule applies to rectifiers only.
GUIDED = ("guided_backprop", "guided_gradcam")


def _pick_methods(loaded: models.LoadedModel, layer: str) -> list[str]:
    """The methods to show; "cam" only where the model's head allows it, slow ones only when confirmed."""
    reason = cam.cam_unsupported_reason(loaded, layer)
    options = [m for m in cam.METHODS if m != "cam" or reason is None]
    if METHODS_KEY not in st.session_state:
        st.session_state[METHODS_KEY] = list(DEFAULT_METHODS)
    else:  # keep the user's choice where it still applies (CAM comes and goes with the layer)
        st.session_state[METHODS_KEY] = [m for m in st.session_state[METHODS_KEY] if m in options]
    chosen = st.multiselect(
        "Methods, side by side",
        options,
        key=METHODS_KEY,
        format_func=lambda m: cam.TITLES[m] + (" (slow)" if m in SLOW else ""),
    )
    if reason is not None:
        st.info(f"**CAM** is not offered here. {reason}", icon=":material/block:")
    guided = [m for m in chosen if m in GUIDED]
    others = cam.unguided_activations(loaded) if guided else {}
    if others:
        kinds = ", ".join(f"{n} {name}" for name, n in others.items())
        st.info(
            f"**{' and '.join(cam.TITLES[m] for m in guided)}**: this network's activations include {kinds}. "
            "Guided backpropagation only lets positive gradients back through rectifiers (ReLU, ReLU6); through "
            "these the gradient passes unchanged, so here the guided map is close to a plain gradient "
            "(compare it with Saliency).",
            icon=":material/info:",
        )
    for method, warning in SLOW.items():
        if method in chosen:
            st.warning(warning, icon=":material/hourglass:")
    return chosen


# ------------------------------------------------------------------------------------------- sections


def _score_table(scores: dict[str, cam.Faithfulness]) -> None:
    rows = {
        "Method": [cam.TITLES[m] for m in scores],
        "Faithfulness": [s.score for s in scores.values()],
        "Drop, map's top 20%": [s.drop_top for s in scores.values()],
        "Drop, random 20%": [s.drop_random for s in scores.values()],
    }
    number = st.column_config.NumberColumn(format="%+.3f")
    st.dataframe(
        rows, hide_index=True, key="cam_scores",
        column_config={k: number for k in list(rows)[1:]},
    )
    probability = next(iter(scores.values())).probability
    st.caption(
        f"**Faithfulness** = how much the class's probability ({probability:.1%} on the whole image) drops when "
        f"the map's most highlighted {FRACTION:.0%} of the image is blurred away, minus the drop for a random "
        f"{FRACTION:.0%}: above 0 the map points at what the network really uses; near 0 it does no better "
        "than chance. The methods disagree, and some explain better than others."
    )


def _downloads(
    maps: dict[str, np.ndarray], fetch: Callable[[], dict[str, np.ndarray]], image: np.ndarray, key: tuple,
    target: int, layer: str, colormap: str, opacity: float,
) -> None:
    """The close-up and the downloads; files are made on click from ``fetch()`` (the buttons' functions stay with
    the session: they must not hold the maps)."""
    method = st.selectbox(
        "One map up close", list(maps), key="cam_closeup", format_func=lambda m: cam.TITLES[m]
    )
    st.plotly_chart(
        figure(("cam_overlay", *key, target, layer, method, colormap, opacity),
               lambda: fcam.overlay_figure(image, maps[method], colormap=colormap, opacity=opacity,
                                           label=cam.TITLES[method], title=cam.TITLES[method])),
        key="cam_overlay",
    )
    stem = f"{key[0]}_{layer}_{target}_{method}".replace("+", "pp")
    a, b, c = st.columns(3)
    # every file is made when its button is clicked, not on every new image (a full-size PNG costs tens of ms)
    a.download_button("Overlay (PNG)",
                      lambda: fm.encode_png(overlay.overlay(image, fetch()[method], colormap, opacity)),
                      file_name=f"{stem}.png", mime="image/png", key="cam_download_png", on_click="ignore")
    b.download_button("Map (.npy)", lambda: fm.encode_npy(fetch()[method]), file_name=f"{stem}.npy",
                      mime="application/octet-stream", key="cam_download_npy", on_click="ignore")
    c.download_button("All maps (.npy)", lambda: fm.encode_npy(np.stack(list(fetch().values()))),
                      file_name=f"{key[0]}_{layer}_{target}_all.npy", mime="application/octet-stream",
                      key="cam_download_all", on_click="ignore")
    st.caption(
        f"The map is {maps[method].shape[1]}×{maps[method].shape[0]} px, the size of your image, with values from "
        "0 (no evidence) to 1 (the most). *All maps* is one array, methods × height × width, in this order: "
        + ", ".join(cam.TITLES[m] for m in maps) + "."
    )


def _why_a_not_b(loaded: models.LoadedModel, layer: str, methods: list[str], colormap: str, opacity: float) -> None:
    st.subheader("Why A and not B?")
    st.markdown("One photo, two classes: the same method explains each class. Where do the two maps differ?")
    sample = st.radio(
        "Photo", [True, False], key="cam_ab_sample", horizontal=True,
        format_func=lambda s: "The two-object sample: a bee on a flower" if s else "Your image",
    )
    if sample:
        image, image_key = gallery_image(SAMPLE_KEY)
    else:
        image, image_key = current_image(), current_image_key()
    ranking = shared_ranking(loaded, image_key, image)
    probs = dict(zip(ranking.indices, (p for _, p in ranking.top), strict=True))
    defaults = list(ranking.indices[:2])
    if sample:
        (entry,) = [g for g in images.gallery() if g.key == SAMPLE_KEY]
        named = [loaded.categories.index(c) for c in entry.classes if c in loaded.categories]
        defaults = named[:2] if len(named) >= 2 else defaults
    options = [m for m in methods if m not in HEAVY] or ["gradcam"]
    labels = _class_labels(loaded, image_key, ranking)
    left, middle, right = st.columns(3)
    pair = []
    for column, label, default in ((left, "A", defaults[0]), (middle, "B", defaults[1])):
        pair.append(int(column.selectbox(
            f"Class {label} (type to search)", range(len(loaded.categories)), index=default,
            key=f"cam_ab_{label}::{loaded.name}::{image_key}",
            format_func=labels.__getitem__,
        )))
    method = right.selectbox("Method", options, key="cam_ab_method", format_func=lambda m: cam.TITLES[m])
    if pair[0] == pair[1]:
        st.info("Pick two different classes to compare.", icon=":material/compare:")
        return
    maps = {
        label: cam_maps(loaded, image_key, image, index, layer, (method,))[method]
        for label, index in zip("AB", pair, strict=True)
    }
    titles = {
        label: f"{label}: {loaded.categories[i]} ({probs[i]:.1%})" for label, i in zip("AB", pair, strict=True)
    }
    st.plotly_chart(
        figure(("cam_ab", loaded.name, loaded.pretrained, image_key, tuple(pair), layer, method, colormap, opacity),
               lambda: fcam.methods_figure(image, maps, colormap=colormap, opacity=opacity, titles=titles,
                                           columns=2)),
        key="cam_ab",
    )
    st.caption(
        f"{cam.TITLES[method]} at **{layer}** for each class. A map only says where the evidence for *its* class "
        "is: the network's probabilities (in brackets) say which class wins."
    )


def _sanity_section(loaded: models.LoadedModel, image: np.ndarray, image_key: str, target: int, layer: str,
                    methods: list[str]) -> None:
    st.subheader("Sanity check: randomise the network")
    st.markdown(
        "If a map explains the *network*, destroying the network must change it (Adebayo et al., 2018). Replace the "
        "trained weights by untrained ones from the top down, a few blocks per step, and recompute each map: the "
        "rank correlation with the trained map should fall. A map that barely changes shows the image, not the "
        "network: a heat map is not proof."
    )
    chosen = tuple(m for m in methods if m not in SLOW) or ("gradcam",)
    key = (loaded.name, image_key, target, layer, chosen)
    architecture = architecture_of(loaded.name)  # a session's own model is known in this thread, not the queue's
    check = background(
        heavy_queue(), "cam_sanity", key,
        lambda progress: cam_sanity.sanity_check(loaded, untrained_model(architecture), image, target, chosen, layer,
                                                 progress=progress),
        label="Sanity check", start_label="Randomise the layers, top down", share=True,
    )
    if check is None:
        return
    labels = [step.label for step in check.steps]
    st.plotly_chart(flc.sanity_maps_figure([(step.label, step.maps) for step in check.steps], cam.TITLES),
                    key="cam_sanity_maps")
    st.plotly_chart(flc.sanity_correlation_figure(
        labels, {m: [step.correlation[m] for step in check.steps] for m in chosen}, cam.TITLES,
        cam_sanity.FLAG_THRESHOLD), key="cam_sanity_correlation")
    for method in chosen:
        mean = check.mean_correlation(method)
        if method in check.flagged:
            st.warning(f"**{cam.TITLES[method]}** barely changes when the network is randomised (mean rank "
                       f"correlation {mean:+.2f}): it does not show what this network learned.", icon=":material/flag:")
        else:
            st.success(f"**{cam.TITLES[method]}** changes with the weights (mean rank correlation {mean:+.2f}).",
                       icon=":material/check:")


def _heavy_maps(
    loaded: models.LoadedModel, image: np.ndarray, key: tuple, target: int, layer: str, heavy: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """The slow methods' maps once computed in the shared queue (a start button first); {} until then."""
    if not heavy:
        return {}
    names = " and ".join(cam.TITLES[m] for m in heavy)
    result = background(
        heavy_queue(), "cam_heavy", (*key, target, layer, heavy),
        lambda progress: cam.compute(loaded, image, target, heavy, layer, progress=progress),
        label=f"{names} of {loaded.categories[target]}", start_label=f"Compute {names}", share=True,
    )
    if result is None:
        st.caption(f"{names} will join the figure when computed: press the button, or take the other methods "
                   "meanwhile.")
        return {}
    return result


def _faithfulness_section(
    loaded: models.LoadedModel, image: np.ndarray, key: tuple, target: int, layer: str, maps: dict
) -> None:
    """The faithfulness table, computed when the student asks (then kept on for the session's next maps)."""
    st.subheader("How faithful is each map?")
    methods = tuple(maps)
    asked = st.session_state.get("cam_faithfulness_on", False)
    if not asked:
        st.caption(
            f"Not computed yet: scoring blurs each map's most highlighted {FRACTION:.0%} of the image and a few "
            "random regions, and runs every blurred copy through the network (a batch of about a dozen images). "
            "Press the button to see the scores; they then follow your maps for the rest of the visit."
        )
    scores = background(
        score_queue(), "cam_faithfulness", (*key, target, layer, methods),
        lambda progress: cam.faithfulness(loaded, image, target, maps, fraction=FRACTION),
        label="Faithfulness scores", start_label=None if asked else "Score the maps' faithfulness", share=True,
    )
    if scores is not None:
        st.session_state["cam_faithfulness_on"] = True
        _score_table(scores)


# ------------------------------------------------------------------------------------------- page

def _page() -> None:
    """The page; its arrays are locals, gone when the run ends (Streamlit keeps the page's globals while the
    student's widgets live, through their functions)."""
    st.title("Class activation maps")
    st.markdown(
        "Why did the network say **this** class? A class activation map colours the parts of the image that raised "
        "the class's score. Several methods compute it differently: compare them side by side, and check which "
        "ones point at what the network really uses."
    )
    loaded = current_model()
    image = current_image()
    image_key = current_image_key()
    key = (loaded.name, loaded.pretrained, image_key)
    try:
        ranking = shared_ranking(loaded, image_key, image)
        top, side = st.columns([1, 2])
        with top:
            target = _pick_target(loaded, ranking, image_key)
        with side:
            layer = _pick_layer(loaded)
            methods = _pick_methods(loaded, layer)
        left, right = st.columns(2)
        opacity = left.slider("Opacity of the maps", 0.0, 1.0, 0.5, 0.05, key="cam_opacity")
        colormap = right.selectbox("Colormap", list(overlay.COLORMAPS), key="cam_colormap")
        if not methods:
            st.info("Pick at least one method to see its map.", icon=":material/tune:")
            st.stop()
        fast = tuple(m for m in methods if m not in HEAVY)
        heavy = _heavy_maps(loaded, image, key, target, layer, tuple(m for m in methods if m in HEAVY))

        def shown() -> dict[str, np.ndarray]:
            """The maps shown, in the chosen order (from the shared cache: what keeps this holds no arrays)."""
            computed = dict(cam_maps(loaded, image_key, image, target, layer, fast)) if fast else {}
            return {m: (computed | heavy)[m] for m in methods if m in computed or m in heavy}

        maps = shown()
        if maps:
            st.plotly_chart(
                figure(("cam_methods", *key, target, layer, tuple(maps), colormap, opacity),
                       lambda: fcam.methods_figure(image, maps, colormap=colormap, opacity=opacity, titles=cam.TITLES)),
                key="cam_methods_figure",
            )
            st.caption(
                f"Evidence for **{loaded.categories[target]}** at layer **{layer}**, each map scaled from 0 to 1. "
                "Hover for a pixel's value."
            )
            _faithfulness_section(loaded, image, key, target, layer, maps)
            _downloads(maps, shown, image, key, target, layer, colormap, opacity)
        _why_a_not_b(loaded, layer, methods, colormap, opacity)
        _sanity_section(loaded, image, image_key, target, layer, methods)
    except ValueError as exc:  # CAMError and bad input: the library's sentence, never a traceback
        st.error(f"{exc}", icon=":material/error:")


_page()
