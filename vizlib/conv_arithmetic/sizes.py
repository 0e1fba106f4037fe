"""Output sizes of convolution, transposed convolution and pooling, as PyTorch computes them, and the formulas.

Symbols: ``i`` input size, ``k`` kernel size, ``s`` stride, ``p`` padding, ``d`` dilation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "ConvArithmeticError",
    "Formula",
    "InvalidParameterError",
    "OutputTooSmallError",
    "output_size",
    "output_size_formula",
    "pool_output_size",
]


class ConvArithmeticError(ValueError):
    """The parameters do not describe a valid convolution or pooling; the message says what to change."""


class InvalidParameterError(ConvArithmeticError):
    """A parameter is out of range (for example a stride of 0 or a negative padding)."""


class OutputTooSmallError(ConvArithmeticError):
    """The parameters are valid one by one but together give an output smaller than 1 cell."""


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidParameterError(f"The {name} must be a whole number, got {value!r}.")
    if value < minimum:
        raise InvalidParameterError(f"The {name} must be at least {minimum}, got {value}.")
    return int(value)


def _check_common(i: int, k: int, s: int, p: int, d: int) -> tuple[int, int, int, int, int]:
    return (
        _check_int("input size", i, 1),
        _check_int("kernel size", k, 1),
        _check_int("stride", s, 1),
        _check_int("padding", p, 0),
        _check_int("dilation", d, 1),
    )


def output_size(
    i: int, k: int, s: int = 1, p: int = 0, d: int = 1, *, transposed: bool = False, output_padding: int = 0
) -> int:
    """Output size of a convolution or transposed convolution along one axis, as PyTorch computes it.

    Convolution: ``o = floor((i + 2p - d(k-1) - 1) / s) + 1``.
    Transposed convolution: ``o = (i-1)s - 2p + d(k-1) + output_padding + 1``.

    Args:
        i: Input size.
        k: Kernel size.
        s: Stride.
        p: Zero padding on each side (for a transposed convolution: cells cropped from each side).
        d: Dilation (the kernel spans ``d(k-1) + 1`` cells).
        transposed: Compute the size for ``conv_transpose`` instead of ``conv``.
        output_padding: Extra cells added on one side of a transposed convolution's output;
            must be smaller than the stride or the dilation.

    Returns:
        The output size, at least 1.

    Raises:
        InvalidParameterError: A parameter is out of range.
        OutputTooSmallError: The kernel does not fit, or the padding crops everything away.
    """
    i, k, s, p, d = _check_common(i, k, s, p, d)
    op = _check_int("output padding", output_padding, 0)
    span = d * (k - 1) + 1
    if not transposed:
        if op:
            raise InvalidParameterError("Output padding only applies to a transposed convolution; set it to 0.")
        o = (i + 2 * p - span) // s + 1
        if i + 2 * p < span:
            raise OutputTooSmallError(
                f"The kernel spans {span} cells (kernel {k}, dilation {d}) but the padded input has only "
                f"{i + 2 * p} (input {i} + 2 x padding {p}); the output would be empty. "
                "Use a smaller kernel or dilation, or more padding."
            )
        return o
    if op >= max(s, d):
        raise InvalidParameterError(
            f"The output padding ({op}) must be smaller than the stride ({s}) or the dilation ({d}). "
            f"Use at most {max(s, d) - 1}."
        )
    o = (i - 1) * s - 2 * p + d * (k - 1) + op + 1
    if o < 1:
        raise OutputTooSmallError(
            f"The padding {p} crops {2 * p} cells from an output of {o + 2 * p}, leaving {o}. "
            f"Use a padding of at most {(o + 2 * p - 1) // 2}."
        )
    return o


def pool_output_size(i: int, k: int, s: int | None = None, p: int = 0, d: int = 1, *, ceil_mode: bool = False) -> int:
    """Output size of max or average pooling along one axis, as PyTorch computes it.

    Floor mode (default): ``o = floor((i + 2p - d(k-1) - 1) / s) + 1``, the same as a convolution.
    Ceil mode: ``o = ceil((i + 2p - d(k-1) - 1) / s) + 1``, then minus 1 if the last window would
    start at or beyond ``i + p`` (every window must start inside the input or its left padding).

    Args:
        i: Input size.
        k: Window size.
        s: Stride; ``None`` means the window size, as in ``torch.nn.MaxPool2d``.
        p: Padding on each side; at most ``k // 2``.
        d: Dilation (max pooling only in PyTorch).
        ceil_mode: Round up instead of down.

    Returns:
        The output size, at least 1.

    Raises:
        InvalidParameterError: A parameter is out of range, including padding above half the window.
        OutputTooSmallError: The window does not fit in the padded input.
    """
    i, k, s, p, d = _check_common(i, k, k if s is None else s, p, d)
    if p > k // 2:
        raise InvalidParameterError(
            f"Pooling padding must be at most half the window size: {k // 2} for a window of {k}, got {p}."
        )
    span = d * (k - 1) + 1
    numerator = i + 2 * p - span + (s - 1 if ceil_mode else 0)
    o = numerator // s + 1
    if ceil_mode and (o - 1) * s >= i + p:
        o -= 1
    if o < 1:
        raise OutputTooSmallError(
            f"The pooling window spans {span} cells (window {k}, dilation {d}) but the padded input has only "
            f"{i + 2 * p}; the output would be empty. Use a smaller window or dilation."
        )
    return o


@dataclass(frozen=True)
class Formula:
    """An output-size formula as LaTeX: the general form, the form with the numbers filled in, the value."""

    general: str
    filled: str
    value: int


def output_size_formula(
    i: int,
    k: int,
    s: int = 1,
    p: int = 0,
    d: int = 1,
    *,
    mode: Literal["conv", "transposed", "pool"] = "conv",
    output_padding: int = 0,
    ceil_mode: bool = False,
) -> Formula:
    """The output-size formula with the current numbers filled in, for display.

    Args:
        i, k, s, p, d: As in :func:`output_size`.
        mode: ``"conv"``, ``"transposed"`` or ``"pool"``.
        output_padding: Transposed convolution only.
        ceil_mode: Pooling only.

    Returns:
        A :class:`Formula`.

    Raises:
        ConvArithmeticError: The parameters are invalid (see :func:`output_size`).
    """
    if mode == "transposed":
        value = output_size(i, k, s, p, d, transposed=True, output_padding=output_padding)
        general = r"o = (i-1)\,s - 2p + d\,(k-1) + \mathrm{output\_padding} + 1"
        filled = rf"o = ({i}-1)\cdot {s} - 2\cdot {p} + {d}\cdot({k}-1) + {output_padding} + 1 = {value}"
        return Formula(general, filled, value)
    if mode == "pool":
        value = pool_output_size(i, k, s, p, d, ceil_mode=ceil_mode)
        left, right = (r"\left\lceil", r"\right\rceil") if ceil_mode else (r"\left\lfloor", r"\right\rfloor")
    elif mode == "conv":
        value = output_size(i, k, s, p, d)
        left, right = r"\left\lfloor", r"\right\rfloor"
    else:
        raise InvalidParameterError(f"Unknown mode {mode!r}; use 'conv', 'transposed' or 'pool'.")
    general = rf"o = {left}\frac{{i + 2p - d\,(k-1) - 1}}{{s}}{right} + 1"
    filled = rf"o = {left}\frac{{{i} + 2\cdot {p} - {d}\cdot({k}-1) - 1}}{{{s}}}{right} + 1 = {value}"
    if mode == "pool" and ceil_mode and value != (i + 2 * p - d * (k - 1) - 1 + s - 1) // s + 1:
        filled += r"\quad(\text{minus 1: the last window would start in the right padding})"
    return Formula(general, filled, value)
