"""Building blocks: the lectures' numbers, and every option's cost against the same block built in torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vizlib.architecture import blocks as B


def _cost(net: nn.Module, shape: tuple[int, ...]) -> tuple[int, int, tuple[int, ...]]:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = net(torch.zeros(1, *shape))
    return sum(p.numel() for p in net.parameters()), counter.get_total_flops() // 2, tuple(out.shape[1:])


def _as(option: B.Option) -> tuple[int, int, tuple[int, ...]]:
    return option.params, option.macs, option.out_shape


def test_lecture_inception_numbers() -> None:
    cmp = B.inception_branch()
    assert [o.macs for o in cmp.options] == [120_422_400, 12_443_648]
    assert "120,422,400" in cmp.summary and "12,443,648" in cmp.summary
    assert _as(cmp.options[0]) == _cost(nn.Conv2d(192, 32, 5, padding=2, bias=False), (192, 28, 28))
    reduced = nn.Sequential(nn.Conv2d(192, 16, 1, bias=False), nn.Conv2d(16, 32, 5, padding=2, bias=False))
    assert _as(cmp.options[1]) == _cost(reduced, (192, 28, 28))


@pytest.mark.parametrize(("kernel", "layers"), [(5, 2), (7, 3)])
def test_stacked_3x3_same_field_fewer_weights(kernel: int, layers: int) -> None:
    cmp = B.stacked_3x3(16, 20, kernel)
    big, small = cmp.options
    assert big.receptive_field == small.receptive_field == kernel
    assert big.params == kernel * kernel * 16 * 16 and small.params == layers * 9 * 16 * 16
    stack = nn.Sequential(*[nn.Conv2d(16, 16, 3, padding=1, bias=False) for _ in range(layers)])
    assert _as(small) == _cost(stack, (16, 20, 20))
    with pytest.raises(ValueError, match="odd"):
        B.stacked_3x3(kernel=4)


def test_sobel_is_an_outer_product_and_separable_filtering_is_equal() -> None:
    col, row, full = B.sobel_outer()
    assert full.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    img = torch.rand(1, 1, 30, 30, dtype=torch.float64)
    k = torch.tensor(full, dtype=torch.float64)[None, None]
    two = F.conv2d(F.conv2d(img, torch.tensor(col, dtype=torch.float64).view(1, 1, 3, 1), padding=(1, 0)),
                   torch.tensor(row, dtype=torch.float64).view(1, 1, 1, 3), padding=(0, 1))  # fmt: skip
    np.testing.assert_allclose(two.numpy(), F.conv2d(img, k, padding=1).numpy(), atol=1e-12)
    cmp = B.spatially_separable(30)
    assert [o.params for o in cmp.options] == [9, 6] and [o.macs for o in cmp.options] == [8100, 5400]


def test_depthwise_separable_against_torch() -> None:
    cmp = B.depthwise_separable((8, 20, 20), 16, 3)
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.Conv2d(8, 16, 1, bias=False))
    assert _as(cmp.options[1]) == _cost(net, (8, 20, 20))
    assert _as(cmp.options[0]) == _cost(nn.Conv2d(8, 16, 3, padding=1, bias=False), (8, 20, 20))


def test_residual_shortcut() -> None:
    proj = B.residual_shortcut((64, 56, 56), 128, 2)
    net = nn.Sequential(nn.Conv2d(64, 128, 1, stride=2, bias=False), nn.BatchNorm2d(128)).eval()
    assert _as(proj.options[1]) == _cost(net, (64, 56, 56))
    assert "not possible" in proj.options[0].steps[0]
    same = B.residual_shortcut((64, 56, 56), 64, 1)
    assert same.options[0].params == 0 and "costs nothing" in same.summary


def test_gap_vs_flatten_lecture_numbers() -> None:
    cmp = B.gap_vs_flatten()
    assert [o.params for o in cmp.options] == [25_600_000, 2_560]
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10, bias=False))
    assert _as(cmp.options[1]) == _cost(head, (256, 100, 100))


def test_1d_and_3d_against_torch() -> None:
    one = B.conv1d_sequence(8, 40, 12, 5)
    assert _as(one.options[0]) == _cost(nn.Conv1d(8, 12, 5), (8, 40))
    assert _as(one.options[1]) == _cost(nn.Conv1d(8, 12, 5, padding="same"), (8, 40))
    three = B.conv3d_clip((3, 6, 16, 16), 4, 3)
    assert _as(three.options[0]) == _cost(nn.Conv3d(3, 4, 3, padding=1), (3, 6, 16, 16))
    assert three.options[1].macs * 3 == three.options[0].macs
