"""vizlib.cam: exact values on fixed-weight nets, CAM = Grad-CAM on GAP heads, agreement with Captum,
one forward pass and one layer gradient, real weights, no leaked hooks, threads, clear errors, faithfulness."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import make_loaded, tiny_convnet
from vizlib import cam, models
from vizlib.cam import graph as cam_graph
from vizlib.cam import methods as cam_methods
from vizlib.cam.faithfulness import top_mask

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum")

# The fixed image: R and G channels are the two activation channels of the nets below (B is unused).
R = np.array([[1.0, 2.0], [3.0, 4.0]])
G = np.array([[4.0, 0.0], [1.0, 2.0]])
# d logit[0] / dA for the flat head (its first row of weights, in (channel, row, col) order).
G0 = np.array([[1.0, 1.0], [0.0, 2.0]])
G1 = np.array([[-1.0, 2.0], [1.0, 0.0]])
V = np.array([np.r_[G0.ravel(), G1.ravel()], [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]])
BIAS = np.array([0.5, -0.5])


def _image() -> np.ndarray:
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = R
    img[..., 1] = G
    return img


def _picker() -> nn.Conv2d:
    """1x1 conv whose channel 0 is the R input and channel 1 the G input."""
    conv = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.weight[1, 1] = 1.0
    return conv


def _flat_net() -> nn.Sequential:
    """picker -> flatten -> linear(8 -> 2): the logit's gradient w.r.t. the activation is a row of V."""
    fc = nn.Linear(8, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(V, dtype=torch.float32))
        fc.bias.copy_(torch.tensor(BIAS, dtype=torch.float32))
    return nn.Sequential(_picker(), nn.Flatten(), fc)


W_GAP = np.array([[2.0, -1.0], [0.5, 1.0]])


def _gap_net() -> nn.Sequential:
    """picker -> global average pooling -> flatten -> linear(2 -> 2): a CAM head."""
    fc = nn.Linear(2, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(W_GAP, dtype=torch.float32))
        fc.bias.zero_()
    return nn.Sequential(_picker(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


def _minmax(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / (m.max() - m.min())


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ exact values


def test_gradcam_exact():
    maps = cam.compute(make_loaded(_flat_net(), 2), _image(), 0, ("gradcam",), layer="0")
    # weights: mean(G0) = 1, mean(G1) = 0.5; map = R + 0.5 G = [[3, 2], [3.5, 5]] -> scaled from 2..5
    _close(maps["gradcam"], np.array([[1 / 3, 0.0], [0.5, 1.0]]))


def test_xgradcam_exact():
    maps = cam.compute(make_loaded(_flat_net(), 2), _image(), 0, ("xgradcam",), layer="0")
    w0 = (1 * 1 + 2 * 1 + 3 * 0 + 4 * 2) / (1 + 2 + 3 + 4)  # sum(A G) / sum(A) = 11 / 10
    w1 = (4 * -1 + 0 * 2 + 1 * 1 + 2 * 0) / (4 + 0 + 1 + 2)  # -3 / 7
    raw = np.maximum(w0 * R + w1 * G, 0)  # [[0, 2.2], [2.871, 3.543]]
    assert raw[0, 0] == 0
    _close(maps["xgradcam"], raw / raw.max())


def test_layercam_exact():
    maps = cam.compute(make_loaded(_flat_net(), 2), _image(), 0, ("layercam",), layer="0")
    # ReLU(G0) R + ReLU(G1) G = [[1 + 0, 2 + 0], [0 + 1, 8 + 0]] -> scaled from 1..8
    _close(maps["layercam"], np.array([[0.0, 1 / 7], [0.0, 1.0]]))


def test_gradcampp_exact():
    maps = cam.compute(make_loaded(_flat_net(), 2), _image(), 0, ("gradcam++",), layer="0")
    # alpha = g^2 / (2 g^2 + sum(A) g^3), sum(R) = 10, sum(G) = 7; weight = sum(alpha * ReLU(g)):
    # channel 0: g = 1, 1, 0, 2 -> 1/12 + 1/12 + 0 + 2 * 4/88 = 17/66
    # channel 1: g = -1, 2, 1, 0 -> ReLU kills -1; 2 * 4/64 + 1/9 = 17/72
    raw = 17 / 66 * R + 17 / 72 * G
    _close(maps["gradcam++"], _minmax(raw))


def test_scorecam_exact():
    maps = cam.compute(make_loaded(_flat_net(), 2), _image(), 0, ("scorecam",), layer="0")
    # masks: each channel scaled to [0, 1]; masking the input masks both channels (1x1 picker conv)
    weights = []
    for mask in (_minmax(R), _minmax(G)):
        logits = V @ np.r_[(R * mask).ravel(), (G * mask).ravel()] + BIAS
        weights.append(np.exp(logits[0]) / np.exp(logits).sum())
    _close(maps["scorecam"], _minmax(np.maximum(weights[0] * R + weights[1] * G, 0)))


def test_cam_exact_and_equal_to_gradcam_where_positive():
    loaded = make_loaded(_gap_net(), 2)
    maps = cam.compute(loaded, _image(), 0, ("cam", "gradcam"), layer="0")
    # CAM = 2 R - G = [[-2, 4], [5, 6]] (signed, scaled from -2..6)
    _close(maps["cam"], np.array([[0.0, 0.75], [0.875, 1.0]]))
    # Grad-CAM: weights W/4 -> ReLU(0.5 R - 0.25 G) = [[0, 1], [1.25, 1.5]]
    _close(maps["gradcam"], np.array([[0.0, 2 / 3], [5 / 6, 1.0]]))


# ------------------------------------------------------------------------------- relations, Captum


def _corr_where_positive(cam_map: np.ndarray, gradcam_map: np.ndarray) -> float:
    positive = gradcam_map > 0
    assert positive.sum() >= 5
    return float(np.corrcoef(cam_map[positive], gradcam_map[positive])[0, 1])


def _cells(m: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The values at the layer's cell centres: with the image an odd multiple of the grid, bilinear
    upsampling (half-pixel centres) puts each cell's own value exactly on one pixel."""
    ky, kx = m.shape[0] // grid[0], m.shape[1] // grid[1]
    assert ky % 2 == 1 and kx % 2 == 1 and (ky * grid[0], kx * grid[1]) == m.shape
    return m[ky // 2 :: ky, kx // 2 :: kx]


def test_cam_matches_gradcam_on_gap_linear_head(rng):
    loaded = make_loaded(tiny_convnet(3), 32)  # layer "4": 6 x 14 x 14, then GAP -> flatten -> linear
    image = rng.integers(0, 256, (42, 70, 3), dtype=np.uint8)
    checked = 0
    for target in range(5):
        maps = cam.compute(loaded, image, target, ("cam", "gradcam"), layer="4")
        if (maps["gradcam"] > 0).sum() > 200:
            checked += 1
            assert _corr_where_positive(_cells(maps["cam"], (14, 14)), _cells(maps["gradcam"], (14, 14))) > 0.99
    assert checked >= 2


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["_conv_head", "_blocks.10._project_conv"])
def test_gradcam_agrees_with_captum(lite0, layer):
    from captum.attr import LayerAttribution, LayerGradCam

    image = _photo()
    target = models.classify(lite0, image, 1).indices[0]
    ours = cam.compute(lite0, image, target, ("gradcam",), layer=layer)["gradcam"]
    assert ours.max() == 1.0 and ours.std() > 0.05
    x = lite0.preprocess(image)
    with lite0.exclusive():
        theirs = LayerGradCam(lite0.model, lite0.model.get_submodule(layer)).attribute(
            x, target=target, relu_attributions=True
        )
    theirs = LayerAttribution.interpolate(theirs, image.shape[:2], interpolate_mode="bilinear")[0, 0].detach().numpy()
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.99
    assert _hooks(lite0.model) == 0


def _photo() -> np.ndarray:
    """A synthetic 'photo': an orange disc on a blue-grey ground with texture, 175 x 245 (7 x 7 cells
    of 25 x 35 pixels at EfficientNet-Lite0's last block)."""
    yy, xx = np.mgrid[:175, :245]
    img = np.zeros((175, 245, 3), np.float32)
    img[...] = (90, 110, 140)
    disc = (yy - 90) ** 2 + (xx - 150) ** 2 < 60**2
    img[disc] = (230, 140, 40)
    img += 20 * np.sin(xx / 3.0)[..., None] * np.cos(yy / 5.0)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------- one pass, one gradient


def test_five_gradient_cams_share_one_forward_and_one_layer_gradient(monkeypatch, rng):
    net = tiny_convnet(1)
    loaded = make_loaded(net, 16)
    calls = {"first": 0, "first_grad": [], "after_grad": [], "autograd": 0}

    def first(module, inputs, output):  # counts forward passes through the first conv
        calls["first"] += 1
        calls["first_grad"].append(output.requires_grad)

    def pooling(module, inputs, output):  # the first module after the layer ("4")
        calls["after_grad"].append(inputs[0].requires_grad)

    net[0].register_forward_hook(first)
    net[5].register_forward_hook(pooling)
    real_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls["autograd"] += 1
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    cam_graph.split_module(loaded, cam_graph.resolve_layer(cam_graph.traced(loaded), "4"))  # build outside count
    calls.update(first=0, first_grad=[], after_grad=[])
    maps = cam.compute(loaded, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), 2, cam.GRADIENT_CAMS, layer="4")
    assert list(maps) == list(cam.GRADIENT_CAMS)
    assert calls["first"] == 1, "one forward pass for all five"
    assert calls["autograd"] == 1, "one gradient for all five"
    assert calls["first_grad"] == [False], "nothing before the layer is recorded for backprop"
    assert calls["after_grad"] == [True], "the part after the layer is"
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())


#: The page's default methods (pages/cam.py DEFAULT_METHODS): three layer methods and Saliency.
PAGE_FAST = ("gradcam", "gradcam++", "layercam", "saliency")


def _inplace_net(seed: int) -> nn.Sequential:
    """The layer "3" (a conv) is followed by an in-place ReLU: the shared pass must keep the layer's own values."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    )


def _evidence(loaded: models.LoadedModel, image: np.ndarray, target: int, layer: str, *,
              input_grad: bool) -> cam.Evidence:
    node = cam_graph.resolve_layer(cam_graph.traced(loaded), layer)
    evidence = cam.Evidence(loaded, loaded.preprocess(image), target, node, need_grad=True)
    evidence._need_input_grad = input_grad
    return evidence


def test_shared_pass_gradients_exact():
    """The flat net by hand: d logit[0] / dA is (G0, G1); the picker conv copies R and G into A, so
    d logit[0] / dx is (G0, G1, 0) (the network sees raw pixel values: mean 0, std 1/255)."""
    evidence = _evidence(make_loaded(_flat_net(), 2), _image(), 0, "0", input_grad=True)
    expected_layer = torch.tensor(np.stack([G0, G1]), dtype=torch.float32)
    torch.testing.assert_close(evidence.gradient, expected_layer, rtol=0, atol=1e-6)
    torch.testing.assert_close(evidence.activation, torch.tensor(np.stack([R, G]), dtype=torch.float32))
    expected_input = torch.tensor(np.stack([G0, G1, np.zeros((2, 2))]), dtype=torch.float32)
    torch.testing.assert_close(evidence.input_gradient, expected_input, rtol=0, atol=1e-6)
    # Saliency's raw map is max_c |d logit / d x_c| = max(|G0|, |G1|).
    torch.testing.assert_close(cam_methods.Saliency().explain(evidence),
                               torch.tensor(np.maximum(abs(G0), abs(G1)), dtype=torch.float32), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("make", "layer"), [(tiny_convnet, "4"), (tiny_convnet, "3"), (_inplace_net, "3")])
@pytest.mark.parametrize("seed", [0, 7])
def test_shared_pass_matches_separate_torch_gradients(make, layer, seed, rng):
    """The layer's activation and gradient and the input's gradient from the one shared pass equal those of
    a separate pass of the plain ``nn.Sequential`` split by hand (layer "i" is ``net[: i + 1]``)."""
    net = make(seed)
    loaded = make_loaded(net, 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    target = 3
    evidence = _evidence(loaded, image, target, layer, input_grad=True)
    cut = int(layer) + 1
    x = loaded.preprocess(image).clone().requires_grad_(True)
    activation = net[:cut](x)
    kept = activation.detach().clone()  # before an in-place ReLU after the layer overwrites it
    (d_layer, d_input) = torch.autograd.grad(net[cut:](activation.clone())[0, target], [activation, x])
    torch.testing.assert_close(evidence.activation, kept[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(evidence.gradient, d_layer[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(evidence.input_gradient, d_input[0], rtol=1e-6, atol=1e-6)
    assert evidence.input_gradient.abs().sum() > 0 and evidence.gradient.abs().sum() > 0
    # ... and the layer-only split pass (the gradient CAMs without Saliency) gives the same layer values.
    alone = _evidence(loaded, image, target, layer, input_grad=False)
    torch.testing.assert_close(alone.activation, evidence.activation, rtol=0, atol=0)
    torch.testing.assert_close(alone.gradient, evidence.gradient, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_saliency_equals_captum_saliency(seed, rng):
    from captum.attr import Saliency as CaptumSaliency

    net = _inplace_net(seed)
    loaded = make_loaded(net, 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    target = seed % 5
    x = loaded.preprocess(image).clone().requires_grad_(True)
    theirs = CaptumSaliency(net).attribute(x, target=target, abs=True).detach()[0].abs().amax(dim=0)
    ours = cam_methods.Saliency().explain(_evidence(loaded, image, target, "3", input_grad=True))
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    expected = cam_methods._finish(theirs, (16, 16), clip=True)
    for methods in (("saliency",), PAGE_FAST, ("gradcam", "gradcam++", "xgradcam", "layercam", "saliency")):
        _close(cam.compute(loaded, image, target, methods, layer="3")["saliency"], expected)


@pytest.mark.parametrize("make", [tiny_convnet, _inplace_net])
def test_layer_methods_unchanged_when_saliency_shares_their_pass(make, rng):
    loaded = make_loaded(make(2), 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for layer in ("3", "4"):
        layer_methods = cam.GRADIENT_CAMS if layer == "4" else cam.GRADIENT_CAMS[1:]  # "cam" needs the GAP head
        alone = cam.compute(loaded, image, 1, layer_methods, layer=layer)
        shared = cam.compute(loaded, image, 1, layer_methods + ("saliency",), layer=layer)
        for name in layer_methods:
            np.testing.assert_allclose(shared[name], alone[name], rtol=0, atol=1e-6, err_msg=f"{name} at {layer}")
    flat = cam.compute(make_loaded(_flat_net(), 2), _image(), 0, ("gradcam", "layercam", "saliency"), layer="0")
    _close(flat["gradcam"], np.array([[1 / 3, 0.0], [0.5, 1.0]]))  # the hand-worked values above
    _close(flat["layercam"], np.array([[0.0, 1 / 7], [0.0, 1.0]]))


def test_page_methods_share_one_forward_and_one_backward(monkeypatch, rng):
    net = tiny_convnet(1)
    loaded = make_loaded(net, 16)
    calls = {"forward": 0, "first_grad": [], "autograd": 0}

    def first(module, inputs, output):  # counts forward passes through the first conv
        calls["forward"] += 1
        calls["first_grad"].append(output.requires_grad)

    net[0].register_forward_hook(first)
    real_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls["autograd"] += 1
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    cam_graph.tap_module(loaded, cam_graph.resolve_layer(cam_graph.traced(loaded), "4"))  # build outside count
    calls.update(forward=0, first_grad=[])
    maps = cam.compute(loaded, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), 2, PAGE_FAST, layer="4")
    assert list(maps) == list(PAGE_FAST)
    assert calls["forward"] == 1, "one forward pass for the layer methods and Saliency"
    assert calls["autograd"] == 1, "one backward pass for both gradients"
    assert calls["first_grad"] == [True], "the input's gradient is recorded in that pass"
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())


def test_shared_pass_out_of_memory_falls_back_to_the_cpu(monkeypatch, rng):
    from vizlib import devices

    loaded = make_loaded(tiny_convnet(4), 16)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    expected = cam.compute(loaded, image, 1, PAGE_FAST)
    real = cam_methods.Evidence._shared_pass
    calls: list[str] = []

    def out_of_memory_once(self, *, layer):
        calls.append(self.loaded.name)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, layer=layer)

    monkeypatch.setattr(cam_methods.Evidence, "_shared_pass", out_of_memory_once)
    with pytest.warns(devices.DeviceFallbackWarning):
        got = cam.compute(loaded, image, 1, PAGE_FAST)
    assert len(calls) == 2 and list(got) == list(PAGE_FAST)
    for name in PAGE_FAST:
        np.testing.assert_array_equal(got[name], expected[name])


# ----------------------------------------------------------------------------- shapes and ranges


def test_every_method_gives_image_sized_maps_in_unit_range(rng, monkeypatch):
    monkeypatch.setattr(cam_methods, "IG_STEPS", 4)
    loaded = make_loaded(tiny_convnet(2), 16)
    image = rng.integers(0, 256, (13, 21, 3), dtype=np.uint8)
    maps = cam.compute(loaded, image, 1, cam.METHODS)
    assert list(maps) == list(cam.METHODS)
    for name, m in maps.items():
        assert m.shape == (13, 21) and m.dtype == np.float32, name
        assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1, name
        assert m.max() in (0.0, 1.0), name


@pytest.mark.slow
def test_real_weights_all_methods_finite_in_unit_range(lite0, monkeypatch):
    monkeypatch.setattr(cam_methods, "IG_STEPS", 4)
    image = _photo()
    methods = [m for m in cam.METHODS if m != "scorecam"]  # Score-CAM: 1280 masked passes, checked below
    maps = cam.compute(lite0, image, 281, methods)
    for name, m in maps.items():
        assert m.shape == image.shape[:2] and np.isfinite(m).all(), name
        assert m.min() == 0.0 and m.max() == 1.0, name
    # EfficientNet-Lite0's last block feeds GAP -> linear: CAM and Grad-CAM agree cell by cell.
    assert _corr_where_positive(_cells(maps["cam"], (7, 7)), _cells(maps["gradcam"], (7, 7))) > 0.99


@pytest.mark.slow
def test_real_weights_scorecam_on_a_small_layer(lite0):
    m = cam.compute(lite0, _photo(), 281, ("scorecam",), layer="_blocks.0._project_conv")["scorecam"]
    assert m.shape == (175, 245) and np.isfinite(m).all() and m.min() == 0.0 and m.max() == 1.0


def test_default_layers(lite0):
    assert cam.default_layer(lite0) == "_swish_1"
    assert cam.default_layer(make_loaded(tiny_convnet(), 8)) == "4"
    assert cam.default_layer(models.load_model("resnet18", pretrained=False, device="cpu")) == "layer4"


# ----------------------------------------------------------------------------------- no hooks left


def _hooks(module: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) + len(m._backward_pre_hooks)
        for m in module.modules()
    )


def _all_modules_clean(loaded: models.LoadedModel) -> None:
    assert _hooks(loaded.model) == 0
    modules = loaded.cache.get("cam_modules")  # a vizlib.caching.LRUCache: no .values(), keys() then get()
    for key in modules.keys() if modules is not None else []:
        assert _hooks(modules.get(key)) == 0
    assert not loaded.model.training
    assert all(not p.requires_grad and p.grad is None for p in loaded.model.parameters())


def test_no_hooks_mode_or_grad_change_after_a_call(monkeypatch, rng):
    monkeypatch.setattr(cam_methods, "IG_STEPS", 4)
    loaded = make_loaded(tiny_convnet(4), 16)
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    cam.compute(loaded, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), 0, cam.METHODS)
    _all_modules_clean(loaded)
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, before[k])


class _Bomb(nn.Conv2d):
    """A 1x1 identity conv that raises when its input requires grad (only inside Captum's attribution)."""

    def __init__(self, channels: int):
        super().__init__(channels, channels, 1, bias=False)
        with torch.no_grad():
            self.weight.copy_(torch.eye(channels)[:, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            raise RuntimeError("boom")
        return super().forward(x)


@pytest.mark.parametrize("method", ["guided_backprop", "guided_gradcam", "saliency"])
def test_no_hooks_left_after_an_exception(method, rng):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        _Bomb(4),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    loaded = make_loaded(net, 8)
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert cam.compute(loaded, image, 0, ("gradcam",), layer="3")["gradcam"].shape == (8, 8)
    with pytest.raises(RuntimeError, match="boom"):
        cam.compute(loaded, image, 0, (method,), layer="3")
    _all_modules_clean(loaded)
    assert loaded.lock._writer is None and loaded.lock._readers == 0


# ------------------------------------------------------------------------------------- concurrency


def test_two_threads_two_images_one_shared_model(rng):
    loaded = make_loaded(tiny_convnet(5), 16)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2)]
    methods = ("gradcam", "layercam", "scorecam", "guided_backprop", "saliency")
    expected = [cam.compute(loaded, img, 1, methods) for img in images]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(6):
                got = cam.compute(loaded, images[i], 1, methods)
                for name in methods:
                    np.testing.assert_allclose(got[name], expected[i][name], atol=1e-6)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a worker did not finish within 60 s"
    assert not errors, errors
    assert not np.allclose(expected[0]["gradcam"], expected[1]["gradcam"]), "the two images must differ"
    _all_modules_clean(loaded)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(("name", "why"), [("vgg16", "MaxPool2d"), ("alexnet", "MaxPool2d")])
def test_cam_on_vgg_and_alexnet_is_a_clear_error(name, why):
    loaded = models.load_model(name, pretrained=False, device="cpu")
    with pytest.raises(cam.CAMHeadError) as info:
        cam.compute(loaded, np.zeros((32, 32, 3), np.uint8), 0, ("cam", "gradcam"))
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "global average pooling" in message and why in message and '"gradcam"' in message
    assert cam.cam_unsupported_reason(loaded) == message
    # Their last layer feeding pooling still gives the reason, not a crash.
    assert "one linear layer" in cam.cam_unsupported_reason(loaded, "features")


def test_cam_head_with_two_linear_layers_is_refused():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)
    )
    with pytest.raises(cam.CAMHeadError, match="exactly one linear layer"):
        cam.compute(make_loaded(net, 8), np.zeros((8, 8, 3), np.uint8), 0, ("cam",))


def test_bad_inputs_are_clear_errors():
    loaded = make_loaded(_flat_net(), 2)
    image = _image()
    with pytest.raises(cam.CAMError, match="Unknown method 'gradcam2'"):
        cam.compute(loaded, image, 0, ("gradcam2",))
    with pytest.raises(cam.CAMError, match="out of range"):
        cam.compute(loaded, image, 2, ("gradcam",))
    with pytest.raises(cam.CAMError, match="class index"):
        cam.compute(loaded, image, 0.5, ("gradcam",))  # type: ignore[arg-type]
    with pytest.raises(cam.LayerError, match="no layer 'conv9'"):
        cam.compute(loaded, image, 0, ("gradcam",), layer="conv9")
    with pytest.raises(cam.LayerError, match="not a \\(channels, height, width\\) map"):
        cam.compute(loaded, image, 0, ("gradcam",), layer="2")
    with pytest.raises(ValueError, match="uint8"):
        cam.compute(loaded, image.astype(np.float32), 0, ("gradcam",))


# ------------------------------------------------------------------------------------ faithfulness


def _corner_net() -> nn.Sequential:
    """16x16 input. ReLU(R - 200) is 55 on the bright squares of a 0/255 checkerboard and 0 once blurred;
    class 0's logit is 4 x its mean over the top-left 8x8 quadrant / 27.5 (4 on the checkerboard), class 1's is 2."""
    conv = nn.Conv2d(3, 1, 1)
    fc = nn.Linear(256, 2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.bias.fill_(-200.0)
        fc.weight.zero_()
        fc.weight[0].view(16, 16)[:8, :8] = 4 / 64 / 27.5
        fc.bias.copy_(torch.tensor([0.0, 2.0]))
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc)


def test_faithfulness_prefers_the_map_on_the_evidence():
    loaded = make_loaded(_corner_net(), 16)
    image = np.zeros((16, 16, 3), np.uint8)
    image[:8, :8, 0] = 255 * ((np.add.outer(np.arange(8), np.arange(8)) % 2) == 0)
    on = np.zeros((16, 16), np.float32)
    on[:8, :8] = 1.0
    off = np.zeros((16, 16), np.float32)
    off[8:, 8:] = 1.0
    scores = cam.faithfulness(loaded, image, 0, {"on": on, "off": off}, n_random=6)
    p0 = 1 / (1 + np.exp(2 - 4))  # softmax of [4, 2]
    assert scores["on"].probability == pytest.approx(p0, rel=1e-5)
    # The top 20% (51 pixels) of "on" lie in the quadrant: their texture is blurred away.
    assert scores["on"].drop_top > 0.4 and scores["off"].drop_top == pytest.approx(0.0, abs=1e-6)
    assert scores["on"].score > 0.2 > scores["off"].score
    assert scores["on"].random == scores["off"].random < p0
    s = scores["on"]
    assert s.score == pytest.approx((s.probability - s.top) - (s.probability - s.random))


def test_top_mask_takes_the_fraction_asked():
    values = np.arange(20, dtype=np.float32).reshape(4, 5)
    mask = top_mask(values, 0.2)
    assert mask.sum() == 4 and mask[3, 1:].all() and not mask[:3].any()


def test_faithfulness_rejects_bad_arguments():
    loaded = make_loaded(_corner_net(), 16)
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(cam.CAMError, match="fraction"):
        cam.faithfulness(loaded, image, 0, {"a": np.zeros((16, 16))}, fraction=1.5)
    with pytest.raises(cam.CAMError, match="2-D"):
        cam.faithfulness(loaded, image, 0, {"a": np.zeros((16, 16, 3))})


@pytest.mark.slow
def test_real_photo_gradcam_is_more_faithful_than_chance_and_than_its_inverse(lite0):
    from vizlib.images import fit_image, load_gallery_image

    image = fit_image(load_gallery_image("goldfish"), 256)  # 218x256 px: goldfish, 0.89 for EfficientNet-Lite0
    target = models.classify(lite0, image, 1).indices[0]
    assert lite0.categories[target] == "goldfish"
    maps = cam.compute(lite0, image, target, ("gradcam", "layercam"))
    maps["inverse"] = 1.0 - maps["gradcam"]
    scores = cam.faithfulness(lite0, image, target, maps)
    assert scores["gradcam"].score > 0.3 and scores["layercam"].score > 0.3
    assert scores["inverse"].score < 0 < scores["gradcam"].drop_top - scores["inverse"].drop_top


@pytest.mark.parametrize(("name", "kind"), [("efficientnet_b0", "SiLU"), ("mobilenet_v3_large", "Hardswish")])
def test_unguided_activations_are_counted(name, kind):
    loaded = models.load_model(name, pretrained=False)
    counts = cam.unguided_activations(loaded)
    assert kind in counts and counts[kind] >= 10


def test_an_all_rectifier_network_has_no_unguided_activations(lite0):
    assert cam.unguided_activations(lite0) == {}
    assert cam.unguided_activations(models.load_model("resnet18", pretrained=False)) == {}


def test_integrated_gradients_baseline_is_the_black_picture_the_network_sees(lite0):
    from vizlib.cam.methods import black_input

    x = lite0.preprocess(np.full((40, 50, 3), 200, np.uint8))
    torch.testing.assert_close(black_input(lite0, x), lite0.preprocess(np.zeros((40, 50, 3), np.uint8)))


def test_integrated_gradients_works_on_the_digits_network():
    # Its preprocessing crops to the ink and refuses a black picture, so the baseline can't come from it.
    digits = models.load_model(models.DIGITS_MODEL)
    stroke = np.zeros((28, 28, 3), np.uint8)
    stroke[5:23, 12:16] = 255
    (heat,) = cam.compute(digits, stroke, 1, ("integrated_gradients",), layer="conv2").values()
    assert heat.shape == (28, 28) and float(heat.max()) == pytest.approx(1.0)
