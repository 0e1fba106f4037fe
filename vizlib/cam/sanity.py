"""Sanity check for explanations (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

If an explanation explains the *network*, destroying the network's weights must change it. The cascade
randomises the layers from the top down: step 1 replaces the classifier's weights by the architecture's
untrained ones, step 2 also the block below it, and so on until nothing trained is left. At every step each
method's map of the same image and class is recomputed and compared with the trained map by Spearman's rank
correlation. A method whose map barely changes (mean correlation over the randomised steps at least
:data:`FLAG_THRESHOLD`) is flagged: it shows the image's edges, not what the network learned.

The randomised networks are a private CPU copy of the model whose state is overwritten block by block; the
shared model is only read (for the copy).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vizlib.activations import _stage_of
from vizlib.cam import methods as cam
from vizlib.models import LoadedModel

__all__ = ["FLAG_THRESHOLD", "SanityCheck", "SanityStep", "cascade", "parameter_groups", "sanity_check", "spearman"]

#: A method is flagged when its maps of the randomised networks correlate with the trained map at least this
#: much on average over the cascade's steps.
FLAG_THRESHOLD = 0.5

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class SanityStep:
    """One step of the cascade.

    Attributes:
        label: What is random so far, in words ("trained", "random from _blocks.12 up").
        randomized: The parameter groups random at this step, top first.
        maps: ``{method: H x W map}``.
        correlation: ``{method: Spearman correlation with the trained map}``.
    """

    label: str
    randomized: tuple[str, ...]
    maps: dict[str, np.ndarray]
    correlation: dict[str, float]


@dataclass(frozen=True)
class SanityCheck:
    """The whole cascade, trained first, and the methods that failed it."""

    steps: tuple[SanityStep, ...]
    flagged: tuple[str, ...]

    def mean_correlation(self, method: str) -> float:
        """The method's correlation with its trained map, averaged over the randomised steps."""
        return float(np.mean([step.correlation[method] for step in self.steps[1:]]))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally shaped arrays (ties get their average rank); 0 if one is constant."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends - 1) / 2.0
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def parameter_groups(model: torch.nn.Module) -> list[str]:
    """The model's blocks that own parameters or buffers, in definition order (bottom to top)."""
    groups: dict[str, None] = {}
    for name in model.state_dict():
        groups[_stage_of(name.rsplit(".", 1)[0])] = None
    return list(groups)


def cascade(groups: Sequence[str], steps: int) -> list[tuple[str, ...]]:
    """Top-down cumulative sets of groups, at most ``steps`` of them, the last one being every group."""
    top_down = list(reversed(groups))
    n = len(top_down)
    k = min(steps, n)
    cuts = sorted({max(1, round(n * (i + 1) / k)) for i in range(k)})
    return [tuple(top_down[:cut]) for cut in cuts]


def _belongs(key: str, groups: Sequence[str]) -> bool:
    return any(key == g or key.startswith(g + ".") for g in groups)


def _random_state(untrained: dict[str, torch.Tensor], trained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The untrained weights, and for a tensor whose shape differs (a model's own head, e.g. 10 classes where the
    registry architecture has 1000) seeded normal values with that trained tensor's spread."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in untrained.items():
        mine = trained.get(key)
        if mine is None or mine.shape == value.shape or not mine.is_floating_point():
            state[key] = value
            continue
        spread = float(mine.float().std()) if mine.numel() > 1 else 0.0
        state[key] = (torch.randn(mine.shape, generator=generator) * spread).to(mine.dtype)
    return state


def sanity_check(
    loaded: LoadedModel,
    untrained: LoadedModel,
    image: np.ndarray,
    target: int,
    methods: Sequence[str] = ("gradcam", "saliency"),
    layer: str | None = None,
    *,
    steps: int = 6,
    progress: ProgressFn | None = None,
) -> SanityCheck:
    """Run the cascading randomisation and compare each method's maps with the trained ones.

    Args:
        loaded: The trained model (only read: copied once).
        untrained: The same architecture untrained (``load_model(name, pretrained=False)``), only read.
        image: ``H x W x 3`` uint8.
        target: The class explained at every step.
        methods: Names from :data:`vizlib.cam.METHODS`.
        layer: The CAM layer (default: the last block).
        steps: How many randomisation steps after the trained one.
        progress: ``progress(fraction, message)`` after each step (it may raise to cancel).

    Returns:
        A :class:`SanityCheck`.

    Raises:
        ValueError: The two models differ in architecture.
        vizlib.cam.CAMError: A bad method, class or layer.
    """
    with loaded.shared():
        private = copy.deepcopy(loaded.model).to("cpu").eval()
    trained_state = {k: v.clone() for k, v in private.state_dict().items()}
    random_state = _random_state(untrained.model.state_dict(), trained_state)
    if trained_state.keys() != random_state.keys():
        raise ValueError(f"{untrained.name} does not have {loaded.name}'s architecture.")
    twin = LoadedModel(f"{loaded.name}-sanity", private, torch.device("cpu"), loaded.categories, loaded.spec, False)
    plan = [()] + cascade(parameter_groups(private), steps)
    results: list[SanityStep] = []
    for i, groups in enumerate(plan):
        state = {k: (random_state[k] if _belongs(k, groups) else trained_state[k]).to("cpu") for k in trained_state}
        private.load_state_dict(state)
        maps = cam.compute(twin, image, target, methods, layer)
        first = results[0].maps if results else maps
        correlation = {m: spearman(first[m], maps[m]) for m in maps}
        label = "trained" if not groups else f"random from {groups[-1]} up"
        results.append(SanityStep(label, tuple(groups), maps, correlation))
        if progress is not None:
            progress((i + 1) / len(plan), f"step {i + 1} of {len(plan)}: {label}")
    mean = {m: float(np.mean([step.correlation[m] for step in results[1:]])) for m in results[0].maps}
    flagged = tuple(m for m in mean if mean[m] >= FLAG_THRESHOLD)
    return SanityCheck(tuple(results), flagged)
