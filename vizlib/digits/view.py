"""A digit flowing through the digits network: every stage's activations, and what feeds any unit.

The network is read as a chain of *stages*, discovered from the model's children in order: each
convolution or dense layer (shown after the pointwise layers that follow it, e.g. its ReLU), each
pooling layer, and the input in front. For a unit of any stage this module gives

* its receptive patch on the 28x28 input, exactly, from the kernel sizes, strides and paddings;
* its incoming connections — weight, the source unit's activation on this digit, and their product —
  so that the unit's pre-activation is ``sum(contributions) + bias``; for a max-pool unit, the
  window's units with weight 1 for the one that won.

Compute only: arrays and frozen dataclasses, no plotting (see :mod:`vizlib.figures.digits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

from vizlib.activations import extract
from vizlib.digits.preprocess import DrawingSteps, EmptyDrawingError, drawing_steps
from vizlib.models import LoadedModel

__all__ = [
    "INPUT_STAGE",
    "DigitFlow",
    "DigitsViewError",
    "Source",
    "Stage",
    "Unit",
    "UnitSources",
    "digit_flow",
    "input_patch",
    "network_stages",
    "unit_sources",
]

#: Name of the stage that stands for the network's input.
INPUT_STAGE = "input"
_SORT_KEYS = ("contribution", "weight")


class DigitsViewError(ValueError):
    """A stage or unit does not exist, or the model is not a chain this module can read."""


@dataclass(frozen=True)
class Stage:
    """One column of the network picture.

    Attributes:
        name: ``"input"`` or the module that defines the units (``"conv1"``, ``"pool1"``, ``"fc3"``).
        title: Label for people, e.g. ``"conv1 + ReLU"``.
        kind: ``"input"``, ``"conv"``, ``"pool"`` or ``"dense"``.
        output: The module whose output is shown (``"relu1"`` for ``conv1``); ``""`` for the input.
        shape: ``(C, h, w)`` for maps, ``(n,)`` for dense layers.
        kernel: Window size (conv/pool), 1 otherwise.
        stride: Step of the window (conv/pool), 1 otherwise.
        padding: Zero padding on each side (conv/pool), 0 otherwise.
        dilation: Spacing of the window's taps (conv/pool), 1 otherwise.
    """

    name: str
    title: str
    kind: str
    output: str
    shape: tuple[int, ...]
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    @property
    def spatial(self) -> bool:
        """Whether the units form maps (``(C, h, w)``)."""
        return len(self.shape) == 3

    @property
    def size(self) -> int:
        """Number of units."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class Unit:
    """One unit: a stage name and its index, ``(c, y, x)`` in maps or ``(i,)`` in a dense layer."""

    stage: str
    index: tuple[int, ...]


@dataclass(frozen=True)
class Source:
    """One incoming connection of a unit.

    Attributes:
        unit: The unit it comes from (in the previous stage).
        weight: The connection's weight (for max pooling: 1 for the window's winner, else 0).
        activation: The source unit's value on this digit.
        contribution: ``weight * activation``.
    """

    unit: Unit
    weight: float
    activation: float
    contribution: float


@dataclass(frozen=True)
class UnitSources:
    """What feeds one unit.

    Attributes:
        unit: The unit.
        value: Its value as shown (after the stage's ReLU; the logit for the last layer).
        pre_activation: ``sum of all contributions + bias`` (equal to ``value`` where no ReLU follows).
        bias: The unit's bias (0 for pooling and the input).
        patch: ``(top, left, bottom, right)`` of the input pixels it depends on (bottom/right exclusive),
            clipped to the input.
        sources: The strongest incoming connections, strongest first.
        total: How many incoming connections it has (inside the input; padding excluded).
        kernel: For a convolution unit: its channel's weights ``(C_in, k, k)``; otherwise ``None``.
        window: For a convolution or pooling unit: the previous stage's values under the window,
            ``(C_in, k, k)``, zero where the window hangs over the padding; otherwise ``None``.
    """

    unit: Unit
    value: float
    pre_activation: float
    bias: float
    patch: tuple[int, int, int, int]
    sources: tuple[Source, ...]
    total: int
    kernel: np.ndarray | None = None
    window: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class DigitFlow:
    """One digit through the whole network.

    Attributes:
        steps: The preprocessing stages (what the drawing became).
        stages: The network's stages, input first.
        activations: ``{stage name: float32 array of stage.shape}``; the input is ``(1, 28, 28)``
            and the last stage holds the logits.
        probabilities: ``float32 [num_classes]``, the softmax of the logits.
        categories: Class names, index-aligned with ``probabilities``.
    """

    steps: DrawingSteps
    stages: tuple[Stage, ...]
    activations: dict[str, np.ndarray]
    probabilities: np.ndarray
    categories: tuple[str, ...]

    @property
    def predicted(self) -> int:
        """Index of the most likely class."""
        return int(np.argmax(self.probabilities))

    def stage(self, name: str) -> Stage:
        """The stage called ``name``.

        Raises:
            DigitsViewError: No such stage.
        """
        return _find_stage(self.stages, name)


# --------------------------------------------------------------------------------------------- stages


def _pair_first(value: int | tuple[int, ...], what: str, name: str) -> int:
    values = (value,) if isinstance(value, int) else tuple(value)
    if len(set(values)) != 1 or not isinstance(values[0], int):
        raise DigitsViewError(f"{name} has a non-square or non-integer {what} {value!r}; only square windows are read.")
    return int(values[0])


def _window_geometry(module: nn.Module, name: str) -> tuple[int, int, int, int]:
    kernel = _pair_first(module.kernel_size, "kernel", name)
    stride = _pair_first(module.stride if module.stride is not None else kernel, "stride", name)
    padding = _pair_first(module.padding, "padding", name) if not isinstance(module.padding, str) else None
    if padding is None:
        raise DigitsViewError(f"{name} uses padding={module.padding!r}; give it as a number.")
    dilation = _pair_first(getattr(module, "dilation", 1), "dilation", name)
    if getattr(module, "ceil_mode", False):
        raise DigitsViewError(f"{name} uses ceil_mode=True, which this view does not support.")
    return kernel, stride, padding, dilation


def _out_len(length: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def network_stages(model: nn.Module, input_shape: tuple[int, int, int] = (1, 28, 28)) -> tuple[Stage, ...]:
    """Read a chain network (such as :class:`vizlib.digits.LeNet5`) as stages, input first.

    The model's children are taken in order: ``Conv2d`` and ``Linear`` start a stage, max/avg pooling is a
    stage of its own, ``Flatten`` joins maps to a dense layer, and anything else without parameters
    (ReLU, dropout) is pointwise and becomes the shown output of the stage before it.

    Args:
        model: The network; its children must run in the order they are registered.
        input_shape: ``(C, H, W)`` of the input.

    Returns:
        The stages with their output shapes and window geometry.

    Raises:
        DigitsViewError: A child is of a kind this view can't read, or the shapes don't chain.
    """
    stages = [Stage(INPUT_STAGE, "input", "input", "", tuple(input_shape))]
    shape: tuple[int, ...] = tuple(input_shape)
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d):
            if len(shape) != 3 or module.in_channels != shape[0] or module.groups != 1:
                raise DigitsViewError(f"{name} takes {module.in_channels} channels (groups={module.groups}); "
                                      f"its input has shape {shape}.")
            k, s, p, d = _window_geometry(module, name)
            shape = (module.out_channels, _out_len(shape[1], k, s, p, d), _out_len(shape[2], k, s, p, d))
            stages.append(Stage(name, name, "conv", name, shape, k, s, p, d))
        elif isinstance(module, (_MaxPoolNd, _AvgPoolNd)):
            if len(shape) != 3:
                raise DigitsViewError(f"{name} pools a tensor of shape {shape}; pooling needs maps.")
            k, s, p, d = _window_geometry(module, name)
            shape = (shape[0], _out_len(shape[1], k, s, p, d), _out_len(shape[2], k, s, p, d))
            stages.append(Stage(name, name, "pool", name, shape, k, s, p, d))
        elif isinstance(module, nn.Flatten):
            shape = (math.prod(shape),)
        elif isinstance(module, nn.Linear):
            if len(shape) != 1 or module.in_features != shape[0]:
                raise DigitsViewError(f"{name} takes {module.in_features} features; its input has shape {shape}.")
            shape = (module.out_features,)
            stages.append(Stage(name, name, "dense", name, shape))
        elif isinstance(module, _ConvNd) or any(True for _ in module.parameters(recurse=True)):
            raise DigitsViewError(
                f"{name} ({type(module).__name__}) is not a layer this view can read: it shows chains of "
                "Conv2d, pooling, Flatten, Linear and parameter-free pointwise layers."
            )
        else:  # pointwise (ReLU, Dropout, ...): the stage before is shown after it
            last = stages[-1]
            if last.kind == "input":
                raise DigitsViewError(f"{name} comes before any layer; this view needs a layer first.")
            title = last.title + (f" + {type(module).__name__}" if last.output == last.name else "")
            stages[-1] = Stage(last.name, title, last.kind, name, last.shape, last.kernel, last.stride,
                               last.padding, last.dilation)
    if len(stages) < 2:
        raise DigitsViewError(f"{type(model).__name__} has no layers this view can read.")
    return tuple(stages)


def _find_stage(stages: tuple[Stage, ...], name: str) -> Stage:
    for stage in stages:
        if stage.name == name:
            return stage
    raise DigitsViewError(f"No stage called {name!r}; the stages are {', '.join(s.name for s in stages)}.")


def _check_unit(stage: Stage, index: tuple[int, ...]) -> tuple[int, ...]:
    index = tuple(int(i) for i in index)
    if len(index) != len(stage.shape) or any(not 0 <= i < n for i, n in zip(index, stage.shape, strict=True)):
        raise DigitsViewError(f"{stage.name} has units of shape {stage.shape}; {index} is not one of them.")
    return index


# --------------------------------------------------------------------------------------------- patches


def input_patch(stages: tuple[Stage, ...], unit: Unit) -> tuple[int, int, int, int]:
    """The input pixels a unit depends on: ``(top, left, bottom, right)``, bottom/right exclusive.

    Walks back through every window on the way: a window of ``k`` taps at stride ``s``, padding ``p``
    and dilation ``d`` turns output rows ``lo..hi`` into input rows ``lo*s - p .. hi*s - p + d*(k-1)``.
    The result is clipped to the input (rows that fall on the padding see zeros). A dense unit depends
    on the whole input.

    Args:
        stages: From :func:`network_stages`.
        unit: The unit.

    Returns:
        The patch, in input pixel coordinates.

    Raises:
        DigitsViewError: Unknown stage or unit.
    """
    stage = _find_stage(stages, unit.stage)
    index = _check_unit(stage, unit.index)
    height, width = stages[0].shape[1], stages[0].shape[2]
    if not stage.spatial:
        return (0, 0, height, width)
    top, bottom, left, right = index[1], index[1], index[2], index[2]  # inclusive
    position = stages.index(stage)
    for st in reversed(stages[1 : position + 1]):
        span = st.dilation * (st.kernel - 1)
        top, bottom = top * st.stride - st.padding, bottom * st.stride - st.padding + span
        left, right = left * st.stride - st.padding, right * st.stride - st.padding + span
    return (max(top, 0), max(left, 0), min(bottom + 1, height), min(right + 1, width))


# --------------------------------------------------------------------------------------------- the flow


def digit_flow(loaded: LoadedModel, image: np.ndarray) -> DigitFlow:
    """Run one image through the digits network and keep every stage's activations.

    One forward pass with :func:`vizlib.activations.extract` (thread-safe on the shared model).

    Args:
        loaded: The digits model (``vizlib.models.load_model(vizlib.models.DIGITS_MODEL)``).
        image: HxWx3 uint8 RGB: a drawing (dark on light or light on dark) or a prepared digit.

    Returns:
        The flow.

    Raises:
        EmptyDrawingError: The image has no ink (an empty canvas).
        DigitsViewError: The model is not a chain this module can read.
    """
    steps = drawing_steps(image)
    if steps.empty:
        raise EmptyDrawingError("The canvas is empty: draw a digit (or pick an example) first.")
    h, w = loaded.input_size
    stages = network_stages(loaded.model, (loaded.spec.in_channels, h, w))
    outputs = extract(loaded, image, [s.output for s in stages[1:]])
    activations = {INPUT_STAGE: steps.result[None].astype(np.float32)}
    for stage in stages[1:]:
        activations[stage.name] = outputs[stage.output].numpy().astype(np.float32).reshape(stage.shape)
    logits = torch.from_numpy(activations[stages[-1].name].ravel())
    probabilities = torch.softmax(logits.double(), dim=0).float().numpy()
    return DigitFlow(steps, stages, activations, probabilities, tuple(loaded.categories))


# --------------------------------------------------------------------------------------------- sources


def _weights(loaded: LoadedModel, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    module = dict(loaded.model.named_modules())[name]
    with loaded.shared():
        weight = module.weight.detach().float().cpu().numpy().copy()
        bias = None if module.bias is None else module.bias.detach().float().cpu().numpy().copy()
    return weight, bias


def _padded_window(prev: np.ndarray, stage: Stage, y: int, x: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Values under the window of output (y, x) and a mask of the taps inside the input."""
    taps = np.arange(stage.kernel) * stage.dilation
    rows = y * stage.stride - stage.padding + taps
    cols = x * stage.stride - stage.padding + taps
    inside = ((rows >= 0) & (rows < prev.shape[1]))[:, None] & ((cols >= 0) & (cols < prev.shape[2]))[None, :]
    window = np.full((prev.shape[0], stage.kernel, stage.kernel), fill, dtype=np.float32)
    rr, cc = np.nonzero(inside)
    window[:, rr, cc] = prev[:, rows[rr], cols[cc]]
    return window, inside


def _rank(sources: list[Source], k: int | None, by: str) -> tuple[Source, ...]:
    if by not in _SORT_KEYS:
        raise DigitsViewError(f"Sort sources by one of {', '.join(_SORT_KEYS)}, not {by!r}.")
    key = (lambda s: (abs(s.contribution), abs(s.weight))) if by == "contribution" else (
        lambda s: (abs(s.weight), abs(s.contribution)))
    ranked = sorted(sources, key=key, reverse=True)
    return tuple(ranked if k is None else ranked[:k])


def unit_sources(
    loaded: LoadedModel, flow: DigitFlow, unit: Unit, *, k: int | None = 8, by: str = "contribution"
) -> UnitSources:
    """What feeds one unit on this digit: its input patch and its strongest incoming connections.

    Args:
        loaded: The model ``flow`` was computed with (its weights are read, never changed).
        flow: From :func:`digit_flow`.
        unit: The unit.
        k: How many connections to keep (``None``: all of them).
        by: ``"contribution"`` ranks by ``|weight * activation|`` on this digit, ``"weight"`` by ``|weight|``.

    Returns:
        The unit's sources; ``sum(s.contribution for all sources) + bias == pre_activation``.

    Raises:
        DigitsViewError: Unknown stage or unit, or a bad ``by``.
    """
    stage = flow.stage(unit.stage)
    index = _check_unit(stage, unit.index)
    unit = Unit(stage.name, index)
    patch = input_patch(flow.stages, unit)
    value = float(flow.activations[stage.name][index])
    if stage.kind == "input":
        return UnitSources(unit, value, value, 0.0, patch, (), 0)
    prev_stage = flow.stages[flow.stages.index(stage) - 1]
    prev = flow.activations[prev_stage.name]
    if stage.kind == "dense":
        weight, bias = _weights(loaded, stage.name)
        row = weight[index[0]]
        acts = prev.reshape(-1)
        b = 0.0 if bias is None else float(bias[index[0]])
        contributions = row * acts
        sources = [
            Source(Unit(prev_stage.name, tuple(int(v) for v in np.unravel_index(i, prev_stage.shape))),
                   float(row[i]), float(acts[i]), float(contributions[i]))
            for i in range(row.size)
        ]
        pre = float(contributions.astype(np.float64).sum() + b)
        return UnitSources(unit, value, pre, b, patch, _rank(sources, k, by), row.size)
    c, y, x = index
    if stage.kind == "conv":
        weight, bias = _weights(loaded, stage.name)
        kernel = weight[c]
        window, inside = _padded_window(prev, stage, y, x, 0.0)
        b = 0.0 if bias is None else float(bias[c])
        contributions = kernel * window
        sources = []
        taps = np.arange(stage.kernel) * stage.dilation
        for i in range(kernel.shape[0]):
            for dy, dx in zip(*np.nonzero(inside), strict=True):
                yy = y * stage.stride - stage.padding + taps[dy]
                xx = x * stage.stride - stage.padding + taps[dx]
                sources.append(Source(Unit(prev_stage.name, (i, int(yy), int(xx))), float(kernel[i, dy, dx]),
                                      float(window[i, dy, dx]), float(contributions[i, dy, dx])))
        pre = float(contributions.astype(np.float64).sum() + b)
        return UnitSources(unit, value, pre, b, patch, _rank(sources, k, by), len(sources), kernel, window)
    # pooling: one channel's window
    window, inside = _padded_window(prev[c : c + 1], stage, y, x, -np.inf)
    taps = np.arange(stage.kernel) * stage.dilation
    cells = [(int(dy), int(dx)) for dy, dx in zip(*np.nonzero(inside), strict=True)]
    values = np.array([window[0, dy, dx] for dy, dx in cells], dtype=np.float64)
    if _is_max_pool(loaded, stage.name):
        weights = np.zeros(len(cells))
        weights[int(np.argmax(values))] = 1.0
    else:
        weights = np.full(len(cells), 1.0 / (stage.kernel * stage.kernel))
    sources = [
        Source(Unit(prev_stage.name, (c, y * stage.stride - stage.padding + int(taps[dy]),
                                      x * stage.stride - stage.padding + int(taps[dx]))),
               float(w), float(v), float(w * v))
        for (dy, dx), w, v in zip(cells, weights, values, strict=True)
    ]
    pre = float(sum(s.contribution for s in sources))
    window = np.where(np.isfinite(window), window, 0.0).astype(np.float32)
    return UnitSources(unit, value, pre, 0.0, patch, _rank(sources, k, by), len(sources), None, window)


def _is_max_pool(loaded: LoadedModel, name: str) -> bool:
    return isinstance(dict(loaded.model.named_modules())[name], _MaxPoolNd)


# --------------------------------------------------------------------------------------------- inputs


