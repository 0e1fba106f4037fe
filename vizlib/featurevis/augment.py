"""Random jitter, scale and rotation at each step: a picture that excites the channel only in one exact
position and size is an adversarial pattern; one that survives these small moves is a feature."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["JITTER", "ROTATE", "SCALES", "random_view"]

#: Largest shift, in pixels, before and after scaling/rotating.
JITTER = 8
#: Zoom factors drawn from.
SCALES = (0.9, 0.95, 1.0, 1.05, 1.1)
#: Largest rotation, degrees.
ROTATE = 10.0


def _pick(values: tuple[float, ...], generator: torch.Generator) -> float:
    return values[int(torch.randint(len(values), (1,), generator=generator))]


def random_view(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``image`` (``1 x 3 x h x w``) shifted by up to :data:`JITTER` px, zoomed by one of :data:`SCALES` and
    turned by up to :data:`ROTATE` degrees about its centre, in one bilinear resampling; borders reflect."""
    _, _, h, w = image.shape
    dx, dy = (torch.randint(-JITTER, JITTER + 1, (2,), generator=generator) * 2.0 / torch.tensor([w, h])).tolist()
    angle = math.radians(float(torch.empty(1).uniform_(-ROTATE, ROTATE, generator=generator)))
    zoom = _pick(SCALES, generator)
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    theta = torch.tensor([[cos, -sin * h / w, dx], [sin * w / h, cos, dy]], dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta[None], list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
