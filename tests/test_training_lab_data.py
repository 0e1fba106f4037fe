"""Fashion-MNIST through torchvision's dataset class, from the installed files, never downloading."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from vizlib.training_lab import data


def test_test_split_shapes_and_classes():
    images, labels = data.load_fashion("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels).tolist() == [1000] * 10
    assert not images.flags.writeable  # shared by every caller
    first, _ = data.load_fashion("test", 5)
    assert first.shape == (5, 28, 28) and (first == images[:5]).all()


def test_uncompressed_files_are_read_too(tmp_path):
    for path in data.DEFAULT_ROOT.glob("t10k-*.gz"):
        with gzip.open(path) as src, open(tmp_path / path.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    for path in data.DEFAULT_ROOT.glob("train-*.gz"):
        (tmp_path / path.name).symlink_to(path)
    plain = data.InstalledFashionMNIST(tmp_path, train=False)
    images, labels = data.load_fashion("test")
    assert (plain.data.numpy() == images).all() and (plain.targets.numpy() == labels).all()
    image, label = plain[0]  # torchvision's own __getitem__: a PIL image and an int
    assert image.size == (28, 28) and label == labels[0]


def test_missing_files_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.FashionDataError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion("train")
    with pytest.raises(ValueError, match="split"):
        data.load_fashion("validation")


def test_normalise():
    x = data.normalise(np.array([[[0, 255]]], np.uint8))
    assert x.shape == (1, 1, 1, 2)
    np.testing.assert_allclose(x.numpy().ravel(), [(0 - 0.2860) / 0.3530, (1 - 0.2860) / 0.3530], rtol=1e-6)
