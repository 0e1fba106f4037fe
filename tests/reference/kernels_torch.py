"""Filtering through PyTorch, a test and benchmark reference: the same numbers as :func:`vizlib.kernels.apply`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vizlib.kernels.filtering import Border, Color, Mode, _prepare

__all__ = [
    "apply_torch",
]


_TORCH_PAD = {"reflect": "reflect", "replicate": "replicate"}


def apply_torch(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    mode: Mode = "correlate",
    border: Border = "zero",
    color: Color = "gray",
    scale: float = 1.0,
    bias: float = 0.0,
) -> np.ndarray:
    """Exactly :func:`apply`, computed by ``torch.nn.functional.conv2d`` as a conv layer would.

    The kernel becomes the layer's weight and ``bias`` its bias: a one-channel layer for gray, a
    depthwise layer (``groups=3``, the same kernel for R, G and B) per channel. Zero borders use the
    layer's own ``padding``; the other borders pad with ``torch.nn.functional.pad`` first.

    Args:
        image: As for :func:`apply`.
        kernel: As for :func:`apply`.
        mode: As for :func:`apply`.
        border: As for :func:`apply`.
        color: As for :func:`apply`.
        scale: As for :func:`apply`.
        bias: As for :func:`apply`.

    Returns:
        The same float32 array as :func:`apply` (equal to float32 rounding).

    Raises:
        KernelError: As for :func:`apply`.
        FilterInputError: As for :func:`apply`.
    """
    x, k = _prepare(image, kernel, mode, border, color, scale, bias)
    with torch.inference_mode():
        # Gray: a one-channel layer. Per channel: a depthwise layer (groups = channels, one filter each).
        t = torch.from_numpy(x).to(torch.float32)
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None].contiguous()
        channels = t.shape[1]
        weight = torch.from_numpy(k)[None, None].expand(channels, 1, *k.shape).contiguous()
        bias_t = torch.full((channels,), float(bias), dtype=torch.float32)
        pad_h, pad_w = k.shape[0] // 2, k.shape[1] // 2
        if border == "zero":
            out = F.conv2d(t, weight, bias_t, padding=(pad_h, pad_w), groups=channels)
        else:
            t = F.pad(t, (pad_w, pad_w, pad_h, pad_h), mode=_TORCH_PAD[border])
            out = F.conv2d(t, weight, bias_t, groups=channels)
        out = out[0, 0] if x.ndim == 2 else out[0].permute(1, 2, 0)
        return np.ascontiguousarray(out.numpy(), dtype=np.float32)
