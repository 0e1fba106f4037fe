"""The layers of a network for the feature-maps lesson: one forward pass, the layer table and the network overview."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from vizlib import activations
from vizlib.activations import LayerInfo
from vizlib.feature_maps.montage import FeatureMapError, _as_maps
from vizlib.feature_maps.ranking import top_channels
from vizlib.models import LoadedModel

if TYPE_CHECKING:
    from vizlib.receptive_field import ReceptiveField

__all__ = [
    "LayerActivations",
    "OverviewRow",
    "compute_activations",
    "default_layer",
    "layer_rows",
    "layers_by_stage",
    "network_overview",
]

_ACTIVATION_TYPES = ("ReLU", "ReLU6", "LeakyReLU", "SiLU", "Hardswish", "GELU", "ELU", "Mish", "Swish")


@dataclass(frozen=True, eq=False)
class LayerActivations:
    """Every spatial layer's activations for one (model, image), computed in one forward pass.

    Attributes:
        model_name: The model's registry name.
        layers: The rows of the layer table with a ``(C, h, w)`` output, in execution order.
        maps: ``{layer name: (C, h, w) float32 array}``, read-only.
    """

    model_name: str
    layers: tuple[LayerInfo, ...]
    maps: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.maps[name]
        except KeyError:
            raise FeatureMapError(f"No activations for {name!r}; pick a layer from the layer table.") from None

    def info(self, name: str) -> LayerInfo:
        """The layer-table row of ``name``."""
        for row in self.layers:
            if row.name == name:
                return row
        raise FeatureMapError(f"No layer named {name!r} with a spatial output.")

    @property
    def nbytes(self) -> int:
        """Memory held by the activations."""
        return sum(a.nbytes for a in self.maps.values())


def _spatial(table: Sequence[LayerInfo]) -> list[LayerInfo]:
    return [row for row in table if len(row.output_shape) == 3]


def compute_activations(loaded: LoadedModel, image: np.ndarray) -> LayerActivations:
    """The activations of every layer of the layer table that has a ``(C, h, w)`` output.

    One call of :func:`vizlib.activations.extract`: one forward pass.

    Args:
        loaded: A model from :func:`vizlib.models.load_model`.
        image: HxWx3 uint8 RGB.

    Returns:
        The activations, read-only float32 numpy arrays.

    Raises:
        vizlib.activations.ExtractionError: The model can't be traced.
    """
    rows = tuple(_spatial(activations.layer_table(loaded)))
    tensors = activations.extract(loaded, image, [row.name for row in rows])
    maps = {}
    for name, tensor in tensors.items():
        arr = tensor.numpy()
        arr.flags.writeable = False
        maps[name] = arr
    return LayerActivations(loaded.name, rows, MappingProxyType(maps))


def layers_by_stage(table: Sequence[LayerInfo]) -> dict[str, list[LayerInfo]]:
    """The layers with a ``(C, h, w)`` output, grouped by stage, stages and layers in execution order."""
    groups: dict[str, list[LayerInfo]] = {}
    for row in _spatial(table):
        groups.setdefault(row.stage, []).append(row)
    return groups


def default_layer(table: Sequence[LayerInfo]) -> str:
    """The layer the feature-map page opens on: the first activation (ReLU-like) with a spatial output.

    Raises:
        FeatureMapError: No layer has a spatial output.
    """
    spatial = _spatial(table)
    if not spatial:
        raise FeatureMapError("This model has no layer with a (channels, height, width) output.")
    for row in spatial:
        if row.type in _ACTIVATION_TYPES and row.output_shape[1] * row.output_shape[2] > 1:
            return row.name
    return spatial[0].name


def _shape_text(shape: Sequence[int]) -> str:
    return " × ".join(str(s) for s in shape)


def _field_text(rf: ReceptiveField | None) -> str | None:
    if rf is None:
        return None
    if rf.is_global:
        return "whole image"
    size, stride = (v if isinstance(v, int) else f"{v[0]}×{v[1]}" for v in (rf.size, rf.stride))
    return f"{size} px, stride {stride}"


def layer_rows(
    table: Sequence[LayerInfo], receptive_fields: Mapping[str, ReceptiveField] | None = None
) -> list[dict[str, object]]:
    """The layer table as display rows, one dict per layer: the one place that decides the columns.

    Columns: ``Layer``, ``Stage``, ``Type``, ``Output shape`` (e.g. ``"32 × 112 × 112"``), ``Parameters``,
    and with ``receptive_fields`` also ``Receptive field`` (e.g. ``"35 px, stride 8"``, ``"7×1 px, stride 1"``
    where height and width differ, ``"whole image"`` for global units, None for a layer without an entry).
    Add a column here and every page showing the table gets it.

    Args:
        table: The layer table.
        receptive_fields: ``{layer: ReceptiveField}``, e.g. from
            ``vizlib.receptive_field.receptive_fields(model, every_layer=True)``.
    """
    rows: list[dict[str, object]] = []
    for row in table:
        shown: dict[str, object] = {
            "Layer": row.name,
            "Stage": row.stage,
            "Type": row.type,
            "Output shape": _shape_text(row.output_shape),
            "Parameters": int(row.params),
        }
        if receptive_fields is not None:
            shown["Receptive field"] = _field_text(receptive_fields.get(row.name))
        rows.append(shown)
    return rows


@dataclass(frozen=True, eq=False)
class OverviewRow:
    """One stage of the network with its strongest channels on the current image.

    Attributes:
        stage: The stage's name (from the layer table; a flat stack is split after each downsampling pool).
        layer: The layer shown: the stage's last activation (ReLU-like) layer with a spatial output, or its
            last spatial layer when it has none.
        output_shape: That layer's ``(C, h, w)``.
        channels: The ``k`` strongest channels, strongest first.
        scores: Their scores (spatial mean or max, as ranked).
        maps: Their maps, ``(k, h, w)`` float32.
    """

    stage: str
    layer: str
    output_shape: tuple[int, ...]
    channels: tuple[int, ...]
    scores: tuple[float, ...]
    maps: np.ndarray


def _overview_groups(table: Sequence[LayerInfo]) -> list[tuple[str, LayerInfo]]:
    """``(stage label, representative layer)`` for each stage, input side first.

    The representative is the stage's last activation layer (ReLU-like) with a spatial (h*w > 1) output, the
    maps the next layers read; a stage without one (activations called as functions, as in GoogLeNet) shows
    its last spatial layer. A stage that downsamples with a pooling layer before its end (VGG's and AlexNet's
    ``features``) is split after each such pool, so every resolution gets a row.
    """
    groups: list[tuple[str, LayerInfo]] = []
    last: LayerInfo | None = None  # the group's last spatial layer
    act: LayerInfo | None = None  # the group's last activation layer
    stage, part, previous = None, 1, None

    def close() -> None:
        if last is not None:
            groups.append((_label(stage, part), act or last))

    for row in _spatial(table):
        if row.output_shape[1] * row.output_shape[2] <= 1:
            continue
        if row.stage != stage:
            close()
            stage, part, last, act = row.stage, 1, None, None
        last = row
        if row.type in _ACTIVATION_TYPES:
            act = row
        pools = "Pool" in row.type and "Adaptive" not in row.type
        if pools and previous is not None and row.output_shape[1] < previous.output_shape[1]:
            close()
            part, last, act = part + 1, None, None
        previous = row
    close()
    return groups


def _label(stage: str | None, part: int) -> str:
    return f"{stage}" if part == 1 else f"{stage} ({part})"


def network_overview(
    layers: LayerActivations | Mapping[str, np.ndarray],
    table: Sequence[LayerInfo] | None = None,
    *,
    k: int = 8,
    by: str = "mean",
) -> tuple[OverviewRow, ...]:
    """One row per stage with its ``k`` strongest channels on the current image.

    Criterion: a stage's row shows its last activation layer with a spatial output (else its last spatial
    layer; see :class:`OverviewRow`); "strongest" ranks that layer's channels by their spatial mean
    (``by="mean"``: channels that respond across the image) or their maximum (``by="max"``: the single
    strongest response), as :func:`rank_channels` does.

    Args:
        layers: :class:`LayerActivations`, or ``{layer: (C, h, w)}`` together with ``table``.
        table: The layer table; taken from ``layers`` when it is :class:`LayerActivations`.
        k: Channels per row (fewer when a layer has fewer channels).
        by: One of :data:`SORT_KEYS`.

    Returns:
        The rows, input side first.

    Raises:
        FeatureMapError: ``k < 1``, or no table given with a plain mapping.
    """
    if isinstance(layers, LayerActivations):
        table, maps = layers.layers, layers.maps
    else:
        maps = layers
        if table is None:
            raise FeatureMapError("Give the layer table along with a plain mapping of activations.")
    if k < 1:
        raise FeatureMapError(f"k must be at least 1, got {k}.")
    rows = []
    for label, info in _overview_groups([row for row in table if row.name in maps]):
        values = _as_maps(maps[info.name])
        top = top_channels(values, min(k, values.shape[0]), by)
        channels = tuple(c for c, _ in top)
        rows.append(
            OverviewRow(
                stage=label,
                layer=info.name,
                output_shape=tuple(values.shape),
                channels=channels,
                scores=tuple(s for _, s in top),
                maps=values[list(channels)].copy(),
            )
        )
    return tuple(rows)
