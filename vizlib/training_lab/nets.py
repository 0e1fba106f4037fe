"""Four small networks for 28x28 Fashion-MNIST, each one idea apart from the next.

- :class:`FashionMLP`: every pixel wired to every hidden unit (no notion of "nearby").
- :class:`FashionLocal`: each unit sees only a 5x5 window (local receptive fields), but every position has
  its own weights (:class:`LocallyConnected2d`, built on :func:`torch.nn.functional.unfold`).
- :class:`FashionCNN`: the same 5x5 windows with one set of weights shared by every position (convolution),
  conv-ReLU-pool twice, then one dense layer.
- :class:`FashionFCN`: the same CNN whose dense head is a 1x1 convolution followed by global average pooling,
  so it runs on a canvas of any size and gives a class map per location.

Every layer is a named module, so activations and first-layer filters can be taken by name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NETS",
    "WITHOUT_CONVOLUTIONS",
    "FashionCNN",
    "FashionFCN",
    "FashionLocal",
    "FashionMLP",
    "LocallyConnected2d",
    "build_net",
    "first_layer",
]


class LocallyConnected2d(nn.Module):
    """A convolution-shaped layer whose weights are not shared: each output position has its own kernel.

    Output ``y[n, o, i, j] = b[o, i, j] + sum_{c, u, v} w[i, j, o, c, u, v] * x[n, c, i*s + u - p, j*s + v - p]``.

    Args:
        in_channels: Input channels.
        out_channels: Output maps.
        input_size: Input height and width (the layer has weights for each output position).
        kernel_size: Side of the square window.
        stride: Step between windows.
        padding: Zeros added on each side.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_size: tuple[int, int],
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.input_size = input_size
        self.output_size = tuple((s + 2 * padding - kernel_size) // stride + 1 for s in input_size)
        positions = self.output_size[0] * self.output_size[1]
        fan_in = in_channels * kernel_size * kernel_size
        # weight[l, o, k]: position l, output map o, input window element k (c, u, v flattened as unfold does).
        self.weight = nn.Parameter(torch.empty(positions, out_channels, fan_in))
        self.bias = nn.Parameter(torch.empty(out_channels, *self.output_size))
        bound = 1.0 / math.sqrt(fan_in)  # the same uniform initialisation as nn.Conv2d's
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` (H, W = ``input_size``) -> ``[N, out_channels, *output_size]``."""
        if not isinstance(x, torch.fx.Proxy) and tuple(x.shape[-2:]) != tuple(self.input_size):
            raise ValueError(
                f"This locally connected layer has weights for {self.input_size[0]}x{self.input_size[1]} inputs "
                f"only, got {x.shape[-2]}x{x.shape[-1]}: unshared weights can't slide to a new size."
            )
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # [N, K, L]
        out = torch.einsum("nkl,lok->nol", cols, self.weight)
        return out.reshape(-1, self.out_channels, self.output_size[0], self.output_size[1]) + self.bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        )


class FashionMLP(nn.Module):
    """784 pixels -> 128 hidden units -> 10 classes."""

    def __init__(self, hidden: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, 10]`` of ``[N, 1, 28, 28]``."""
        return self.fc2(self.relu1(self.fc1(self.flatten(x))))


class FashionLocal(nn.Module):
    """Locally connected 5x5 windows (6 maps, unshared weights) -> ReLU -> maxpool 2 -> dense 864 -> 10."""

    def __init__(self, maps: int = 6, num_classes: int = 10) -> None:
        super().__init__()
        self.local1 = LocallyConnected2d(1, maps, (28, 28), kernel_size=5)  # 24x24
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # 12x12
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(maps * 12 * 12, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, 10]`` of ``[N, 1, 28, 28]``."""
        return self.fc(self.flatten(self.pool1(self.relu1(self.local1(x)))))


class _ConvStages(nn.Module):
    """conv 5x5 (pad 2) -> ReLU -> maxpool 2, twice: 28x28 -> 7x7 (any size -> a quarter of it)."""

    def __init__(self, channels: tuple[int, int]) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5, padding=2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        return self.pool2(self.relu2(self.conv2(x)))


class FashionCNN(_ConvStages):
    """conv 5x5 1->c1 -> ReLU -> pool, conv 5x5 c1->c2 -> ReLU -> pool, then dense c2*7*7 -> 10."""

    def __init__(self, channels: tuple[int, int] = (8, 16), num_classes: int = 10) -> None:
        super().__init__(channels)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels[1] * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, 10]`` of ``[N, 1, 28, 28]``."""
        return self.fc(self.flatten(self.features(x)))


class FashionFCN(_ConvStages):
    """The CNN's two conv stages, then a 1x1 convolution c2 -> 10 (a class map) and global average pooling."""

    #: Canvas pixel of the centre of class-map location (0, 0); locations are 4 pixels apart.
    map_offset = 1.5

    def __init__(self, channels: tuple[int, int] = (8, 16), num_classes: int = 10) -> None:
        super().__init__(channels)
        self.classifier = nn.Conv2d(channels[1], num_classes, kernel_size=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def class_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-location class logits ``[N, 10, H/4, W/4]`` of an input of any size ``[N, 1, H, W]``."""
        return self.classifier(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, 10]``: the class map averaged over all locations."""
        return self.flatten(self.gap(self.class_map(x)))


#: Registry name -> (class, one line for the page).
NETS: dict[str, tuple[type[nn.Module], str]] = {
    "fashion_mlp": (FashionMLP, "Fully connected: 784 pixels -> 128 units -> 10"),
    "fashion_local": (FashionLocal, "Locally connected: 5x5 windows, unshared weights -> pool -> dense"),
    "fashion_cnn": (FashionCNN, "CNN: (conv 5x5 -> ReLU -> pool) x2 -> dense"),
    "fashion_fcn": (FashionFCN, "Fully convolutional: the CNN with a 1x1 conv and global average pooling"),
}


#: The nets with no convolution in them (nothing for the conv-layer pages and tests to look into).
WITHOUT_CONVOLUTIONS = ("fashion_mlp", "fashion_local")


def build_net(name: str, num_classes: int = 10) -> nn.Module:
    """A fresh (randomly initialised) network by registry name.

    Raises:
        KeyError: Unknown name.
    """
    try:
        cls = NETS[name][0]
    except KeyError:
        raise KeyError(f"Unknown training-lab net {name!r}; choose one of {', '.join(NETS)}.") from None
    return cls(num_classes=num_classes)


def first_layer(model: nn.Module) -> nn.Module:
    """The layer that touches the pixels (``fc1``, ``local1`` or ``conv1``)."""
    for name in ("conv1", "local1", "fc1"):
        if hasattr(model, name):
            return getattr(model, name)
    raise ValueError(f"{type(model).__name__} has no first layer named conv1, local1 or fc1.")
