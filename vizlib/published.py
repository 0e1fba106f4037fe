"""Published figures of registry models, each with its source: the one place where such numbers are written down.

The model registry takes the default model's top-1 from here; the architecture lesson
(:mod:`vizlib.architecture.catalog`) charts them for models torchvision ships no metadata for.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PUBLISHED", "PublishedFigures"]


@dataclass(frozen=True)
class PublishedFigures:
    """A model's figures as its authors published them.

    Attributes:
        top1: ImageNet top-1 accuracy, percent.
        params: Parameters (as published, often rounded).
        macs: Multiply-accumulates of one 224x224 image (as published, often rounded).
        source: Where the numbers are printed.
        note: How the published counting differs from torch's, if it does.
    """

    top1: float
    params: int
    macs: int
    source: str
    note: str = ""


#: Published figures of registry models that have no torchvision metadata.
PUBLISHED: dict[str, PublishedFigures] = {
    "efficientnet_lite0": PublishedFigures(
        top1=75.1,
        params=4_700_000,
        macs=407_000_000,
        source="tensorflow/tpu, models/official/efficientnet/lite/README.md: efficientnet-lite0, 4.7M params, "
        "407M MAdds, 75.1% FP32 top-1 (https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite)",
        note="The README rounds parameters to 0.1 M. Its 407 M MAdds are about 5% above the 385 M convolution and "
        "dense multiply-accumulates torch counts for the PyTorch port: TensorFlow's profiler also counts other "
        "operations (batch normalisation, activations, padding).",
    ),
}
