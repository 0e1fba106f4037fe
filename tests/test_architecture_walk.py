"""The model walk: exact rows on tiny models, torch's own counts, and the whole registry against published figures."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.conftest import make_loaded, tiny_convnet
from vizlib import models
from vizlib import receptive_field as R
from vizlib.architecture import (
    UncountableModelError,
    architecture_costs,
    conv_cost,
    layer_costs,
    linear_cost,
    model_cost,
)
from vizlib.architecture.catalog import PUBLISHED


def test_tiny_convnet_rows_are_hand_worked() -> None:
    loaded = make_loaded(tiny_convnet(), 8)
    rows = layer_costs(loaded)
    assert [r.name for r in rows] == ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert [r.type for r in rows] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "AdaptiveAvgPool2d", "Flatten",
                                      "Linear"]  # fmt: skip
    assert [r.out_shape for r in rows] == [(4, 8, 8), (4, 8, 8), (4, 4, 4), (6, 2, 2), (6, 2, 2), (6, 1, 1), (6,), (5,)]
    # conv 3->4 3x3 pad 1 on 8x8: 4*27+4 = 112 params, 8*8*4*27 = 6912 MACs; conv 4->6 3x3 on 4x4: 222, 2*2*6*36 = 864.
    assert [(r.params, r.macs) for r in rows] == [(112, 6912), (0, 0), (0, 0), (222, 864), (0, 0), (0, 0), (0, 0),
                                                  (35, 30)]  # fmt: skip
    assert rows[0].kernel == (3, 3) and rows[0].padding == (1, 1) and rows[0].groups == 1 and rows[2].stride == (2, 2)
    assert [r.kind for r in rows] == ["conv", "other", "other", "conv", "other", "other", "other", "dense"]
    # receptive fields: 3, then pool 2 -> 4, conv 3 at stride 2 -> 8; the linear layer sees everything
    assert [rows[i].receptive_field.size for i in (0, 2, 3)] == [3, 4, 8]
    assert rows[7].receptive_field.is_global
    cost = model_cost(loaded)
    assert (cost.params, cost.macs, cost.layers, cost.input_shape) == (369, 7806, 8, (3, 8, 8))
    assert cost.split == {"conv": (334, 7776), "dense": (35, 30), "other": (0, 0)}


class _Branchy(nn.Module):
    """Residual add, an inception-like concat, a functional matmul, a module used twice, an unowned parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b1 = nn.Conv2d(3, 2, 1)
        self.b2 = nn.Conv2d(3, 4, 5, padding=2, bias=False)
        self.act = nn.ReLU()
        self.proj = nn.Parameter(torch.randn(6, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.a(x)) + x
        y = self.act(torch.cat([self.b1(y), self.b2(y)], dim=1))
        return torch.flatten(y.mean((2, 3)), 1) @ self.proj


def test_branches_merges_shared_modules_and_functional_ops() -> None:
    torch.manual_seed(0)
    net = _Branchy().eval()
    rows = layer_costs(net, (3, 10, 10))
    assert [(r.name, r.type) for r in rows] == [("a", "Conv2d"), ("act", "ReLU"), ("add", "add"), ("b1", "Conv2d"),
                                                ("b2", "Conv2d"), ("cat", "cat"), ("act", "ReLU"),
                                                ("matmul", "matmul")]  # fmt: skip
    assert rows[2].inputs == 2 and rows[5].inputs == 2 and rows[5].out_shape == (6, 10, 10)
    assert rows[1].params == rows[6].params == 0 and rows[6].receptive_field is None  # second call: no field
    assert rows[7].macs == 6 * 7 and rows[7].kind == "dense"
    expected = [conv_cost((3, 10, 10), 3, 3, padding=1), conv_cost((3, 10, 10), 2, 1),
                conv_cost((3, 10, 10), 4, 5, padding=2, bias=False)]  # fmt: skip
    assert [(r.params, r.macs) for r in (rows[0], rows[3], rows[4])] == [(e.params, e.macs) for e in expected]
    cost = model_cost(net, (3, 10, 10))
    assert cost.params == sum(p.numel() for p in net.parameters())  # the unowned 6x7 matrix included
    assert cost.split["other"][0] == 42
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, 10, 10))
    assert cost.macs == counter.get_total_flops() // 2


def test_walk_on_a_shared_cpu_model_changes_nothing_and_matches_flop_counter() -> None:
    loaded = models.load_model("resnet18", pretrained=False, device="cpu")
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    rows = layer_costs(loaded)
    assert all(len(m._forward_hooks) == 0 and len(m._forward_pre_hooks) == 0 for m in loaded.model.modules())
    assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = loaded.model(torch.zeros(1, 3, 224, 224))
    per_module = counter.get_flop_counts()
    convs = [r for r in rows if r.type == "Conv2d"]
    assert len(convs) == 20
    for r in convs:
        assert r.macs == sum(per_module[f"ResNet.{r.name}"].values()) // 2, r.name
    assert model_cost(loaded).macs == counter.get_total_flops() // 2
    assert rows[-1].out_shape == tuple(out.shape[1:])
    meta_cost, meta_rows = architecture_costs("resnet18")  # the same architecture built on the meta device
    assert meta_cost.macs == model_cost(loaded).macs and [r.name for r in meta_rows] == [r.name for r in rows]
    assert layer_costs(loaded) is not layer_costs(loaded)  # a new list each call (the rows are cached)


def test_concurrent_walks_of_one_model_agree() -> None:
    loaded = make_loaded(tiny_convnet(), 16)
    results, errors = [], []

    def walk() -> None:
        try:
            results.append(model_cost(loaded, (3, 16, 16)).macs)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=walk) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1


def test_receptive_fields_are_the_receptive_field_modules() -> None:
    loaded = models.load_model("resnet18", pretrained=False, device="cpu")
    fields = R.receptive_fields(loaded, 224)
    for row in layer_costs(loaded):
        if row.name in fields and row.type == "Conv2d":
            assert row.receptive_field == fields[row.name]


def test_untraceable_model_says_so() -> None:
    class Branching(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(UncountableModelError, match="traced"):
        layer_costs(Branching(), (3, 4, 4))
    with pytest.raises(ValueError, match="input_shape"):
        layer_costs(nn.Conv2d(1, 1, 1))


# ------------------------------------------------------------------------------------------- the registry

TORCHVISION = [n for n in models.list_models() if models.get_spec(n).family == "torchvision"]


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION)
def test_registry_model_matches_torchvision_metadata(name: str) -> None:
    """torchvision's ``num_params`` and ``_ops`` (GFLOPS counted as MACs) at the weights' crop size, within 2%."""
    from torchvision.models import get_model, get_model_weights

    weights = get_model_weights(name).DEFAULT
    crop = int(weights.transforms().crop_size[0])
    cost, rows = architecture_costs(name)
    assert cost.input_shape == (3, crop, crop)
    assert sum(r.params for r in rows) == cost.params
    published_params = weights.meta["num_params"]
    if name == "inception_v3":  # its weights keep the auxiliary classifier, which the registry drops (eval only)
        with torch.device("meta"):
            aux = get_model(name, weights=None, aux_logits=True, init_weights=False).AuxLogits
        published_params -= sum(p.numel() for p in aux.parameters())
    assert cost.params == pytest.approx(published_params, rel=0.02)
    assert cost.macs / 1e9 == pytest.approx(weights.meta["_ops"], rel=0.02)


@pytest.mark.slow
def test_default_model_matches_its_published_figures() -> None:
    """EfficientNet-Lite0 against tensorflow/tpu's README: 4.7 M parameters (rounded to 0.1 M, so within 2%) and
    407 M MAdds (within 6%: TensorFlow's profiler counts more than convolutions and dense layers)."""
    cost, _ = architecture_costs(models.DEFAULT_MODEL)
    published = PUBLISHED[models.DEFAULT_MODEL]
    assert cost.params == pytest.approx(published.params, rel=0.02)
    assert cost.macs == pytest.approx(published.macs, rel=0.06)
    assert cost.params == 4_652_008 and cost.macs == 385_187_552  # the PyTorch port, counted by torch


def test_digits_lenet_is_hand_worked() -> None:
    cost, rows = architecture_costs(models.DIGITS_MODEL)
    parts = [conv_cost((1, 28, 28), 16, 5, padding=2), conv_cost((16, 14, 14), 32, 5), linear_cost(800, 120),
             linear_cost(120, 84), linear_cost(84, 10)]  # fmt: skip
    assert cost.params == sum(p.params for p in parts) == 120_382
    assert cost.macs == sum(p.macs for p in parts) == 1_700_520
    assert [r.out_shape for r in rows if r.kind != "other"] == [p.out_shape for p in parts]
