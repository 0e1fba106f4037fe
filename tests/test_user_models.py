"""Your own model: weights files loaded safely, checked against the architecture, predicting like the original."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as save_safetensors
from torchvision.models import resnet18

from tests.conftest import encode
from vizlib import models, user_models
from vizlib.digits import LeNet5
from vizlib.user_models import (
    CategoriesMismatchError,
    KeysMismatchError,
    ModelTooLargeError,
    PreprocessingError,
    ShapeMismatchError,
    UnsafeWeightsError,
    UserModelError,
    load_user_model,
)


def seeded_resnet(num_classes: int = 3, seed: int = 7) -> torch.nn.Module:
    """A ResNet-18 with a 3-class head and non-trivial batch-norm statistics (so every weight matters)."""
    torch.manual_seed(seed)
    net = resnet18(num_classes=num_classes)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def seeded_lite0(num_classes: int = 3, seed: int = 11) -> torch.nn.Module:
    """EfficientNet-Lite0's architecture with a small seeded head (a 14 MB file: the photo pages' smallest)."""
    with models._seeded(seed):
        return models._build(models.get_spec(models.DEFAULT_MODEL), num_classes).eval()


def seeded_lenet(num_classes: int = 3, seed: int = 3) -> LeNet5:
    torch.manual_seed(seed)
    return LeNet5(num_classes=num_classes).eval()


def as_pt(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def as_safetensors(state: dict) -> bytes:
    return save_safetensors({k: v.contiguous() for k, v in state.items()})


@pytest.fixture(scope="module")
def resnet_files() -> tuple[torch.nn.Module, dict[str, bytes]]:
    net = seeded_resnet()
    state = net.state_dict()
    return net, {"net.safetensors": as_safetensors(state), "net.pt": as_pt(state)}


@pytest.fixture
def photo() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (180, 240, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ loading works


@pytest.mark.parametrize("filename", ["net.safetensors", "net.pt"])
def test_both_formats_predict_like_the_original_forward_pass(resnet_files, photo, filename):
    net, files = resnet_files
    loaded = load_user_model(files[filename], "resnet18", ["cat", "dog", "fox"], filename=filename, device="cpu")
    assert loaded.categories == ["cat", "dog", "fox"]
    assert loaded.spec.name == "resnet18" and loaded.input_size == (224, 224)
    assert user_models.is_user_model(loaded) and loaded.name.startswith("user:")
    # the original network on the same input, by hand: resize whole, /255, ImageNet mean/std
    import cv2

    x = cv2.resize(photo, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x.transpose(2, 0, 1).copy())[None]), 1)[0]
    pred = models.classify(loaded, photo, k=3)
    order = torch.argsort(expected, descending=True).tolist()
    assert list(pred.indices) == order
    np.testing.assert_allclose([p for _, p in pred.top], expected[order].numpy(), rtol=1e-5, atol=1e-6)
    assert [c for c, _ in pred.top] == [["cat", "dog", "fox"][i] for i in order]
    assert not any(p.requires_grad for p in loaded.model.parameters()) and not loaded.model.training


def test_name_is_a_hash_of_bytes_and_settings(resnet_files):
    _, files = resnet_files
    a = load_user_model(files["net.pt"], "resnet18", 3, filename="a.pt", device="cpu")
    b = load_user_model(files["net.pt"], "resnet18", 3, filename="b.pt", device="cpu")
    c = load_user_model(files["net.pt"], "resnet18", ["x", "y", "z"], filename="a.pt", device="cpu")
    d = load_user_model(files["net.safetensors"], "resnet18", 3, filename="a.pt", device="cpu")
    assert a.name == b.name  # same bytes, same settings: the same model, whatever the file is called
    assert len({a.name, c.name, d.name}) == 3
    assert a.categories == ["class 0", "class 1", "class 2"]
    assert a.name not in models.list_models()


def test_head_sized_from_weights_and_categories_default_to_numbers():
    net = seeded_lenet(num_classes=4)
    loaded = load_user_model(as_pt(net.state_dict()), models.DIGITS_MODEL, None, filename="d.pth", device="cpu")
    assert loaded.model.fc3.out_features == 4 and len(loaded.categories) == 4
    x = torch.rand(1, 1, 28, 28)
    torch.testing.assert_close(loaded.model(x), net(x), rtol=0, atol=0)


def test_custom_preprocessing(resnet_files, photo):
    _, files = resnet_files
    loaded = load_user_model(
        files["net.pt"], "resnet18", 3, filename="n.pt", device="cpu", mean=[0.5], std=[0.25, 0.5, 1.0],
        input_size=(96, 128),
    )
    assert loaded.input_size == (96, 128)
    import cv2

    by_hand = cv2.resize(photo, (128, 96), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    by_hand = (by_hand - 0.5) / np.array([0.25, 0.5, 1.0], np.float32)
    np.testing.assert_allclose(loaded.preprocess(photo)[0].numpy(), by_hand.transpose(2, 0, 1), atol=1e-6)


def test_training_checkpoint_wrappers_and_half_precision_load():
    net = seeded_lenet()
    state = {"module." + k: v.half() for k, v in net.state_dict().items()}
    data = as_pt({"epoch": 12, "state_dict": state, "optimizer": {"lr": 0.1}})
    loaded = load_user_model(data, models.DIGITS_MODEL, 3, filename="ckpt.pth", device="cpu")
    assert loaded.model.conv1.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.model.conv1.weight, net.conv1.weight.half().float())


def test_model_api_reexported():
    assert models.load_user_model is load_user_model
    assert issubclass(models.UserModelError, models.ModelError)


# ------------------------------------------------------------------------------------------ refusals


def test_pickle_with_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    data = as_pt({"conv1.weight": Payload()})
    raw = pickle.dumps({"conv1.weight": Payload()}, protocol=2)
    for blob in (data, raw):
        with pytest.raises(UnsafeWeightsError, match="nothing in it was run") as info:
            load_user_model(blob, models.DIGITS_MODEL, 3, filename="evil.pt", device="cpu")
        assert "system" in str(info.value)
    assert not marker.exists()
    # the same payload does run when unpickled without the guard: the test can fail
    pickle.loads(raw)
    assert marker.exists()


def test_whole_pickled_module_is_refused():
    with pytest.raises(UnsafeWeightsError, match=r"state_dict\(\)"):
        load_user_model(as_pt(seeded_lenet()), models.DIGITS_MODEL, 3, filename="model.pt", device="cpu")


def test_keys_that_do_not_match_name_missing_and_unexpected():
    state = dict(seeded_lenet().state_dict())
    state["extra.weight"] = torch.zeros(2)
    del state["conv2.bias"]
    with pytest.raises(KeysMismatchError) as info:
        load_user_model(as_pt(state), models.DIGITS_MODEL, 3, filename="x.pt", device="cpu")
    assert "missing conv2.bias" in str(info.value) and "unexpected extra.weight" in str(info.value)


def test_wrong_architecture_names_its_classifier():
    with pytest.raises(KeysMismatchError, match="classifier fc.weight is missing"):
        load_user_model(as_pt(seeded_lenet().state_dict()), "resnet18", 3, filename="x.pt", device="cpu")


def test_shape_mismatch_names_layer_and_both_shapes():
    state = dict(seeded_lenet().state_dict())
    state["conv2.weight"] = torch.zeros(32, 16, 3, 3)
    with pytest.raises(ShapeMismatchError, match=r"conv2\.weight has shape 32x16x3x3 in x.safetensors but 32x16x5x5"):
        load_user_model(as_safetensors(state), models.DIGITS_MODEL, 3, filename="x.safetensors", device="cpu")


def test_class_names_must_match_the_head():
    data = as_pt(seeded_lenet(num_classes=3).state_dict())
    with pytest.raises(CategoriesMismatchError, match="head has 3 outputs but 2 class names"):
        load_user_model(data, models.DIGITS_MODEL, ["a", "b"], filename="x.pt", device="cpu")
    with pytest.raises(CategoriesMismatchError, match="but 5 class names"):
        load_user_model(data, models.DIGITS_MODEL, 5, filename="x.pt", device="cpu")


def test_size_limits(resnet_files, monkeypatch):
    _, files = resnet_files
    with pytest.raises(ModelTooLargeError, match=r"over the 1\.0 MB limit"):
        load_user_model(files["net.pt"], "resnet18", 3, filename="big.pt", limit_bytes=2**20)
    monkeypatch.setenv(user_models.USER_MODEL_MB_ENV, "10")
    assert user_models.user_model_limit_bytes() == 10 * 2**20
    with pytest.raises(ModelTooLargeError, match="CNN_LENS_USER_MODEL_MB"):
        load_user_model(files["net.pt"], "resnet18", 3, filename="big.pt")
    # a small file whose network is large: half-precision weights of a 3-class ResNet-18 are 22 MB, it needs 45
    half = as_safetensors({k: v.half() for k, v in seeded_resnet().state_dict().items()})
    with pytest.raises(ModelTooLargeError, match=r"needs 42\.\d MB of memory"):
        load_user_model(half, "resnet18", 3, filename="half.safetensors", limit_bytes=30 * 2**20)


def test_limits_are_stated_as_the_code_sets_them():
    """README and DEPLOY give the same two limits as the code: weights files and own models 200 MB (the server's
    largest upload too), images 25 MB."""
    from vizlib.images import MAX_BYTES

    root = Path(__file__).resolve().parent.parent
    weights, image = user_models.DEFAULT_USER_MODEL_MB, f"{MAX_BYTES // 2**20} MB"
    assert (weights, image) == (200, "25 MB")
    config = (root / ".streamlit" / "config.toml").read_text()
    assert f"maxUploadSize = {weights}\n" in config
    for doc in ("README.md", "docs/DEPLOY.md"):
        text = " ".join((root / doc).read_text(encoding="utf-8").split())
        after = text.split(user_models.USER_MODEL_MB_ENV, 1)[1][:40]  # "`, 200 MB" or "`** megabytes (default 200"
        assert str(weights) in after and ("MB" in after or "megabytes" in after), (doc, after)
        assert image in text, doc

def test_bad_preprocessing_and_unknown_architecture():
    data = as_pt(seeded_lenet().state_dict())
    with pytest.raises(PreprocessingError, match="own preprocessing"):
        load_user_model(data, models.DIGITS_MODEL, 3, filename="x.pt", mean=[0.5])
    with pytest.raises(PreprocessingError, match="1 or 3 numbers"):
        load_user_model(data, "resnet18", 3, filename="x.pt", mean=[0.5, 0.5])
    with pytest.raises(PreprocessingError, match="above 0"):
        load_user_model(data, "resnet18", 3, filename="x.pt", std=[0.0])
    with pytest.raises(PreprocessingError, match="between 16 and 1024"):
        load_user_model(data, "resnet18", 3, filename="x.pt", input_size=4)
    with pytest.raises(models.UnknownModelError):
        load_user_model(data, "no_such_net", 3, filename="x.pt")


# ------------------------------------------------------------------------------------------ hostile corpus


def _hostile_corpus(tmp_path: Path) -> dict[str, bytes]:
    lenet = seeded_lenet().state_dict()
    good_pt, good_st = as_pt(lenet), as_safetensors(lenet)
    png = encode(Image.new("RGB", (8, 8), (200, 10, 10)), "PNG")
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as zf:
        zf.writestr("notes.txt", "hello")

    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(tmp_path / 'ran')!r}, 'w')",))

    return {
        "empty.pt": b"",
        "one_byte.pth": b"\x80",
        "text.pt": b"these are not weights\n" * 20,
        "image.pth": png,
        "plain.zip.pt": zip_buf.getvalue(),
        "gzip.pt": gzip.compress(good_pt),
        "truncated.pt": good_pt[: len(good_pt) // 2],
        "truncated.safetensors": good_st[: len(good_st) // 2],
        "header_lies.safetensors": (10**12).to_bytes(8, "little") + b"{" + bytes(40),
        "bad_json.safetensors": (20).to_bytes(8, "little") + b"{not json at all!!!}" + bytes(8),
        "list.pt": as_pt([torch.zeros(3)]),
        "tensor.pt": as_pt(torch.zeros(3)),
        "no_tensors.pt": as_pt({"epoch": 3, "lr": 0.1}),
        "eval_payload.pt": as_pt({"fc3.weight": Evil()}),
        "eval_payload_raw.pkl": pickle.dumps(Evil(), protocol=2),
        "module.pt": as_pt(seeded_lenet()),
        "resnet_keys.pt": as_pt({"fc.weight": torch.zeros(3, 512)}),
        "wrong_shape.safetensors": as_safetensors({**lenet, "fc1.weight": torch.zeros(120, 99)}),
        "nan.safetensors": as_safetensors({k: torch.full_like(v, float("nan")) for k, v in lenet.items()}),
        "good.pt": good_pt,
        "good.safetensors": good_st,
        "wrapped.pth": as_pt({"model": lenet, "epoch": 1}),
    }


def test_hostile_corpus_loads_or_gets_one_sentence(tmp_path):
    corpus = _hostile_corpus(tmp_path)
    assert len(corpus) >= 20
    outcomes = {}
    for filename, data in corpus.items():
        try:
            loaded = load_user_model(data, models.DIGITS_MODEL, 3, filename=filename, device="cpu")
        except UserModelError as exc:
            message = str(exc)
            assert filename in message or "weights" in message, (filename, message)
            assert message.endswith("."), (filename, message)
            assert "Traceback" not in message and "\n" not in message, (filename, message)
            outcomes[filename] = type(exc).__name__
        else:
            assert len(loaded.categories) == 3
            outcomes[filename] = "loaded"
    assert not (tmp_path / "ran").exists()
    assert outcomes["eval_payload.pt"] == outcomes["eval_payload_raw.pkl"] == "UnsafeWeightsError"
    assert {k for k, v in outcomes.items() if v == "loaded"} == {
        "good.pt", "good.safetensors", "wrapped.pth", "nan.safetensors"
    }
    assert outcomes["wrong_shape.safetensors"] == "ShapeMismatchError"
    assert outcomes["resnet_keys.pt"] == "KeysMismatchError"
    assert outcomes["text.pt"] == outcomes["image.pth"] == outcomes["empty.pt"] == "NotAWeightsFileError"


def test_nothing_in_vizlib_keeps_a_user_model_alive(photo):
    """Gone with the session: after every kind of use, dropping the model frees it (no process-wide cache holds it)."""
    import gc
    import weakref

    from vizlib import activations, cam, receptive_field

    loaded = load_user_model(as_pt(seeded_lite0().state_dict()), models.DEFAULT_MODEL, 3, filename="m.pt",
                             device="cpu")
    models.classify(loaded, photo)
    activations.extract(loaded, photo, activations.conv_layers(loaded)[:2])
    receptive_field.receptive_fields(loaded, loaded.input_size)
    cam.compute(loaded, photo, 0, ("gradcam",))
    alive = weakref.ref(loaded.model)
    del loaded
    gc.collect()
    assert alive() is None
