"""Pictures encoded once at the size they are shown, shared by every rerun and every session.

Streamlit encodes a numpy image given to ``st.image`` again on every rerun (a 1024-pixel photo: tens of
milliseconds of JPEG encoding per page switch, for the sidebar's thumbnail alone). Given bytes, it only reads
their header. :func:`display_jpeg` makes those bytes once per (image, size).
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from vizlib.caching import LRUCache

__all__ = ["display_jpeg"]

_CACHE: LRUCache[tuple[str, int, int], bytes] = LRUCache(256)


def _key(image: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=12).hexdigest() + str(image.shape)


def display_jpeg(image: np.ndarray, max_side: int, *, quality: int = 90, key: str | None = None) -> bytes:
    """``image`` (H x W x 3 uint8 RGB) as JPEG bytes, shrunk so its longer side is at most ``max_side``.

    Args:
        image: The picture.
        max_side: Longest side in pixels (never enlarged).
        quality: JPEG quality, 1 to 100.
        key: A name for the image's content if the caller has one (else its bytes are hashed).

    Raises:
        ValueError: Not an H x W x 3 uint8 image, or ``max_side`` < 1.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("Expected an H x W x 3 uint8 RGB image.")
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}.")
    cache_key = (key or _key(image), max_side, quality)

    def encode() -> bytes:
        h, w = image.shape[:2]
        scale = max_side / max(h, w)
        picture = image
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            picture = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(picture[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:  # pragma: no cover - OpenCV fails only on impossible sizes
            raise ValueError("The picture could not be encoded as JPEG.")
        return buf.tobytes()

    return _CACHE.get_or_create(cache_key, encode)
