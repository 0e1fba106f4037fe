"""The effective receptive field: the gradient magnitude of one unit with respect to the input.

After Luo, Li, Urtasun & Zemel (2016), on one image or averaged over random inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import fx, nn

from vizlib.concurrency import GRAPH_LOCK
from vizlib.receptive_field import geometry as geo
from vizlib.receptive_field.analytic import (
    Box,
    IntOrPair,
    ReceptiveField,
    _check_input_size,
    _Entry,
    _entry,
    _layer_node,
    _unwrap,
    receptive_field,
)
from vizlib.receptive_field.geometry import UnsupportedLayerError

if TYPE_CHECKING:
    from vizlib.models import LoadedModel

__all__ = [
    "EffectiveReceptiveField",
    "effective_receptive_field",
    "effective_size",
]




_ERF_CHUNK = 4


@dataclass(frozen=True, eq=False)
class EffectiveReceptiveField:
    """Where one unit's input gradient is large: the effective receptive field (Luo et al., 2016).

    Attributes:
        layer: The layer.
        unit: ``(row, col)`` of the unit in the layer's feature map.
        channel: The channel, or None when the gradient of all channels' sum was taken.
        image_map: ``|d unit / d input|`` summed over colour channels on the given image, HxW float32
            scaled so its maximum is 1 (all zeros when the unit is switched off on this image); None
            without an image.
        random_map: The same, averaged over ``n_random`` random (standard normal) inputs, then scaled
            to maximum 1; None when ``n_random`` is 0.
        n_random: How many random inputs were averaged.
        theoretical: The layer's theoretical receptive field at this input size.
    """

    layer: str
    unit: tuple[int, int]
    channel: int | None
    image_map: np.ndarray | None
    random_map: np.ndarray | None
    n_random: int
    theoretical: ReceptiveField

    @property
    def box(self) -> Box:
        """The unit's theoretical receptive field, as :meth:`ReceptiveField.box`."""
        return self.theoretical.box(*self.unit)


def effective_size(grad_map: np.ndarray, mass: float = 0.95) -> float:
    """Side of a square with as many pixels as the smallest set holding ``mass`` of the map's total.

    A single number for how large an effective receptive field is (0 for an all-zero map).

    Raises:
        ValueError: ``mass`` is not in (0, 1] or the map is not 2-D.
    """
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}.")
    values = np.asarray(grad_map, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"Expected a 2-D map, got shape {values.shape}.")
    flat = np.sort(np.abs(values).ravel())[::-1]
    total = flat.sum()
    if total <= 0:
        return 0.0
    count = int(np.searchsorted(np.cumsum(flat), mass * total - 1e-12 * total) + 1)
    return float(math.sqrt(min(count, flat.size)))


def _extractor(entry: _Entry, model: nn.Module, layer: str) -> fx.GraphModule:
    """A GraphModule computing ``layer``'s output; it shares the model's modules and parameters."""

    def build() -> fx.GraphModule:
        graph, _ = geo.graph_upto(entry.trace.graph, [_layer_node(entry, model, layer)])
        gm = fx.GraphModule(model, graph, f"{type(model).__name__}Upto")
        gm.graph.eliminate_dead_code()
        gm.recompile()
        return gm

    return entry.extractors.get_or_create(layer, build)


@contextmanager
def _shared(lock: Any) -> Iterator[None]:
    read = getattr(lock, "read", None)
    with GRAPH_LOCK.read(), read() if read is not None else nullcontext():
        yield


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _unit_gradient(gm: fx.GraphModule, x: torch.Tensor, unit: tuple[int, int], channel: int | None) -> torch.Tensor:
    """|d unit / d x| summed over input channels, one map per batch item (on x's device)."""
    x = x.detach().clone().requires_grad_(True)
    out = gm(x)
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 4):
        raise UnsupportedLayerError("The layer's output is not a feature map or a feature vector.")
    if channel is not None and not 0 <= channel < out.shape[1]:
        raise ValueError(f"channel must be between 0 and {out.shape[1] - 1}, got {channel}.")
    picked = out if out.dim() == 2 else out[:, :, unit[0], unit[1]]
    picked = picked[:, channel] if channel is not None else picked.sum(dim=1)
    (grad,) = torch.autograd.grad(picked.sum(), x)
    return grad.abs().sum(dim=1)


def _normalised(grad_map: torch.Tensor) -> np.ndarray:
    arr = grad_map.detach().to("cpu", torch.float32).numpy()
    peak = float(arr.max()) if arr.size else 0.0
    return (arr / peak if peak > 0 else np.zeros_like(arr)).astype(np.float32)


def effective_receptive_field(
    model: nn.Module | LoadedModel,
    layer: str,
    image: torch.Tensor | None = None,
    unit: tuple[int, int] | None = None,
    channel: int | None = None,
    *,
    n_random: int = 8,
    input_size: IntOrPair = 224,
    in_channels: int | None = None,
    seed: int = 0,
) -> EffectiveReceptiveField:
    """The input-gradient magnitude of one unit: on an image and averaged over random inputs.

    Safe on a shared model: it runs a separate fx GraphModule that shares the model's parameters,
    attaches no hooks, changes no mode and no parameter, and only the input requires a gradient
    (``torch.autograd.grad``, so no ``.grad`` is written). Don't call it while holding the model's
    or :data:`vizlib.concurrency.GRAPH_LOCK`'s lock; it takes them itself.

    Args:
        model: A network or a :class:`vizlib.models.LoadedModel`.
        layer: A name from ``model.named_modules()``.
        image: A preprocessed input ``Tensor[1, C, H, W]`` (or ``[C, H, W]``), e.g. from
            ``LoadedModel.preprocess``; None for random inputs only.
        unit: ``(row, col)`` in the layer's feature map (default: the centre unit).
        channel: One channel of the unit, or None for the sum over all channels.
        n_random: Random inputs to average (0 for none).
        input_size: Input size for the random inputs when there is no image.
        in_channels: Input channels for the random inputs when there is no image (default: the
            registry model's, else 3).
        seed: Seed of the random inputs (the global random state is not touched).

    Returns:
        The maps and the theoretical receptive field for comparison.

    Raises:
        ValueError: No image and ``n_random`` 0, a bad image shape, or a unit/channel outside the layer.
        ReceptiveFieldError: The model can't be traced or has no such layer.

    On a registry model, a CUDA out-of-memory error is retried on the model's CPU twin
    (:func:`vizlib.models.run_with_cpu_fallback`, which reports the fallback to the caller).
    """
    net, lock = _unwrap(model)
    if in_channels is None:
        in_channels = int(getattr(getattr(model, "spec", None), "in_channels", 3))
    if n_random < 0 or (image is None and n_random == 0):
        raise ValueError("Give an image, or a number of random inputs (n_random) of at least 1.")
    if image is not None:
        if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or (image.dim() == 4 and len(image) != 1):
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image must be a preprocessed Tensor[1, C, H, W], got {shape}.")
        image = image if image.dim() == 4 else image[None]
        hw, in_channels = (int(image.shape[2]), int(image.shape[3])), int(image.shape[1])
    else:
        hw = _check_input_size(input_size)
    theoretical = receptive_field(net, layer, hw)
    oh, ow = theoretical.output_hw
    unit = (oh // 2, ow // 2) if unit is None else (int(unit[0]), int(unit[1]))
    if not (0 <= unit[0] < oh and 0 <= unit[1] < ow):
        raise ValueError(f"unit {unit} is outside the {oh}x{ow} feature map of {layer!r}.")

    def maps(net: nn.Module, lock: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        gm = _extractor(_entry(net), net, layer)
        device, dtype = _model_device_dtype(net)
        image_map = random_map = None
        with _shared(lock), torch.inference_mode(False), torch.enable_grad():
            if image is not None:
                image_map = _normalised(_unit_gradient(gm, image.to(device, dtype), unit, channel)[0])
            if n_random:
                gen = torch.Generator().manual_seed(seed)
                noise = torch.randn(n_random, in_channels, *hw, generator=gen)
                total = torch.zeros(hw, dtype=torch.float64)
                for chunk in noise.split(_ERF_CHUNK):
                    total += _unit_gradient(gm, chunk.to(device, dtype), unit, channel).sum(0).double().cpu()
                random_map = _normalised(total / n_random)
        return image_map, random_map

    if net is model:  # a bare network: no registry twin to fall back on
        image_map, random_map = maps(net, lock)
    else:  # a registry model: out of GPU memory -> the same on its CPU twin, with the session's notice
        from vizlib.models import run_with_cpu_fallback

        image_map, random_map = run_with_cpu_fallback(model, lambda lm: maps(lm.model, lm.lock))  # type: ignore[arg-type]
    return EffectiveReceptiveField(
        layer=layer,
        unit=unit,
        channel=channel,
        image_map=image_map,
        random_map=random_map,
        n_random=int(n_random),
        theoretical=theoretical,
    )
