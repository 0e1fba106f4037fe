"""How many parameters a dense, a locally connected and a convolutional layer need: the lecture's formulas.

For an input of ``H x W x C`` values and an output of ``h x w x m`` units (``m`` maps of ``h x w``), with
square ``k x k`` windows:

- dense: every output unit sees every input value: ``(H*W*C) * (h*w*m)`` weights, one bias per output unit;
- locally connected: every output unit sees a ``k x k x C`` window with its own weights:
  ``(h*w*m) * (k*k*C)`` weights, one bias per output unit;
- convolution: the window's weights are shared by all ``h*w`` positions of a map: ``m * (k*k*C)`` weights,
  one bias per map.

The lecture's three examples use these conventions (checked by the tests): the first two quote weights
without biases, the third counts the biases and uses "same" padding (the 5 maps are 128x128, like the input).
:func:`count_parameters` applies the same formulas to the layers of a network, so the page's numbers and
``sum(p.numel())`` can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = [
    "EXAMPLES",
    "Comparison",
    "Count",
    "Example",
    "compare",
    "conv_count",
    "count_parameters",
    "dense_count",
    "layer_count",
    "local_count",
    "output_size",
]


@dataclass(frozen=True)
class Count:
    """Parameters of one layer: ``weights`` and ``biases``; ``total`` is their sum."""

    weights: int
    biases: int

    @property
    def total(self) -> int:
        return self.weights + self.biases

    def __add__(self, other: Count) -> Count:
        return Count(self.weights + other.weights, self.biases + other.biases)


def dense_count(inputs: int, outputs: int, bias: bool = True) -> Count:
    """A fully connected layer from ``inputs`` values to ``outputs`` units."""
    return Count(inputs * outputs, outputs if bias else 0)


def local_count(positions: int, maps: int, kernel: int, in_channels: int, bias: bool = True) -> Count:
    """A locally connected layer: ``positions * maps`` units, each with its own ``kernel x kernel x in_channels``
    window (and its own bias)."""
    units = positions * maps
    return Count(units * kernel * kernel * in_channels, units if bias else 0)


def conv_count(maps: int, kernel: int, in_channels: int, bias: bool = True) -> Count:
    """A convolution: ``maps`` filters of ``kernel x kernel x in_channels``, one bias each."""
    return Count(maps * kernel * kernel * in_channels, maps if bias else 0)


def output_size(size: int, kernel: int, stride: int = 1, padding: int | str = 0) -> int:
    """Output side of a sliding window: ``(size + 2*padding - kernel) // stride + 1``; ``"same"`` keeps
    ``ceil(size / stride)``.

    Raises:
        ValueError: The window does not fit.
    """
    if padding == "same":
        return -(-size // stride)
    out = (size + 2 * int(padding) - kernel) // stride + 1
    if out < 1 or kernel < 1 or stride < 1:
        raise ValueError(
            f"A {kernel}x{kernel} window with stride {stride} and padding {padding} does not fit in {size}."
        )
    return out


@dataclass(frozen=True)
class Comparison:
    """One input, one output layout, three ways to connect them."""

    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    kernel: int
    dense: Count
    local: Count
    conv: Count


def compare(
    input_shape: tuple[int, int, int], output_shape: tuple[int, int, int], kernel: int, bias: bool = True
) -> Comparison:
    """Dense vs locally connected vs convolution for ``input_shape = (H, W, C)`` -> ``output_shape = (h, w, m)``.

    Raises:
        ValueError: A size below 1.
    """
    if min(*input_shape, *output_shape, kernel) < 1:
        raise ValueError("Every size must be at least 1.")
    height, width, channels = input_shape
    h, w, maps = output_shape
    return Comparison(
        input_shape=input_shape,
        output_shape=output_shape,
        kernel=kernel,
        dense=dense_count(height * width * channels, h * w * maps, bias),
        local=local_count(h * w, maps, kernel, channels, bias),
        conv=conv_count(maps, kernel, channels, bias),
    )


@dataclass(frozen=True)
class Example:
    """A lecture example: the layout, whether biases are counted, and the numbers the lecture quotes."""

    key: str
    title: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    kernel: int
    bias: bool
    quoted: dict[str, int]
    note: str

    def comparison(self) -> Comparison:
        return compare(self.input_shape, self.output_shape, self.kernel, self.bias)


EXAMPLES: tuple[Example, ...] = (
    Example(
        "megapixel", "1-megapixel image into 1,000 units", (1000, 1000, 1), (1, 1000, 1), 5, False,
        {"dense": 1_000_000_000},
        "A grey 1000x1000 image fully connected to 1,000 hidden units: a billion weights (biases not counted).",
    ),
    Example(
        "mnist_local", "28x28 into 100 units vs a 5x5 local field", (28, 28, 1), (10, 10, 1), 5, False,
        {"dense": 78_400, "local": 2_500},
        "100 hidden units (a 10x10 grid) wired to all 784 pixels, or each to its own 5x5 window "
        "(biases not counted).",
    ),
    Example(
        "rgb_maps", "128x128x3 into 5 maps: dense vs convolution", (128, 128, 3), (128, 128, 5), 5, True,
        {"dense": 4_026_613_760, "conv": 380},
        "An RGB 128x128 image into 5 feature maps of 128x128 ('same' padding), biases counted: 49,152 x 81,920 "
        "weights + 81,920 biases dense, 5 x (5x5x3 + 1) as a 5x5 convolution.",
    ),
)


def layer_count(module: nn.Module) -> Count | None:
    """The formula's count for one layer (``None`` for layers without own parameters).

    Raises:
        TypeError: A layer with parameters the formulas don't cover.
    """
    from vizlib.training_lab.nets import LocallyConnected2d

    bias = getattr(module, "bias", None) is not None
    if isinstance(module, nn.Linear):
        return dense_count(module.in_features, module.out_features, bias)
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.kernel_size[0] != module.kernel_size[1]:
            raise TypeError("The formulas cover square, ungrouped convolutions only.")
        return conv_count(module.out_channels, module.kernel_size[0], module.in_channels, bias)
    if isinstance(module, LocallyConnected2d):
        h, w = module.output_size
        return local_count(h * w, module.out_channels, module.kernel_size, module.in_channels, bias)
    if any(True for _ in module.parameters(recurse=False)):
        raise TypeError(f"No parameter formula for {type(module).__name__}.")
    return None


def count_parameters(model: nn.Module) -> int:
    """Parameters of ``model`` from the formulas, layer by layer (not from the tensors)."""
    total = Count(0, 0)
    for module in model.modules():
        count = layer_count(module)
        if count is not None:
            total = total + count
    return total.total
