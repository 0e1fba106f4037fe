"""Encoders for downloads: an RGB image as PNG bytes, an array as the bytes of a ``.npy`` file."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np

__all__ = [
    "encode_indexed_png",
    "encode_npy",
    "encode_png",
]


def encode_png(image: np.ndarray, *, compression: int = 1, filters: bool | str = True, rle: bool = False) -> bytes:
    """An ``(H, W, 3)`` uint8 RGB image as PNG bytes (lossless; low compression for speed).

    ``filters=False`` skips PNG's per-row prediction filters: for pictures of flat blocks (tiles of upscaled
    maps on white, text) that about halves the encoding time for a file of about the same size
    (``benchmarks/bench_feature_maps_page.py``); for photos, keep them. ``filters="sub"`` uses only the "sub"
    filter (each byte less the one to its left), and ``rle=True`` deflate's run-length strategy: for a photo (or a
    photo with a map over it) the two together encode in 0.6x the time of the defaults (1.4-2.1x faster), to a file
    of about the same size with a map over the photo and up to a sixth larger for a photo alone
    (``benchmarks/bench_png.py``). (OpenCV before 4.11 always filters.)

    Raises:
        vizlib.feature_maps.FeatureMapError: Not an RGB uint8 image.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        from vizlib.feature_maps import FeatureMapError  # imported only here: encoding stays torch-free

        raise FeatureMapError("Expected an (H, W, 3) uint8 RGB image to encode as PNG.")
    if filters not in (True, False, "sub"):
        raise ValueError(f"filters must be True, False or 'sub', got {filters!r}.")
    params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if filters is not True and hasattr(cv2, "IMWRITE_PNG_FILTER"):
        chosen = cv2.IMWRITE_PNG_FILTER_SUB if filters == "sub" else cv2.IMWRITE_PNG_FILTER_NONE
        params += [cv2.IMWRITE_PNG_FILTER, chosen]
    if rle:
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]), params)
    if not ok:  # pragma: no cover - OpenCV fails only on impossible sizes
        from vizlib.feature_maps import FeatureMapError

        raise FeatureMapError("The montage could not be encoded as PNG.")
    return buf.tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_indexed_png(indices: np.ndarray, palette: np.ndarray, *, compression: int = 1) -> bytes:
    """A picture of at most 256 colours as a palette PNG: one byte a pixel (lossless).

    A picture made by a colour table (a montage of feature maps: one colormap level a pixel) keeps its exact colours
    in a third of the bytes of an RGB PNG, encoded about three times faster (``benchmarks/bench_png.py``).

    Args:
        indices: ``(H, W)`` uint8, each pixel's row of ``palette``.
        palette: ``(K, 3)`` uint8 RGB, ``K <= 256``.
        compression: zlib level, 0 to 9.

    Raises:
        ValueError: Wrong shapes or types, or an index past the palette.
    """
    indices, palette = np.asarray(indices), np.asarray(palette)
    if indices.ndim != 2 or indices.dtype != np.uint8 or min(indices.shape) < 1:
        raise ValueError(f"Expected (H, W) uint8 indices, got {indices.dtype} {indices.shape}.")
    if palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256 or palette.dtype != np.uint8:
        raise ValueError(f"Expected a (K, 3) uint8 palette with 1 to 256 colours, got {palette.dtype} {palette.shape}.")
    if int(indices.max()) >= palette.shape[0]:
        raise ValueError(f"An index ({int(indices.max())}) lies past the palette's {palette.shape[0]} colours.")
    h, w = indices.shape
    rows = np.zeros((h, w + 1), dtype=np.uint8)  # each row starts with its filter type: 0, none
    rows[:, 1:] = indices
    header = struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)  # 8 bits, colour type 3 (palette), no interlace
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", header),
        _chunk(b"PLTE", np.ascontiguousarray(palette).tobytes()),
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), compression)),
        _chunk(b"IEND", b""),
    ))


def encode_npy(values: object) -> bytes:
    """A layer's activations as the bytes of a ``.npy`` file (float32, loads with ``np.load``, no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(np.asarray(values, dtype=np.float32)), allow_pickle=False)
    return buf.getvalue()
