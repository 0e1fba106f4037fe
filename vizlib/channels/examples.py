"""Dataset examples: the image patches, among a set of photos, where one channel fires the most.

Each photo goes through the network whole (resized to its input, as everywhere in the app). For every
channel of the layer, the strongest unit of each photo is kept; a channel's examples are the photos whose
strongest unit is strongest, each cut to exactly that unit's theoretical receptive field
(:mod:`vizlib.receptive_field`), grey where the field reaches past the picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vizlib import receptive_field as rf
from vizlib.activations import run_extractor
from vizlib.caching import LRUCache
from vizlib.channels.bundle import Photo, bundled_photos
from vizlib.models import LoadedModel

__all__ = [
    "BANK_BATCH",
    "Bank",
    "Example",
    "cached_bank",
    "channel_bank",
    "dataset_examples",
    "no_patches_reason",
    "receptive_patch",
]

#: Photos per forward pass while building a bank.
BANK_BATCH = 8
_GREY = 128
_BANKS = 8

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Bank:
    """For each photo and channel of one layer, the strongest unit.

    Attributes:
        layer: The module name.
        names: The photos' names.
        peak: ``photos x channels`` largest activation.
        where: ``photos x channels x 2`` its unit ``(row, col)``.
    """

    layer: str
    names: tuple[str, ...]
    peak: np.ndarray
    where: np.ndarray


@dataclass(frozen=True)
class Example:
    """One dataset example.

    Attributes:
        name: The photo it comes from.
        score: The unit's activation.
        unit: ``(row, col)`` of the unit in the layer's map.
        box: Its receptive field in the network's picture, ``((top, bottom), (left, right))`` inclusive.
        patch: The picture cut to ``box`` (``size x size x 3`` uint8; grey outside the picture).
    """

    name: str
    score: float
    unit: tuple[int, int]
    box: rf.Box
    patch: np.ndarray


def receptive_patch(picture: np.ndarray, field: rf.ReceptiveField, row: int, col: int) -> np.ndarray:
    """The pixels of ``picture`` (the network's input) unit ``(row, col)`` sees, exactly its receptive field's
    size; places the field reaches past the picture are mid grey."""
    (top, bottom), (left, right) = field.box(row, col)
    out = np.full((bottom - top + 1, right - left + 1, 3), _GREY, np.uint8)
    h, w = picture.shape[:2]
    t, b, lft, r = max(top, 0), min(bottom, h - 1), max(left, 0), min(right, w - 1)
    if b >= t and r >= lft:
        out[t - top : b - top + 1, lft - left : r - left + 1] = picture[t : b + 1, lft : r + 1]
    return out


def _peaks(output: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image and channel: the largest value and its ``(row, col)``."""
    values = output.detach().float().cpu()
    n, c, h, w = values.shape
    peak, index = values.reshape(n, c, h * w).max(dim=2)
    where = torch.stack([index // w, index % w], dim=2)
    return peak.numpy(), where.numpy()


def _field(loaded: LoadedModel, layer: str) -> rf.ReceptiveField:
    field = rf.receptive_field(loaded, layer, loaded.input_size)
    if field.is_global:
        raise rf.UnsupportedLayerError(f"{layer} pools the whole image: its units have no place to cut a patch from.")
    return field


def no_patches_reason(loaded: LoadedModel, layer: str) -> str | None:
    """Why no photo patches can be cut for the units of ``layer`` (one sentence), or ``None`` when they can.

    A layer whose units see the whole image (a global pooling: the last block of a small-input model of your own
    may be its ``avgpool``) or whose receptive field can't be traced has no patch to show: :func:`channel_bank` and
    :func:`dataset_examples` would raise this sentence after a search of every photo.
    """
    try:
        _field(loaded, layer)
    except rf.ReceptiveFieldError as exc:
        return str(exc)
    return None


def _banks(loaded: LoadedModel) -> LRUCache[str, Bank]:
    return loaded.cache.setdefault("channel_banks", LRUCache(_BANKS))


def cached_bank(loaded: LoadedModel, layer: str) -> Bank | None:
    """The bundled photos' bank of ``layer`` if it was computed already, else ``None``."""
    return _banks(loaded).get(layer)


def channel_bank(
    loaded: LoadedModel, layer: str, photos: Sequence[Photo] | None = None, *, progress: ProgressFn | None = None
) -> Bank:
    """The strongest unit of every channel of ``layer`` in every photo, in batched forward passes.

    The bank of the bundled photos (``photos=None``) is cached per model and layer.

    Raises:
        vizlib.receptive_field.ReceptiveFieldError: The layer has no spatial receptive field (global, untraceable).
    """
    _field(loaded, layer)
    if photos is None:
        cache = _banks(loaded)
        bank = cache.get(layer)
        if bank is None:
            bank = cache.put(layer, channel_bank(loaded, layer, bundled_photos(), progress=progress))
        return bank
    peaks, wheres = [], []
    for start in range(0, len(photos), BANK_BATCH):
        chunk = photos[start : start + BANK_BATCH]
        batch = torch.cat([loaded.preprocess(picture) for _, picture in chunk])
        peak, where = _peaks(run_extractor(loaded, batch, [layer])[layer])
        peaks.append(peak)
        wheres.append(where)
        if progress is not None:
            done = start + len(chunk)
            progress(done / len(photos), f"{done} of {len(photos)} photos")
    return Bank(layer, tuple(name for name, _ in photos), np.concatenate(peaks), np.concatenate(wheres))


def dataset_examples(
    loaded: LoadedModel,
    layer: str,
    channel: int,
    *,
    k: int = 6,
    extra: Photo | None = None,
    progress: ProgressFn | None = None,
) -> list[Example]:
    """The ``k`` photos (the bundled set, plus ``extra`` such as the student's image) where ``channel`` of
    ``layer`` fires most, each with the patch its strongest unit sees, strongest first.

    Raises:
        ValueError: The channel is out of range.
        vizlib.receptive_field.ReceptiveFieldError: The layer has no spatial receptive field.
    """
    bank = channel_bank(loaded, layer, progress=progress)
    photos = list(bundled_photos())
    peak, where = bank.peak, bank.where
    if extra is not None:
        more = channel_bank(loaded, layer, [extra])
        photos.append(extra)
        peak, where = np.concatenate([peak, more.peak]), np.concatenate([where, more.where])
    if not 0 <= int(channel) < peak.shape[1]:
        raise ValueError(f"{layer} has channels 0 to {peak.shape[1] - 1}, not {channel}.")
    field = _field(loaded, layer)
    order = np.argsort(-peak[:, channel], kind="stable")[:k]
    examples = []
    for i in order:
        row, col = (int(v) for v in where[i, channel])
        picture = loaded.resize(photos[i][1])
        examples.append(
            Example(photos[i][0], float(peak[i, channel]), (row, col), field.box(row, col),
                    receptive_patch(picture, field, row, col))
        )
    return examples
