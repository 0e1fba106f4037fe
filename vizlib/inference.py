"""A loaded model and running it: :class:`LoadedModel`, :func:`classify`, :func:`predict`, the CPU fallback.

A :class:`LoadedModel` carries the network (eval mode, on its device), the preprocessing its weights were trained
with and its class names, so the three can never drift apart. It is shared read-only by every session of the app
(see :mod:`vizlib.concurrency` for the locking rules). The registry that builds them is :mod:`vizlib.models`, which
re-exports every public name here.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import nn

from vizlib.concurrency import COMPUTE_SLOTS, GRAPH_LOCK, RWLock
from vizlib.devices import DeviceFallbackWarning, is_oom, report_fallback

if TYPE_CHECKING:
    from vizlib.models import ModelSpec

__all__ = ["LoadedModel", "Prediction", "classify", "predict", "run_with_cpu_fallback"]

@dataclass(frozen=True)
class Prediction:
    """The top classes of one image, and how long the forward pass took."""

    top: tuple[tuple[str, float], ...]
    indices: tuple[int, ...]
    seconds: float
    device: str


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A registry model ready to run, shared read-only between sessions.

    Attributes:
        name: Registry name.
        model: The network, in eval mode, on ``device``. Never mutate it.
        device: Where it runs.
        categories: Class names, index-aligned with the model's outputs.
        spec: The registry entry.
        pretrained: Whether the pretrained weights were loaded.
        lock: Hold ``lock.write()`` (via :meth:`exclusive`) to attach anything to ``model``.
    """

    name: str
    model: nn.Module
    device: torch.device
    categories: list[str]
    spec: ModelSpec
    pretrained: bool
    lock: RWLock = field(default_factory=RWLock, repr=False)
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return self.spec.input_size

    def resize(self, image: np.ndarray) -> np.ndarray:
        """The picture the network sees: the whole image resized to the input size (no crop), uint8.

        The whole image is kept (not centre-cropped) so every feature map, receptive field and
        class-activation map lines up with the picture the user chose. Always HxWx3: a grayscale
        network's input is shown with its gray value in all three channels.
        """
        image = _check_image(image)
        if self.spec.family == "digits":  # the digit is cropped, centred and scaled like MNIST
            from vizlib.digits import preprocess_drawing

            gray = np.rint(preprocess_drawing(image) * 255).astype(np.uint8)
            return np.repeat(gray[:, :, None], 3, axis=2)
        h, w = self.input_size
        interp = cv2.INTER_AREA if image.shape[0] > h or image.shape[1] > w else cv2.INTER_LINEAR
        return cv2.resize(image, (w, h), interpolation=interp)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """HxWx3 uint8 RGB -> the normalised batch ``Tensor[1, C, h, w]`` on :attr:`device`.

        Raises:
            ValueError: Not an HxWx3 uint8 image (for the digits model also: no ink to read).
        """
        if self.spec.family == "digits":
            from vizlib.digits import digits_preprocess

            return digits_preprocess(_check_image(image)).to(self.device)
        pixels = self.resize(image).astype(np.float32) / 255.0
        if self.spec.in_channels == 1:  # a grayscale network: ITU-R 601 luma, as OpenCV's RGB2GRAY
            pixels = pixels @ np.asarray([[0.299], [0.587], [0.114]], dtype=np.float32)
        mean = np.asarray(self.spec.mean, dtype=np.float32)
        std = np.asarray(self.spec.std, dtype=np.float32)
        pixels = (pixels - mean[: pixels.shape[2]]) / std[: pixels.shape[2]]
        tensor = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]
        return tensor.to(self.device)

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Context for plain forward passes (many threads at once)."""
        with GRAPH_LOCK.read(), self.lock.read():
            yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Context for anything that attaches hooks to :attr:`model` (one thread at a time)."""
        with GRAPH_LOCK.read(), self.lock.write():
            yield

    def cpu_twin(self) -> LoadedModel:
        """The same model on the CPU (itself when already there); built once, on first need.

        Built for the moment the GPU has run out of memory: every parameter and buffer is copied straight to
        the CPU and the module tree is copied around those copies, so nothing new is allocated on the GPU.
        """
        if self.device.type == "cpu":
            return self
        twin = self.cache.get("cpu_twin")
        if twin is None:
            with self.lock.read():
                model = _copy_to_cpu(self.model)
            twin = LoadedModel(self.name, model, torch.device("cpu"), self.categories, self.spec, self.pretrained)
            self.cache["cpu_twin"] = twin
        return twin


def _copy_to_cpu(model: nn.Module) -> nn.Module:
    """A CPU copy of ``model`` that never copies a tensor on its own device (only device -> host)."""
    memo: dict[int, object] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) in memo:
            continue
        data = tensor.detach().to("cpu", copy=True)
        memo[id(tensor)] = nn.Parameter(data, requires_grad=False) if isinstance(tensor, nn.Parameter) else data
    return copy.deepcopy(model, memo).eval()


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise ValueError(f"Expected an HxWx3 uint8 RGB image, got {desc}. Decode files with vizlib.images.load_image.")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("The image has no pixels.")
    return image


# --------------------------------------------------------------------------------------------- inference


def run_with_cpu_fallback(loaded: LoadedModel, fn: Callable[[LoadedModel], object]) -> object:
    """Run ``fn(loaded)``; if the GPU runs out of memory, run ``fn`` on the CPU twin instead.

    The fallback is reported to the caller's :func:`vizlib.devices.collect_fallbacks` (the app shows it to that
    session only) and as a :class:`vizlib.devices.DeviceFallbackWarning` for scripts and notebooks.
    """
    with COMPUTE_SLOTS.slot():  # a pass of a request waits its turn when every core is busy with others
        return _run_or_fall_back(loaded, fn)


def _run_or_fall_back(loaded: LoadedModel, fn: Callable[[LoadedModel], object]) -> object:
    try:
        return fn(loaded)
    except Exception as exc:
        if not is_oom(exc):
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    message = f"The GPU ran out of memory; {loaded.name} ran on the CPU for this request."
    report_fallback(message)  # to this request's own collector (the app's session), never a global list
    warnings.warn(DeviceFallbackWarning(message), stacklevel=3)  # for notebook and script users
    return fn(loaded.cpu_twin())


def classify(loaded: LoadedModel, image: np.ndarray, k: int = 5) -> Prediction:
    """Top-``k`` classes of ``image`` with probabilities, and the forward pass's time."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")

    def run(lm: LoadedModel) -> Prediction:
        x = lm.preprocess(image)
        with lm.shared(), torch.no_grad():
            start = time.perf_counter()
            logits = lm.model(x)
            if lm.device.type == "cuda":
                torch.cuda.synchronize(lm.device)
            seconds = time.perf_counter() - start
        probs = torch.softmax(logits.float(), dim=1)[0].cpu()
        top = torch.topk(probs, min(k, probs.numel()))
        indices = tuple(int(i) for i in top.indices)
        return Prediction(
            top=tuple((lm.categories[i], float(p)) for i, p in zip(indices, top.values, strict=True)),
            indices=indices,
            seconds=seconds,
            device=str(lm.device),
        )

    return run_with_cpu_fallback(loaded, run)  # type: ignore[return-value]


def predict(loaded: LoadedModel, image: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """Class names with probabilities, highest first.

    Args:
        loaded: A model from :func:`load_model`.
        image: HxWx3 uint8 RGB array.
        k: How many classes.

    Returns:
        ``k`` pairs ``(class name, probability)``.
    """
    return list(classify(loaded, image, k).top)
