"""Channel rankings and statistics: which channels of a layer respond most, and how sparse each is.

Sparsity of a channel is the fraction of its values that are ``<= 0``: the values a ReLU applied to this
output sets to zero. For a ReLU or ReLU6 output that is exactly the fraction of zeros; for a convolution
or batch-norm output (before its activation) it is the fraction the following ReLU would zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vizlib.feature_maps.montage import FeatureMapError, _as_maps

__all__ = [
    "SORT_KEYS",
    "ChannelStats",
    "LayerSummary",
    "channel_scores",
    "channel_stats",
    "layer_summary",
    "rank_channels",
    "top_channels",
]

#: What "strongest" means when ranking channels: the spatial mean or the spatial maximum.
SORT_KEYS: tuple[str, ...] = ("mean", "max")


def channel_scores(values: object, by: str = "mean") -> np.ndarray:
    """Each channel's spatial mean or maximum, ``(C,)`` float64 (NaN counts as the lowest score).

    Raises:
        FeatureMapError: Unknown ``by`` or not a ``(C, h, w)`` array.
    """
    maps = _as_maps(values)
    if by not in SORT_KEYS:
        raise FeatureMapError(f"Unknown ranking {by!r}. Choose one of: {', '.join(SORT_KEYS)}.")
    flat = maps.reshape(maps.shape[0], -1)
    scores = flat.mean(axis=1, dtype=np.float64) if by == "mean" else flat.max(axis=1).astype(np.float64)
    return np.where(np.isnan(scores), -np.inf, scores)


def rank_channels(values: object, by: str = "mean", *, descending: bool = True) -> np.ndarray:
    """Channel numbers sorted by :func:`channel_scores`; ties keep the lower channel number first.

    Returns:
        ``(C,)`` int64 channel numbers.
    """
    scores = channel_scores(values, by)
    return np.argsort(-scores if descending else scores, kind="stable")


def top_channels(values: object, k: int, by: str = "mean") -> tuple[tuple[int, float], ...]:
    """The ``k`` strongest channels as ``(channel, score)`` pairs, strongest first.

    Raises:
        FeatureMapError: ``k`` below 1.
    """
    if k < 1:
        raise FeatureMapError(f"k must be at least 1, got {k}.")
    scores = channel_scores(values, by)
    order = np.argsort(-scores, kind="stable")[:k]
    return tuple((int(c), float(scores[c])) for c in order)


@dataclass(frozen=True, eq=False)
class ChannelStats:
    """One channel's summary and histogram.

    Attributes:
        channel: Channel number.
        mean, std, min, max: Over the channel's map.
        sparsity: Fraction of values ``<= 0`` (zeros after a ReLU; see the module docstring).
        counts: Histogram counts, ``(bins,)``.
        edges: Histogram bin edges, ``(bins + 1,)``.
    """

    channel: int
    mean: float
    std: float
    min: float
    max: float
    sparsity: float
    counts: np.ndarray
    edges: np.ndarray


def channel_stats(values: object, channel: int, *, bins: int = 40) -> ChannelStats:
    """Summary statistics, sparsity and histogram of one channel.

    Raises:
        FeatureMapError: Bad channel number or ``bins < 1``.
    """
    maps = _as_maps(values)
    if not 0 <= channel < maps.shape[0]:
        raise FeatureMapError(f"Channel {channel} does not exist; this layer has channels 0 to {maps.shape[0] - 1}.")
    if bins < 1:
        raise FeatureMapError(f"bins must be at least 1, got {bins}.")
    x = maps[channel].astype(np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise FeatureMapError(f"Channel {channel} holds no finite values.")
    counts, edges = np.histogram(x, bins=bins)
    return ChannelStats(
        channel=int(channel),
        mean=float(x.mean()),
        std=float(x.std()),
        min=float(x.min()),
        max=float(x.max()),
        sparsity=float(np.count_nonzero(x <= 0) / x.size),
        counts=counts,
        edges=edges,
    )


@dataclass(frozen=True, eq=False)
class LayerSummary:
    """Per-channel means, maxima and sparsities of a layer (``(C,)`` arrays), and its overall range."""

    mean: np.ndarray
    max: np.ndarray
    sparsity: np.ndarray
    low: float
    high: float

    @property
    def layer_sparsity(self) -> float:
        """Fraction of all the layer's values that are ``<= 0``."""
        return float(self.sparsity.mean())


def layer_summary(values: object) -> LayerSummary:
    """Per-channel mean, max and sparsity of a ``(C, h, w)`` layer, in one vectorised pass."""
    maps = _as_maps(values)
    flat = maps.reshape(maps.shape[0], -1)
    return LayerSummary(
        mean=flat.mean(axis=1, dtype=np.float64),
        max=flat.max(axis=1).astype(np.float64),
        sparsity=np.count_nonzero(flat <= 0, axis=1) / flat.shape[1],
        low=float(flat.min()),
        high=float(flat.max()),
    )
