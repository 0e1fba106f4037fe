"""Class activation maps: which parts of the image made the network choose a class.

:func:`compute` returns, for each method asked, an ``H x W`` float32 map in ``[0, 1]`` aligned with
the image passed in. The methods fall into three groups:

* From the chosen layer's activations ``A`` (``K x h x w``) and the gradient ``G`` of the target's
  score (its logit) with respect to them: ``"cam"``, ``"gradcam"``, ``"gradcam++"``, ``"xgradcam"``,
  ``"layercam"``. However many of these are asked for, one call runs one forward pass and one
  gradient. Unless ``"saliency"`` is asked too, that gradient goes back from the logit to the layer
  only: the network is split at the layer (:func:`vizlib.cam.graph.split_module`), nothing flows to the
  input; never into the weights.
* ``"scorecam"``: each channel of ``A``, upsampled and scaled to ``[0, 1]``, masks the input; the
  target's probability on the masked image weighs the channel (batched forward passes, no gradient).
* From gradients at the input: ``"saliency"`` (Captum's ``Saliency``, computed here: when the call
  also asks for layer methods, the forward pass runs with the input requiring grad and one backward
  pass gives the layer's gradient and the input's together, see :func:`vizlib.cam.graph.tap_module`),
  and by Captum ``"integrated_gradients"``, ``"guided_backprop"``, ``"guided_gradcam"``.

Every map is computed at its own resolution (the layer's or the network input's), resized to the
image with bilinear interpolation and scaled so its minimum is 0 and its maximum 1 (a map that is
the same everywhere comes back as zeros). The rectified methods clip negative evidence before that;
"cam" keeps its sign, as in Zhou et al. The input-gradient maps are clipped at their 99th
percentile first so a few extreme pixels don't wash out the rest.

Thread safety: the layer split, the tapped network and Score-CAM only run plain forward passes on separate
GraphModules that share the parameters (``loaded.shared()``); guided backpropagation attaches
Captum's hooks to a wrapper of the model under ``loaded.exclusive()`` and removes them before it
returns, even on error. The shared model itself never gets a hook, never changes mode and its
parameters keep ``requires_grad=False``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import fx

from vizlib.cam import graph as cam_graph
from vizlib.cam.faithfulness import Faithfulness, faithfulness
from vizlib.cam.graph import CAMError, CAMHeadError, LayerError, default_layer
from vizlib.models import LoadedModel, run_with_cpu_fallback

__all__ = [
    "GRADIENT_CAMS",
    "IG_STEPS",
    "METHODS",
    "SCORECAM_BATCH",
    "TITLES",
    "CAMError",
    "CAMHeadError",
    "Evidence",
    "Explainer",
    "Faithfulness",
    "LayerError",
    "cam_unsupported_reason",
    "compute",
    "default_layer",
    "faithfulness",
]

#: Integrated Gradients: Riemann/Gauss-Legendre steps, and how many of them run per forward pass.
IG_STEPS = 32
IG_BATCH = 16
#: Score-CAM: masked images per forward pass.
SCORECAM_BATCH = 32
_CLIP_PERCENTILE = 99.0


class Evidence:
    """What one call knows about one image, each piece computed at most once, on first use.

    Attributes:
        loaded: The model.
        x: The preprocessed image, ``1 x C x H x W`` on the model's device.
        target: The class index explained.
        node: The fx node of the chosen layer.
    """

    def __init__(
        self, loaded: LoadedModel, x: torch.Tensor, target: int, node: fx.Node, *, need_grad: bool,
        progress: Callable[[float, str], None] | None = None,
    ):
        self.loaded = loaded
        self.x = x
        self.target = target
        self.node = node
        self._need_grad = need_grad
        self._need_input_grad = False  # compute() sets it when a method reads input_gradient
        self._progress = progress
        self._span = (0.0, 1.0)

    def report(self, fraction: float, message: str = "") -> None:
        """Tell the caller's progress callback how far the current method got (0..1); it may raise to cancel."""
        if self._progress is not None:
            lo, hi = self._span
            self._progress(lo + (hi - lo) * min(max(fraction, 0.0), 1.0), message)

    @cached_property
    def _layer_pass(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if self._need_input_grad:
            return self._shared_pass(layer=self._need_grad)
        split = cam_graph.split_module(self.loaded, self.node)
        with self.loaded.shared(), torch.set_grad_enabled(self._need_grad):
            activation, logits = split(self.x)
            gradient = None
            if self._need_grad:
                score = logits[0, self.target]
                if not score.requires_grad:
                    raise LayerError(f"The output of {self.loaded.name} does not depend on the chosen layer.")
                (gradient,) = torch.autograd.grad(score, activation)
        return activation.detach()[0], gradient if gradient is None else gradient[0], None

    def _shared_pass(self, *, layer: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One forward pass with the input requiring grad and one backward pass from the target's logit to
        the layer (when ``layer``) and the input together: ``(A, dlogit/dA or None, dlogit/dx)``, batch dropped."""
        x = self.x.detach().clone().requires_grad_(True)
        tap = cam_graph.tap_module(self.loaded, self.node)
        with self.loaded.shared(), torch.enable_grad():  # no hooks: gradients of a plain forward pass
            activation, logits = tap(x)
            score = logits[0, self.target]
            wanted = [activation, x] if layer else [x]
            live = [t for t in wanted if t.requires_grad] if score.requires_grad else []
            grads = torch.autograd.grad(score, live, allow_unused=True) if live else ()
        found = {id(t): g for t, g in zip(live, grads, strict=True)}
        gradient = found.get(id(activation)) if layer else None
        if layer and gradient is None:
            raise LayerError(f"The output of {self.loaded.name} does not depend on the chosen layer.")
        input_gradient = found.get(id(x))
        if input_gradient is None:  # the output does not depend on the input: a flat map
            input_gradient = torch.zeros_like(x)
        return activation.detach()[0], None if gradient is None else gradient[0], input_gradient[0]

    @property
    def activation(self) -> torch.Tensor:
        """The layer's output ``A``, ``K x h x w``."""
        return self._layer_pass[0]

    @property
    def gradient(self) -> torch.Tensor:
        """``G = d logit[target] / dA``, ``K x h x w`` (from the same forward pass as :attr:`activation`)."""
        gradient = self._layer_pass[1]
        if gradient is None:
            raise RuntimeError("This Evidence was built without the layer gradient.")
        return gradient

    @property
    def input_gradient(self) -> torch.Tensor:
        """``d logit[target] / dx``, ``C x H x W``, from the same forward and backward pass as :attr:`activation`
        and :attr:`gradient` when asked before them (as :func:`compute` arranges), else from a pass of its own."""
        if "_layer_pass" not in self.__dict__:
            self._need_input_grad = True
        gradient = self._layer_pass[2]
        return gradient if gradient is not None else self._input_pass

    @cached_property
    def _input_pass(self) -> torch.Tensor:
        return self._shared_pass(layer=False)[2]

    @cached_property
    def head_weights(self) -> torch.Tensor:
        """The target's row of the linear layer after global average pooling (for CAM)."""
        head = cam_graph.linear_head(cam_graph.traced(self.loaded), self.node)
        return head.weight[self.target].detach()


class Explainer(ABC):
    """One explanation method. Subclasses turn an :class:`Evidence` into a raw 2-D map."""

    name: ClassVar[str]
    title: ClassVar[str]
    #: Whether it reads :attr:`Evidence.gradient` (all such methods share one gradient per call).
    needs_gradient: ClassVar[bool] = False
    #: Whether it reads :attr:`Evidence.input_gradient` (shared with the layer gradient's pass).
    needs_input_gradient: ClassVar[bool] = False
    #: Whether to clip the raw map at its 99th percentile before scaling (input-gradient maps).
    clip_outliers: ClassVar[bool] = False

    @abstractmethod
    def explain(self, evidence: Evidence) -> torch.Tensor:
        """The raw map: ``h x w`` at the layer's resolution or ``H x W`` at the network input's."""


def _weighted(weights: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    return torch.einsum("k,khw->hw", weights, activation)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den != 0, num / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(num))


class CAM(Explainer):
    """Zhou et al. 2016: ``sum_k w[target, k] A_k`` with ``w`` the linear layer after global average pooling."""

    name = "cam"
    title = "CAM"

    def explain(self, evidence: Evidence) -> torch.Tensor:
        return _weighted(evidence.head_weights.to(evidence.activation.dtype), evidence.activation)


class GradCAM(Explainer):
    """Selvaraju et al. 2017: ``ReLU(sum_k mean(G_k) A_k)``."""

    name = "gradcam"
    title = "Grad-CAM"
    needs_gradient = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        return torch.relu(_weighted(evidence.gradient.mean(dim=(1, 2)), evidence.activation))


class GradCAMpp(Explainer):
    """Chattopadhay et al. 2018 (eq. 19 with the exponential's derivatives):
    ``alpha = G^2 / (2 G^2 + sum_ab(A_k) G^3)``, weights ``sum_ij alpha ReLU(G)``, map ``ReLU(sum_k w_k A_k)``."""

    name = "gradcam++"
    title = "Grad-CAM++"
    needs_gradient = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        a, g = evidence.activation, evidence.gradient
        g2 = g * g
        alpha = _safe_div(g2, 2 * g2 + a.sum(dim=(1, 2))[:, None, None] * g2 * g)
        weights = (alpha * torch.relu(g)).sum(dim=(1, 2))
        return torch.relu(_weighted(weights, a))


class XGradCAM(Explainer):
    """Fu et al. 2020: weights ``sum_ij(A_k G_k) / sum_ij(A_k)``, map ``ReLU(sum_k w_k A_k)``."""

    name = "xgradcam"
    title = "XGrad-CAM"
    needs_gradient = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        a, g = evidence.activation, evidence.gradient
        weights = _safe_div((a * g).sum(dim=(1, 2)), a.sum(dim=(1, 2)))
        return torch.relu(_weighted(weights, a))


class LayerCAM(Explainer):
    """Jiang et al. 2021: ``ReLU(sum_k ReLU(G_k) * A_k)``, a weight per location."""

    name = "layercam"
    title = "LayerCAM"
    needs_gradient = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        return torch.relu((torch.relu(evidence.gradient) * evidence.activation).sum(dim=0))


class ScoreCAM(Explainer):
    """Wang et al. 2020: channel ``k`` upsampled and scaled to ``[0, 1]`` masks the input; the target's
    softmax probability on that image is the channel's weight; map ``ReLU(sum_k w_k A_k)``.

    Channels that are constant over the image carry no mask and get weight 0 without a forward pass.
    """

    name = "scorecam"
    title = "Score-CAM"

    def explain(self, evidence: Evidence) -> torch.Tensor:
        a, x, model = evidence.activation, evidence.x, evidence.loaded.model
        flat = a.flatten(1)
        active = torch.nonzero(flat.amax(dim=1) > flat.amin(dim=1)).flatten()
        weights = torch.zeros(a.shape[0], device=a.device, dtype=a.dtype)
        for start in range(0, active.numel(), SCORECAM_BATCH):
            index = active[start : start + SCORECAM_BATCH]
            up = F.interpolate(a[index][:, None], size=x.shape[2:], mode="bilinear", align_corners=False)
            lo = up.amin(dim=(2, 3), keepdim=True)
            hi = up.amax(dim=(2, 3), keepdim=True)
            masks = _safe_div(up - lo, (hi - lo).expand_as(up))
            with evidence.loaded.shared(), torch.no_grad():
                logits = model(x * masks)
            weights[index] = torch.softmax(logits.float(), dim=1)[:, evidence.target].to(a.dtype)
            done = start + len(index)
            evidence.report(done / active.numel(), f"{done} of {active.numel()} channels")
        return torch.relu(_weighted(weights, a))


# --------------------------------------------------------------------------------------------- Captum


def _channel_max_abs(attribution: torch.Tensor) -> torch.Tensor:
    return attribution.detach()[0].abs().amax(dim=0)


class Saliency(Explainer):
    """Simonyan et al. 2014 (as Captum's ``Saliency`` with ``abs=True``): ``max_c |d logit / d x_c|`` per pixel.

    The input gradient comes from the backward pass the layer methods of the same call use."""

    name = "saliency"
    title = "Saliency"
    clip_outliers = True
    needs_input_gradient = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        return evidence.input_gradient.abs().amax(dim=0)


def black_input(loaded: LoadedModel, x: torch.Tensor) -> torch.Tensor:
    """A black picture as the network sees it: ``(0 - mean) / std`` per channel, shaped like ``x``.

    Equal to preprocessing an all-black image for the photo models, and also defined for the small networks
    whose preprocessing refuses an empty picture (the digits LeNet crops to the ink: "The canvas is empty").
    """
    channels = x.shape[1]
    mean = torch.as_tensor(loaded.spec.mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(loaded.spec.std, dtype=x.dtype, device=x.device)
    if mean.numel() != channels:
        mean, std = mean[:1].expand(channels), std[:1].expand(channels)
    return ((0.0 - mean) / std).view(1, channels, 1, 1).expand_as(x).clone()


class IntegratedGradients(Explainer):
    """Sundararajan et al. 2017 (Captum): gradients along the straight path from a black image,
    ``|sum_c attribution_c|`` per pixel."""

    name = "integrated_gradients"
    title = "Integrated Gradients"
    clip_outliers = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        from captum.attr import IntegratedGradients as CaptumIG

        baseline = black_input(evidence.loaded, evidence.x)
        with evidence.loaded.shared():  # no hooks: batched gradients of plain forward passes
            attribution = CaptumIG(evidence.loaded.model).attribute(
                evidence.x.clone().requires_grad_(),
                baselines=baseline,
                target=evidence.target,
                n_steps=IG_STEPS,
                internal_batch_size=IG_BATCH,
            )
        return attribution.detach()[0].sum(dim=0).abs()


class GuidedBackprop(Explainer):
    """Springenberg et al. 2015 (Captum ``GuidedBackprop``): only positive gradients pass each ReLU
    on the way back; ``max_c |.|`` per pixel."""

    name = "guided_backprop"
    title = "Guided Backprop"
    clip_outliers = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        from captum.attr import GuidedBackprop as CaptumGB

        wrapper = cam_graph.captum_module(evidence.loaded, evidence.node)
        with evidence.loaded.exclusive():  # Captum hooks the wrapper's ReLUs for the duration of the call
            attribution = CaptumGB(wrapper).attribute(evidence.x.clone().requires_grad_(), target=evidence.target)
        return _channel_max_abs(attribution)


class GuidedGradCAM(Explainer):
    """Selvaraju et al. 2017 (Captum ``GuidedGradCam``): guided backpropagation times the upsampled
    Grad-CAM of the chosen layer; ``max_c |.|`` per pixel."""

    name = "guided_gradcam"
    title = "Guided Grad-CAM"
    clip_outliers = True

    def explain(self, evidence: Evidence) -> torch.Tensor:
        from captum.attr import GuidedGradCam

        wrapper = cam_graph.captum_module(evidence.loaded, evidence.node)
        with evidence.loaded.exclusive():
            attribution = GuidedGradCam(wrapper, wrapper.get_submodule("cam_layer")).attribute(
                evidence.x.clone().requires_grad_(), target=evidence.target, interpolate_mode="bilinear"
            )
        return _channel_max_abs(attribution)


_EXPLAINERS: tuple[type[Explainer], ...] = (
    CAM,
    GradCAM,
    GradCAMpp,
    XGradCAM,
    LayerCAM,
    ScoreCAM,
    IntegratedGradients,
    Saliency,
    GuidedBackprop,
    GuidedGradCAM,
)
_REGISTRY: dict[str, Explainer] = {cls.name: cls() for cls in _EXPLAINERS}
#: Every method name, in the order the page lists them.
METHODS: tuple[str, ...] = tuple(_REGISTRY)
#: Method name -> display title.
TITLES: dict[str, str] = {cls.name: cls.title for cls in _EXPLAINERS}
#: The five methods one forward pass and one layer gradient serve.
GRADIENT_CAMS: tuple[str, ...] = ("cam", "gradcam", "gradcam++", "xgradcam", "layercam")


# --------------------------------------------------------------------------------------------- API


def _check_methods(methods: Sequence[str] | str) -> list[str]:
    if isinstance(methods, str):
        methods = (methods,)
    names = list(dict.fromkeys(methods))
    unknown = [m for m in names if m not in _REGISTRY]
    if unknown:
        raise CAMError(f"Unknown method {', '.join(map(repr, unknown))}. Choose from: {', '.join(METHODS)}.")
    return names


def _check_target(loaded: LoadedModel, target: int) -> int:
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise CAMError(f"The target must be a class index (an int), got {type(target).__name__}.")
    n = len(loaded.categories)
    if not 0 <= int(target) < n:
        raise CAMError(f"Class index {int(target)} is out of range: {loaded.name} has classes 0 to {n - 1}.")
    return int(target)


def _finish(raw: torch.Tensor, size: tuple[int, int], clip: bool) -> np.ndarray:
    """Optionally clip outliers, resize to ``size`` (bilinear), scale to [0, 1] (float32)."""
    m = np.nan_to_num(raw.detach().float().cpu().numpy().astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if clip:
        m = np.minimum(m, np.percentile(m, _CLIP_PERCENTILE)).astype(np.float32)
    h, w = size
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    lo, hi = float(m.min()), float(m.max())
    if hi <= lo:
        return np.zeros((h, w), np.float32)
    return ((m - lo) / (hi - lo)).astype(np.float32)


def cam_unsupported_reason(loaded: LoadedModel, layer: str | None = None) -> str | None:
    """Why "cam" can't explain ``layer`` of this model, or ``None`` when it can (for greying out a choice).

    Raises:
        LayerError: The layer is unknown or not a convolutional map.
    """
    graph = cam_graph.traced(loaded)
    node = cam_graph.resolve_layer(graph, layer or default_layer(loaded))
    try:
        cam_graph.linear_head(graph, node)
    except CAMHeadError as exc:
        return str(exc)
    return None


def compute(
    loaded: LoadedModel,
    image: np.ndarray,
    target: int,
    methods: Sequence[str] = ("gradcam",),
    layer: str | None = None,
    *,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Class activation maps of ``image`` for class ``target``, one per method.

    Args:
        loaded: A model from :func:`vizlib.models.load_model` (shared read-only; nothing stays attached).
        image: ``H x W x 3`` uint8 RGB. The network sees it whole, resized (``loaded.resize``).
        target: The class index to explain.
        methods: Names from :data:`METHODS`, e.g. ``("gradcam", "layercam")``.
        layer: A module name (``"layer4"``, any of :func:`vizlib.activations.conv_layers`) or fx node
            name; ``None`` picks the last convolutional block (:func:`default_layer`).
        progress: Called as ``progress(fraction, message)`` between methods and, for Score-CAM, between
            batches (e.g. a :class:`vizlib.jobs.Progress`, whose cancel raises from it).

    Returns:
        ``{method: map}`` in the order asked; each map ``H x W`` float32 in ``[0, 1]``, 1 where the
        method finds the most evidence for ``target``.

    Raises:
        CAMError: An unknown method or a class index out of range.
        LayerError: The layer is unknown or is not a convolutional (C, h, w) map.
        CAMHeadError: "cam" was asked for a model or layer without a global-average-pooling -> linear head
            (VGG, AlexNet, MobileNet v3): use "gradcam".
    """
    names = _check_methods(methods)
    target = _check_target(loaded, target)
    x = loaded.preprocess(image)  # validates the image
    size = (int(image.shape[0]), int(image.shape[1]))

    def run(lm: LoadedModel) -> dict[str, np.ndarray]:
        graph = cam_graph.traced(lm)
        node = cam_graph.resolve_layer(graph, layer if layer is not None else default_layer(lm))
        if "cam" in names:
            cam_graph.linear_head(graph, node)  # fail before any work
        need_grad = any(_REGISTRY[name].needs_gradient for name in names)
        evidence = Evidence(lm, x if lm is loaded else lm.preprocess(image), target, node, need_grad=need_grad,
                            progress=progress)
        evidence._need_input_grad = any(_REGISTRY[name].needs_input_gradient for name in names)
        raw = {}
        for i, name in enumerate(names):
            evidence._span = (i / len(names), (i + 1) / len(names))
            evidence.report(0.0, TITLES[name])
            raw[name] = _REGISTRY[name].explain(evidence)
        return {name: _finish(raw[name], size, _REGISTRY[name].clip_outliers) for name in names}

    return run_with_cpu_fallback(loaded, run)  # type: ignore[return-value]
