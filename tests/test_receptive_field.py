"""vizlib.receptive_field: exact values on hand-built networks, brute force on every registered model,
the effective receptive field, safety on shared models, clear errors, the 1-D dilation demo."""

from __future__ import annotations

import gc
import itertools
import warnings
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import make_loaded
from tests.reference.rf_bruteforce import gradient_support
from vizlib import models
from vizlib import receptive_field as R
from vizlib.receptive_field import geometry as geo

# --------------------------------------------------------------------------------------------- nets


def _conv(cin: int, cout: int, k: int | tuple[int, int], **kw: object) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, **kw)


def _stacked_3x3() -> nn.Sequential:
    return nn.Sequential(_conv(1, 2, 3, padding=1), nn.ReLU(), _conv(2, 2, 3, padding=1), nn.ReLU(),
                         _conv(2, 2, 3, padding=1))  # fmt: skip


def _strided_pool() -> nn.Sequential:
    return nn.Sequential(_conv(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), _conv(2, 2, 3, padding=1))


def _dilated() -> nn.Sequential:
    return nn.Sequential(_conv(1, 2, 3, padding=2, dilation=2), nn.ReLU(), _conv(2, 2, 3, padding=4, dilation=4))


def _factorised() -> nn.Sequential:
    """Inception v3's 1x7 then 7x1."""
    return nn.Sequential(_conv(1, 2, (1, 7), padding=(0, 3)), nn.ReLU(), _conv(2, 2, (7, 1), padding=(3, 0)))


class _Residual(nn.Module):
    """A ResNet basic block that halves the resolution, with a strided 1x1 shortcut."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv(1, 2, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = _conv(2, 2, 3, padding=1)
        self.shortcut = _conv(1, 2, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        return self.relu(out + self.shortcut(x))


class _Lopsided(nn.Module):
    """Two 3x3 branches padded on opposite sides: each sees 3 pixels, their sum sees 5."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Sequential(nn.ZeroPad2d((2, 0, 2, 0)), _conv(1, 1, 3))
        self.right = nn.Sequential(nn.ZeroPad2d((0, 2, 0, 2)), _conv(1, 1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(x) + self.right(x)


class _Gated(nn.Module):
    """A squeeze-and-excitation gate on a 3x3 convolution, then a classifier head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv(1, 4, 3, padding=1)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.excite = _conv(4, 4, 1)
        self.after = _conv(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        y = y * torch.sigmoid(self.excite(self.squeeze(y)))
        y = self.after(y)
        return self.head(torch.flatten(y.mean((2, 3), keepdim=True), 1))


class _Branchy(nn.Module):
    """Data-dependent control flow: torch.fx can't trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.sum() > 0 else x


class _Spare(nn.Module):
    """A module with a layer its forward pass never uses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv(1, 1, 3)
        self.unused = _conv(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _all_units(rf: R.ReceptiveField) -> list[tuple[int, int]]:
    oh, ow = rf.output_hw
    return list(itertools.product(range(oh), range(ow)))


def _assert_brute_force(model: nn.Module, size: int | tuple[int, int], *, holes: bool = False) -> int:
    """Every unit of every conv/pool layer: gradient support == analytic box; returns units checked.

    With ``holes`` (dilated kernels) a unit at the border may have a hole at the edge of its clipped box,
    so there only containment is checked; units whose box lies inside the image must match exactly.
    """
    fields = R.receptive_fields(model, size)
    units = {name: _all_units(rf) for name, rf in fields.items()}
    found = gradient_support(model, units, size, in_channels=1, local=True)
    inside = 0
    for name, rf in fields.items():
        for unit, box in zip(units[name], found[name], strict=True):
            expected = rf.clipped_box(*unit)
            if not holes or rf.box(*unit) == expected:
                assert box == expected, (name, unit)
                inside += rf.box(*unit) == expected
            else:
                (t, b), (left, right) = box
                (et, eb), (el, er) = expected
                assert et <= t <= b <= eb and el <= left <= right <= er, (name, unit)
    assert inside > 0
    return sum(len(u) for u in units.values())


# --------------------------------------------------------------------------------------------- exact values


def test_stacked_3x3_convolutions_grow_by_two() -> None:
    fields = R.receptive_fields(_stacked_3x3(), 16)
    assert list(fields) == ["0", "2", "4"]
    assert [(rf.size, rf.stride, rf.padding) for rf in fields.values()] == [(3, 1, 1), (5, 1, 2), (7, 1, 3)]
    assert all(rf.output_size == 16 and rf.input_size == 16 and not rf.is_global for rf in fields.values())
    assert fields["4"].box(0, 0) == ((-3, 3), (-3, 3))
    assert fields["4"].clipped_box(0, 0) == ((0, 3), (0, 3))
    assert fields["4"].box(5, 9) == ((2, 8), (6, 12))


def test_strided_pooling_doubles_the_stride() -> None:
    fields = R.receptive_fields(_strided_pool(), 16)
    assert list(fields) == ["0", "2", "3"]
    assert (fields["2"].size, fields["2"].stride, fields["2"].padding, fields["2"].output_size) == (4, 2, 1, 8)
    assert (fields["3"].size, fields["3"].stride, fields["3"].padding) == (8, 2, 3)
    assert R.receptive_field(_strided_pool(), "1", 16).size == 3  # the ReLU passes its input's field through


def test_dilated_convolution() -> None:
    fields = R.receptive_fields(_dilated(), 32)
    assert (fields["0"].size, fields["0"].padding) == (5, 2)
    assert (fields["2"].size, fields["2"].padding, fields["2"].stride) == (13, 6, 1)


def test_residual_block_with_strided_shortcut() -> None:
    block = _Residual()
    fields = R.receptive_fields(block, 16)
    assert list(fields) == ["conv1", "conv2", "shortcut"]
    assert (fields["conv1"].size, fields["conv1"].stride, fields["conv1"].padding) == (3, 2, 1)
    assert (fields["conv2"].size, fields["conv2"].stride, fields["conv2"].padding) == (7, 2, 3)
    assert (fields["shortcut"].size, fields["shortcut"].stride, fields["shortcut"].padding) == (1, 2, 0)
    whole = R.receptive_field(block, "", 16)  # the block's output: the union of both paths
    assert (whole.size, whole.stride, whole.padding, whole.output_size) == (7, 2, 3, 8)


def test_merge_is_the_union_of_intervals_not_the_largest_branch() -> None:
    net = _Lopsided()
    assert (R.receptive_field(net, "left", 12).size, R.receptive_field(net, "left", 12).padding) == (3, 2)
    assert (R.receptive_field(net, "right", 12).size, R.receptive_field(net, "right", 12).padding) == (3, 0)
    merged = R.receptive_field(net, "", 12)
    assert (merged.size, merged.padding, merged.stride) == (5, 2, 1)
    found = gradient_support(net, {"": [(0, 0), (5, 7), (11, 11)]}, 12, in_channels=1)
    assert found[""] == [merged.clipped_box(*u) for u in [(0, 0), (5, 7), (11, 11)]]


def test_one_by_seven_then_seven_by_one() -> None:
    fields = R.receptive_fields(_factorised(), 20)
    first, second = fields["0"], fields["2"]
    assert (first.size, first.padding, first.stride) == ((1, 7), (0, 3), 1)
    assert first.size_hw == (1, 7) and first.box(4, 4) == ((4, 4), (1, 7))
    assert (second.size, second.padding) == (7, 3)


def test_non_square_input_gives_height_and_width() -> None:
    rf = R.receptive_field(_strided_pool(), "3", (16, 10))
    assert rf.output_size == (8, 5) and rf.input_size == (16, 10) and rf.size == 8


def test_ceil_mode_pooling_counts_units_like_torch() -> None:
    net = nn.Sequential(_conv(1, 1, 3, stride=2), nn.MaxPool2d(3, 2, ceil_mode=True), _conv(1, 1, 3, padding=1))
    for size in (15, 16, 17, 30):
        fields = R.receptive_fields(net, size)
        shapes, x = [], torch.zeros(1, 1, size, size)
        for module in net:
            x = module(x)
            shapes.append(tuple(x.shape[2:]))
        assert [rf.output_hw for rf in fields.values()] == shapes


def test_hand_built_networks_match_brute_force_on_every_unit() -> None:
    checked = 0
    for net, size in ((_stacked_3x3(), 12), (_strided_pool(), 14), (_factorised(), (9, 15)), (_Residual(), 13),
                      (_Lopsided(), 9)):  # fmt: skip
        checked += _assert_brute_force(net, size)
    checked += _assert_brute_force(_dilated(), 24, holes=True)
    assert checked > 1500


def test_dropped_border_pixels_shrink_the_extent() -> None:
    """A stride-2 valid convolution on 8 pixels never reads pixel 7; the padded layer after it doesn't either."""
    net = nn.Sequential(_conv(1, 1, 3, stride=2), _conv(1, 1, 3, padding=1))
    rf = R.receptive_field(net, "1", 8)
    assert rf.extent == ((0, 6), (0, 6))
    assert rf.box(2, 2) == ((2, 8), (2, 8)) and rf.clipped_box(2, 2) == ((2, 6), (2, 6))
    _assert_brute_force(net, 8)


# --------------------------------------------------------------------------------------------- global units


def test_global_pooling_flatten_and_linear_see_the_whole_input() -> None:
    net = nn.Sequential(_conv(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(2, 3))  # fmt: skip
    fields = R.receptive_fields(net, 16)
    pooled = fields["2"]
    # a window of the whole 8x8 map of a field 4 wide with stride 2 and padding 1
    assert (pooled.size, pooled.stride, pooled.padding, pooled.output_size, pooled.is_global) == (18, 16, 1, 1, True)
    assert pooled.clipped_box(0, 0) == ((0, 15), (0, 15))
    for layer in ("3", "4", ""):
        rf = R.receptive_field(net, layer, 16)
        assert rf.is_global and rf.size == 18 and rf.output_size == 1
    assert not fields["1"].is_global
    found = gradient_support(net, {"4": [(0, 0)], "2": [(0, 0)]}, 16, in_channels=1)
    assert found == {"4": [((0, 15), (0, 15))], "2": [((0, 15), (0, 15))]}


def test_squeeze_and_excitation_gate_makes_units_global_but_keeps_local_geometry() -> None:
    net = _Gated()
    conv, after = R.receptive_field(net, "conv", 24), R.receptive_field(net, "after", 24)
    assert not conv.is_global
    assert (after.size, after.stride, after.padding, after.is_global) == (5, 1, 2, True)
    assert R.receptive_field(net, "excite", 24).is_global
    unit = (10, 10)
    whole = gradient_support(net, {"after": [unit]}, 24, in_channels=1)["after"][0]
    local = gradient_support(net, {"after": [unit]}, 24, in_channels=1, local=True)["after"][0]
    assert whole == ((0, 23), (0, 23))  # through the gate, every pixel matters
    assert local == after.clipped_box(*unit) == ((8, 12), (8, 12))
    assert R.receptive_field(net, "", 24).is_global


def test_static_same_padding_of_efficientnet_lite_is_counted() -> None:
    """Conv2dStaticSamePadding pads (0, 1) before a stride-2 3x3: padding 0, unlike torchvision's 1."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    net = nn.Sequential(
        Conv2dStaticSamePadding(1, 2, kernel_size=3, stride=2, image_size=16),
        nn.ReLU6(),
        Conv2dStaticSamePadding(2, 2, kernel_size=5, stride=1, groups=2, image_size=8),
    )
    fields = R.receptive_fields(net, 16)
    assert list(fields) == ["0", "2"]
    assert (fields["0"].size, fields["0"].stride, fields["0"].padding, fields["0"].output_size) == (3, 2, 0, 8)
    assert (fields["2"].size, fields["2"].padding) == (11, 4)
    assert fields["2"].box(7, 7) == ((10, 20), (10, 20))  # reaches 5 pixels into the right padding
    _assert_brute_force(net, 16)


# --------------------------------------------------------------------------------------------- every registered model


def _layers_to_check(net: nn.Module, fields: dict[str, R.ReceptiveField]) -> list[str]:
    convs = [n for n in fields if isinstance(net.get_submodule(n), nn.Conv2d)]
    pools = [n for n in fields if isinstance(net.get_submodule(n), (nn.MaxPool2d, nn.AvgPool2d))]
    picked = [convs[0], convs[len(convs) // 2], convs[-1]] + pools[len(pools) // 2 : len(pools) // 2 + 1]
    return list(dict.fromkeys(picked))


def _informative_size(net: nn.Module, layers: list[str], axis: int) -> tuple[tuple[int, int], dict]:
    """The smallest input, long along ``axis``, where each layer has a unit whose field starts inside the
    image and one whose field ends inside it (so size, stride and padding are all visible)."""
    short = next(s for s in range(32, 512, 8) if _known(net, layers, (s, s)))
    for long in range(64, 4096, 16):
        hw = (long, short) if axis == 0 else (short, long)
        if not _known(net, layers, hw):
            continue
        fields = {layer: R.receptive_field(net, layer, hw) for layer in layers}
        if all(_visible(rf, axis) for rf in fields.values()):
            return hw, fields
    raise AssertionError("no informative input size")


def _known(net: nn.Module, layers: list[str], hw: tuple[int, int]) -> bool:
    try:
        return all(R.receptive_field(net, layer, hw) for layer in layers)
    except R.ReceptiveFieldError:
        return False


def _visible(rf: R.ReceptiveField, axis: int) -> bool:
    n, size, stride, pad = rf.output_hw[axis], rf.size_hw[axis], rf.stride_hw[axis], rf.padding_hw[axis]
    first_end, last_start = size - 1 - pad, (n - 1) * stride - pad
    return first_end < rf.extent[axis][1] and last_start > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", models.list_models())
def test_brute_force_matches_every_registered_model(name: str) -> None:
    with torch.device("meta"):  # no time spent initialising weights: the brute force overwrites them all
        net = models.load_model(name, pretrained=False, device="meta").model
    channels = models.get_spec(name).in_channels
    fields = R.receptive_fields(net, models.get_spec(name).input_size)
    layers = _layers_to_check(net, fields)
    for axis in (0, 1):
        hw, at_size = _informative_size(net, layers, axis)
        units = {}
        for layer, rf in at_size.items():
            n, across = rf.output_hw[axis], rf.output_hw[1 - axis] // 2
            units[layer] = [(i, across) if axis == 0 else (across, i) for i in sorted({0, n // 2, n - 1})]
        found = gradient_support(net, units, hw, in_channels=channels, local=True)
        for layer, rf in at_size.items():
            assert found[layer] == [rf.clipped_box(*u) for u in units[layer]], (name, layer, hw)
    gated = [n for n, rf in fields.items() if rf.is_global and rf.output_hw != (1, 1)]
    if gated:  # squeeze-and-excitation: through the gate every pixel counts
        first = gated[0]
        hw, at_size = _informative_size(net, [first], 0)
        unit = (0, 0)
        found = gradient_support(net, {first: [unit]}, hw, in_channels=channels)[first][0]
        assert found == ((0, hw[0] - 1), (0, hw[1] - 1)) != at_size[first].clipped_box(*unit)


def test_known_architecture_numbers() -> None:
    """Published figures: VGG-16 conv5_3 212 - 16 = 196 px (Araujo et al.: 212 after pool5), ResNet-50 427."""
    from torchvision.models import resnet50, vgg16

    with torch.device("meta"):  # tracing needs no weights
        vgg, res = vgg16(), resnet50()
    vgg = R.receptive_fields(vgg)
    assert (vgg["features.28"].size, vgg["features.28"].stride, vgg["features.28"].padding) == (196, 16, 90)
    assert (vgg["features.30"].size, vgg["features.30"].stride) == (212, 32)
    res = R.receptive_field(res, "layer4", 224)
    assert (res.size, res.stride, res.padding) == (427, 32, 213)


# --------------------------------------------------------------------------------------------- errors


def test_untraceable_model_gets_a_clear_error() -> None:
    with pytest.raises(R.UntraceableModelError, match="can't be traced") as info:
        R.receptive_fields(_Branchy(), 8)
    assert isinstance(info.value, ValueError)


def test_unknown_geometry_is_an_error_downstream_only() -> None:
    net = nn.Sequential(_conv(1, 1, 3, padding=1), nn.Upsample(scale_factor=2), _conv(1, 1, 3, padding=1))
    assert R.receptive_field(net, "0", 8).size == 3
    with pytest.raises(R.UnsupportedLayerError, match="Upsample"):
        R.receptive_field(net, "2", 8)
    with pytest.raises(R.UnsupportedLayerError, match="Upsample"):
        R.receptive_fields(net, 8)


def test_every_layer_gives_each_running_module_and_leaves_out_unknown_geometry() -> None:
    net = nn.Sequential(_conv(1, 1, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2), _conv(1, 1, 3, padding=1))
    fields = R.receptive_fields(net, 8, every_layer=True)
    assert list(fields) == ["0", "1"]  # the upsampling and everything after it are left out, no error
    assert fields["1"] == fields["0"] == R.receptive_field(net, "0", 8)
    residual = R.receptive_fields(_Residual(), 8, every_layer=True)
    assert list(residual) == ["conv1", "relu", "conv2", "shortcut"]  # execution order, first call of `relu`
    assert residual["relu"] == R.receptive_field(_Residual(), "relu", 8)
    assert {k: v for k, v in residual.items() if k != "relu"} == R.receptive_fields(_Residual(), 8)


def test_architecture_fields_match_the_loaded_model_without_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import resnet18

    def offline(*args: object, **kwargs: object) -> None:
        raise AssertionError("no weights may be fetched")

    monkeypatch.setattr(models, "fetch_weights", offline)
    with torch.device("meta"):
        expected = R.receptive_fields(resnet18(), 224)
    fields = R.architecture_fields("resnet18")
    assert fields == expected and fields["layer4.1.conv2"].size == 435
    every = R.architecture_fields("resnet18", every_layer=True)
    assert every["layer4.1.conv2"] == fields["layer4.1.conv2"] and every["fc"].is_global
    assert R.architecture_fields("resnet18", 64)["layer4.1.conv2"].output_size == 2
    assert R.architecture_fields(models.DIGITS_MODEL)["conv1"].input_size == 28
    with pytest.raises(models.UnknownModelError):
        R.architecture_fields("no_such_model")


def test_uneven_adaptive_pooling_is_refused_even_pooling_is_exact() -> None:
    net = nn.Sequential(_conv(1, 1, 3, padding=1), nn.AdaptiveAvgPool2d(3))
    assert (R.receptive_field(net, "1", 12).size, R.receptive_field(net, "1", 12).stride) == (6, 4)
    with pytest.raises(R.UnsupportedLayerError, match="differ in size"):
        R.receptive_field(net, "1", 10)


def test_layer_names_are_checked() -> None:
    with pytest.raises(R.LayerNotFoundError, match="Did you mean '2'") as info:
        R.receptive_field(_stacked_3x3(), "2 ", 8)
    assert isinstance(info.value, ValueError)
    with pytest.raises(R.LayerNotFoundError, match="does not run"):
        R.receptive_field(_Spare(), "unused", 8)


@pytest.mark.parametrize("size", [0, -3, (4,), (8, 0), "224", 10**6, True])
def test_bad_input_sizes(size: object) -> None:
    with pytest.raises(ValueError, match="input_size"):
        R.receptive_field(_stacked_3x3(), "0", size)  # type: ignore[arg-type]


def test_input_too_small_for_a_layer() -> None:
    with pytest.raises(R.UnsupportedLayerError, match="larger than its padded input"):
        R.receptive_field(nn.Sequential(_conv(1, 1, 5), _conv(1, 1, 5)), "1", 6)


# --------------------------------------------------------------------------------------------- cache and safety


def test_traced_once_per_model_and_not_kept_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = geo.trace
    monkeypatch.setattr(geo, "trace", lambda model: calls.append(model) or original(model))
    net = _strided_pool()
    first = R.receptive_fields(net, 16)
    assert R.receptive_fields(net, 16) == first and R.receptive_fields(net, 16) is not first
    assert R.receptive_field(net, "3", 16) is first["3"]
    R.receptive_fields(net, 32)
    R.effective_receptive_field(net, "3", None, n_random=1, input_size=16, in_channels=1)
    assert len(calls) == 1
    calls.clear()
    ref = weakref.ref(net)
    del net, first
    gc.collect()
    assert ref() is None


def _hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


def test_nothing_about_the_model_changes() -> None:
    net = _Gated().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    R.receptive_fields(net, 16)
    R.effective_receptive_field(net, "after", torch.randn(1, 1, 16, 16), n_random=2)
    gradient_support(net, {"after": [(3, 3)]}, 16, in_channels=1)
    assert net.training and all(m.training for m in net.modules())
    assert _hooks(net) == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in net.parameters())


# --------------------------------------------------------------------------------------------- ERF


def _deep_relu_net(layers: int = 16, width: int = 8, in_channels: int = 1) -> nn.Sequential:
    torch.manual_seed(0)
    body: list[nn.Module] = []
    for i in range(layers):
        body += [_conv(in_channels if i == 0 else width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*body[:-1]).eval()


def test_effective_field_is_inside_and_much_smaller_than_the_theoretical_one() -> None:
    net = _deep_relu_net()
    last = str(len(net) - 1)
    erf = R.effective_receptive_field(net, last, torch.randn(1, 1, 48, 48), n_random=4, seed=3)
    assert erf.unit == (24, 24) and erf.theoretical.size == 33
    for grad_map in (erf.image_map, erf.random_map):
        assert grad_map.shape == (48, 48) and grad_map.dtype == np.float32
        assert grad_map.max() == pytest.approx(1.0) and grad_map.min() >= 0.0
        (top, bottom), (left, right) = erf.box
        outside = grad_map.copy()
        outside[top : bottom + 1, left : right + 1] = 0
        assert not outside.any()  # nothing outside the theoretical field
        assert 0 < R.effective_size(grad_map) < 0.7 * erf.theoretical.size
    assert not np.allclose(erf.image_map, erf.random_map)


def test_effective_field_averages_random_inputs_reproducibly() -> None:
    net = _deep_relu_net(6)
    kwargs = {"channel": 2, "n_random": 3, "input_size": 20, "in_channels": 1, "seed": 5}
    a = R.effective_receptive_field(net, "10", None, (3, 4), **kwargs)
    b = R.effective_receptive_field(net, "10", None, (3, 4), **kwargs)
    assert a.image_map is None and a.n_random == 3 and a.channel == 2
    np.testing.assert_array_equal(a.random_map, b.random_map)
    # the average of |gradient| over the 3 inputs, rescaled to a maximum of 1
    noise = torch.randn(3, 1, 20, 20, generator=torch.Generator().manual_seed(5))
    grads = []
    for x in noise:
        x = x[None].requires_grad_(True)
        (g,) = torch.autograd.grad(net(x)[0, 2, 3, 4], x)
        grads.append(g.abs()[0, 0])
    expected = torch.stack(grads).mean(0)
    np.testing.assert_allclose(a.random_map, (expected / expected.max()).numpy(), rtol=1e-5, atol=1e-6)


def test_effective_field_on_a_shared_registry_model_under_inference_mode() -> None:
    loaded = make_loaded(_deep_relu_net(4, in_channels=3), 12)
    image = np.zeros((12, 12, 3), np.uint8)
    with torch.inference_mode():
        erf = R.effective_receptive_field(loaded, "6", loaded.preprocess(image), n_random=2)
    assert erf.image_map.shape == (12, 12) and erf.random_map.shape == (12, 12)
    assert _hooks(loaded.model) == 0 and not loaded.model.training


def test_effective_field_errors() -> None:
    net = _deep_relu_net(2)
    with pytest.raises(ValueError, match="n_random"):
        R.effective_receptive_field(net, "2", None, n_random=0)
    with pytest.raises(ValueError, match="outside"):
        R.effective_receptive_field(net, "2", torch.zeros(1, 1, 8, 8), (8, 0), n_random=0)
    with pytest.raises(ValueError, match="channel"):
        R.effective_receptive_field(net, "2", torch.zeros(1, 1, 8, 8), channel=8, n_random=0)
    with pytest.raises(ValueError, match="Tensor"):
        R.effective_receptive_field(net, "2", np.zeros((8, 8, 3)), n_random=0)  # type: ignore[arg-type]


def test_effective_size() -> None:
    point = np.zeros((9, 9))
    point[4, 4] = 2.0
    assert R.effective_size(point) == 1.0
    assert R.effective_size(np.ones((4, 4))) == 4.0
    assert R.effective_size(np.ones((4, 4)), mass=0.5) == pytest.approx(8**0.5)
    assert R.effective_size(np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError, match="mass"):
        R.effective_size(point, mass=0)


# --------------------------------------------------------------------------------------------- dilation demo


def test_lecture_stack_kernel_2_stride_2() -> None:
    plain = R.conv_stack_1d([2, 2], [2, 2])
    assert plain.receptive_field == 4 and plain.growth == (2, 4)
    assert plain.lengths == (12, 6, 3) and plain.output_unit == 1
    assert plain.feeds == ((4, 5, 6, 7), (2, 3), (1,)) and plain.paths == (0,) * 4 + (1,) * 4 + (0,) * 4
    dilated = R.conv_stack_1d([2, 2], [2, 2], [1, 2], output_unit=0)
    assert dilated.receptive_field == 6 and dilated.feeds == ((0, 1, 4, 5), (0, 2), (0,))
    assert dilated.edges == (((0, 0), (0, 1), (2, 4), (2, 5)), ((0, 0), (0, 2)))
    assert R.conv_stack_1d([2, 2], [2, 2], [2, 2]).receptive_field == 7


def test_wavenet_dilations_double_the_field() -> None:
    stack = R.conv_stack_1d([2] * 4, None, [1, 2, 4, 8])
    assert stack.growth == (2, 4, 8, 16) and stack.receptive_field == 16
    assert len(stack.feeds[0]) == 16 and set(stack.paths) == {0, 1}  # every input once: no overlap
    assert R.receptive_field_growth([2] * 4) == [2, 3, 4, 5]  # without dilation: linear


def test_conv_stack_matches_torch_conv1d_support() -> None:
    rng = np.random.default_rng(0)
    for _ in range(25):
        layers = int(rng.integers(1, 4))
        ks, ss, ds = (rng.integers(1, 4, layers).tolist() for _ in range(3))
        stack = R.conv_stack_1d(ks, ss, ds)
        convs = (nn.Conv1d(1, 1, k, s, dilation=d, bias=False) for k, s, d in zip(ks, ss, ds, strict=True))
        net = nn.Sequential(*convs)
        for conv in net:
            nn.init.constant_(conv.weight, 1.0)
        x = torch.zeros(1, 1, stack.lengths[0], requires_grad=True)
        out = net(x)
        assert out.shape[-1] == stack.lengths[-1]
        (grad,) = torch.autograd.grad(out[0, 0, stack.output_unit], x)
        assert tuple(torch.nonzero(grad[0, 0]).flatten().tolist()) == stack.feeds[0]
        assert tuple(int(v) for v in grad[0, 0]) == stack.paths  # weights 1: gradient = number of paths


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [(([2, 2], [1]), {}, "one kernel size"), (([0],), {}, "kernel size"), (([3], [1], [1]), {"n_inputs": 2}, "too few"),
     (([3],), {"output_unit": 9}, "output_unit"), (([9] * 6, [4] * 6), {}, "more than")],
)  # fmt: skip
def test_conv_stack_errors(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        R.conv_stack_1d(*args, **kwargs)


def test_no_warnings_from_tracing_registry_default() -> None:
    net = models.load_model(models.DEFAULT_MODEL, pretrained=False, device="cpu").model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fields = R.receptive_fields(net)
    assert fields["_conv_stem"].padding == 0 and fields["_conv_head"].size == 851


def test_effective_field_falls_back_to_the_cpu_when_the_gpu_runs_out(tiny_loaded, monkeypatch):
    import dataclasses

    from vizlib import devices
    from vizlib.receptive_field import effective

    gpu_like = dataclasses.replace(tiny_loaded, device=torch.device("meta"), lock=tiny_loaded.lock, cache={})
    real = effective._unit_gradient

    def unit_gradient(gm, x, unit, channel):
        if any(p is q for p in gm.parameters() for q in tiny_loaded.model.parameters()):  # "on the GPU"
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(gm, x, unit, channel)

    monkeypatch.setattr(effective, "_unit_gradient", unit_gradient)
    x = tiny_loaded.preprocess(np.full((16, 16, 3), 128, np.uint8))
    with devices.collect_fallbacks() as notices, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = R.effective_receptive_field(gpu_like, "3", x, n_random=2)
    assert notices == [f"The GPU ran out of memory; {tiny_loaded.name} ran on the CPU for this request."]
    monkeypatch.setattr(effective, "_unit_gradient", real)
    want = R.effective_receptive_field(tiny_loaded.model, "3", x, n_random=2)
    np.testing.assert_allclose(got.image_map, want.image_map, atol=1e-6)
    np.testing.assert_allclose(got.random_map, want.random_map, atol=1e-6)
