"""Handwritten digits, the digits lesson: a LeNet-5 network, OpenCV's digits, MNIST-style preprocessing,
and a view of one digit flowing through the network.

Modules: :mod:`~vizlib.digits.network` (LeNet-5 and its checkpoint), :mod:`~vizlib.digits.data` (OpenCV's
digits), :mod:`~vizlib.digits.preprocess` (a drawing prepared like MNIST), :mod:`~vizlib.digits.view` (stages,
a digit's flow, what feeds each unit), :mod:`~vizlib.digits.heldout` (the canvas and the held-out digits) and
:mod:`~vizlib.digits.train` (training: ``python -m vizlib.digits.train``). Figures: :mod:`vizlib.figures.digits`.
"""

from __future__ import annotations

from vizlib.digits.data import (
    DIGITS_PNG_CANDIDATES,
    DigitsDataError,
    find_digits_png,
    load_opencv_digits,
)
from vizlib.digits.heldout import (
    HeldoutDigits,
    canvas_to_image,
    classify_heldout,
    load_heldout,
)
from vizlib.digits.network import (
    DEFAULT_CARD,
    DEFAULT_CHECKPOINT,
    CheckpointError,
    LeNet5,
    digits_categories,
    load_digits_model,
)
from vizlib.digits.preprocess import (
    DIGIT_BOX,
    INPUT_SIZE,
    DrawingError,
    DrawingSteps,
    EmptyDrawingError,
    digits_preprocess,
    drawing_steps,
    preprocess_drawing,
)
from vizlib.digits.view import (
    INPUT_STAGE,
    DigitFlow,
    DigitsViewError,
    Source,
    Stage,
    Unit,
    UnitSources,
    digit_flow,
    input_patch,
    network_stages,
    unit_sources,
)

__all__ = [
    "DEFAULT_CARD",
    "DEFAULT_CHECKPOINT",
    "DIGITS_PNG_CANDIDATES",
    "DIGIT_BOX",
    "INPUT_SIZE",
    "INPUT_STAGE",
    "CheckpointError",
    "DigitFlow",
    "DigitsDataError",
    "DigitsViewError",
    "DrawingError",
    "DrawingSteps",
    "EmptyDrawingError",
    "HeldoutDigits",
    "LeNet5",
    "Source",
    "Stage",
    "Unit",
    "UnitSources",
    "canvas_to_image",
    "classify_heldout",
    "digit_flow",
    "digits_categories",
    "digits_preprocess",
    "drawing_steps",
    "find_digits_png",
    "input_patch",
    "load_digits_model",
    "load_heldout",
    "load_opencv_digits",
    "network_stages",
    "preprocess_drawing",
    "unit_sources",
]
