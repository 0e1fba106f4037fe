"""Receptive fields, the receptive-field lesson: which input pixels each unit of a network sees.

Modules: :mod:`~vizlib.receptive_field.analytic` (exact theoretical fields of every layer, from the torch.fx
graph), :mod:`~vizlib.receptive_field.geometry` (the engine behind them), :mod:`~vizlib.receptive_field.stack_1d`
(how a 1-D stack's field grows; the dilation demo), :mod:`~vizlib.receptive_field.effective` (the effective
receptive field: a unit's input gradient). Figures: :mod:`vizlib.figures.receptive_field`.
"""

from __future__ import annotations

from vizlib.receptive_field.analytic import (
    Box,
    LayerNotFoundError,
    ReceptiveField,
    ReceptiveFieldError,
    UnsupportedLayerError,
    UntraceableModelError,
    architecture_fields,
    receptive_field,
    receptive_fields,
)
from vizlib.receptive_field.effective import (
    EffectiveReceptiveField,
    effective_receptive_field,
    effective_size,
)
from vizlib.receptive_field.stack_1d import (
    ConvStack1D,
    conv_stack_1d,
    receptive_field_growth,
)

__all__ = [
    "Box",
    "ConvStack1D",
    "EffectiveReceptiveField",
    "LayerNotFoundError",
    "ReceptiveField",
    "ReceptiveFieldError",
    "UnsupportedLayerError",
    "UntraceableModelError",
    "architecture_fields",
    "conv_stack_1d",
    "effective_receptive_field",
    "effective_size",
    "receptive_field",
    "receptive_field_growth",
    "receptive_fields",
]
