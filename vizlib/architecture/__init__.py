"""Architectures and their cost: layers' parameters and MACs, model walks, building blocks, exercises."""

from vizlib.architecture.layers import LayerCost, conv_cost, conv_output_size, linear_cost, local_cost
from vizlib.architecture.walk import (
    LayerRow,
    ModelCost,
    UncountableModelError,
    architecture_costs,
    layer_costs,
    model_cost,
)

__all__ = [
    "LayerCost",
    "LayerRow",
    "ModelCost",
    "UncountableModelError",
    "architecture_costs",
    "conv_cost",
    "conv_output_size",
    "layer_costs",
    "linear_cost",
    "local_cost",
    "model_cost",
]
