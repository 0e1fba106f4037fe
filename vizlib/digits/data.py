"""OpenCV's handwritten digits: 5000 20x20 digits, 500 per class, from Debian's opencv-doc package."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "DIGITS_PNG_CANDIDATES",
    "DigitsDataError",
    "find_digits_png",
    "load_opencv_digits",
]


#: Where Debian's opencv-doc package puts the digits image (it may compress it).
DIGITS_PNG_CANDIDATES = (
    Path("/usr/share/doc/opencv-doc/examples/data/digits.png"),
    Path("/usr/share/doc/opencv-doc/examples/data/digits.png.gz"),
)


_CELL = 20


_GRID_ROWS, _GRID_COLS = 50, 100


_PER_CLASS = 500


class DigitsDataError(ValueError):
    """The digits data can't be found or read; the message says what to install or pass."""


def find_digits_png() -> Path:
    """Return the path of OpenCV's ``digits.png`` as installed by Debian's opencv-doc.

    Raises:
        DigitsDataError: If none of :data:`DIGITS_PNG_CANDIDATES` exists.
    """
    for path in DIGITS_PNG_CANDIDATES:
        if path.is_file():
            return path
    raise DigitsDataError(
        "OpenCV's digits.png was not found (looked for "
        + ", ".join(str(p) for p in DIGITS_PNG_CANDIDATES)
        + "). Install it with `apt-get install opencv-doc` or pass the file's path."
    )


def load_opencv_digits(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000 handwritten digits of OpenCV's ``digits.png``.

    The image holds 50 rows x 100 columns of 20x20 cells, 500 digits per class in order
    (rows 0-4 are zeros, rows 5-9 ones, ...). A gzip-compressed file (``digits.png.gz``) is
    recognised by its content and decompressed in memory.

    Args:
        path: The file; ``None`` looks in the places where Debian installs it.

    Returns:
        ``(images, labels)``: ``uint8 [5000, 20, 20]`` white ink on black, and ``int64 [5000]``.

    Raises:
        DigitsDataError: If the file is missing, not an image, or not 2000x1000 pixels.
    """
    path = find_digits_png() if path is None else Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DigitsDataError(f"Can't read the digits image {path}: {exc.strerror or exc}.") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DigitsDataError(f"{path} looks gzip-compressed but does not decompress: {exc}.") from exc
    sheet = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    expected = (_GRID_ROWS * _CELL, _GRID_COLS * _CELL)
    if sheet is None:
        raise DigitsDataError(f"{path} is not a readable image; expected OpenCV's digits.png.")
    if sheet.shape != expected:
        raise DigitsDataError(
            f"{path} is {sheet.shape[1]}x{sheet.shape[0]} pixels; OpenCV's digits.png is "
            f"{expected[1]}x{expected[0]}."
        )
    images = (
        sheet.reshape(_GRID_ROWS, _CELL, _GRID_COLS, _CELL).transpose(0, 2, 1, 3).reshape(-1, _CELL, _CELL)
    )
    labels = np.repeat(np.arange(10, dtype=np.int64), _PER_CLASS)
    return np.ascontiguousarray(images), labels
