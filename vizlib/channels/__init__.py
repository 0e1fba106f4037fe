"""What a channel wants: the photo patches that excite it most, and which channels made a prediction.

:mod:`~vizlib.channels.bundle` is the photo set, :mod:`~vizlib.channels.examples` the dataset examples cut to
receptive fields, :mod:`~vizlib.channels.ranking` the activation × gradient ranking. The optimised picture of a
channel is in :mod:`vizlib.featurevis`.
"""

from vizlib.channels.bundle import bundled_photos
from vizlib.channels.examples import (
    Bank,
    Example,
    cached_bank,
    channel_bank,
    dataset_examples,
    no_patches_reason,
    receptive_patch,
)
from vizlib.channels.ranking import (
    ChannelContribution,
    feature_maps_layer,
    last_block_module,
    rank_channels,
    where_it_fires,
)

__all__ = [
    "Bank",
    "ChannelContribution",
    "Example",
    "bundled_photos",
    "cached_bank",
    "channel_bank",
    "dataset_examples",
    "feature_maps_layer",
    "last_block_module",
    "no_patches_reason",
    "rank_channels",
    "receptive_patch",
    "where_it_fires",
]
