"""Handwritten digits: a LeNet-5-style network, OpenCV's digits data, and MNIST-style preprocessing.

The network sees a 28x28 single-channel image in [0, 1], white ink on black, prepared like MNIST:
crop to the ink, scale the longest side to 20 px keeping the aspect ratio, and paste into a 28x28
field so that the centre of mass of the ink sits at the centre. The same preprocessing is applied
to the training digits (see :mod:`vizlib.train_digits`) and to a drawing, so the two match.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from vizlib._paths import shipped_file

__all__ = [
    "DEFAULT_CARD",
    "DEFAULT_CHECKPOINT",
    "DIGITS_PNG_CANDIDATES",
    "DIGIT_BOX",
    "INPUT_SIZE",
    "CheckpointError",
    "DigitsDataError",
    "DrawingError",
    "DrawingSteps",
    "EmptyDrawingError",
    "LeNet5",
    "digits_categories",
    "digits_preprocess",
    "drawing_steps",
    "find_digits_png",
    "load_digits_model",
    "load_opencv_digits",
    "preprocess_drawing",
]

#: Side of the square image the network takes, in pixels.
INPUT_SIZE = 28
#: The longest side of the ink after scaling, in pixels (MNIST's 20 px box).
DIGIT_BOX = 20

#: The committed checkpoint (a state dict) and its model card.
DEFAULT_CHECKPOINT = shipped_file("digits_lenet5.pth")
DEFAULT_CARD = shipped_file("digits_lenet5.json")

#: Where Debian's opencv-doc package puts the digits image (it may compress it).
DIGITS_PNG_CANDIDATES = (
    Path("/usr/share/doc/opencv-doc/examples/data/digits.png"),
    Path("/usr/share/doc/opencv-doc/examples/data/digits.png.gz"),
)
_CELL = 20
_GRID_ROWS, _GRID_COLS = 50, 100
_PER_CLASS = 500

# Ink weaker than this (after normalising the strongest ink to 1) does not count for the bounding box.
_INK_THRESHOLD = 0.1
# A canvas whose strongest ink is below this (on the 0..1 scale) counts as empty.
_EMPTY_LEVEL = 0.05


class DigitsDataError(ValueError):
    """The digits data can't be found or read; the message says what to install or pass."""


class DrawingError(ValueError):
    """The drawing can't be used as input; the message says why."""


class EmptyDrawingError(DrawingError):
    """The drawing has no ink."""


class CheckpointError(ValueError):
    """The checkpoint can't be loaded safely; the message says why and what to do."""


class LeNet5(nn.Module):
    """LeNet-5-style CNN for 28x28 digits: conv 5x5 -> pool -> conv 5x5 -> pool -> three dense layers.

    Every step is a named module (``conv1``, ``relu1``, ``pool1``, ..., ``fc3``) so activations
    can be taken by module name. The output is the ten class logits.

    Args:
        channels: Number of feature maps of conv1 and conv2.
        hidden: Widths of fc1 and fc2.
        num_classes: Number of outputs of fc3.
    """

    def __init__(
        self,
        channels: tuple[int, int] = (16, 32),
        hidden: tuple[int, int] = (120, 84),
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        h1, h2 = hidden
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5, padding=2)  # 28x28
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # 14x14
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)  # 10x10
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # 5x5
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * 5 * 5, h1)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(h1, h2)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(h2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits of a batch ``[N, 1, 28, 28]`` as ``[N, num_classes]``."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)


def digits_categories() -> list[str]:
    """Return the class names of the digits model, ``["0", ..., "9"]``."""
    return [str(d) for d in range(10)]


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawingSteps:
    """The stages of MNIST-style preprocessing, for display.

    Attributes:
        ink: ``float32 [H, W]`` in [0, 1]: the input as ink strength (white ink on black,
            strongest ink scaled to 1).
        bbox: ``(top, left, bottom, right)`` of the ink in ``ink`` (bottom/right exclusive);
            ``None`` when there is no ink.
        cropped: ``float32``: ``ink`` cropped to ``bbox`` (``0x0`` when empty).
        scaled: ``float32``: ``cropped`` scaled so its longest side is 20 px (``0x0`` when empty).
        centre_of_mass: ``(row, col)`` of the ink's centre of mass in ``scaled``.
        offset: ``(row, col)`` where ``scaled``'s top-left corner was placed in ``result``.
        result: ``float32 [28, 28]`` in [0, 1]: what the network sees (all zeros when empty).
    """

    ink: np.ndarray
    bbox: tuple[int, int, int, int] | None
    cropped: np.ndarray
    scaled: np.ndarray
    centre_of_mass: tuple[float, float]
    offset: tuple[int, int]
    result: np.ndarray

    @property
    def empty(self) -> bool:
        """Whether the drawing had no ink."""
        return self.bbox is None


def _to_unit_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.number):
        raise DrawingError(f"The drawing has pixel type {arr.dtype}; pass uint8 or float values.")
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise DrawingError("The drawing contains NaN or infinite values.")
    if out.size and out.max() > 1.0:
        out = out / 255.0
    return np.clip(out, 0.0, 1.0)


def _ink_map(image: np.ndarray) -> np.ndarray:
    """Turn a grey, RGB or RGBA drawing into ink strength in [0, 1] (ink high, background 0)."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise DrawingError(
            f"A drawing must be HxW grey, HxWx3 RGB or HxWx4 RGBA; got an array of shape {arr.shape}."
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DrawingError(f"The drawing has no pixels (shape {arr.shape}).")
    values = _to_unit_float(arr)
    if values.ndim == 3 and values.shape[2] == 4:
        alpha = values[:, :, 3]
        if alpha.min() < 1.0:
            # Strokes on a transparent layer (a drawing canvas): opacity is the ink.
            return np.ascontiguousarray(alpha)
        values = values[:, :, :3]
    grey = values @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if values.ndim == 3 else values
    border = np.concatenate([grey[0, :], grey[-1, :], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    # Dark ink on a light background is turned round; either way the background goes to 0.
    ink = background - grey if background > 0.5 else grey - background
    return np.clip(ink, 0.0, 1.0).astype(np.float32)


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    total = float(img.sum())
    rows = np.arange(img.shape[0], dtype=np.float64)
    cols = np.arange(img.shape[1], dtype=np.float64)
    return (
        float(img.sum(axis=1) @ rows / total),
        float(img.sum(axis=0) @ cols / total),
    )


def _place_offset(com: float, length: int) -> int:
    """Top-left position that puts ``com`` at the field's centre, kept so the ink stays inside."""
    centre = (INPUT_SIZE - 1) / 2.0
    offset = int(np.floor(centre - com + 0.5))
    return min(max(offset, 0), INPUT_SIZE - length)


def drawing_steps(image: np.ndarray) -> DrawingSteps:
    """Prepare a drawing like MNIST and keep every stage.

    Crops to the ink, scales the longest side to 20 px (keeping the aspect ratio), and pastes it
    into a 28x28 field so that the ink's centre of mass is at the centre (shifted less where the
    ink would otherwise leave the field). An empty canvas gives an all-zero result with
    ``empty == True`` rather than an error.

    Args:
        image: ``HxW`` grey, ``HxWx3`` RGB or ``HxWx4`` RGBA; uint8 or float in [0, 1]. Dark ink on
            a light background and light ink on a dark one both work; with RGBA whose alpha is
            not fully opaque the alpha channel is taken as the ink.

    Returns:
        The stages; ``result`` is ``float32 [28, 28]`` in [0, 1], white ink on black.

    Raises:
        DrawingError: If the array has an unusable shape or type.
    """
    ink = _ink_map(image)
    peak = float(ink.max())
    if peak < _EMPTY_LEVEL:
        none = np.zeros((0, 0), dtype=np.float32)
        centre = (INPUT_SIZE - 1) / 2.0
        return DrawingSteps(
            ink=ink,
            bbox=None,
            cropped=none,
            scaled=none,
            centre_of_mass=(centre, centre),
            offset=(0, 0),
            result=np.zeros((INPUT_SIZE, INPUT_SIZE), dtype=np.float32),
        )
    ink = ink / peak
    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    bbox = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    cropped = ink[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    h, w = cropped.shape
    factor = DIGIT_BOX / max(h, w)
    new_h = min(DIGIT_BOX, max(1, int(round(h * factor))))
    new_w = min(DIGIT_BOX, max(1, int(round(w * factor))))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(cropped, (new_w, new_h), interpolation=interpolation)
    scaled = np.clip(scaled, 0.0, 1.0).astype(np.float32).reshape(new_h, new_w)
    if float(scaled.sum()) <= 0.0:
        scaled = np.ones_like(scaled)
    com = _centre_of_mass(scaled)
    offset = (_place_offset(com[0], new_h), _place_offset(com[1], new_w))
    result = np.zeros((INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    result[offset[0] : offset[0] + new_h, offset[1] : offset[1] + new_w] = scaled
    return DrawingSteps(
        ink=ink,
        bbox=bbox,
        cropped=np.ascontiguousarray(cropped, dtype=np.float32),
        scaled=scaled,
        centre_of_mass=com,
        offset=offset,
        result=result,
    )


def preprocess_drawing(rgba_or_gray: np.ndarray) -> np.ndarray:
    """Prepare a drawing for the digits network like MNIST (see :func:`drawing_steps`).

    Args:
        rgba_or_gray: ``HxW`` grey, ``HxWx3`` RGB or ``HxWx4`` RGBA; uint8 or float in [0, 1].

    Returns:
        ``float32 [28, 28]`` in [0, 1], white ink on black.

    Raises:
        EmptyDrawingError: If there is no ink.
        DrawingError: If the array has an unusable shape or type.
    """
    steps = drawing_steps(rgba_or_gray)
    if steps.empty:
        raise EmptyDrawingError("The canvas is empty: draw a digit (or pick an example) first.")
    return steps.result


def digits_preprocess(image: np.ndarray) -> torch.Tensor:
    """Turn an image (e.g. HxWx3 uint8 RGB) into the digits network's input batch.

    Args:
        image: Anything :func:`preprocess_drawing` takes.

    Returns:
        ``float32 Tensor[1, 1, 28, 28]`` on the CPU.

    Raises:
        EmptyDrawingError: If the image has no ink (a blank, uniform image).
        DrawingError: If the array has an unusable shape or type.
    """
    return torch.from_numpy(preprocess_drawing(image)).reshape(1, 1, INPUT_SIZE, INPUT_SIZE)


# ----------------------------------------------------------------------------------------------
# Checkpoint
# ----------------------------------------------------------------------------------------------


def load_digits_model(path: str | Path | None = None) -> LeNet5:
    """Load the trained digits network from a state-dict checkpoint, in eval mode on the CPU.

    The file is read with ``torch.load(weights_only=True)``: a checkpoint that carries anything
    besides tensors and plain containers (a pickle with code in it) is refused.

    Args:
        path: The ``.pth`` file; ``None`` loads the committed ``checkpoints/digits_lenet5.pth``.

    Returns:
        The network in eval mode.

    Raises:
        CheckpointError: If the file is missing, unsafe, or does not fit the network.
    """
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"The digits checkpoint {path} does not exist. Train it with `python -m vizlib.train_digits`."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {path}: it contains objects other than tensors (possibly code), "
            "and only plain state dicts are loaded. Retrain with `python -m vizlib.train_digits`."
        ) from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({exc}).") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors.")
    try:
        channels = (int(state["conv1.weight"].shape[0]), int(state["conv2.weight"].shape[0]))
        hidden = (int(state["fc1.weight"].shape[0]), int(state["fc2.weight"].shape[0]))
        model = LeNet5(channels=channels, hidden=hidden, num_classes=int(state["fc3.weight"].shape[0]))
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not hold LeNet5 weights ({exc}).") from exc
    return model.eval()
