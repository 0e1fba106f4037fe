"""Feature maps, the feature-maps lesson: every channel of a layer as one tiled image, channel rankings,
statistics, a network overview.

Modules: :mod:`~vizlib.feature_maps.montage` (colours, layout, the tiled image), :mod:`~vizlib.feature_maps.ranking`
(strongest channels, statistics), :mod:`~vizlib.feature_maps.overview` (one forward pass, the layer table, the
network overview), :mod:`~vizlib.feature_maps.glance` (the network overview drawn as one picture).
The PNG/NPY encoders live in :mod:`vizlib.encoding` and are re-exported here.
Figures: :mod:`vizlib.figures.feature_maps`.
"""

from __future__ import annotations

from vizlib.encoding import encode_npy, encode_png
from vizlib.feature_maps.glance import OVERVIEW_TILE, GlanceRow, OverviewPicture, overview_picture
from vizlib.feature_maps.montage import (
    COLORMAPS,
    MAX_MONTAGE_WIDTH,
    MIN_TILE,
    SCALES,
    SEPARATOR,
    FeatureMapError,
    Montage,
    MontageLayout,
    colormap_lut,
    montage,
    montage_layout,
    tile_rgb,
)
from vizlib.feature_maps.overview import (
    LayerActivations,
    OverviewRow,
    compute_activations,
    default_layer,
    layer_rows,
    layers_by_stage,
    network_overview,
)
from vizlib.feature_maps.ranking import (
    SORT_KEYS,
    ChannelStats,
    LayerSummary,
    channel_scores,
    channel_stats,
    layer_summary,
    rank_channels,
    top_channels,
)

__all__ = [
    "COLORMAPS",
    "MAX_MONTAGE_WIDTH",
    "MIN_TILE",
    "OVERVIEW_TILE",
    "SCALES",
    "SEPARATOR",
    "SORT_KEYS",
    "ChannelStats",
    "FeatureMapError",
    "GlanceRow",
    "LayerActivations",
    "LayerSummary",
    "Montage",
    "MontageLayout",
    "OverviewPicture",
    "OverviewRow",
    "channel_scores",
    "channel_stats",
    "colormap_lut",
    "compute_activations",
    "encode_npy",
    "encode_png",
    "default_layer",
    "layer_rows",
    "layer_summary",
    "layers_by_stage",
    "montage",
    "montage_layout",
    "network_overview",
    "overview_picture",
    "rank_channels",
    "tile_rgb",
    "top_channels",
]
