"""The network at a glance as one picture: per stage a title line, its strongest channels as tiles, their numbers.

One RGB image instead of a figure with a subplot per stage: the server encodes one PNG once, and the
browser draws one ``<img>`` instead of laying out twenty-odd plotly subplots.

Layout, top to bottom, for each row of :func:`vizlib.feature_maps.network_overview` (input side first)::

    title line   "stage · layer · C × H × W"               TITLE_HEIGHT pixels
    tiles        the row's maps, each on its own scale      the row's tile height
    labels       "#c" centred under each tile               LABEL_HEIGHT pixels
    (gap)                                                   ROW_GAP pixels, not after the last row

with :data:`MARGIN` white pixels around everything. A tile shows its map sampled to about ``tile`` pixels a side:
every ``stride``-th value of a large map (``stride = max(1, side // tile)``), each value of a small map repeated
``upscale = max(1, tile // side)`` times, with :data:`TILE_GAP` white pixels between tiles; its colours follow the
montage's per-channel scale (:mod:`vizlib.feature_maps.montage`) over the values it shows.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vizlib.feature_maps.montage import FeatureMapError, MontageLayout, montage
from vizlib.feature_maps.overview import OverviewRow

__all__ = [
    "LABEL_HEIGHT",
    "MARGIN",
    "OVERVIEW_TILE",
    "ROW_GAP",
    "TEXT_COLOUR",
    "TILE_GAP",
    "TITLE_HEIGHT",
    "GlanceRow",
    "OverviewPicture",
    "overview_picture",
]

#: Tile side the overview aims for, in pixels.
OVERVIEW_TILE = 56
#: White pixels around the picture.
MARGIN = 4
#: Height of a row's title line, in pixels.
TITLE_HEIGHT = 20
#: Height of the line of channel numbers under the tiles, in pixels.
LABEL_HEIGHT = 16
#: White pixels between one row's channel numbers and the next row's title.
ROW_GAP = 10
#: White pixels between the tiles of a row.
TILE_GAP = 2
#: Colour of the text (Streamlit's body text colour).
TEXT_COLOUR = (49, 51, 63)
_TITLE_SIZE, _LABEL_SIZE = 13, 11
#: Pillow renders with one FreeType face per font object; faces are not meant for several threads at once.
_DRAW_LOCK = threading.Lock()
#: Pillow's built-in font lacks these glyphs; with it the titles use plain ASCII.
_ASCII = str.maketrans({"×": "x", "·": "-"})


@dataclass(frozen=True)
class GlanceRow:
    """Where one stage's parts lie in the picture (boxes are ``(top, left, bottom, right)``, bottom/right exclusive).

    Attributes:
        title: The title line as drawn.
        title_box: The band the title is drawn in.
        tiles: The layout of the row's tiles (their own tile size, upscale and gap).
        origin: ``(top, left)`` of the first tile.
        labels: The channel numbers as drawn under the tiles (``"#c"``).
        label_box: The band the channel numbers are drawn in.
        stride: Every ``stride``-th map value is shown.
    """

    title: str
    title_box: tuple[int, int, int, int]
    tiles: MontageLayout
    origin: tuple[int, int]
    labels: tuple[str, ...]
    label_box: tuple[int, int, int, int]
    stride: int

    def tile_box(self, index: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` of tile ``index`` in the whole picture."""
        top, left, bottom, right = self.tiles.tile_box(index)
        return top + self.origin[0], left + self.origin[1], bottom + self.origin[0], right + self.origin[1]


@dataclass(frozen=True, eq=False)
class OverviewPicture:
    """The network overview drawn as one picture.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, white background.
        rows: Where each stage's title, tiles and channel numbers lie, input side first.
        colormap: The colormap's name.
    """

    image: np.ndarray
    rows: tuple[GlanceRow, ...]
    colormap: str


@functools.lru_cache(maxsize=1)
def _font_file() -> str | None:
    """DejaVu Sans (it has ``×`` and ``·``): Matplotlib's copy (installed with Captum), else the system's."""
    spec = importlib.util.find_spec("matplotlib")  # finds the package without importing it
    candidates = [Path(p) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf" for p in
                  (spec.submodule_search_locations or [] if spec else [])]
    candidates.append(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    return next((str(p) for p in candidates if p.is_file()), None)


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _font_file()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def _text(text: str) -> str:
    return text if _font_file() else text.translate(_ASCII)


@functools.lru_cache(maxsize=4096)
def _text_ink(text: str, size: int) -> np.ndarray:
    """``text`` in :data:`TEXT_COLOUR` on white, ``(h, w, 3)`` uint8, its vertical middle at row ``h // 2``.

    Drawn once per text and size: titles repeat for every image a model sees, channel numbers across images.
    """
    font = _font(size)
    with _DRAW_LOCK:
        left, top, right, bottom = font.getbbox(text, anchor="lm")
        half = max(-top, bottom)
        mask = Image.new("L", (max(1, right - min(left, 0)), 2 * half + 1), 0)
        ImageDraw.Draw(mask).text((-min(left, 0), half), text, fill=255, font=font, anchor="lm")
    cover = np.asarray(mask, dtype=np.uint16)[:, :, None]
    ink = 255 - np.asarray(TEXT_COLOUR, dtype=np.uint16)
    out = (255 - (cover * ink + 127) // 255).astype(np.uint8)
    out.flags.writeable = False
    return out


def _stamp(canvas: np.ndarray, ink: np.ndarray, *, top: int, left: int, centred: bool) -> None:
    """Put ``ink`` (from :func:`_text_ink`) on ``canvas`` where it is darker, its middle row at ``top``.

    ``left`` is the text's left edge, or its centre when ``centred``. Ink outside the canvas is dropped.
    """
    h, w = ink.shape[:2]
    y0, x0 = top - h // 2, left - (w // 2 if centred else 0)
    ys, xs = slice(max(y0, 0), min(y0 + h, canvas.shape[0])), slice(max(x0, 0), min(x0 + w, canvas.shape[1]))
    region = canvas[ys, xs]
    np.minimum(region, ink[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0], out=region)


def _sampled(row: OverviewRow, tile: int) -> tuple[np.ndarray, int, int]:
    """The row's maps at about ``tile`` pixels a side: every ``stride``-th value; the ``upscale`` to apply."""
    side = max(row.maps.shape[1], row.maps.shape[2])
    stride = max(1, side // tile)
    maps = row.maps[:, ::stride, ::stride]
    return maps, stride, max(1, tile // max(maps.shape[1], maps.shape[2]))


def overview_picture(
    rows: Sequence[OverviewRow], *, colormap: str = "viridis", tile: int = OVERVIEW_TILE
) -> OverviewPicture:
    """The network overview (one row of maps per stage, see the module docstring) as one RGB picture.

    Args:
        rows: From :func:`vizlib.feature_maps.network_overview`, input side first.
        colormap: One of :data:`vizlib.feature_maps.COLORMAPS`.
        tile: Tile side to aim for, in pixels.

    Returns:
        The picture and where each part of it lies.

    Raises:
        FeatureMapError: No rows, a tile below 1 pixel, or an unknown colormap.
    """
    if not rows:
        raise FeatureMapError("No stages to show.")
    if tile < 1:
        raise FeatureMapError(f"tile must be at least 1 pixel, got {tile}.")
    pictures, placed, top = [], [], MARGIN
    for row in rows:
        maps, stride, upscale = _sampled(row, tile)
        pic = montage(maps, scale="channel", colormap=colormap, columns=len(row.channels), upscale=upscale,
                      gap=TILE_GAP)
        title = _text(f"{row.stage} · {row.layer} · {' × '.join(map(str, row.output_shape))}")
        width = max(pic.layout.width, _text_ink(title, _TITLE_SIZE).shape[1])
        tiles_top = top + TITLE_HEIGHT
        labels_top = tiles_top + pic.layout.height
        placed.append(GlanceRow(
            title=title,
            title_box=(top, MARGIN, tiles_top, MARGIN + width),
            tiles=pic.layout,
            origin=(tiles_top, MARGIN),
            labels=tuple(f"#{c}" for c in row.channels),
            label_box=(labels_top, MARGIN, labels_top + LABEL_HEIGHT, MARGIN + pic.layout.width),
            stride=stride,
        ))
        pictures.append(pic.image)
        top = labels_top + LABEL_HEIGHT + ROW_GAP
    height = top - ROW_GAP + MARGIN
    width = max(r.title_box[3] for r in placed) + MARGIN
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)  # white, as the montage's SEPARATOR
    for pic, row in zip(pictures, placed, strict=True):
        (y, x), (h, w) = row.origin, pic.shape[:2]
        canvas[y : y + h, x : x + w] = pic
    for row in placed:
        t, left, b, _ = row.title_box
        _stamp(canvas, _text_ink(row.title, _TITLE_SIZE), top=(t + b) // 2, left=left, centred=False)
        t, _, b, _ = row.label_box
        for i, label in enumerate(row.labels):
            _, tl, _, tr = row.tile_box(i)
            _stamp(canvas, _text_ink(label, _LABEL_SIZE), top=(t + b) // 2, left=(tl + tr) // 2, centred=True)
    canvas.flags.writeable = False
    return OverviewPicture(canvas, tuple(placed), colormap)
