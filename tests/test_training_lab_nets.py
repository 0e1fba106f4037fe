"""The four lab nets: shapes, and the locally connected layer against a hand-written loop."""

from __future__ import annotations

import pytest
import torch

from vizlib.training_lab.nets import NETS, LocallyConnected2d, build_net, first_layer


def _loop(layer: LocallyConnected2d, x: torch.Tensor) -> torch.Tensor:
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    xp = torch.nn.functional.pad(x, (p, p, p, p))
    oh, ow = layer.output_size
    out = torch.zeros(x.shape[0], layer.out_channels, oh, ow)
    w = layer.weight.reshape(oh, ow, layer.out_channels, layer.in_channels, k, k)
    for n in range(x.shape[0]):
        for o in range(layer.out_channels):
            for i in range(oh):
                for j in range(ow):
                    window = xp[n, :, i * s : i * s + k, j * s : j * s + k]
                    out[n, o, i, j] = (window * w[i, j, o]).sum() + layer.bias[o, i, j]
    return out


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1)])
def test_locally_connected_equals_a_loop(stride, padding):
    torch.manual_seed(0)
    layer = LocallyConnected2d(2, 3, (5, 6), kernel_size=3, stride=stride, padding=padding)
    x = torch.randn(2, 2, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _loop(layer, x), rtol=1e-5, atol=1e-5)


def test_locally_connected_weights_are_not_shared():
    layer = LocallyConnected2d(1, 1, (3, 3), kernel_size=2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[0, 0, 0] = 1.0  # only position (0, 0) looks, at its window's top-left pixel
        x = torch.ones(1, 1, 3, 3)
        assert layer(x)[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_locally_connected_refuses_another_size():
    layer = LocallyConnected2d(1, 2, (8, 8), kernel_size=3)
    with pytest.raises(ValueError, match="only"):
        layer(torch.zeros(1, 1, 9, 9))


@pytest.mark.parametrize("name", list(NETS))
def test_every_net_gives_ten_logits(name):
    model = build_net(name).eval()
    with torch.no_grad():
        assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert first_layer(model) is not None


def test_fcn_takes_any_size_and_its_logits_are_the_mean_class_map():
    torch.manual_seed(1)
    model = build_net("fashion_fcn").eval()
    x = torch.randn(2, 1, 56, 84)
    with torch.no_grad():
        cmap = model.class_map(x)
        assert cmap.shape == (2, 10, 14, 21)
        torch.testing.assert_close(model(x), cmap.mean((2, 3)))


def test_unknown_net_names_the_choices():
    with pytest.raises(KeyError, match="fashion_cnn"):
        build_net("resnet")
