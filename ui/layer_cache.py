"""Results several pages need, computed once and cached for all sessions.

* Every layer's activations for a (model, image): one forward pass shared by the feature-map,
  learned-filter and receptive-field pages.
* Every class of a (model, image), most probable first: one forward pass shared by the home page's top-5
  and the class-activation-map page's target picker.
* A model's receptive fields, from its architecture alone: shared by the feature-map and receptive-field pages.
* The class activation maps of a (model, image, class, layer, methods): one forward and backward pass, shared by
  the CAM page's figure, its "why A and not B" and every session on the same picture, without a copy per rerun.
* Every class's label with its probability, per (model, image): the CAM page's class pickers list them all.
* Figures by what they show (:func:`figure`): built once, then reused by every rerun and every session that
  shows the same thing (a page's rerun after a job finishes, a classmate on the same sample photo).

Every cached value is immutable (read-only arrays, frozen dataclasses, read-only mappings), so sessions can
share it safely.

The activations a page gets are held strongly only by the cache and by the script thread of the run that asked
for them (:func:`layer_activations`). Streamlit keeps every widget's metadata for the whole session, and with it
the functions a page defined (``format_func``), whose globals are that page run's: a page's ``acts`` would
otherwise stay alive for as long as the student's tab is open, about 70 MB per student for EfficientNet-Lite0,
long after the cache has let the entry go (benchmarks/bench_memory.py, BENCHMARKS.md, issue 15).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from types import MappingProxyType

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.shared import with_notices
from vizlib import cam, feature_maps, models
from vizlib import receptive_field as R
from vizlib.caching import LRUCache
from vizlib.figures.common import freeze

#: (model, image) pairs kept; one costs from about 25 MB (ResNet-18) to 110 MB (VGG-16).
MAX_ENTRIES = 8


@st.cache_resource(max_entries=MAX_ENTRIES, ttl=3600, show_spinner="Running the network once for every layer…")
def _compute(model_name: str, pretrained: bool, image_key: str, _loaded, _image) -> feature_maps.LayerActivations:
    return feature_maps.compute_activations(_loaded, _image)


#: Activations each script thread holds for its run (a session's thread ends when its reruns are done).
HELD_PER_THREAD = 2
_RUN = threading.local()


def _hold(key: tuple, acts: feature_maps.LayerActivations) -> None:
    held: OrderedDict = _RUN.__dict__.setdefault("held", OrderedDict())
    held[key] = acts
    held.move_to_end(key)
    while len(held) > HELD_PER_THREAD:
        held.popitem(last=False)


class _RunScopedMaps(Mapping[str, np.ndarray]):
    """The cached activations' maps through a weak reference; fetched from the cache again if it let them go."""

    def __init__(self, acts: feature_maps.LayerActivations, fetch: Callable[[], feature_maps.LayerActivations]):
        self._ref = weakref.ref(acts)
        self._fetch = fetch

    def _maps(self) -> Mapping[str, np.ndarray]:
        acts = self._ref()
        if acts is None:  # the run that asked for them is over and the cache evicted them
            acts = self._fetch()
            self._ref = weakref.ref(acts)
        return acts.maps

    def __getitem__(self, name: str) -> np.ndarray:
        return self._maps()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._maps())

    def __len__(self) -> int:
        return len(self._maps())


def layer_activations(loaded: models.LoadedModel, image_key: str, image) -> feature_maps.LayerActivations:
    """The activations of every spatial layer of ``loaded`` on ``image`` (computed once per pair).

    What the page gets holds the arrays only through the cache and the calling thread (its run): a page may keep
    it in its globals without keeping 70 MB alive for the rest of the session.
    """
    key = (loaded.name, loaded.pretrained, image_key)

    def fetch() -> feature_maps.LayerActivations:
        acts = with_notices(_compute, *key, loaded, image)
        _hold(key, acts)
        return acts

    acts = fetch()
    return feature_maps.LayerActivations(acts.model_name, acts.layers, _RunScopedMaps(acts, fetch))


@st.cache_resource(max_entries=64, show_spinner=False)
def _ranking(model_name: str, pretrained: bool, image_key: str, _loaded, _image) -> models.Prediction:
    return models.classify(_loaded, _image, len(_loaded.categories))


def ranking(loaded: models.LoadedModel, image_key: str, image) -> models.Prediction:
    """Every class of ``loaded`` on ``image``, most probable first (one forward pass per pair)."""
    return with_notices(_ranking, loaded.name, loaded.pretrained, image_key, loaded, image)


#: Sets of class activation maps kept; one holds a map per method at the image's size (4 methods on a 1024 x 768
#: photo: 12.6 MB).
CAM_ENTRIES = 16


@st.cache_resource(max_entries=CAM_ENTRIES, show_spinner="Computing the class activation maps…")
def _cam_maps(
    model_name: str, pretrained: bool, image_key: str, target: int, layer: str, methods: tuple[str, ...], _loaded,
    _image,
) -> Mapping[str, np.ndarray]:
    maps = cam.compute(_loaded, _image, target, methods, layer)
    for values in maps.values():
        values.flags.writeable = False  # shared by every session: read-only
    return MappingProxyType(dict(maps))


def cam_maps(
    loaded: models.LoadedModel, image_key: str, image, target: int, layer: str, methods: tuple[str, ...]
) -> Mapping[str, np.ndarray]:
    """:func:`vizlib.cam.compute` for ``methods``, once per (model, image, class, layer, methods) for every session.

    Unlike ``st.cache_data``, which pickles the maps in and hands every rerun its own copy (tens of MB for a large
    photo), the maps are kept once, read-only.

    Raises:
        ValueError: As :func:`vizlib.cam.compute` (not cached: tried again next time).
    """
    return with_notices(_cam_maps, loaded.name, loaded.pretrained, image_key, target, layer, tuple(methods), loaded,
                        image)


@st.cache_resource(max_entries=32, show_spinner=False)
def _fields(model_name: str, every_layer: bool, input_size: tuple[int, int] | None) -> Mapping[str, R.ReceptiveField]:
    return MappingProxyType(R.architecture_fields(model_name, input_size, every_layer=every_layer))


def architecture_fields(
    model_name: str, every_layer: bool = False, input_size: tuple[int, int] | None = None
) -> Mapping[str, R.ReceptiveField]:
    """:func:`vizlib.receptive_field.architecture_fields` of a model, once per process (no weights needed).

    Raises:
        vizlib.receptive_field.ReceptiveFieldError: As the library function (not cached: tried again next time).
    """
    return _fields(model_name, every_layer, input_size)  # one call form: one cache key however it is called


def fields_of(loaded: models.LoadedModel, every_layer: bool = False) -> Mapping[str, R.ReceptiveField]:
    """:func:`architecture_fields` of a loaded model: by its architecture and input size (a user's model too)."""
    spec = loaded.spec
    registry = models.get_spec(spec.name)
    size = None if spec.input_size == registry.input_size else spec.input_size
    return architecture_fields(spec.name, every_layer, size)


#: Class-label lists kept (one per model and image; ImageNet's 1,000 labels take about 90 KB).
CLASS_LABELS = 32
_CLASS_LABELS: LRUCache = LRUCache(CLASS_LABELS)


def class_labels(loaded: models.LoadedModel, image_key: str, build: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
    """Every class's label of ``loaded`` for the image ``image_key``, built once by ``build`` for every session.

    A class picker lists all of a model's classes on every run; the labels carry the image's probabilities, so
    they are kept per (model, image), in a cache of their own (apart from the figures').
    """
    return _CLASS_LABELS.get_or_create((loaded.name, loaded.pretrained, image_key), build)


#: Figures kept (each from about 20 KB to 1 MB: a photo as PNG plus a map or two).
FIGURES = 96
_FIGURES: LRUCache = LRUCache(FIGURES)


def figure(key: Hashable, build: Callable[[], object]) -> object:
    """The figure for ``key`` (everything it shows: model, image key, layer, options), built once by ``build``.

    The figure is shared read-only: pages pass it to ``st.plotly_chart``. A plotly figure is frozen
    (:func:`vizlib.figures.common.freeze`): the dict ``st.plotly_chart`` serializes is made once, not on every run.
    Anything else ``build`` returns (PNG bytes) is kept as it is.
    """
    def built() -> object:
        value = build()
        return freeze(value) if isinstance(value, go.Figure) else value

    return _FIGURES.get_or_create(key, built)


def clear() -> None:
    """Forget every cached result (tests use it to count forward passes and architecture builds)."""
    _FIGURES.clear()
    _CLASS_LABELS.clear()
    _compute.clear()
    _ranking.clear()
    _cam_maps.clear()
    _fields.clear()
