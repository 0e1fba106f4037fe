"""Export animations for slides: frames drawn with Pillow, encoded as GIF (Pillow) or MP4 (OpenCV).

The frames are drawn from the same :class:`~vizlib.figures.conv.Panel` layout as the page's plotly
figures. Everything is encoded in memory and returned as bytes.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vizlib.conv_arithmetic.frames import Frame
from vizlib.figures.conv import COLORS, Panel, frame_panels

__all__ = [
    "MAX_EXPORT_FRAMES",
    "ExportError",
    "frames_to_gif",
    "frames_to_mp4",
    "images_to_gif",
    "images_to_mp4",
    "render_frame",
]

#: Most frames one export may hold: 256 covers a 16x16 input at stride 1 (about 25 s to encode on 2 cores).
MAX_EXPORT_FRAMES = 300
_GAP, _TITLE, _MARGIN = 24, 22, 12


class ExportError(ValueError):
    """The frames can't be exported; the message says why."""


#: Pillow's built-in font has no glyphs for these; slides get plain ASCII instead.
_ASCII = str.maketrans({"−": "-", "∞": "inf", "×": "x", "·": "."})


def _ascii(text: str) -> str:
    return text.translate(_ASCII)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@lru_cache(maxsize=4096)
def _text_tile(label: str, cell: int) -> np.ndarray:
    """Coverage (0..1) of ``label`` centred in a cell, rendered once per label and size."""
    tile = Image.new("L", (cell - 1, cell - 1), 0)
    font = _font(max(8, int(cell * 0.38)))
    ImageDraw.Draw(tile).text(((cell - 1) / 2, (cell - 1) / 2), _ascii(label), fill=255, font=font, anchor="mm")
    return np.asarray(tile, dtype=np.float32)[:, :, None] / 255.0


def _draw_panel(canvas: np.ndarray, panel: Panel, x0: int, y0: int, cell: int) -> None:
    """Paint a panel's cells (with 1-px white gaps), numbers and boxes into ``canvas`` in place."""
    h, w = panel.colors.shape
    palette = {c: _rgb(c) for c in set(panel.colors.ravel())}
    rgb = np.array([palette[c] for c in panel.colors.ravel()], dtype=np.uint8).reshape(h, w, 3)
    block = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    block[cell - 1 :: cell] = 255
    block[:, cell - 1 :: cell] = 255
    canvas[y0 : y0 + h * cell, x0 : x0 + w * cell] = block
    if cell >= 14:
        luminance = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        for (r, c), label in np.ndenumerate(panel.text):
            if not label:
                continue
            alpha = _text_tile(str(label), cell)
            ink = np.float32(255.0 if luminance[r, c] < 120 else 34.0)
            region = canvas[y0 + r * cell : y0 + (r + 1) * cell - 1, x0 + c * cell : x0 + (c + 1) * cell - 1]
            region[:] = (region * (1 - alpha) + ink * alpha).astype(np.uint8)
    t, box_rgb = max(2, cell // 10), _rgb(COLORS["box"])
    for r0, c0, r1, c1 in panel.boxes:
        top, left = y0 + r0 * cell, x0 + c0 * cell
        bottom, right = y0 + (r1 + 1) * cell - 1, x0 + (c1 + 1) * cell - 1
        for sl in (
            np.s_[top : top + t, left:right],
            np.s_[bottom - t : bottom, left:right],
            np.s_[top:bottom, left : left + t],
            np.s_[top:bottom, right - t : right],
        ):
            canvas[sl] = box_rgb


def _fit_cell(panels: Sequence[Panel], cell: int, max_width: int) -> int:
    columns = sum(p.colors.shape[1] for p in panels)
    room = max_width - 2 * _MARGIN - _GAP * (len(panels) - 1)
    return max(4, min(cell, room // max(columns, 1)))


def _render_panels(panels: Sequence[Panel], title: str, cell: int) -> np.ndarray:
    sizes = [(p.colors.shape[1] * cell, p.colors.shape[0] * cell) for p in panels]
    grid_h = max(h for _, h in sizes)
    width = 2 * _MARGIN + sum(w for w, _ in sizes) + _GAP * (len(panels) - 1)
    width = max(width, 2 * _MARGIN + 8 * len(title))
    height = 2 * _MARGIN + 2 * _TITLE + grid_h
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x, places = _MARGIN, []
    for panel, (w, h) in zip(panels, sizes, strict=True):
        _draw_panel(canvas, panel, x, _MARGIN + 2 * _TITLE + (grid_h - h) // 2, cell)
        places.append(x + w / 2)
        x += w + _GAP
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    draw.text((_MARGIN, _MARGIN), title, fill="#222222", font=_font(15))
    for panel, centre in zip(panels, places, strict=True):
        draw.text((centre, _MARGIN + 1.5 * _TITLE), _ascii(panel.title), fill="#222222", font=_font(12), anchor="mm")
    return np.asarray(image)


def render_frame(frame: Frame, *, cell: int = 32, max_width: int = 1600) -> np.ndarray:
    """Draw one frame (all its panels, titled with the step) as an image.

    Args:
        frame: A frame from :mod:`vizlib.conv_arithmetic`.
        cell: Largest cell size in pixels; numbers are printed from 14 px up.
        max_width: Cells shrink so the image is at most about this wide.

    Returns:
        HxWx3 uint8 RGB array.

    Raises:
        ExportError: ``cell`` is out of range.
    """
    if not 4 <= cell <= 128:
        raise ExportError(f"The cell size must be between 4 and 128 pixels, got {cell}.")
    panels = frame_panels(frame)
    title = f"Step {frame.index + 1} of {frame.total}"
    return _render_panels(panels, title, _fit_cell(panels, cell, max_width))


def _check_frames(frames: Sequence[object], fps: float) -> None:
    if len(frames) == 0:
        raise ExportError("There are no frames to export.")
    if len(frames) > MAX_EXPORT_FRAMES:
        raise ExportError(
            f"{len(frames)} frames is more than the {MAX_EXPORT_FRAMES} an export may hold; "
            "use a smaller input or a larger stride."
        )
    if not 0.1 <= fps <= 60:
        raise ExportError(f"The speed must be between 0.1 and 60 frames per second, got {fps}.")


def _same_size(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Pad every image with white to the largest width and height."""
    arrays = [np.asarray(im, dtype=np.uint8) for im in images]
    for a in arrays:
        if a.ndim != 3 or a.shape[2] != 3:
            raise ExportError(f"Every frame must be an HxWx3 RGB image, got shape {a.shape}.")
    h = max(a.shape[0] for a in arrays)
    w = max(a.shape[1] for a in arrays)
    out = []
    for a in arrays:
        canvas = np.full((h, w, 3), 255, dtype=np.uint8)
        canvas[: a.shape[0], : a.shape[1]] = a
        out.append(canvas)
    return out


def _pack(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.int32)


def _shared_palette(arrays: list[np.ndarray]) -> list[Image.Image]:
    """Map every image onto one palette: the 256 commonest colours of the first, middle and last image.

    Flat cell colours are the commonest, so they stay exact; anti-aliased text edges go to the
    nearest palette colour (no dithering).

    Not Pillow's ``quantize(palette=..., dither=NONE)``: it looks colours up through a coarse colour cache, so
    colours that *are* in the palette come out shifted (pure white became (252, 252, 252) on 91% of a
    convolution frame's pixels, measured with Pillow 13); tests/test_export.py pins the exact mapping.
    """
    sample = _pack(np.concatenate([arrays[0], arrays[len(arrays) // 2], arrays[-1]], axis=0)).ravel()
    values, counts = np.unique(sample, return_counts=True)
    top = values[np.argsort(-counts, kind="stable")[:256]]
    top = np.sort(top)
    colors = _unpack(top)
    flat_palette = colors.astype(np.uint8).ravel().tolist()
    images = []
    for a in arrays:
        packed = _pack(a).ravel()
        index = np.minimum(np.searchsorted(top, packed), len(top) - 1)
        missing = top[index] != packed  # colours not in the palette (anti-aliased text edges)
        if missing.any():
            uniques, inverse = np.unique(packed[missing], return_inverse=True)
            distance = ((_unpack(uniques)[:, None, :] - colors[None, :, :]) ** 2).sum(axis=2)
            index[missing] = distance.argmin(axis=1)[inverse]
        image = Image.fromarray(index.astype(np.uint8).reshape(a.shape[:2]))  # "L"; putpalette makes it "P"
        image.putpalette(flat_palette)
        images.append(image)
    return images


def images_to_gif(images: Sequence[np.ndarray], *, fps: float = 2.0, hold_last: float = 1.5) -> bytes:
    """Encode RGB images as a looping GIF, one GIF frame per image.

    Pillow merges an image identical to the one before it into that frame (adding the durations).

    Args:
        images: HxWx3 uint8 arrays (smaller ones are padded with white to the largest).
        fps: Frames per second.
        hold_last: Extra seconds the last frame stays on screen before the loop restarts.

    Returns:
        The GIF file's bytes.

    Raises:
        ExportError: No images, too many, a bad shape or speed.
    """
    _check_frames(images, fps)
    arrays = _same_size(images)
    frames = _shared_palette(arrays)
    step = round(1000 / fps)
    durations = [step] * len(frames)
    durations[-1] += round(1000 * max(hold_last, 0.0))
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, disposal=1
    )
    return buffer.getvalue()


def frames_to_gif(frames: Sequence[Frame], *, fps: float = 2.0, cell: int = 32) -> bytes:
    """Render frames (see :func:`render_frame`) and encode them as a looping GIF.

    Args:
        frames: Frames from :mod:`vizlib.conv_arithmetic`.
        fps: Frames per second.
        cell: Cell size in pixels.

    Returns:
        The GIF file's bytes, with one GIF frame per frame.

    Raises:
        ExportError: No frames, too many, or a bad speed or cell size.
    """
    _check_frames(frames, fps)
    return images_to_gif([render_frame(f, cell=cell) for f in frames], fps=fps)


def images_to_mp4(images: Sequence[np.ndarray], *, fps: float = 2.0) -> bytes:
    """Encode RGB images as an MP4 video (MPEG-4 Part 2, OpenCV's ``mp4v``: plays in VLC and PowerPoint).

    Args:
        images: HxWx3 uint8 arrays (padded with white to the largest, then to even sides).
        fps: Frames per second.

    Returns:
        The MP4 file's bytes.

    Raises:
        ExportError: No images, too many, a bad shape or speed, or OpenCV can't encode MP4 here.
    """
    import cv2  # lazy: only exports need OpenCV's video writer

    _check_frames(images, fps)
    arrays = _same_size(images)
    h, w = arrays[0].shape[:2]
    h2, w2 = h + h % 2, w + w % 2
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w2, h2))
        if not writer.isOpened():
            raise ExportError("This OpenCV build can't write MP4 video; download the GIF instead.")
        try:
            for a in arrays:
                padded = np.full((h2, w2, 3), 255, dtype=np.uint8)
                padded[:h, :w] = a
                writer.write(cv2.cvtColor(padded, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def frames_to_mp4(frames: Sequence[Frame], *, fps: float = 2.0, cell: int = 32) -> bytes:
    """Render frames (see :func:`render_frame`) and encode them as MP4 (see :func:`images_to_mp4`).

    Args:
        frames: Frames from :mod:`vizlib.conv_arithmetic`.
        fps: Frames per second.
        cell: Cell size in pixels.

    Returns:
        The MP4 file's bytes.

    Raises:
        ExportError: As :func:`images_to_mp4`.
    """
    _check_frames(frames, fps)
    return images_to_mp4([render_frame(f, cell=cell) for f in frames], fps=fps)
