"""1-D stacks: how the receptive field grows layer by layer, and the dilation demo (which inputs each output sees)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ConvStack1D",
    "conv_stack_1d",
    "receptive_field_growth",
]


@dataclass(frozen=True)
class ConvStack1D:
    """Which units of a 1-D stack of convolutions (no padding) feed one output unit.

    Attributes:
        kernel_sizes: Per layer.
        strides: Per layer.
        dilations: Per layer.
        lengths: Units per level; level 0 is the input, level ``l`` the output of layer ``l``.
        output_unit: The chosen unit of the top level.
        feeds: Per level, the (sorted) units the output unit depends on; ``feeds[0]`` are input units.
        edges: Per layer ``l`` (index ``l - 1``), the connections ``(unit at level l, unit at level l-1)``
            on the paths into the output unit.
        growth: Receptive-field size after each layer.
        paths: For every input unit, the number of paths from it to the output unit (0 outside the
            receptive field): larger in the middle, the seed of the effective receptive field.
    """

    kernel_sizes: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    lengths: tuple[int, ...]
    output_unit: int
    feeds: tuple[tuple[int, ...], ...]
    edges: tuple[tuple[tuple[int, int], ...], ...]
    growth: tuple[int, ...]
    paths: tuple[int, ...]

    @property
    def receptive_field(self) -> int:
        """Span of the input units that feed the output unit (first to last, gaps included)."""
        return self.feeds[0][-1] - self.feeds[0][0] + 1


_MAX_DEMO_INPUTS = 4096


def _stack_params(
    kernel_sizes: Sequence[int], strides: Sequence[int] | None, dilations: Sequence[int] | None
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    ks = tuple(kernel_sizes)
    ss = tuple(strides) if strides is not None else (1,) * len(ks)
    ds = tuple(dilations) if dilations is not None else (1,) * len(ks)
    if not ks or len(ss) != len(ks) or len(ds) != len(ks):
        raise ValueError(
            f"Give one kernel size, stride and dilation per layer (got {len(ks)}, {len(ss)} and {len(ds)})."
        )
    for what, values in (("kernel size", ks), ("stride", ss), ("dilation", ds)):
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values):
            raise ValueError(f"Every {what} must be a whole number of at least 1, got {list(values)}.")
    return tuple(map(int, ks)), tuple(map(int, ss)), tuple(map(int, ds))


def conv_stack_1d(
    kernel_sizes: Sequence[int],
    strides: Sequence[int] | None = None,
    dilations: Sequence[int] | None = None,
    *,
    n_inputs: int | None = None,
    output_unit: int | None = None,
) -> ConvStack1D:
    """Trace one output unit of a 1-D convolution stack back to the inputs that feed it.

    With kernel 2 and stride 2, two layers see 4 inputs; with dilations 1, 2, 4, 8 and stride 1
    (WaveNet) the field doubles with each layer: 2, 4, 8, 16.

    Args:
        kernel_sizes: Kernel size per layer.
        strides: Stride per layer (default 1).
        dilations: Dilation per layer (default 1).
        n_inputs: Input length (default: the receptive field plus room for a few more output units).
        output_unit: Which top-level unit to trace (default: the middle one).

    Returns:
        The stack with the units and connections that feed the output unit.

    Raises:
        ValueError: Bad parameters, an input too short for one output unit, or a field too large to draw.
    """
    ks, ss, ds = _stack_params(kernel_sizes, strides, dilations)
    growth = receptive_field_growth(ks, ss, ds)
    total_stride = math.prod(ss)
    if n_inputs is None:
        n_inputs = growth[-1] + 2 * total_stride
    if n_inputs > _MAX_DEMO_INPUTS or growth[-1] > _MAX_DEMO_INPUTS:
        raise ValueError(f"This stack needs more than {_MAX_DEMO_INPUTS} inputs; use fewer or smaller layers.")
    lengths = [int(n_inputs)]
    for k, s, d in zip(ks, ss, ds, strict=True):
        n = (lengths[-1] - d * (k - 1) - 1) // s + 1
        if n < 1:
            raise ValueError(
                f"{n_inputs} inputs are too few: the stack's receptive field is {growth[-1]} inputs. Use more inputs."
            )
        lengths.append(n)
    top = lengths[-1] // 2 if output_unit is None else int(output_unit)
    if not 0 <= top < lengths[-1]:
        raise ValueError(f"output_unit must be between 0 and {lengths[-1] - 1}, got {output_unit}.")
    feeds: list[tuple[int, ...]] = [(top,)]
    edges: list[tuple[tuple[int, int], ...]] = []
    counts = {top: 1}
    for level in range(len(ks), 0, -1):
        k, s, d = ks[level - 1], ss[level - 1], ds[level - 1]
        links = tuple((u, u * s + t * d) for u in feeds[0] for t in range(k))
        below: dict[int, int] = {}
        for parent, child in links:
            below[child] = below.get(child, 0) + counts[parent]
        counts = below
        edges.insert(0, links)
        feeds.insert(0, tuple(sorted(below)))
    return ConvStack1D(
        kernel_sizes=ks,
        strides=ss,
        dilations=ds,
        lengths=tuple(lengths),
        output_unit=top,
        feeds=tuple(feeds),
        edges=tuple(edges),
        growth=tuple(growth),
        paths=tuple(counts.get(i, 0) for i in range(lengths[0])),
    )


def receptive_field_growth(
    kernel_sizes: Sequence[int], strides: Sequence[int] | None = None, dilations: Sequence[int] | None = None
) -> list[int]:
    """Receptive-field size after each layer of a 1-D stack (Araujo et al.'s recurrence).

    ``r_l = r_{l-1} + (k_l - 1) * d_l * (s_1 * ... * s_{l-1})``, starting from ``r_0 = 1``.

    Args:
        kernel_sizes: Kernel size of each layer.
        strides: Stride of each layer (default all 1).
        dilations: Dilation of each layer (default all 1).

    Returns:
        One size per layer.

    Raises:
        ValueError: Lengths differ, or a value is below 1.
    """
    ks, ss, ds = _stack_params(kernel_sizes, strides, dilations)
    sizes, r, jump = [], 1, 1
    for k, s, d in zip(ks, ss, ds, strict=True):
        r += (k - 1) * d * jump
        jump *= s
        sizes.append(r)
    return sizes
