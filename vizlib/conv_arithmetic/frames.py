"""Step-by-step frames of convolution, pooling and transposed convolution, for the animations.

Each frame holds one step (one output cell, or one input cell scattered for the transposed
convolution); the last frame's output equals the reference operator's (:mod:`.reference`).

Symbols: ``i`` input size, ``k`` kernel size, ``s`` stride, ``p`` padding, ``d`` dilation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vizlib.conv_arithmetic.reference import PoolMode, _as_2d, _canvas_shape, _frozen, _pool_geometry
from vizlib.conv_arithmetic.sizes import InvalidParameterError, _check_int, output_size

__all__ = [
    "ConvFrame",
    "Frame",
    "TransposedFrame",
    "conv2d_frames",
    "conv_transpose2d_frames",
    "describe",
    "pool2d",
    "pool2d_frames",
]


#: Frame counts above this are refused (a 16x16 input with a 1x1 kernel gives 256 frames).
_MAX_FRAMES = 4096


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, eq=False)
class ConvFrame:
    """One step of a convolution or pooling: one output cell being computed.

    Arrays are read-only. ``grid`` is the padded input (for ceil-mode pooling extended by the cells a
    window sticks out beyond the padding); the window's taps are ``grid[np.ix_(rows, cols)]``.

    Attributes:
        mode: ``"conv"``, ``"max"`` or ``"avg"``.
        index: This frame's position in the sequence (0-based).
        total: Number of frames in the sequence (one per output cell).
        position: The output cell (row, column) computed in this frame.
        grid: Padded input; padding holds 0 (convolution, average) or -inf (max); overhang holds NaN.
        padding_mask: True on padding cells of ``grid``.
        outside_mask: True on ceil-mode overhang cells of ``grid`` (always False for a convolution).
        padding, stride, dilation: The parameters.
        rows, cols: Grid indices of the window's taps (spaced ``dilation`` apart).
        kernel: The kernel (convolution) or None (pooling).
        window: Grid values under the taps, shape ``(kh, kw)``.
        terms: Convolution: the element-wise products ``window * kernel``; pooling: the window values
            that take part (padding -inf for max, overhang NaN).
        divisor: Average pooling: what the sum is divided by; otherwise 1.
        value: The output cell's value.
        output: The output so far; cells not yet computed are NaN.
    """

    mode: Literal["conv", "max", "avg"]
    index: int
    total: int
    position: tuple[int, int]
    grid: np.ndarray
    padding_mask: np.ndarray
    outside_mask: np.ndarray
    padding: int
    stride: int
    dilation: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    kernel: np.ndarray | None
    window: np.ndarray
    terms: np.ndarray
    divisor: int
    value: float
    output: np.ndarray


@dataclass(frozen=True, eq=False)
class TransposedFrame:
    """One step of a transposed convolution: one input cell scales the kernel and adds it into the output.

    The scatter happens on an uncropped ``canvas`` (every cell any product lands on, plus the output
    padding cells beyond them); the output is ``canvas[p:p+oh, p:p+ow]``. Arrays are read-only.

    Attributes:
        index: This frame's position in the sequence (0-based).
        total: Number of frames (one per input cell).
        position: The input cell (row, column) scattered in this frame.
        input: The input, shape ``(H, W)``.
        kernel: The kernel, shape ``(kh, kw)``.
        scale: ``input[position]``.
        contribution: ``scale * kernel``.
        padding, stride, dilation, output_padding: The parameters.
        rows, cols: Canvas indices this contribution lands on (``position * stride + dilation * tap``).
        canvas: The uncropped sum so far.
        canvas_overlap: How many products have landed on each canvas cell so far.
        output: ``canvas`` cropped: the transposed convolution's output so far.
        overlap: ``canvas_overlap`` cropped the same way.
    """

    index: int
    total: int
    position: tuple[int, int]
    input: np.ndarray
    kernel: np.ndarray
    scale: float
    contribution: np.ndarray
    padding: int
    stride: int
    dilation: int
    output_padding: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    canvas: np.ndarray
    canvas_overlap: np.ndarray
    output: np.ndarray
    overlap: np.ndarray


Frame = ConvFrame | TransposedFrame


def _check_frame_count(n: int) -> None:
    if n > _MAX_FRAMES:
        raise InvalidParameterError(
            f"That gives {n} animation frames; the limit is {_MAX_FRAMES}. Use a smaller input or a larger stride."
        )


def conv2d_frames(x: object, kernel: object, s: int = 1, p: int = 0, d: int = 1) -> tuple[ConvFrame, ...]:
    """Step-by-step frames of a 2D convolution (cross-correlation), one per output cell, row by row.

    Args:
        x: Input, shape ``(H, W)``.
        kernel: Kernel, shape ``(kh, kw)``.
        s, p, d: Stride, padding, dilation.

    Returns:
        The frames; the last frame's ``output`` equals ``torch.nn.functional.conv2d``.

    Raises:
        ConvArithmeticError: Invalid parameters, an empty output or too many frames.
    """
    x, w = _as_2d("input", x), _as_2d("kernel", kernel)
    oh = output_size(x.shape[0], w.shape[0], s, p, d)
    ow = output_size(x.shape[1], w.shape[1], s, p, d)
    _check_frame_count(oh * ow)
    grid = _frozen(np.pad(x, p))
    padding_mask = _frozen(np.pad(np.zeros(x.shape, dtype=bool), p, constant_values=True))
    outside_mask = _frozen(np.zeros(grid.shape, dtype=bool))
    w = _frozen(w.copy())
    output = np.full((oh, ow), np.nan)
    frames = []
    for index, (r, c) in enumerate(np.ndindex(oh, ow)):
        rows = tuple(r * s + d * a for a in range(w.shape[0]))
        cols = tuple(c * s + d * b for b in range(w.shape[1]))
        window = grid[np.ix_(rows, cols)]
        terms = window * w
        value = float(terms.sum())
        output[r, c] = value
        frames.append(
            ConvFrame(
                mode="conv",
                index=index,
                total=oh * ow,
                position=(r, c),
                grid=grid,
                padding_mask=padding_mask,
                outside_mask=outside_mask,
                padding=p,
                stride=s,
                dilation=d,
                rows=rows,
                cols=cols,
                kernel=w,
                window=_frozen(window),
                terms=_frozen(terms),
                divisor=1,
                value=value,
                output=_frozen(output.copy()),
            )
        )
    return tuple(frames)


def pool2d_frames(
    x: object,
    k: int,
    s: int | None = None,
    p: int = 0,
    d: int = 1,
    *,
    mode: PoolMode = "max",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> tuple[ConvFrame, ...]:
    """Step-by-step frames of max or average pooling, one per output cell, row by row.

    Args:
        x: Input, shape ``(H, W)``.
        k: Window size.
        s: Stride (``None``: the window size).
        p: Padding, at most ``k // 2``.
        d: Dilation; max pooling only (PyTorch's average pooling has none).
        mode: ``"max"`` or ``"avg"``.
        ceil_mode: Round the output size up (see :func:`pool_output_size`).
        count_include_pad: Average pooling: count padding cells in the divisor.

    Returns:
        The frames; the last frame's ``output`` equals torch's ``max_pool2d`` / ``avg_pool2d``.

    Raises:
        ConvArithmeticError: Invalid parameters, an empty output or too many frames.
    """
    if mode not in ("max", "avg"):
        raise InvalidParameterError(f"Unknown pooling mode {mode!r}; use 'max' or 'avg'.")
    if mode == "avg" and d != 1:
        raise InvalidParameterError("Average pooling has no dilation in PyTorch; set the dilation to 1.")
    x = _as_2d("input", x)
    k = _check_int("window size", k, 1)
    s = k if s is None else s
    oh, gh = _pool_geometry(x.shape[0], k, s, p, d, ceil_mode)
    ow, gw = _pool_geometry(x.shape[1], k, s, p, d, ceil_mode)
    _check_frame_count(oh * ow)
    h, w_ = x.shape
    region = np.full((gh, gw), 2, dtype=np.int8)  # 0 input, 1 padding, 2 overhang
    region[: h + 2 * p, : w_ + 2 * p] = 1
    region[p : p + h, p : p + w_] = 0
    grid = np.full((gh, gw), np.nan)
    grid[region == 1] = -np.inf if mode == "max" else 0.0
    grid[p : p + h, p : p + w_] = x
    grid = _frozen(grid)
    padding_mask, outside_mask = _frozen(region == 1), _frozen(region == 2)
    output = np.full((oh, ow), np.nan)
    frames = []
    for index, (r, c) in enumerate(np.ndindex(oh, ow)):
        rows = tuple(r * s + d * a for a in range(k))
        cols = tuple(c * s + d * b for b in range(k))
        window = grid[np.ix_(rows, cols)]
        kinds = region[np.ix_(rows, cols)]
        if mode == "max":
            value = float(np.max(window, where=kinds == 0, initial=-np.inf))
            divisor = 1
        else:
            divisor = int(np.count_nonzero(kinds <= (1 if count_include_pad else 0)))
            value = float(np.sum(window, where=kinds == 0) / divisor)
        output[r, c] = value
        frames.append(
            ConvFrame(
                mode=mode,
                index=index,
                total=oh * ow,
                position=(r, c),
                grid=grid,
                padding_mask=padding_mask,
                outside_mask=outside_mask,
                padding=p,
                stride=s,
                dilation=d,
                rows=rows,
                cols=cols,
                kernel=None,
                window=_frozen(window),
                terms=_frozen(window.copy()),
                divisor=divisor,
                value=value,
                output=_frozen(output.copy()),
            )
        )
    return tuple(frames)


def pool2d(
    x: object,
    k: int,
    s: int | None = None,
    p: int = 0,
    d: int = 1,
    *,
    mode: PoolMode = "max",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Max or average pooling, as ``torch.nn.functional.max_pool2d`` / ``avg_pool2d`` on one channel.

    Padding is ignored by max pooling (it acts as minus infinity). Average pooling divides by the
    number of window cells inside the padded input (``count_include_pad=True``) or inside the
    input; cells a ceil-mode window sticks out beyond the padding are never counted.

    Args:
        x: Input, shape ``(H, W)``.
        k: Window size.
        s: Stride (``None``: the window size).
        p: Padding, at most ``k // 2``.
        d: Dilation; max pooling only.
        mode: ``"max"`` or ``"avg"``.
        ceil_mode: Round the output size up (see :func:`pool_output_size`).
        count_include_pad: Average pooling: count padding cells in the divisor.

    Returns:
        The output, float64.

    Raises:
        ConvArithmeticError: Invalid parameters or an empty output.
    """
    return pool2d_frames(x, k, s, p, d, mode=mode, ceil_mode=ceil_mode, count_include_pad=count_include_pad)[
        -1
    ].output.copy()


def conv_transpose2d_frames(
    x: object, kernel: object, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0
) -> tuple[TransposedFrame, ...]:
    """Step-by-step frames of a transposed convolution, one per input cell, row by row.

    Args:
        x: Input, shape ``(H, W)``.
        kernel: Kernel, shape ``(kh, kw)``.
        s, p, d: Stride, padding (cropped from each side of the output), dilation.
        output_padding: Extra cells on the bottom and right of the output.

    Returns:
        The frames; the last frame's ``output`` equals ``torch.nn.functional.conv_transpose2d`` and its
        ``overlap`` is :func:`overlap_counts`.

    Raises:
        ConvArithmeticError: Invalid parameters, an empty output or too many frames.
    """
    x, w = _as_2d("input", x), _as_2d("kernel", kernel)
    oh = output_size(x.shape[0], w.shape[0], s, p, d, transposed=True, output_padding=output_padding)
    ow = output_size(x.shape[1], w.shape[1], s, p, d, transposed=True, output_padding=output_padding)
    _check_frame_count(x.size)
    x, w = _frozen(x.copy()), _frozen(w.copy())
    canvas = np.zeros(_canvas_shape(x.shape, w.shape, s, p, d, (oh, ow)))
    counts = np.zeros(canvas.shape, dtype=np.int64)
    crop = (slice(p, p + oh), slice(p, p + ow))
    frames = []
    for index, (r, c) in enumerate(np.ndindex(*x.shape)):
        rows = tuple(r * s + d * a for a in range(w.shape[0]))
        cols = tuple(c * s + d * b for b in range(w.shape[1]))
        contribution = x[r, c] * w
        canvas[np.ix_(rows, cols)] += contribution
        counts[np.ix_(rows, cols)] += 1
        frames.append(
            TransposedFrame(
                index=index,
                total=x.size,
                position=(r, c),
                input=x,
                kernel=w,
                scale=float(x[r, c]),
                contribution=_frozen(contribution),
                padding=p,
                stride=s,
                dilation=d,
                output_padding=output_padding,
                rows=rows,
                cols=cols,
                canvas=_frozen(canvas.copy()),
                canvas_overlap=_frozen(counts.copy()),
                output=_frozen(canvas[crop].copy()),
                overlap=_frozen(counts[crop].copy()),
            )
        )
    return tuple(frames)


def _number(v: float) -> str:
    if np.isnan(v):
        return ""
    if np.isinf(v):
        return "-inf" if v < 0 else "inf"
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def describe(frame: Frame) -> str:
    """One line of arithmetic for a frame, e.g. ``out[0, 1] = 2·2 + 3·0 + ... = 16``.

    Args:
        frame: A frame from :func:`conv2d_frames`, :func:`pool2d_frames` or :func:`conv_transpose2d_frames`.

    Returns:
        Plain text (``·`` for multiplication).
    """
    if isinstance(frame, TransposedFrame):
        r, c = frame.position
        r0, c0 = frame.rows[0] - frame.padding, frame.cols[0] - frame.padding
        return (
            f"in[{r}, {c}] = {_number(frame.scale)}: add {_number(frame.scale)} × kernel into the output "
            f"at rows {r0}..{r0 + frame.rows[-1] - frame.rows[0]}, "
            f"columns {c0}..{c0 + frame.cols[-1] - frame.cols[0]} (stride {frame.stride})"
        )
    r, c = frame.position
    head = f"out[{r}, {c}] = "
    if frame.mode == "conv":
        assert frame.kernel is not None
        terms = " + ".join(
            f"{_number(v)}·{_number(wv)}" for v, wv in zip(frame.window.ravel(), frame.kernel.ravel(), strict=True)
        )
        return f"{head}{terms} = {_number(frame.value)}"
    values = ", ".join(_number(v) for v in frame.terms.ravel() if not np.isnan(v))
    if frame.mode == "max":
        return f"{head}max({values}) = {_number(frame.value)}"
    inside = [v for v, pad, out in zip(frame.terms.ravel(), *_window_masks(frame), strict=True) if not out]
    return f"{head}({' + '.join(_number(v) for v in inside)}) / {frame.divisor} = {_number(frame.value)}"


def _window_masks(frame: ConvFrame) -> tuple[np.ndarray, np.ndarray]:
    idx = np.ix_(frame.rows, frame.cols)
    return frame.padding_mask[idx].ravel(), frame.outside_mask[idx].ravel()
