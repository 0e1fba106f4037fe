"""Which channels made this prediction: each channel of a layer scored by activation × gradient.

The score of channel ``k`` for class ``c`` is ``sum_ij A_kij * dy_c/dA_kij`` (the first-order estimate of how
much the class's logit would fall if the channel were switched off), from one forward pass and one gradient
that flows from the logit back to the layer only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vizlib.activations import extract, layer_table
from vizlib.cam import Evidence
from vizlib.cam import graph as cam_graph
from vizlib.models import LoadedModel, run_with_cpu_fallback
from vizlib.overlay import overlay

__all__ = ["ChannelContribution", "feature_maps_layer", "last_block_module", "rank_channels", "where_it_fires"]


@dataclass(frozen=True)
class ChannelContribution:
    """One channel's part in a prediction.

    Attributes:
        channel: The channel index.
        score: Activation × gradient, summed over the map.
        activation: The channel's map on the image (``h x w`` float32).
    """

    channel: int
    score: float
    activation: np.ndarray


def last_block_module(loaded: LoadedModel) -> str:
    """The last convolutional block as a name from ``model.named_modules()`` (what feature visualization and the
    Feature maps page take).

    :func:`vizlib.cam.default_layer` may name a second call of a reused module (EfficientNet-Lite's final
    ``_swish_1`` is its stem's ReLU6 module run again); then the module that feeds it, whose output has the same
    channels (the normalisation before the rectifier), is taken.
    """
    default = cam_graph.default_layer(loaded)
    modules = dict(loaded.model.named_modules())
    if default in modules:
        return default
    graph = cam_graph.traced(loaded)
    node = cam_graph.resolve_layer(graph, default)
    first_call: dict[str, object] = {}
    for candidate in graph.gm.graph.nodes:
        if candidate.op == "call_module":
            first_call.setdefault(str(candidate.target), candidate)
    while node is not None:
        target = str(node.target)
        if node.op == "call_module" and target in modules and first_call.get(target) is node:
            return target
        node = node.args[0] if node.args and hasattr(node.args[0], "op") else None
    return default


def feature_maps_layer(loaded: LoadedModel, layer: str) -> str:
    """The layer the Feature maps page lists that shows the channels of ``layer``.

    That page lists the leaf layers with a ``(C, h, w)`` output (:func:`vizlib.activations.layer_table`). A block
    that is a container is not among them (ResNet's ``layer4``, the last block :func:`last_block_module` names):
    then the last listed layer inside it with as many channels as the block puts out is taken (ResNet-18's
    ``layer4.1.bn2``: the last convolution's normalised output, before the residual sum and the ReLU), else the
    first listed layer after the block with that many channels (after a block that concatenates branches, as
    GoogLeNet's ``inception5b``, the pooling of its output). ``layer`` itself when nothing fits.

    Args:
        loaded: A registry model.
        layer: A name from ``model.named_modules()``.

    Returns:
        A layer-table name (or ``layer``).
    """
    rows = [row for row in layer_table(loaded) if len(row.output_shape) == 3]
    if any(row.name == layer for row in rows):
        return layer
    inside = [i for i, row in enumerate(rows) if row.name.startswith(f"{layer}.")]
    if not inside:
        return layer
    h, w = loaded.input_size
    width = int(extract(loaded, np.zeros((h, w, 3), np.uint8), [layer])[layer].shape[0])
    candidates = [rows[i] for i in reversed(inside)] + list(rows[inside[-1] + 1 :])
    return next((row.name for row in candidates if row.output_shape[0] == width), layer)


def rank_channels(
    loaded: LoadedModel, image: np.ndarray, target: int, layer: str | None = None, k: int = 6
) -> tuple[str, tuple[ChannelContribution, ...]]:
    """The ``k`` channels of ``layer`` that contribute most to ``target``'s logit, strongest first.

    Args:
        loaded: A registry model (shared; the gradient goes to the layer's activation, never the weights).
        image: ``H x W x 3`` uint8.
        target: The class index.
        layer: A module name; default the last convolutional block (:func:`last_block_module`).
        k: How many channels.

    Returns:
        ``(layer name, contributions)``.

    Raises:
        vizlib.cam.LayerError: The layer is unknown or not a convolutional map.
    """
    x = loaded.preprocess(image)

    def run(lm: LoadedModel) -> tuple[str, tuple[ChannelContribution, ...]]:
        graph = cam_graph.traced(lm)
        name = layer if layer is not None else last_block_module(lm)
        node = cam_graph.resolve_layer(graph, name)
        evidence = Evidence(lm, x.to(lm.device), int(target), node, need_grad=True)
        activation, gradient = evidence.activation.float(), evidence.gradient.float()
        scores = (activation * gradient).sum(dim=(1, 2)).cpu().numpy()
        order = np.argsort(-scores, kind="stable")[:k]
        maps = activation.cpu().numpy()
        return name, tuple(ChannelContribution(int(c), float(scores[c]), maps[c].astype(np.float32)) for c in order)

    return run_with_cpu_fallback(loaded, run)  # type: ignore[return-value]


def where_it_fires(image: np.ndarray, activation: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The channel's map (scaled to ``[0, 1]`` by its maximum, negatives as 0) resized onto ``image`` and blended.

    Returns:
        ``H x W x 3`` uint8.
    """
    h, w = image.shape[:2]
    top = float(activation.max())
    scaled = np.clip(activation / top, 0, 1) if top > 0 else np.zeros_like(activation)
    return overlay(image, cv2.resize(scaled.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR), "jet", alpha)
