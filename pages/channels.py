"""What a channel wants: the photo patches that excite it, a picture optimised for it, and the channels behind
the prediction."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui.jobs import background
from ui.layer_cache import ranking as shared_ranking
from ui.look_closer import class_picker
from ui.queues import heavy_queue
from ui.shared import current_image, current_image_key, current_model, switch_page, with_notices
from vizlib import activations, channels, featurevis, models
from vizlib.jobs import Progress

STEPS = (64, 128, 256)
SIZE = 128
TOP = 6
EXAMPLES = 6
#: Session-state key the Feature maps page reads to open a layer and channel.
GOTO_KEY = "fm_goto"


@st.cache_data(max_entries=16, show_spinner=False)
def _layers(model_name: str, pretrained: bool, _loaded) -> dict[str, int]:
    """Convolution name -> its number of channels, in execution order."""
    shapes = {row.name: row.output_shape for row in activations.layer_table(_loaded)}
    return {name: int(shapes[name][0]) for name in activations.conv_layers(_loaded)}


@st.cache_data(max_entries=16, show_spinner="Activations of your image…")
def _activation(model_name: str, pretrained: bool, image_key: str, layer: str, _loaded, _image) -> np.ndarray:
    return activations.extract(_loaded, _image, [layer])[layer].numpy()


@st.cache_data(max_entries=16, show_spinner="Ranking the channels by activation × gradient…")
def _ranked(model_name: str, pretrained: bool, image_key: str, target: int, _loaded, _image):
    return channels.rank_channels(_loaded, _image, target, k=TOP)


@st.cache_data(max_entries=16, show_spinner=False)
def _listed(model_name: str, pretrained: bool, layer: str, _loaded) -> str:
    """The layer the Feature maps page lists for ``layer`` (ResNet's ``layer4`` is a container it does not list)."""
    return channels.feature_maps_layer(_loaded, layer)


@st.cache_data(max_entries=64, show_spinner=False)
def _no_patches(model_name: str, pretrained: bool, input_size: tuple[int, int], layer: str, _loaded) -> str | None:
    """Why no photo patches can be shown for ``layer`` (one sentence), or ``None``: then the photo search is offered."""
    return channels.no_patches_reason(_loaded, layer)


def _goto_button(loaded: models.LoadedModel, layer: str, channel: int, key: str) -> None:
    if st.button("Open in Feature maps", key=key, icon=":material/layers:"):
        st.session_state[GOTO_KEY] = {"layer": _listed(loaded.name, loaded.pretrained, layer, loaded),
                                      "channel": int(channel)}
        switch_page("pages/feature_maps.py")


def _examples(loaded: models.LoadedModel, layer: str, channel: int, image: np.ndarray, k: int = EXAMPLES) -> None:
    examples = channels.dataset_examples(loaded, layer, channel, k=k, extra=("your image", image))
    st.image([e.patch for e in examples], caption=[f"{e.name} · {e.score:.3g}" for e in examples], width=96)


def _visualize_job(loaded: models.LoadedModel, layer: str, channel: int, steps: int):
    return lambda progress: featurevis.visualize_cached(loaded, layer, channel, size=SIZE, steps=steps,
                                                        progress=progress)


def _one_channel(loaded: models.LoadedModel, image: np.ndarray, image_key: str) -> None:
    st.subheader("One channel up close")
    layers = _layers(loaded.name, loaded.pretrained, loaded)
    names = list(layers)
    a, b, c = st.columns([2, 1, 1])
    layer = a.selectbox("Layer (type to search)", names, index=len(names) // 2, key=f"ch_layer::{loaded.name}",
                        format_func=lambda n: f"{n} · {layers[n]} channels")
    channel = int(b.number_input("Channel", 0, layers[layer] - 1, 0, key=f"ch_channel::{loaded.name}::{layer}"))
    steps = c.select_slider("Optimisation steps", STEPS, value=256, key="ch_steps")
    vis, photos, fires = st.columns([1, 2, 1])
    with vis:
        st.markdown("**Optimised picture**")
        picture = featurevis.cached(loaded, layer, channel, size=SIZE, steps=steps)
        if picture is None:
            key = (loaded.name, loaded.pretrained, layer, channel, steps)
            picture = background(featurevis.QUEUE, "featurevis", key, _visualize_job(loaded, layer, channel, steps),
                                 label=f"Picture for {layer} #{channel}", start_label="Optimise a picture", share=True)
        if picture is not None:
            st.image(picture, caption=f"{SIZE}×{SIZE} px, {steps} steps", width="stretch")
    with photos:
        st.markdown("**Photo patches that excite it most** (each cut to the unit's receptive field)")
        bank = channels.cached_bank(loaded, layer)
        reason = _no_patches(loaded.name, loaded.pretrained, loaded.input_size, layer, loaded)
        if reason is not None:
            st.info(reason, icon=":material/info:")
        elif bank is None:
            bank = background(heavy_queue(), "bank", (loaded.name, loaded.pretrained, layer),
                              lambda progress: channels.channel_bank(loaded, layer, progress=progress),
                              label=f"Photos through {layer}", start_label="Search the photos", share=True)
        if bank is not None:
            with_notices(_examples, loaded, layer, channel, image)
    with fires:
        st.markdown("**Where it fires on your image**")
        values = _activation(loaded.name, loaded.pretrained, image_key, layer, loaded, image)
        st.image(channels.where_it_fires(image, values[channel]), width="stretch")
        _goto_button(loaded, layer, channel, "ch_goto_one")


def _top_job(loaded: models.LoadedModel, layer: str, chosen: list[int], steps: int, photos: bool = True):
    """The optimised pictures of ``chosen`` and (``photos``) the photo search of ``layer``, as one job."""
    start = 0.2 if photos else 0.0

    def run(progress: Progress):
        if photos:
            channels.channel_bank(loaded, layer, progress=lambda f, m: progress(0.2 * f, f"photos: {m}"))
        for i, channel in enumerate(chosen):
            featurevis.visualize_cached(
                loaded, layer, channel, size=SIZE, steps=steps,
                progress=lambda f, m, i=i: progress(start + (1 - start) * (i + f) / len(chosen),
                                                    f"channel {i + 1}: {m}"),
            )
        return True

    return run


def _top_channels(loaded: models.LoadedModel, image: np.ndarray, image_key: str, ranking: models.Prediction) -> None:
    st.subheader("Which channels made this prediction?")
    target = class_picker(loaded, ranking, f"ch_target::{loaded.name}::{image_key}", "Class")
    layer, top = _ranked(loaded.name, loaded.pretrained, image_key, target, loaded, image)
    steps = st.session_state.get("ch_steps", 256)
    listed = _listed(loaded.name, loaded.pretrained, layer, loaded)
    st.caption(f"The channels of **{layer}** (the last block) ranked by activation × gradient of "
               f"**{loaded.categories[target]}**'s score: how much the score would fall without each."
               + ("" if listed == layer else f" Feature maps does not list the block itself: a channel opens there in "
                  f"**{listed}**, the nearest layer it lists with as many channels."))
    chosen = [c.channel for c in top]
    reason = _no_patches(loaded.name, loaded.pretrained, loaded.input_size, layer, loaded)
    if reason is not None:  # a global pooling (a small-input model's avgpool): pictures only, and why
        st.info(reason, icon=":material/info:")
    ready = all(featurevis.cached(loaded, layer, c, size=SIZE, steps=steps) is not None for c in chosen)
    ready = ready and (reason is not None or channels.cached_bank(loaded, layer) is not None)
    if not ready:
        background(featurevis.QUEUE, "top6", (loaded.name, loaded.pretrained, layer, tuple(chosen), steps),
                   _top_job(loaded, layer, chosen, steps, photos=reason is None),
                   label=f"Pictures of the top {TOP} channels",
                   start_label=f"Optimise pictures {'for' if reason else 'and find photos for'} these {TOP}",
                   share=True)
    for column, contribution in zip(st.columns(len(top)), top, strict=True):
        with column:
            st.markdown(f"**#{contribution.channel}** · {contribution.score:+.3g}")
            st.image(channels.where_it_fires(image, contribution.activation), caption="on your image",
                     width="stretch")
            picture = featurevis.cached(loaded, layer, contribution.channel, size=SIZE, steps=steps)
            if picture is not None:
                st.image(picture, caption="optimised", width="stretch")
            if channels.cached_bank(loaded, layer) is not None:
                examples = channels.dataset_examples(loaded, layer, contribution.channel, k=2,
                                                     extra=("your image", image))
                st.image([e.patch for e in examples], caption=[e.name for e in examples], width="stretch")
            _goto_button(loaded, layer, contribution.channel, f"ch_goto_{contribution.channel}")


st.title("What a channel wants")
st.markdown("A channel is one learned filter. Ask it what it wants in two ways: the photo patches that make it "
            "fire most, and a picture optimised from noise to make it fire (feature visualization).")
loaded = current_model()
image = current_image()
image_key = current_image_key()
try:
    ranking = shared_ranking(loaded, image_key, image)
    _top_channels(loaded, image, image_key, ranking)
    _one_channel(loaded, image, image_key)
except (ValueError, activations.ExtractionError) as exc:  # the library's sentence, never a traceback
    st.error(f"{exc}", icon=":material/error:")
