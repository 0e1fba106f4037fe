"""vizlib.conv_arithmetic.export: frames rendered from the panels, GIF and MP4 bytes with the right frame count."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from vizlib import conv_arithmetic as ca
from vizlib.conv_arithmetic import export
from vizlib.figures.conv import COLORS


def _gif_frames(data: bytes) -> list[np.ndarray]:
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF"
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
    return frames


@pytest.mark.parametrize(
    "frames",
    [
        ca.conv2d_frames(ca.lecture_pattern(7), ca.LECTURE_KERNEL, s=2),
        ca.conv2d_frames(ca.lecture_pattern(5), np.ones((2, 2)), p=1, d=2),
        ca.conv_transpose2d_frames(ca.lecture_pattern(3), ca.LECTURE_KERNEL, s=2, p=1, output_padding=1),
        ca.pool2d_frames(ca.lecture_pattern(5), 2, ceil_mode=True),
        ca.pool2d_frames(ca.lecture_pattern(4), 3, 1, 1, mode="avg"),
    ],
    ids=["conv-stride2", "dilated", "transposed", "max-ceil", "avg-pad"],
)
def test_gif_opens_with_one_frame_per_step(frames) -> None:
    data = export.frames_to_gif(frames, fps=4, cell=20)
    decoded = _gif_frames(data)
    assert len(decoded) == len(frames)
    gif = Image.open(io.BytesIO(data))
    assert gif.info["loop"] == 0 and gif.info["duration"] == 250


def test_gif_frames_show_the_moving_window() -> None:
    frames = ca.conv2d_frames(ca.lecture_pattern(4), ca.LECTURE_KERNEL)
    decoded = _gif_frames(export.frames_to_gif(frames, cell=20))
    rendered = [export.render_frame(f, cell=20) for f in frames]
    assert decoded[0].shape == rendered[0].shape
    # Palette quantisation keeps the flat cell colours exactly.
    tap = np.array([int(COLORS["tap"][i : i + 2], 16) for i in (1, 3, 5)])
    for gif_frame, image in zip(decoded, rendered, strict=True):
        assert np.array_equal(np.all(gif_frame == tap, axis=2), np.all(image == tap, axis=2))
    assert not np.array_equal(decoded[0], decoded[1])


def _tap_columns(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.all(image == [0xE6, 0x9F, 0x00], axis=2).any(axis=0))


def test_render_frame_window_moves_one_stride_per_step() -> None:
    frames = ca.conv2d_frames(np.zeros((5, 5)), np.ones((2, 2)), s=2)
    first, second = (export.render_frame(f, cell=20) for f in frames[:2])
    assert first.dtype == np.uint8 and first.ndim == 3
    # The input window's left edge moves right by stride x cell pixels; the products panel stays put.
    assert _tap_columns(second)[0] - _tap_columns(first)[0] == 2 * 20
    assert _tap_columns(second)[-1] == _tap_columns(first)[-1]


def test_render_frame_shrinks_cells_for_wide_frames() -> None:
    frame = ca.conv_transpose2d_frames(np.ones((16, 16)), np.ones((3, 3)), s=2)[0]
    assert export.render_frame(frame, cell=32, max_width=1200).shape[1] <= 1200


def test_mp4_has_expected_frame_count() -> None:
    frames = ca.pool2d_frames(ca.lecture_pattern(6), 2)
    data = export.frames_to_mp4(frames, fps=3, cell=16)
    assert data[4:8] == b"ftyp"
    path = f"/tmp/cnn_lens_test_{id(data)}.mp4"
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        video = cv2.VideoCapture(path)
        count = 0
        while video.read()[0]:
            count += 1
        video.release()
    finally:
        import os

        os.unlink(path)
    assert count == len(frames) == 9


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: export.frames_to_gif(()), "no frames"),
        (lambda: export.frames_to_gif(ca.conv2d_frames(np.ones((3, 3)), np.ones((2, 2))), fps=0), "speed"),
        (lambda: export.render_frame(ca.conv2d_frames(np.ones((3, 3)), np.ones((2, 2)))[0], cell=2), "cell size"),
        (lambda: export.images_to_gif([np.zeros((4, 4))]), "RGB"),
        (lambda: export.images_to_gif([np.zeros((2, 2, 3), np.uint8)] * 301), "more than the 300"),
    ],
)
def test_bad_exports_raise_export_error(call, match: str) -> None:
    with pytest.raises(export.ExportError, match=match):
        call()


def test_gif_palette_keeps_flat_colours_exact_and_maps_the_rest_to_the_nearest() -> None:
    from vizlib.conv_arithmetic import export

    rng = np.random.default_rng(0)
    flat = np.zeros((40, 40, 3), np.uint8)
    flat[:20] = (230, 159, 0)
    flat[20:] = (86, 180, 233)
    noisy = flat.copy()
    noisy[0, 0] = (231, 160, 1)  # not in the palette: its nearest is the orange
    frames = export._shared_palette([flat, noisy, flat, flat, flat])  # the palette samples frames 0, 2 and 4
    decoded = [np.asarray(f.convert("RGB")) for f in frames]
    np.testing.assert_array_equal(decoded[0], flat)
    assert tuple(decoded[1][0, 0]) == (230, 159, 0)
    many = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)  # more than 256 colours
    out = np.asarray(export._shared_palette([many])[0].convert("RGB")).astype(int)
    palette = np.unique(out.reshape(-1, 3), axis=0)
    assert len(palette) <= 256
    nearest = ((many.reshape(-1, 1, 3).astype(int) - palette[None]) ** 2).sum(2).min(1)
    got = ((many.reshape(-1, 3).astype(int) - out.reshape(-1, 3)) ** 2).sum(1)
    np.testing.assert_array_equal(got, nearest)  # every pixel went to its nearest palette colour
