"""vizlib.activations: fx extraction with exact values, layer tables, naming, no hooks, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import make_loaded
from vizlib import activations, models
from vizlib.concurrency import RWLock


def _fixed_net() -> nn.Sequential:
    """conv(1->2, 2x2) with hand-set weights -> ReLU -> maxpool 2 -> flatten -> linear."""
    conv = nn.Conv2d(3, 2, 2, bias=True)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = torch.tensor([[1.0, 0.0], [0.0, -1.0]])  # R: top-left minus bottom-right
        conv.weight[1, 1] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # G: 2x2 sum
        conv.bias[:] = torch.tensor([0.0, -10.0])
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))


def _image() -> np.ndarray:
    img = np.zeros((5, 5, 3), np.uint8)
    img[..., 0] = np.arange(25, dtype=np.uint8).reshape(5, 5)  # R = 5*row + col
    img[..., 1] = 3
    return img


def test_exact_values_from_one_forward_pass():
    loaded = make_loaded(_fixed_net(), 5)
    acts = activations.extract(loaded, _image(), ["0", "1", "2", "4"])
    assert list(acts) == ["0", "1", "2", "4"]
    # channel 0: R[r,c] - R[r+1,c+1] = -6 everywhere; channel 1: 4 * 3 - 10 = 2 everywhere
    torch.testing.assert_close(acts["0"][0], torch.full((4, 4), -6.0))
    torch.testing.assert_close(acts["0"][1], torch.full((4, 4), 2.0))
    torch.testing.assert_close(acts["1"][0], torch.zeros(4, 4))
    torch.testing.assert_close(acts["2"], torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]]))
    assert acts["4"].shape == (3,)
    for t in acts.values():
        assert t.device.type == "cpu" and not t.requires_grad and t.dtype == torch.float32


def test_grayscale_network_gets_luma():
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    loaded = make_loaded(nn.Sequential(conv, nn.Flatten(), nn.Linear(4, 2)), 2, in_channels=1)
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = (255, 0, 0)
    img[1, 1] = (0, 0, 255)
    x = loaded.preprocess(img)
    assert x.shape == (1, 1, 2, 2)
    torch.testing.assert_close(x[0, 0], torch.tensor([[0.299 * 255, 0.0], [0.0, 0.114 * 255]]))


def test_many_layers_cost_one_forward_pass(monkeypatch, tiny_loaded, rng):
    calls = []
    original = activations._cached_extractor

    def counting(loaded, layers):
        extractor = original(loaded, layers)

        def run(x):
            calls.append(layers)
            return extractor(x)

        return run

    monkeypatch.setattr(activations, "_cached_extractor", counting)
    names = [row.name for row in activations.layer_table(tiny_loaded)]
    calls.clear()
    acts = activations.extract(tiny_loaded, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), names)
    assert len(calls) == 1 and set(acts) == set(names)


def test_extractor_is_cached_and_shares_weights(tiny_loaded, rng):
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    activations.extract(tiny_loaded, img, ["3", "0"])
    cache = tiny_loaded.cache["extractors"]
    assert cache.keys() == [("0", "3")]
    activations.extract(tiny_loaded, img, ["0", "3"])
    assert len(cache) == 1
    gm = cache.get(("0", "3"))
    shared = {id(p) for p in tiny_loaded.model.parameters()}
    assert {id(p) for p in gm.parameters()} <= shared


def test_container_name_gives_its_last_operation():
    loaded = models.load_model("resnet18", pretrained=False)
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    acts = activations.extract(loaded, img, ["layer1", "layer1.1.relu"])
    m = loaded.model
    with torch.no_grad():
        x = loaded.preprocess(img)
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        expected = m.layer1(x)[0]
    torch.testing.assert_close(acts["layer1"], expected)
    # relu in a BasicBlock runs twice; the plain name is its first call (after bn1).
    with torch.no_grad():
        b = m.layer1[1]
        first_relu = b.relu(b.bn1(b.conv1(m.layer1[0](x))))[0]
    torch.testing.assert_close(acts["layer1.1.relu"], first_relu)


def test_unknown_layer_is_a_clear_error(tiny_loaded):
    with pytest.raises(activations.ExtractionError, match="No layer named 'conv9'"):
        activations.extract(tiny_loaded, np.zeros((8, 8, 3), np.uint8), ["conv9"])


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow can't be traced symbolically
            return self.conv(x)
        return -self.conv(x)


def test_untraceable_model_is_a_clear_error():
    loaded = make_loaded(_Untraceable(), 4, categories=["a", "b"])
    with pytest.raises(activations.ExtractionError, match="_Untraceable"):
        activations.extract(loaded, np.ones((4, 4, 3), np.uint8), ["conv"])
    assert not loaded.model.training


def test_layer_table_resnet18():
    loaded = models.load_model("resnet18", pretrained=False)
    table = activations.layer_table(loaded)
    rows = {row.name: row for row in table}
    assert table[0].name == "conv1"
    assert rows["conv1"].output_shape == (64, 112, 112) and rows["conv1"].params == 64 * 3 * 7 * 7
    assert rows["layer4.1.conv2"].output_shape == (512, 7, 7) and rows["layer4.1.conv2"].stage == "layer4"
    assert rows["fc"].output_shape == (1000,) and rows["fc"].params == 512 * 1000 + 1000
    assert rows["layer2.0.downsample.0"].type == "Conv2d"
    assert len(activations.conv_layers(loaded)) == 20
    assert activations.layer_table(loaded) is table  # cached


def test_layer_table_keeps_names_of_conv_subclasses(lite0):
    table = activations.layer_table(lite0)
    rows = {row.name: row for row in table}
    assert rows["_conv_stem"].type == "Conv2dStaticSamePadding"
    assert rows["_conv_stem"].output_shape == (32, 112, 112)
    assert rows["_blocks.1._depthwise_conv"].stage == "_blocks.1"
    assert rows["_conv_head"].output_shape == (1280, 7, 7)
    convs = activations.conv_layers(lite0)
    assert convs[0] == "_conv_stem" and convs[-1] == "_conv_head" and len(convs) == 49


def _hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


def test_no_hooks_no_train_mode_no_mutation(lite0, rng):
    before = {k: v.clone() for k, v in lite0.model.state_dict().items()}
    img = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    activations.extract(lite0, img, activations.conv_layers(lite0)[:5])
    assert _hook_count(lite0.model) == 0 and not lite0.model.training
    after = lite0.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_threads_get_their_own_activations(lite0):
    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    layers = ["_conv_stem", "_blocks.3._project_conv", "_conv_head"]
    expected = [activations.extract(lite0, img, layers) for img in imgs]
    out: dict[int, list] = {0: [], 1: []}

    def worker(i):
        for _ in range(4):
            out[i].append(activations.extract(lite0, imgs[i], layers))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(2):
        assert len(out[i]) == 4
        for got in out[i]:
            for name in layers:
                torch.testing.assert_close(got[name], expected[i][name])


def test_rwlock_readers_share_writers_exclude():
    lock = RWLock()
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def reader():
        with lock.read():
            inside.set()
            order.append("reader in")
            release.wait(5)
            order.append("reader out")

    t = threading.Thread(target=reader)
    t.start()
    inside.wait(5)
    with lock.read():  # a second reader gets in while the first holds the lock
        order.append("second reader")

    def writer():
        with lock.write():
            order.append("writer")

    w = threading.Thread(target=writer)
    w.start()
    w.join(0.2)
    assert "writer" not in order  # waits for the reader
    release.set()
    t.join(5)
    w.join(5)
    assert order == ["reader in", "second reader", "reader out", "writer"]
    with lock.write(), lock.read():  # the writer may read what it holds
        pass
    with pytest.raises(RuntimeError), lock.write(), lock.write():
        pass
    with pytest.raises(RuntimeError, match="would deadlock"), lock.read(), lock.write():
        pass
    with lock.read(), lock.read():  # nested reads are fine
        pass


def test_in_place_ops_do_not_overwrite_returned_activations():
    """AlexNet's conv is followed by ReLU(inplace=True); ResNet adds the shortcut with ``+=``."""
    img = np.random.default_rng(3).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    alexnet = models.load_model("alexnet", pretrained=False)
    acts = activations.extract(alexnet, img, ["features.0", "features.1"])
    with torch.no_grad():
        conv = alexnet.model.features[0](alexnet.preprocess(img))[0]
    assert conv.min() < 0
    torch.testing.assert_close(acts["features.0"], conv)
    torch.testing.assert_close(acts["features.1"], conv.clamp(min=0))

    resnet = models.load_model("resnet18", pretrained=False)
    acts = activations.extract(resnet, img, ["layer1.0.bn2", "layer1.0"])
    m = resnet.model
    with torch.no_grad():
        x = m.maxpool(m.relu(m.bn1(m.conv1(resnet.preprocess(img)))))
        block = m.layer1[0]
        bn2 = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
    torch.testing.assert_close(acts["layer1.0.bn2"], bn2[0])
    torch.testing.assert_close(acts["layer1.0"], (bn2 + x).relu()[0])


@pytest.mark.parametrize("name", models.list_models())
def test_every_registered_model_has_a_layer_table_and_extracts_every_conv(name):
    loaded = models.load_model(name, pretrained=name == models.DIGITS_MODEL)
    table = activations.layer_table(loaded)
    convs = activations.conv_layers(loaded)
    assert table and convs
    image = np.zeros((64, 64, 3), np.uint8)
    image[8:56, 28:36] = 255  # some ink for the digits model
    acts = activations.extract(loaded, image, [*convs, table[-1].name])
    rows = {row.name: row for row in table}
    for conv in convs:
        assert tuple(acts[conv].shape) == rows[conv].output_shape


def test_a_container_and_its_last_layer_may_be_asked_together(lite0):
    img = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    acts = activations.extract(lite0, img, ["_blocks.0", "_blocks.0._bn2"])
    torch.testing.assert_close(acts["_blocks.0"], acts["_blocks.0._bn2"])


def test_the_trace_is_made_once_per_model(tiny_loaded, monkeypatch):
    first = activations.trace_graph(tiny_loaded.model)
    assert activations.trace_graph(tiny_loaded.model) is first
    activations.build_extractor(tiny_loaded.model, ["0"])
    activations.build_extractor(tiny_loaded.model, ["3"])
    assert activations._TRACES[tiny_loaded.model] is first


def test_the_extractor_cache_holds_under_racing_threads(tiny_loaded, monkeypatch):
    import sys

    monkeypatch.setattr(activations, "_EXTRACTOR_CACHE_SIZE", 2)  # constant eviction: the race is likely
    monkeypatch.setattr(activations, "build_extractor", lambda model, key: ("extractor", key))

    import collections
    import time

    class YieldingDict(collections.OrderedDict):  # a per-model cache built on a bare OrderedDict races here
        def get(self, key, default=None):
            value = super().get(key, default)
            time.sleep(0)  # give other threads the window between the lookup and the reordering
            return value

    monkeypatch.setattr(activations, "OrderedDict", YieldingDict, raising=False)
    loaded = type(tiny_loaded)(tiny_loaded.name, tiny_loaded.model, tiny_loaded.device, tiny_loaded.categories,
                               tiny_loaded.spec, tiny_loaded.pretrained)
    keys = [(f"layer{i}",) for i in range(5)]
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            for i in range(1000):
                key = keys[(seed * 7 + i) % len(keys)]
                assert activations._cached_extractor(loaded, key) == ("extractor", key)
        except BaseException as exc:  # reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], repr(errors[:1])
