"""Tests of vizlib.digits and vizlib.digits.train: the shipped checkpoint, preprocessing, data, training."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor

from vizlib.digits import (
    DEFAULT_CARD,
    DEFAULT_CHECKPOINT,
    CheckpointError,
    DigitsDataError,
    DrawingError,
    EmptyDrawingError,
    LeNet5,
    digits_categories,
    digits_preprocess,
    drawing_steps,
    load_digits_model,
    load_opencv_digits,
    preprocess_drawing,
)
from vizlib.digits.train import (
    DEFAULT_HELDOUT,
    TrainConfig,
    accuracy,
    augment_digits,
    heldout_indices,
    predict_digits,
    split_indices,
    train_model,
)

CENTRE = 13.5


@pytest.fixture(scope="module")
def model() -> LeNet5:
    return load_digits_model()


@pytest.fixture(scope="module")
def heldout() -> dict[str, np.ndarray]:
    with np.load(DEFAULT_HELDOUT) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(DEFAULT_CARD.read_text())


def _ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((img > 0.1).any(axis=1))
    cols = np.flatnonzero((img > 0.1).any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _com(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(img.shape)
    return float((img * rows).sum() / img.sum()), float((img * cols).sum() / img.sum())


# --- the shipped checkpoint ------------------------------------------------------------------


def test_shipped_checkpoint_accuracy_on_heldout(model: LeNet5, heldout: dict[str, np.ndarray]) -> None:
    images, labels = heldout["images"], heldout["labels"]
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert 200 <= len(images) == len(labels)
    assert np.bincount(labels, minlength=10).min() >= 20  # every class is represented
    assert accuracy(model, images, labels) >= 0.97


def test_heldout_through_the_rgb_preprocess_path(model: LeNet5, heldout: dict[str, np.ndarray]) -> None:
    # What the model registry does: an HxWx3 uint8 RGB image -> Tensor[1, 1, 28, 28].
    batch = torch.cat([digits_preprocess(np.repeat(img[:, :, None], 3, axis=2)) for img in heldout["images"]])
    assert batch.shape == (len(heldout["images"]), 1, 28, 28) and batch.dtype == torch.float32
    with torch.inference_mode():
        predicted = model(batch).argmax(1).numpy()
    assert (predicted == heldout["labels"]).mean() >= 0.97


def test_card_matches_checkpoint(card: dict) -> None:
    data = DEFAULT_CHECKPOINT.read_bytes()
    assert card["sha256"] == hashlib.sha256(data).hexdigest()
    assert card["size_bytes"] == len(data) < 1_000_000
    assert card["split"]["train"] + card["split"]["test"] == 5000
    assert card["categories"] == digits_categories()
    for key in ("dataset", "dataset_path", "seed", "epochs", "date", "training_seconds", "torch_version"):
        assert key in card


@pytest.mark.slow
def test_the_shipped_model_reaches_the_cards_accuracy_on_the_whole_test_split(model: LeNet5, card: dict) -> None:
    # Measured here, not read back from the card the training script wrote: the card must tell the truth.
    from vizlib.digits.train import prepare_digits

    raw, labels = load_opencv_digits()
    _, test = split_indices(labels, card["split"]["test_fraction"], card["split"]["seed"])
    assert len(test) == card["split"]["test"]
    measured = accuracy(model, prepare_digits(raw[test]), labels[test])
    assert measured >= 0.98
    assert measured == pytest.approx(card["test_accuracy"], abs=1 / len(test))


def test_heldout_digits_come_from_the_test_split(card: dict, heldout: dict[str, np.ndarray]) -> None:
    labels = np.repeat(np.arange(10), 500)  # digits.png holds 500 digits per class, in order
    train, test = split_indices(labels, card["split"]["test_fraction"], card["split"]["seed"])
    indices = heldout["indices"]
    assert np.isin(indices, test).all()
    assert not np.isin(indices, train).any()
    assert np.array_equal(heldout["labels"], labels[indices])


def test_loaded_model_is_eval_and_has_named_layers(model: LeNet5) -> None:
    assert not model.training
    names = [name for name, _ in model.named_children()]
    assert names == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2", "relu4", "fc3",
    ]  # fmt: skip
    extractor = create_feature_extractor(model, return_nodes=["relu1", "pool1", "relu2", "pool2", "relu4", "fc3"])
    with torch.inference_mode():
        out = extractor(torch.zeros(1, 1, 28, 28))
    assert out["relu1"].shape == (1, 16, 28, 28)
    assert out["pool1"].shape == (1, 16, 14, 14)
    assert out["relu2"].shape == (1, 32, 10, 10)
    assert out["pool2"].shape == (1, 32, 5, 5)
    assert out["relu4"].shape == (1, 84)
    assert out["fc3"].shape == (1, 10)


def test_categories() -> None:
    assert digits_categories() == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]


# --- checkpoint safety -----------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - the pickle protocol
        return (os.mkdir, (str(self.marker),))


def test_pickle_with_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="Refused to load"):
        load_digits_model(path)
    assert not marker.exists()


def test_missing_and_mismatched_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="python -m vizlib.digits.train"):
        load_digits_model(tmp_path / "nope.pth")
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="LeNet5"):
        load_digits_model(path)
    torch.manual_seed(0)
    small = LeNet5(channels=(6, 16))
    torch.save(small.state_dict(), path)
    loaded = load_digits_model(path)  # the layer sizes are read from the state dict
    assert loaded.conv1.out_channels == 6 and torch.equal(loaded.fc3.weight, small.fc3.weight)


# --- preprocessing -----------------------------------------------------------------------------


def test_exact_placement_of_a_block() -> None:
    canvas = np.full((40, 40), 255, dtype=np.uint8)
    canvas[3:7, 30:32] = 0  # 4x2 dark block, far off-centre, on white
    steps = drawing_steps(canvas)
    assert steps.bbox == (3, 30, 7, 32)
    assert steps.cropped.shape == (4, 2) and steps.scaled.shape == (20, 10)
    assert steps.centre_of_mass == pytest.approx((9.5, 4.5))
    assert steps.offset == (4, 9)
    expected = np.zeros((28, 28), dtype=np.float32)
    expected[4:24, 9:19] = 1.0
    np.testing.assert_allclose(steps.result, expected, atol=1e-6)


def test_off_centre_vertical_line_is_centred() -> None:
    canvas = np.full((280, 280, 3), 255, dtype=np.uint8)
    cv2.line(canvas, (40, 30), (40, 230), (0, 0, 0), thickness=15)  # near the left edge
    result = preprocess_drawing(canvas)
    assert result.shape == (28, 28) and result.dtype == np.float32
    assert result.min() >= 0.0 and result.max() <= 1.0
    top, left, bottom, right = _ink_box(result)
    assert bottom - top == 20  # the longest side is scaled to 20 px
    assert right - left <= 3  # ... and the width follows (aspect ratio kept)
    row, col = _com(result)
    assert abs(row - CENTRE) <= 0.5 and abs(col - CENTRE) <= 0.5


def test_aspect_ratio_is_kept() -> None:
    canvas = np.zeros((200, 300), dtype=np.uint8)
    canvas[120:160, 20:100] = 255  # 40 tall, 80 wide, white on black
    steps = drawing_steps(canvas)
    assert steps.scaled.shape == (10, 20)
    top, left, bottom, right = _ink_box(steps.result)
    assert (bottom - top, right - left) == (10, 20)
    assert _com(steps.result) == pytest.approx((CENTRE, CENTRE), abs=0.5)


def test_ink_stays_inside_when_centring_would_push_it_out() -> None:
    canvas = np.zeros((140, 140), dtype=np.uint8)
    canvas[20:40, 20:120] = 255  # heavy bar at the top ...
    canvas[40:120, 118:120] = 255  # ... with a thin stem: the centre of mass is near the top
    steps = drawing_steps(canvas)
    assert steps.scaled.shape == (20, 20)
    row, col = steps.centre_of_mass
    assert CENTRE - row + 0.5 > 9  # centring the mass would push the stem out of the field ...
    assert steps.offset == (8, int(np.floor(CENTRE - col + 0.5)))  # ... so the row offset stops at 28 - 20
    np.testing.assert_allclose(steps.result.sum(), steps.scaled.sum(), rtol=1e-6)  # no ink lost


def test_polarity_and_formats_agree() -> None:
    stroke = np.zeros((120, 120), dtype=np.uint8)
    cv2.line(stroke, (30, 20), (80, 100), 255, thickness=9)
    white_on_black = preprocess_drawing(stroke)
    black_on_white = preprocess_drawing(np.repeat((255 - stroke)[:, :, None], 3, axis=2))
    rgba = np.zeros((120, 120, 4), dtype=np.uint8)  # a canvas layer: black strokes, transparent elsewhere
    rgba[:, :, 3] = stroke
    from_alpha = preprocess_drawing(rgba)
    from_float = preprocess_drawing(stroke.astype(np.float32) / 255.0)
    np.testing.assert_allclose(black_on_white, white_on_black, atol=1e-5)
    np.testing.assert_allclose(from_alpha, white_on_black, atol=1e-5)
    np.testing.assert_allclose(from_float, white_on_black, atol=1e-5)


@pytest.mark.parametrize(
    "blank",
    [
        np.full((280, 280, 3), 255, dtype=np.uint8),
        np.zeros((280, 280, 4), dtype=np.uint8),
        np.zeros((50, 60), dtype=np.float32),
    ],
)
def test_empty_canvas(blank: np.ndarray) -> None:
    steps = drawing_steps(blank)
    assert steps.empty and steps.bbox is None
    assert steps.result.shape == (28, 28) and not steps.result.any()
    with pytest.raises(EmptyDrawingError, match="empty"):
        preprocess_drawing(blank)
    with pytest.raises(ValueError, match="draw a digit"):
        digits_preprocess(blank)


@pytest.mark.parametrize("bad", [np.zeros((5, 5, 2)), np.zeros((2, 3, 4, 5)), np.zeros((0, 4)), np.array(["a"])])
def test_unusable_arrays_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(DrawingError):
        preprocess_drawing(bad)


# --- data --------------------------------------------------------------------------------------


def _sheet() -> np.ndarray:
    cells = (np.arange(5000) % 251).astype(np.uint8)  # one value per cell, so the layout is checkable
    return cells.reshape(50, 100).repeat(20, axis=0).repeat(20, axis=1)


def test_load_opencv_digits_plain_and_gzip(tmp_path: Path) -> None:
    png = cv2.imencode(".png", _sheet())[1].tobytes()
    (tmp_path / "digits.png").write_bytes(png)
    (tmp_path / "digits.png.gz").write_bytes(gzip.compress(png))
    for name in ("digits.png", "digits.png.gz"):
        images, labels = load_opencv_digits(tmp_path / name)
        assert images.shape == (5000, 20, 20) and images.dtype == np.uint8
        assert np.array_equal(images[:, 7, 11], (np.arange(5000) % 251).astype(np.uint8))
        assert np.array_equal(labels, np.repeat(np.arange(10), 500))


def test_load_opencv_digits_errors(tmp_path: Path) -> None:
    with pytest.raises(DigitsDataError, match="digits"):
        load_opencv_digits(tmp_path / "missing.png")
    (tmp_path / "small.png").write_bytes(cv2.imencode(".png", np.zeros((10, 10), np.uint8))[1].tobytes())
    with pytest.raises(DigitsDataError, match="2000x1000"):
        load_opencv_digits(tmp_path / "small.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(DigitsDataError, match="not a readable image"):
        load_opencv_digits(tmp_path / "junk.png")


def test_split_is_disjoint_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(10), 500)
    train, test = split_indices(labels, 0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(5000))
    assert np.array_equal(np.bincount(labels[test]), np.full(10, 100))
    assert np.array_equal(np.bincount(labels[train]), np.full(10, 400))
    again, _ = split_indices(labels, 0.2, seed=0)
    other, _ = split_indices(labels, 0.2, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    held = heldout_indices(labels, test, per_class=30, seed=0)
    assert np.isin(held, test).all() and np.array_equal(np.bincount(labels[held]), np.full(10, 30))
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(labels, 1.0)


# --- training ----------------------------------------------------------------------------------


def test_augmentation_is_seeded_and_in_range(heldout: dict[str, np.ndarray]) -> None:
    images = heldout["images"][:20].astype(np.float32) / 255.0
    first = augment_digits(images, np.random.default_rng(5))
    second = augment_digits(images, np.random.default_rng(5))
    third = augment_digits(images, np.random.default_rng(6))
    assert first.shape == images.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(first, second) and not np.array_equal(first, third)
    assert not np.allclose(first, images)


def test_training_is_reproducible(heldout: dict[str, np.ndarray]) -> None:
    images = heldout["images"][:96].astype(np.float32) / 255.0
    labels = heldout["labels"][:96]
    config = TrainConfig(seed=3, epochs=2, batch_size=32, channels=(4, 8))
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    runs = [train_model(images, labels, config) for _ in range(2)]
    other = train_model(images, labels, TrainConfig(seed=4, epochs=2, batch_size=32, channels=(4, 8)))
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, deterministic)
    first, second = runs[0].model.state_dict(), runs[1].model.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert runs[0].losses == runs[1].losses and len(runs[0].losses) == 2
    assert not torch.equal(first["fc3.weight"], other.model.state_dict()["fc3.weight"])
    assert not runs[0].model.training
    assert predict_digits(runs[0].model, images).shape == (96,)
