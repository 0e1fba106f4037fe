"""The four reference nets in the model registry: classify on 28x28 grey and RGB pictures, and the shipped
model cards' test accuracy measured again here."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from vizlib import models
from vizlib.training_lab import registry
from vizlib.training_lab.data import load_fashion
from vizlib.training_lab.nets import NETS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loaded() -> dict[str, models.LoadedModel]:
    return {name: models.load_model(name, device="cpu") for name in NETS}


def _by_hand(model, gray: np.ndarray) -> np.ndarray:
    x = (torch.tensor(gray, dtype=torch.float32) / 255 - 0.2860) / 0.3530
    with torch.no_grad():
        return torch.softmax(model(x[None, None]), 1)[0].numpy()


def test_registered_and_bundled():
    for name in NETS:
        spec = models.get_spec(name)
        assert spec.family == "fashion" and spec.in_channels == 1 and spec.input_size == (28, 28)
        assert models.weights_status(name) == "bundled"
        assert models.weights_path(name).is_file()


@pytest.mark.parametrize("name", list(NETS))
def test_classify_grey_and_rgb_28x28(loaded, name):
    lm = loaded[name]
    images, labels = load_fashion("test", 1)
    grey = np.repeat(images[0][:, :, None], 3, axis=2)
    prediction = models.classify(lm, grey, k=10)
    expected = _by_hand(lm.model, images[0])
    assert list(prediction.indices) == list(np.argsort(-expected))
    np.testing.assert_allclose([p for _, p in prediction.top], np.sort(expected)[::-1], rtol=1e-4, atol=1e-6)
    assert prediction.top[0][0] == lm.categories[int(expected.argmax())]

    rgb = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as the registry
    prediction = models.classify(lm, rgb, k=3)
    expected = _by_hand(lm.model, luma)
    assert list(prediction.indices) == list(np.argsort(-expected)[:3])


@pytest.fixture
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads wait for each other far longer than they gain."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cards_test_accuracy_measured_again(loaded, one_thread):
    images, labels = load_fashion("test")
    x = (torch.tensor(images, dtype=torch.float32) / 255 - 0.2860) / 0.3530
    measured = {}
    for name, lm in loaded.items():
        with torch.no_grad():
            predicted = torch.cat([lm.model(x[i : i + 1000, None]).argmax(1) for i in range(0, 10_000, 1000)])
        measured[name] = float((predicted.numpy() == labels).mean())
        card = registry.read_card(name)
        assert measured[name] == pytest.approx(card["test_accuracy"], abs=0.002), name
        assert card["parameters"] == sum(p.numel() for p in lm.model.parameters())
    params = {name: sum(p.numel() for p in lm.model.parameters()) for name, lm in loaded.items()}
    # the lesson's claim: the CNN beats the fully connected net with far fewer weights
    assert measured["fashion_cnn"] > measured["fashion_mlp"] and params["fashion_cnn"] < params["fashion_mlp"] / 5


def test_cards_describe_their_runs():
    for name in NETS:
        card = registry.read_card(name)
        assert card["seed"] == 0 and card["epochs"] >= 1
        assert card["command"].startswith("python -m vizlib.training_lab.train")
        assert len(card["epoch_curve"]) == card["epochs"]
        assert "Fashion-MNIST" in card["data"]["dataset"]
        path = models.weights_path(name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == card["sha256"]
        assert path.stat().st_size < 500_000
    assert len(registry.read_card("fashion_cnn")["filters"]) >= 5  # initial, a few batches, every epoch


def test_reference_runs_from_the_cards():
    runs = registry.reference_runs()
    assert set(runs) == set(NETS)
    assert runs["fashion_cnn"].filters[0].weights.shape == (8, 5, 5)
