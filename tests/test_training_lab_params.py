"""Parameter formulas: the lecture's three examples, and formula == sum(p.numel()) for every lab net."""

from __future__ import annotations

import pytest
from torch import nn

from vizlib.training_lab import params
from vizlib.training_lab.nets import NETS, LocallyConnected2d, build_net


@pytest.mark.parametrize("name", list(NETS))
def test_formula_matches_the_tensors(name):
    model = build_net(name)
    assert params.count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_lab_nets_by_hand():
    # 784*128 + 128 + 128*10 + 10; 24*24*6*(25+1) + 864*10 + 10; 8*26 + 16*(8*25+1) + 784*10 + 10; the FCN's 1x1.
    assert params.count_parameters(build_net("fashion_mlp")) == 101_770
    assert params.count_parameters(build_net("fashion_local")) == 89_856 + 8_650
    assert params.count_parameters(build_net("fashion_cnn")) == 208 + 3_216 + 7_850
    assert params.count_parameters(build_net("fashion_fcn")) == 208 + 3_216 + 170


def test_lecture_examples_reproduce_the_quoted_numbers():
    for example in params.EXAMPLES:
        comparison = example.comparison()
        counts = {"dense": comparison.dense, "local": comparison.local, "conv": comparison.conv}
        for kind, quoted in example.quoted.items():
            assert counts[kind].total == quoted, (example.key, kind)


def test_the_conventions_behind_the_lecture_numbers():
    mega, mnist, rgb = params.EXAMPLES
    assert mega.comparison().dense == params.Count(1_000_000_000, 0)
    assert (mnist.comparison().dense.weights, mnist.comparison().local.weights) == (78_400, 2_500)
    # 128x128x3 into 5 maps: 'same' padding (5 maps of 128x128) and biases counted.
    c = rgb.comparison()
    assert c.dense == params.Count(49_152 * 81_920, 81_920)
    assert c.dense.total == 4_026_613_760
    assert c.conv == params.Count(375, 5)
    # without biases or with 'valid' padding (124x124) the lecture's number does not come out
    assert params.compare((128, 128, 3), (128, 128, 5), 5, bias=False).dense.total != 4_026_613_760
    assert params.compare((128, 128, 3), (124, 124, 5), 5).dense.total != 4_026_613_760


def test_output_size():
    assert params.output_size(28, 5) == 24
    assert params.output_size(28, 5, padding=2) == 28
    assert params.output_size(128, 5, padding="same") == 128
    assert params.output_size(7, 3, stride=2) == 3
    with pytest.raises(ValueError, match="does not fit"):
        params.output_size(3, 5)


def test_layer_counts_match_torch_layers():
    local = LocallyConnected2d(2, 3, (6, 6), kernel_size=3, stride=1, padding=1)
    assert params.layer_count(local).total == local.weight.numel() + local.bias.numel()
    conv = nn.Conv2d(3, 4, 3, bias=False)
    assert params.layer_count(conv) == params.Count(108, 0)
    with pytest.raises(TypeError):
        params.layer_count(nn.BatchNorm2d(3))


def test_nonsense_sizes_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        params.compare((0, 28, 1), (28, 28, 1), 5)
