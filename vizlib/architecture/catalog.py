"""The registry's models on one chart: ImageNet top-1 against compute, from the weights' own metadata.

torchvision ships each weights entry's ``meta`` with it (offline): ``_metrics["ImageNet-1K"]["acc@1"]``,
``_ops`` (GFLOPS, which torchvision counts as multiply-accumulates) and ``num_params``. They are read here at
run time. Models torchvision has no metadata for take their figures from :data:`PUBLISHED`, the one place
where published numbers are written down, each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from vizlib.published import PUBLISHED, PublishedFigures

__all__ = ["PUBLISHED", "ModelPoint", "PublishedFigures", "model_point", "model_points"]


@dataclass(frozen=True)
class ModelPoint:
    """One model on the chart.

    Attributes:
        name: Registry name.
        title: Registry title.
        top1: ImageNet top-1 accuracy, percent.
        params: Parameters.
        macs: Multiply-accumulates of one image at the weights' input size.
        input_size: That input size (height, width).
        source: ``"torchvision weights.meta"`` or the published source.
    """

    name: str
    title: str
    top1: float
    params: int
    macs: int
    input_size: tuple[int, int]
    source: str


def model_point(name: str) -> ModelPoint | None:
    """The chart's point for a registry model, or ``None`` when no ImageNet figures exist (the digits net)."""
    from vizlib import models

    spec = models.get_spec(name)
    if spec.family == "torchvision":
        from torchvision.models import get_model_weights

        weights = get_model_weights(name).DEFAULT
        meta = weights.meta
        crop = int(weights.transforms().crop_size[0])
        return ModelPoint(
            name=name,
            title=spec.title,
            top1=float(meta["_metrics"]["ImageNet-1K"]["acc@1"]),
            params=int(meta["num_params"]),
            macs=round(float(meta["_ops"]) * 1e9),
            input_size=(crop, crop),
            source=f"torchvision {weights}.meta",
        )
    published = PUBLISHED.get(name)
    if published is None:
        return None
    return ModelPoint(name, spec.title, published.top1, published.params, published.macs, spec.input_size,
                      published.source)  # fmt: skip


def model_points() -> list[ModelPoint]:
    """Every registry model that has ImageNet figures, in registry order."""
    from vizlib import models

    return [p for p in (model_point(n) for n in models.list_models()) if p is not None]
