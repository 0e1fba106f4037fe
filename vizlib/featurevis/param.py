"""The image being optimised, parameterised so that gradient steps make natural-looking pictures.

Two changes of variables, the ones Olah et al. (Distill, 2017) found to make feature visualizations readable:

* **Fourier space**: the parameters are the image's 2-D spectrum, each frequency scaled by ``1 / frequency``
  (natural images' power falls off like that), so one gradient step changes all frequencies about equally
  instead of filling the picture with high-frequency noise.
* **Decorrelated colour**: the three channels are mixed by the square root of the colour covariance of natural
  photos, so the parameters move along uncorrelated colour directions; a sigmoid keeps pixels in ``0..1``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["COLOR_SQRT", "FourierImage"]

#: Square root of ImageNet's RGB colour covariance (the values Lucid publishes), columns scaled to at most norm 1.
_SQRT = np.asarray([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR_SQRT = _SQRT / np.max(np.linalg.norm(_SQRT, axis=0))
_INIT_SD = 0.01
_SPECTRUM_GAIN = 4.0  # divides the pixel values so the sigmoid starts near grey


class FourierImage:
    """An ``h x w`` RGB image parameterised by a scaled spectrum.

    Args:
        size: ``(h, w)``.
        generator: Seeds the initial spectrum (small Gaussian noise).
        decay: The power of the ``1 / frequency`` scaling.
        device: Where the parameters live.
    """

    def __init__(
        self, size: tuple[int, int], generator: torch.Generator, *, decay: float = 1.0,
        device: torch.device | str = "cpu",
    ) -> None:
        h, w = size
        self.size = (h, w)
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        radius = np.sqrt(fx * fx + fy * fy)
        scale = 1.0 / np.maximum(radius, 1.0 / max(h, w)) ** decay
        self._scale = torch.as_tensor(scale, dtype=torch.float32, device=device)
        shape = (3, h, w // 2 + 1, 2)
        noise = torch.randn(shape, generator=generator) * _INIT_SD
        self.spectrum = noise.to(device).requires_grad_(True)
        self._colors = torch.as_tensor(COLOR_SQRT, device=device)

    def parameters(self) -> list[torch.Tensor]:
        """The tensors an optimiser updates."""
        return [self.spectrum]

    def rgb(self) -> torch.Tensor:
        """The image, ``1 x 3 x h x w`` in ``0..1``, differentiable in :attr:`spectrum`."""
        h, w = self.size
        complex_spectrum = torch.view_as_complex(self.spectrum) * self._scale
        pixels = torch.fft.irfft2(complex_spectrum, s=(h, w), norm="ortho") / _SPECTRUM_GAIN
        mixed = torch.einsum("ij,jhw->ihw", self._colors, pixels)
        return torch.sigmoid(mixed)[None]

    def to_uint8(self) -> np.ndarray:
        """The current image as ``h x w x 3`` uint8."""
        with torch.no_grad():
            rgb = self.rgb()[0].permute(1, 2, 0).cpu().numpy()
        return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
