"""Feature visualization by optimisation: gradient ascent on the input until one channel fires strongly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import fx, nn

from vizlib.activations import ExtractionError, build_extractor, trace_graph
from vizlib.caching import LRUCache
from vizlib.featurevis.augment import random_view
from vizlib.featurevis.param import FourierImage
from vizlib.models import LoadedModel, run_with_cpu_fallback

__all__ = ["LEARNING_RATE", "MAX_SIZE", "MAX_STEPS", "channel_objective", "visualize"]

LEARNING_RATE = 0.05
MAX_SIZE = 512
MAX_STEPS = 2048
_EXTRACTORS = 8

ProgressFn = Callable[[float, str], None]


def _extractor(loaded: LoadedModel, layer: str) -> fx.GraphModule:
    """The network cut after ``layer`` (shares the parameters; nothing attached to the model)."""
    cache: LRUCache[str, fx.GraphModule] = loaded.cache.setdefault("featurevis_extractors", LRUCache(_EXTRACTORS))
    return cache.get_or_create(layer, lambda: build_extractor(loaded.model, [layer]))


_RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish)


def _objective_layer(loaded: LoadedModel, layer: str) -> str:
    """The layer whose output is maximised: for an elementwise rectifier, the module that feeds it.

    A ReLU channel that is zero on the grey start picture has zero gradient and would never move; its input
    (the pre-activation, as Lucid optimises) has the same channels and the same preferred pattern.
    """
    modules = dict(loaded.model.named_modules())
    if not isinstance(modules.get(layer), _RECTIFIERS):
        return layer
    graph = trace_graph(loaded.model)
    for node in graph.graph.nodes:
        if node.op == "call_module" and node.target == layer:
            source = node.args[0] if node.args else None
            if isinstance(source, fx.Node) and source.op == "call_module" and str(source.target) in modules:
                return str(source.target)
            break
    return layer


def channel_objective(output: torch.Tensor, channel: int) -> torch.Tensor:
    """The mean of ``channel`` over the batch and every position (``N x C x h x w`` or ``N x C``)."""
    return output[:, channel].mean()


def _normalise(loaded: LoadedModel, rgb: torch.Tensor) -> torch.Tensor:
    """0..1 RGB -> what the network expects (its mean/std; gray networks get ITU-R 601 luma)."""
    if loaded.spec.in_channels == 1:
        rgb = (rgb * torch.tensor([0.299, 0.587, 0.114], device=rgb.device)[:, None, None]).sum(1, keepdim=True)
    mean = torch.tensor(loaded.spec.mean, device=rgb.device)[:, None, None]
    std = torch.tensor(loaded.spec.std, device=rgb.device)[:, None, None]
    return (rgb - mean) / std


def _check(loaded: LoadedModel, layer: str, channel: int, size: int, steps: int) -> str:
    if not 8 <= size <= MAX_SIZE:
        raise ValueError(f"The size must be 8 to {MAX_SIZE} pixels, got {size}.")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"The number of steps must be 1 to {MAX_STEPS}, got {steps}.")
    if layer not in dict(loaded.model.named_modules()) or not layer:
        raise ExtractionError(f"{loaded.name} has no layer named {layer!r}. Use names from model.named_modules().")
    h, w = loaded.input_size
    probe = torch.zeros(1, loaded.spec.in_channels, h, w, device=loaded.device)
    extractor = _extractor(loaded, layer)  # traced outside the shared lock (tracing takes the graph lock)
    with loaded.shared(), torch.no_grad():
        channels = int(extractor(probe)[layer].shape[1])
    if isinstance(channel, bool) or not 0 <= int(channel) < channels:
        raise ValueError(f"{layer} has channels 0 to {channels - 1}, not {channel}.")
    return _objective_layer(loaded, layer)


def visualize(
    loaded: LoadedModel,
    layer: str,
    channel: int,
    *,
    size: int = 128,
    steps: int = 256,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """A picture that makes ``channel`` of ``layer`` fire strongly, found by gradient ascent.

    The picture is a :class:`~vizlib.featurevis.param.FourierImage` (decorrelated, Fourier-space); each step
    shows the network a randomly jittered, scaled and rotated view of it (:func:`~vizlib.featurevis.augment.
    random_view`) and moves the parameters with Adam to raise the channel's mean activation (for a rectifier
    layer, its input's: a dead ReLU channel has no gradient to climb). The gradient
    flows to the input only: the model's parameters stay frozen and nothing is attached to it, so it runs
    under ``loaded.shared()`` beside other sessions.

    Args:
        loaded: A registry model.
        layer: A name from ``model.named_modules()``.
        channel: The channel (output feature) of that layer.
        size: Side of the square picture, in pixels.
        steps: Optimisation steps.
        seed: Seeds the start picture and the random views (same seed, same picture).
        progress: ``progress(fraction, message)`` every few steps (it may raise to cancel).

    Returns:
        ``size x size x 3`` uint8 RGB.

    Raises:
        vizlib.activations.ExtractionError: Unknown layer, or a model torch.fx can't trace.
        ValueError: Channel, size or steps out of range.
    """
    target = _check(loaded, layer, channel, size, steps)

    def run(lm: LoadedModel) -> np.ndarray:
        generator = torch.Generator().manual_seed(int(seed))
        image = FourierImage((size, size), generator, device=lm.device)
        optimiser = torch.optim.Adam(image.parameters(), lr=LEARNING_RATE)
        extractor = _extractor(lm, target)
        every = max(1, steps // 50)
        for step in range(steps):
            optimiser.zero_grad(set_to_none=True)
            view = random_view(image.rgb(), generator)
            with lm.shared():
                loss = -channel_objective(extractor(_normalise(lm, view))[target], int(channel))
            loss.backward()
            optimiser.step()
            if progress is not None and (step % every == 0 or step == steps - 1):
                progress((step + 1) / steps, f"step {step + 1} of {steps}")
        return image.to_uint8()

    return run_with_cpu_fallback(loaded, run)  # type: ignore[return-value]
