"""Preset kernels: the classic hand-designed filters (edges, Sobel, Scharr, Prewitt, Laplacian, blurs) and labels."""

from __future__ import annotations

import numpy as np

__all__ = [
    "PRESETS",
    "PRESET_LABELS",
]


def _preset(rows: list[list[float]], divisor: float = 1.0) -> np.ndarray:
    arr = np.array(rows, dtype=np.float32) / np.float32(divisor)
    arr.setflags(write=False)
    return arr


_SOBEL_X = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]


_SCHARR_X = [[3, 0, -3], [10, 0, -10], [3, 0, -3]]


_PREWITT_X = [[1, 0, -1], [1, 0, -1], [1, 0, -1]]


_BINOMIAL_5 = [1, 4, 6, 4, 1]


#: The preset kernels (read-only float32 arrays). The x/vertical-edge kernels have their positive
#: column on the left (Sobel x = [1, 2, 1]^T . [1, 0, -1]), so with cross-correlation they respond
#: positively where the image gets darker to the right; the y kernels are their transposes.
PRESETS: dict[str, np.ndarray] = {
    "identity": _preset([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "vertical_edge": _preset(_PREWITT_X),
    "horizontal_edge": _preset(np.transpose(_PREWITT_X).tolist()),
    "sobel_x": _preset(_SOBEL_X),
    "sobel_y": _preset(np.transpose(_SOBEL_X).tolist()),
    "scharr_x": _preset(_SCHARR_X),
    "scharr_y": _preset(np.transpose(_SCHARR_X).tolist()),
    "prewitt_x": _preset(_PREWITT_X),
    "prewitt_y": _preset(np.transpose(_PREWITT_X).tolist()),
    "laplacian_4": _preset([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    "laplacian_8": _preset([[1, 1, 1], [1, -8, 1], [1, 1, 1]]),
    "sharpen": _preset([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "box_blur": _preset([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 9),
    "gaussian_3x3": _preset([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 16),
    "gaussian_5x5": _preset(np.outer(_BINOMIAL_5, _BINOMIAL_5).tolist(), 256),
    "emboss": _preset([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    "outline": _preset([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
}


#: Human-readable names for :data:`PRESETS`, in the same order.
PRESET_LABELS: dict[str, str] = {
    "identity": "Identity",
    "vertical_edge": "Vertical edge (lecture)",
    "horizontal_edge": "Horizontal edge (lecture)",
    "sobel_x": "Sobel x",
    "sobel_y": "Sobel y",
    "scharr_x": "Scharr x",
    "scharr_y": "Scharr y",
    "prewitt_x": "Prewitt x",
    "prewitt_y": "Prewitt y",
    "laplacian_4": "Laplacian (4-neighbour)",
    "laplacian_8": "Laplacian (8-neighbour)",
    "sharpen": "Sharpen",
    "box_blur": "Box blur",
    "gaussian_3x3": "Gaussian 3x3",
    "gaussian_5x5": "Gaussian 5x5",
    "emboss": "Emboss",
    "outline": "Outline",
}
