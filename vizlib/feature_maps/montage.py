"""Feature maps: every channel of a layer as one tiled image, channel rankings, statistics, a network overview.

Colour scale (documented, tested): a value ``x`` of a tile becomes the colour ``LUT[level]`` with
``level = floor(255 * (x - lo) / (hi - lo) + 0.5)`` clipped to 0..255, where ``LUT`` is a 256-entry
colour-blind-safe colormap (viridis or cividis). With the *shared* scale ``lo``/``hi`` are the minimum and
maximum of the whole layer (every channel, not just the tiles shown), so colours compare across channels;
with the *per-channel* scale they are each channel's own minimum and maximum, so every channel uses the
full range. A constant channel (``hi == lo``) is drawn at level 0.

Tiles are laid out row by row: tile ``i`` (row ``i // columns``, column ``i % columns``) shows the ``i``-th
channel of ``order`` (channel ``i`` by default), each map pixel repeated ``upscale`` times in both
directions, with ``gap`` white separator pixels between tiles (white is not in either colormap).

Sparsity of a channel is the fraction of its values that are ``<= 0``: the values a ReLU applied to this
output sets to zero. For a ReLU or ReLU6 output that is exactly the fraction of zeros; for a convolution
or batch-norm output (before its activation) it is the fraction the following ReLU would zero.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from vizlib.encoding import encode_indexed_png, encode_png

__all__ = [
    "COLORMAPS",
    "MAX_MONTAGE_WIDTH",
    "MIN_TILE",
    "SCALES",
    "SEPARATOR",
    "FeatureMapError",
    "Montage",
    "MontageLayout",
    "colormap_lut",
    "montage",
    "montage_layout",
    "tile_rgb",
]

#: Colour-blind-safe colormaps for the montage (the same names work as plotly colorscales).
COLORMAPS: tuple[str, ...] = ("viridis", "cividis")
#: ``"shared"``: one scale for the whole layer; ``"channel"``: each channel its own min..max.
SCALES: tuple[str, ...] = ("shared", "channel")
#: Widest montage the automatic layout makes (Streamlit shrinks images wider than 1460 px).
MAX_MONTAGE_WIDTH = 1400
#: Smallest tile side the automatic upscaling aims for, in pixels.
MIN_TILE = 24
#: Colour of the lines between tiles and of empty cells (in neither colormap).
SEPARATOR = np.array([255, 255, 255], dtype=np.uint8)
_CV_MAPS = {"viridis": cv2.COLORMAP_VIRIDIS, "cividis": cv2.COLORMAP_CIVIDIS}
_LUTS: dict[str, np.ndarray] = {}


class FeatureMapError(ValueError):
    """An activation, channel or option can't be used; the message says what to change."""


# ------------------------------------------------------------------------------------------- colours


def colormap_lut(name: str = "viridis") -> np.ndarray:
    """The 256-entry RGB lookup table of a colormap: ``(256, 3)`` uint8, read-only.

    Raises:
        FeatureMapError: Unknown colormap name.
    """
    if name not in _CV_MAPS:
        raise FeatureMapError(f"Unknown colormap {name!r}. Choose one of: {', '.join(COLORMAPS)}.")
    lut = _LUTS.get(name)
    if lut is None:
        ramp = np.arange(256, dtype=np.uint8)[:, None]
        lut = cv2.cvtColor(cv2.applyColorMap(ramp, _CV_MAPS[name]), cv2.COLOR_BGR2RGB).reshape(256, 3)
        lut.flags.writeable = False
        _LUTS[name] = lut
    return lut


def _levels(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``floor(255 * (x - lo) / (hi - lo) + 0.5)`` clipped to 0..255 as uint8; ``lo``/``hi`` broadcast per tile."""
    span = hi - lo
    gain = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0).astype(np.float32)
    scaled = (values - lo.astype(np.float32)) * gain
    scaled += 0.5
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return scaled.astype(np.uint8)


# ------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class MontageLayout:
    """Where each tile of a montage lies.

    Attributes:
        count: Number of tiles.
        rows: Rows of tiles.
        columns: Tiles per row.
        tile_height: Height of one tile in pixels (map height times ``upscale``).
        tile_width: Width of one tile in pixels.
        gap: Separator width between tiles, in pixels.
        upscale: How many pixels each map value takes in each direction.
    """

    count: int
    rows: int
    columns: int
    tile_height: int
    tile_width: int
    gap: int
    upscale: int

    @property
    def height(self) -> int:
        """Height of the montage image in pixels."""
        return self.rows * self.tile_height + (self.rows - 1) * self.gap

    @property
    def width(self) -> int:
        """Width of the montage image in pixels."""
        return self.columns * self.tile_width + (self.columns - 1) * self.gap

    def tile_box(self, index: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` pixel bounds (bottom/right exclusive) of tile ``index``."""
        if not 0 <= index < self.count:
            raise FeatureMapError(f"Tile {index} does not exist; the montage has {self.count} tiles.")
        row, col = divmod(index, self.columns)
        top = row * (self.tile_height + self.gap)
        left = col * (self.tile_width + self.gap)
        return top, left, top + self.tile_height, left + self.tile_width

    def tile_at(self, y: int, x: int) -> int | None:
        """The tile under pixel ``(y, x)``, or ``None`` on a separator or an empty cell."""
        row, dy = divmod(int(y), self.tile_height + self.gap)
        col, dx = divmod(int(x), self.tile_width + self.gap)
        index = row * self.columns + col
        if dy >= self.tile_height or dx >= self.tile_width or col >= self.columns or not 0 <= index < self.count:
            return None
        return index


def montage_layout(
    count: int,
    height: int,
    width: int,
    *,
    columns: int | None = None,
    upscale: int | None = None,
    gap: int = 1,
    max_width: int = MAX_MONTAGE_WIDTH,
) -> MontageLayout:
    """The layout of ``count`` maps of ``height x width`` in one image.

    Automatic choices: ``upscale`` makes tiles at least :data:`MIN_TILE` pixels (as long as one tile fits
    in ``max_width``); ``columns`` makes the montage roughly square, at most ``max_width`` pixels wide.

    Args:
        count: Number of tiles (at least 1).
        height: Map height.
        width: Map width.
        columns: Tiles per row, or ``None`` for automatic.
        upscale: Integer magnification of every map, or ``None`` for automatic.
        gap: Separator pixels between tiles.
        max_width: Widest image the automatic choices make.

    Returns:
        The layout.

    Raises:
        FeatureMapError: Non-positive sizes or options.
    """
    if count < 1 or height < 1 or width < 1:
        raise FeatureMapError(f"Nothing to tile: {count} maps of {height}x{width}.")
    if gap < 0 or (columns is not None and columns < 1) or (upscale is not None and upscale < 1):
        raise FeatureMapError("columns and upscale must be at least 1 and gap at least 0.")
    if upscale is None:
        upscale = max(1, math.ceil(MIN_TILE / max(height, width)))
        while upscale > 1 and width * upscale > max_width:
            upscale -= 1
    tile_h, tile_w = height * upscale, width * upscale
    if columns is None:
        columns = math.ceil(math.sqrt(count * tile_h / tile_w))
        columns = min(columns, max(1, (max_width + gap) // (tile_w + gap)))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    return MontageLayout(count, rows, columns, tile_h, tile_w, gap, upscale)


def tile_rgb(tiles: np.ndarray, layout: MontageLayout, fill: np.ndarray = SEPARATOR) -> np.ndarray:
    """Lay out ``(n, tile_height, tile_width, 3)`` uint8 tiles as one ``(H, W, 3)`` image (``fill`` between).

    Raises:
        FeatureMapError: The tiles don't match the layout.
    """
    n, th, tw = tiles.shape[:3]
    if (n, th, tw) != (layout.count, layout.tile_height, layout.tile_width) or tiles.shape[3:] != (3,):
        raise FeatureMapError(f"{tiles.shape} tiles don't fit a layout of {layout.count} tiles of {th}x{tw}.")
    rows, cols, gap = layout.rows, layout.columns, layout.gap
    canvas = np.empty((rows, th + gap, cols, tw + gap, 3), dtype=np.uint8)
    canvas[...] = fill
    cells = canvas[:, :th, :, :tw]  # (rows, th, cols, tw, 3) view
    full = n // cols
    if full:
        cells[:full] = tiles[: full * cols].reshape(full, cols, th, tw, 3).transpose(0, 2, 1, 3, 4)
    rest = n - full * cols
    if rest:
        cells[full, :, :rest] = tiles[full * cols :].transpose(1, 0, 2, 3)
    image = canvas.reshape(rows * (th + gap), cols * (tw + gap), 3)
    return np.ascontiguousarray(image[: layout.height, : layout.width])


def _colour_tiles(levels: np.ndarray, layout: MontageLayout, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tile ``(n, h, w)`` uint8 levels (each repeated ``upscale`` times), colour them, paint the separators.

    The levels are tiled first (one byte a pixel), then coloured by one table lookup in OpenCV, which is
    several times faster than numpy's fancy indexing of an RGB table.

    Returns:
        The RGB image, and the tiled levels (read-only, the grid uncropped: ``rows * (tile_height + gap)`` by
        ``columns * (tile_width + gap)``) from which :func:`_indexed` makes the palette form when it is asked for.
    """
    n, h, w = levels.shape
    u, gap, rows, cols = layout.upscale, layout.gap, layout.rows, layout.columns
    th, tw = layout.tile_height, layout.tile_width
    canvas = np.zeros((rows, th + gap, cols, tw + gap), dtype=np.uint8)
    cells = canvas[:, :th, :, :tw].reshape(rows, h, u, cols, w, u)  # a view: every tile pixel u x u times
    full, rest = divmod(n, cols)
    if full:
        cells[:full] = levels[: full * cols].reshape(full, cols, h, 1, w, 1).transpose(0, 2, 3, 1, 4, 5)
    if rest:
        cells[full, :, :, :rest] = levels[full * cols :].reshape(rest, h, 1, w, 1).transpose(1, 2, 0, 3, 4)
    flat = canvas.reshape(rows * (th + gap), cols * (tw + gap))
    rgb = cv2.applyColorMap(flat, np.ascontiguousarray(lut.reshape(256, 1, 3)))
    _paint_separators(rgb, layout, SEPARATOR, rest)
    flat.flags.writeable = False
    return np.ascontiguousarray(rgb[: layout.height, : layout.width]), flat


def _paint_separators(grid: np.ndarray, layout: MontageLayout, value: object, rest: int) -> None:
    """Paint ``value`` on the gaps and the empty cells of an uncropped tiled ``grid`` (RGB or one channel)."""
    rows, cols, th, tw, gap = layout.rows, layout.columns, layout.tile_height, layout.tile_width, layout.gap
    box = grid.reshape(rows, th + gap, cols, tw + gap, *grid.shape[2:])
    box[:, th:] = value
    box[:, :, :, tw:] = value
    if rest:
        box[rows - 1, :, rest:] = value


def _indexed(flat: np.ndarray, layout: MontageLayout, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The montage as (palette indices, palette) from its tiled levels (see :func:`_colour_tiles`), the same
    pixels as its RGB image; ``None`` when the colours don't fit a palette (see :func:`_palette`)."""
    table = _palette(lut.tobytes())
    if table is None:
        return None
    palette, index_of_level, separator = table
    indices = cv2.LUT(flat, index_of_level)
    _paint_separators(indices, layout, separator, layout.count % layout.columns)
    return np.ascontiguousarray(indices[: layout.height, : layout.width]), palette


@functools.lru_cache(maxsize=8)
def _palette(lut: bytes) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The colormap's (``(256, 3)`` uint8, as bytes) distinct colours and the separator's as one palette:
    (palette, each level's index, the separator's index); ``None`` if that makes more than 256 colours. (OpenCV's
    viridis has 254 distinct colours in its 256 levels, cividis 255: there is always room for the separator.)"""
    table = np.frombuffer(lut, dtype=np.uint8).reshape(256, 3)
    colours, index_of_level = np.unique(np.vstack([table, SEPARATOR[None]]), axis=0, return_inverse=True)
    if len(colours) > 256:
        return None
    index_of_level = index_of_level.reshape(-1).astype(np.uint8)
    colours.flags.writeable = False  # shared by every montage of this colormap
    levels = np.ascontiguousarray(index_of_level[:256])
    levels.flags.writeable = False
    return colours, levels, int(index_of_level[256])


# ------------------------------------------------------------------------------------------- montage


@dataclass(frozen=True, eq=False)
class Montage:
    """All (or some) channels of a layer as one RGB image.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        layout: Where each tile lies.
        channels: The channel shown in tile ``i``.
        lo: Value drawn at colour level 0, per tile.
        hi: Value drawn at colour level 255, per tile.
        scale: ``"shared"`` or ``"channel"``.
        colormap: The colormap's name.
        indexed: (a property, made on first use) The same picture as (``(H, W)`` uint8 indices, ``(K, 3)``
            palette): the colormap's distinct colours and the separators' white; ``None`` when they are more
            than 256, or when the montage was made without its tiled levels.
    """

    image: np.ndarray
    layout: MontageLayout
    channels: tuple[int, ...]
    lo: np.ndarray
    hi: np.ndarray
    scale: str
    colormap: str
    #: The tiled colour levels and the colour table, kept to make :attr:`indexed` only when it is asked for
    #: (the network overview never asks: it pastes :attr:`image`).
    _levels: np.ndarray | None = field(default=None, repr=False)
    _lut: np.ndarray | None = field(default=None, repr=False)

    @functools.cached_property
    def indexed(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The same picture as (``(H, W)`` uint8 indices, ``(K, 3)`` palette), or ``None`` (see the class)."""
        if self._levels is None or self._lut is None:
            return None
        return _indexed(self._levels, self.layout, self._lut)

    def png(self) -> bytes:
        """The montage as PNG bytes, the same pixels as :attr:`image`: a palette PNG where the picture has at most
        256 colours (a third of the bytes, about three times faster), an RGB PNG otherwise."""
        indexed = self.indexed
        if indexed is not None:
            return encode_indexed_png(*indexed)
        return encode_png(self.image, filters=False)


def _as_maps(values: object) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise FeatureMapError(
            f"Expected a layer's activations as a (channels, height, width) array, got shape {arr.shape}. "
            "Pick a layer with a spatial output."
        )
    return arr


def _check_order(order: Sequence[int] | np.ndarray | None, channels: int) -> np.ndarray:
    if order is None:
        return np.arange(channels)
    idx = np.asarray(order, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise FeatureMapError("No channels chosen to show.")
    if idx.min() < 0 or idx.max() >= channels:
        raise FeatureMapError(f"Channel numbers must be between 0 and {channels - 1}.")
    return idx


def montage(
    values: object,
    *,
    order: Sequence[int] | np.ndarray | None = None,
    scale: str = "shared",
    colormap: str = "viridis",
    columns: int | None = None,
    upscale: int | None = None,
    gap: int = 1,
    max_width: int = MAX_MONTAGE_WIDTH,
) -> Montage:
    """Every channel of a layer (or the channels in ``order``) as one tiled RGB image.

    Vectorised: one normalisation, one table lookup and one reshape for the whole layer.

    Args:
        values: ``(C, h, w)`` activations (numpy array or CPU tensor).
        order: Channels to show, tile by tile; default all channels in order (tile ``i`` is channel ``i``).
        scale: ``"shared"`` (the whole layer's min..max) or ``"channel"`` (each channel's own min..max).
        colormap: One of :data:`COLORMAPS`.
        columns: Tiles per row; automatic by default (see :func:`montage_layout`).
        upscale: Pixels per map value in each direction; automatic by default.
        gap: Separator pixels between tiles.
        max_width: Widest image the automatic layout makes.

    Returns:
        The montage.

    Raises:
        FeatureMapError: Not a ``(C, h, w)`` array, bad channel numbers, unknown scale or colormap.
    """
    maps = _as_maps(values)
    if scale not in SCALES:
        raise FeatureMapError(f"Unknown scale {scale!r}. Choose one of: {', '.join(SCALES)}.")
    lut = colormap_lut(colormap)
    idx = _check_order(order, maps.shape[0])
    if not np.isfinite(maps).all():  # NaN and infinities are drawn as zero
        maps = np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
    shown = maps if order is None else maps[idx]
    if scale == "shared":
        lo = np.full(len(idx), maps.min(), dtype=np.float64)
        hi = np.full(len(idx), maps.max(), dtype=np.float64)
    else:
        flat = shown.reshape(len(idx), -1)
        lo, hi = flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)
    levels = _levels(shown, lo[:, None, None], hi[:, None, None])
    layout = montage_layout(
        len(idx), maps.shape[1], maps.shape[2], columns=columns, upscale=upscale, gap=gap, max_width=max_width
    )
    image, tiled = _colour_tiles(levels, layout, lut)
    return Montage(image, layout, tuple(int(i) for i in idx), lo, hi, scale, colormap, tiled, lut)


# ------------------------------------------------------------------------------------------- ranking


# ------------------------------------------------------------------------------------------- statistics


# ------------------------------------------------------------------------------------------- the layers


# ------------------------------------------------------------------------------------------- overview


# ------------------------------------------------------------------------------------------- downloads


