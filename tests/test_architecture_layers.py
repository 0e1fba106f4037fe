"""Single-layer costs against hand-worked numbers and against torch itself (parameters, flop counter, forward)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vizlib.architecture import LayerCost, conv_cost, linear_cost, local_cost


def _torch_macs(module: nn.Module, x: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(x)
    return counter.get_total_flops() // 2, tuple(out.shape[1:])


def test_hand_worked_values() -> None:
    # The lecture's pop quiz: 10x10x3 and one 5x5x3 filter, stride 1: 6x6x1; 75 weights + 1 bias.
    assert conv_cost((3, 10, 10), 1, 5) == LayerCost(params=76, macs=6 * 6 * 75, out_shape=(1, 6, 6))
    assert conv_cost((3, 10, 10), 1, 5, padding=2).out_shape == (1, 10, 10)
    # AlexNet's first layer: 96 filters of 11x11x3, stride 4 on 227x227: 55x55x96, 34,944 parameters.
    alex = conv_cost((3, 227, 227), 96, 11, stride=4)
    assert (alex.params, alex.out_shape, alex.macs) == (34_944, (96, 55, 55), 55 * 55 * 96 * 363)
    # Inception 5x5 on 28x28x192, 32 filters, same padding: 120,422,400 multiplications.
    assert conv_cost((192, 28, 28), 32, 5, padding="same", bias=False).macs == 120_422_400
    # Depthwise 3x3 on 32 channels: 9 weights per channel.
    assert conv_cost((32, 112, 112), 32, 3, padding=1, groups=32, bias=False).params == 288
    assert linear_cost(256 * 100 * 100, 10, bias=False).params == 25_600_000
    assert linear_cost(800, 120) == LayerCost(96_120, 96_000, (120,))
    assert linear_cost(800, 120).flops == 192_000
    # Locally connected 3x3, 2 channels -> 4 on 5x5 (3x3 outputs): 9 positions x (4*2*9) weights + 36 biases.
    assert local_cost((2, 5, 5), 4, 3) == LayerCost(9 * 72 + 36, 9 * 72, (4, 3, 3))


CONV_GRID = [
    # (in_shape, out_channels, kernel, stride, padding, dilation, groups, bias)
    (c, oc, k, s, p, d, g, b)
    for c, oc, g in [(3, 8, 1), (8, 8, 8), (8, 12, 4), (6, 4, 2)]
    for k, s, p, d in itertools.product([1, 3, (3, 5)], [1, 2, (2, 1)], [0, 1, "same"], [1, 2])
    for b in [True, False]
    if not (p == "same" and s != 1)
][::5]


@pytest.mark.parametrize(("c", "oc", "k", "s", "p", "d", "g", "b"), CONV_GRID)
def test_conv2d_grid_matches_torch(c, oc, k, s, p, d, g, b) -> None:
    layer = nn.Conv2d(c, oc, k, stride=s, padding=p, dilation=d, groups=g, bias=b)
    cost = conv_cost((c, 13, 11), oc, k, stride=s, padding=p, dilation=d, groups=g, bias=b)
    macs, shape = _torch_macs(layer, torch.zeros(1, c, 13, 11))
    assert cost.params == sum(t.numel() for t in layer.parameters())
    assert (cost.macs, cost.out_shape) == (macs, shape)


@pytest.mark.parametrize(
    ("shape", "conv"),
    [((4, 50), nn.Conv1d(4, 6, 5, stride=2, padding=1)), ((4, 50), nn.Conv1d(4, 8, 3, padding="same", groups=4)),
     ((3, 6, 20, 18), nn.Conv3d(3, 5, 3, padding=1)), ((3, 6, 20, 18), nn.Conv3d(3, 4, (2, 3, 3), stride=(1, 2, 2)))],
)  # fmt: skip
def test_conv1d_and_conv3d_match_torch(shape, conv) -> None:
    cost = conv_cost(shape, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                     dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)  # fmt: skip
    macs, out = _torch_macs(conv, torch.zeros(1, *shape))
    assert (cost.params, cost.macs, cost.out_shape) == (sum(t.numel() for t in conv.parameters()), macs, out)


@pytest.mark.parametrize(("i", "o", "b"), [(1, 1, True), (800, 120, True), (2048, 1000, False), (7, 3, True)])
def test_linear_matches_torch(i, o, b) -> None:
    layer = nn.Linear(i, o, bias=b)
    macs, shape = _torch_macs(layer, torch.zeros(1, i))
    cost = linear_cost(i, o, bias=b)
    assert (cost.params, cost.macs, cost.out_shape) == (sum(t.numel() for t in layer.parameters()), macs, shape)


class _Local(nn.Module):
    """A locally connected layer written with unfold: one weight matrix per output position."""

    def __init__(self, c: int, oc: int, k: int, stride: int, padding: int, out_hw: tuple[int, int], bias: bool):
        super().__init__()
        positions = out_hw[0] * out_hw[1]
        self.k, self.s, self.p, self.out_hw = k, stride, padding, out_hw
        self.weight = nn.Parameter(torch.randn(positions, c * k * k, oc))
        self.bias = nn.Parameter(torch.randn(oc, *out_hw)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.k, stride=self.s, padding=self.p)  # N, C*k*k, L
        out = torch.bmm(cols.permute(2, 0, 1), self.weight)  # L, N, oc
        out = out.permute(1, 2, 0).reshape(x.shape[0], -1, *self.out_hw)
        return out + self.bias if self.bias is not None else out


@pytest.mark.parametrize(
    ("c", "oc", "k", "s", "p", "b"), [(2, 4, 3, 1, 0, True), (3, 5, 5, 2, 2, False), (1, 1, 1, 1, 0, True)]
)
def test_local_matches_an_unshared_layer(c, oc, k, s, p, b) -> None:
    cost = local_cost((c, 12, 10), oc, k, stride=s, padding=p, bias=b)
    layer = _Local(c, oc, k, s, p, cost.out_shape[1:], b)
    macs, shape = _torch_macs(layer, torch.zeros(1, c, 12, 10))
    assert (cost.params, cost.macs, cost.out_shape) == (sum(t.numel() for t in layer.parameters()), macs, shape)
    assert cost.macs == conv_cost((c, 12, 10), oc, k, stride=s, padding=p).macs


@pytest.mark.parametrize(
    ("call", "words"),
    [(lambda: conv_cost((3, 4, 4), 8, 5), "does not fit"), (lambda: conv_cost((6, 8, 8), 4, 3, groups=4), "groups=4"),
     (lambda: conv_cost((3, 8, 8), 4, 3, stride=2, padding="same"), "stride 1"),
     (lambda: conv_cost((3, 8), 4, (3, 3)), "kernel"), (lambda: conv_cost((3, 8, 8, 8, 8), 4, 3), "in_shape"),
     (lambda: conv_cost((3, 8, 8), 0, 3), "out_channels"), (lambda: linear_cost(0, 3), "in_features"),
     (lambda: conv_cost((3, 8, 8), 4, 3, padding="full"), "padding")],
)  # fmt: skip
def test_bad_sizes_say_why(call, words) -> None:
    with pytest.raises(ValueError, match=words):
        call()
