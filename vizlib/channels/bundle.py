"""The bundled photo set that dataset examples are searched in: the gallery and OpenCV's sample photos."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from vizlib import images

__all__ = ["OPENCV_SAMPLES", "Photo", "bundled_photos"]

#: Debian's opencv-doc sample photos (installed by .ci/run and the Dockerfile); skipped where absent.
OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
# The stereo-calibration chessboards (left01..right14) are two dozen near-copies of one board.
_SKIP = re.compile(r"^(left|right)\d+\.jpg$")
_MAX_SIDE = 512

Photo = tuple[str, np.ndarray]


@lru_cache(maxsize=1)
def bundled_photos() -> tuple[Photo, ...]:
    """``(name, HxWx3 uint8)`` pairs, gallery first, each at most 512 px on its longer side (read-only arrays)."""
    photos: list[Photo] = []
    for item in images.gallery():
        photos.append((f"gallery: {item.title}", images.fit_image(images.load_gallery_image(item.key), _MAX_SIDE)))
    if OPENCV_SAMPLES.is_dir():
        for path in sorted(OPENCV_SAMPLES.glob("*.jpg")):
            if _SKIP.match(path.name):
                continue
            try:
                picture = images.load_image(path.read_bytes())
            except images.ImageError:
                continue
            photos.append((f"OpenCV: {path.stem}", images.fit_image(picture, _MAX_SIDE)))
    for _, picture in photos:
        picture.setflags(write=False)
    return tuple(photos)
