"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, read with torchvision's dataset class.

The package installs the four idx files (gzip-compressed) under ``/usr/share/datasets/fashion-mnist``.
torchvision's :class:`~torchvision.datasets.FashionMNIST` wants them uncompressed in ``<root>/FashionMNIST/raw``
and would download what it misses; :class:`InstalledFashionMNIST` points its ``raw_folder`` at the installed
folder instead and lets torchvision's own idx reader parse each file (decompressed in a temporary file that is
deleted at once). Nothing is downloaded and nothing is copied into the project.
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import FashionMNIST
from torchvision.datasets.mnist import read_image_file, read_label_file

__all__ = [
    "CLASSES",
    "DATA_ENV",
    "DEFAULT_ROOT",
    "MEAN",
    "STD",
    "data_root",
    "FashionDataError",
    "InstalledFashionMNIST",
    "load_fashion",
    "normalise",
]

#: Where Debian's dataset-fashion-mnist package puts the idx files.
DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
#: Environment variable that points at another folder holding the four idx files (``.gz`` or not).
DATA_ENV = "CNN_LENS_FASHION_MNIST"
#: The ten classes, index-aligned with the labels.
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: Mean and standard deviation of the training pixels on the 0..1 scale (computed by ``python -m
#: vizlib.training_lab.data``); every net sees ``(x - MEAN) / STD``.
MEAN = 0.2860
STD = 0.3530


class FashionDataError(FileNotFoundError):
    """The Fashion-MNIST files are not where they should be; the message says what to install."""


class InstalledFashionMNIST(FashionMNIST):
    """torchvision's Fashion-MNIST reading the installed idx files in place; never downloads.

    Args:
        folder: The folder holding ``train-images-idx3-ubyte[.gz]`` and the three other files.
        train: The 60,000 training images, else the 10,000 test images.
    """

    def __init__(self, folder: str | Path, train: bool = True) -> None:
        self._folder = Path(folder)
        super().__init__(str(self._folder), train=train, download=False)

    @property
    def raw_folder(self) -> str:  # torchvision: <root>/FashionMNIST/raw
        return str(self._folder)

    def _file(self, stem: str) -> Path | None:
        for name in (stem, stem + ".gz"):
            if (self._folder / name).is_file():
                return self._folder / name
        return None

    def _check_exists(self) -> bool:
        stems = [os.path.splitext(os.path.basename(url))[0] for url, _ in self.resources]
        return all(self._file(stem) is not None for stem in stems)

    def _load_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        prefix = "train" if self.train else "t10k"
        images = _read_idx(self._file(f"{prefix}-images-idx3-ubyte"), read_image_file)
        labels = _read_idx(self._file(f"{prefix}-labels-idx1-ubyte"), read_label_file)
        return images, labels


def _read_idx(path: Path | None, reader) -> torch.Tensor:
    assert path is not None
    if path.suffix != ".gz":
        return reader(str(path))
    with tempfile.NamedTemporaryFile(suffix=".idx") as tmp:
        with gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, tmp)
        tmp.flush()
        return reader(tmp.name)


def data_root() -> Path:
    """``$CNN_LENS_FASHION_MNIST`` or Debian's folder."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT)


@functools.lru_cache(maxsize=2)
def _load(root: str, train: bool) -> tuple[np.ndarray, np.ndarray]:
    try:
        dataset = InstalledFashionMNIST(root, train=train)
    except RuntimeError:  # torchvision: "Dataset not found. You can use download=True to download it"
        raise FashionDataError(
            f"Fashion-MNIST is not in {root}. Install Debian's package: sudo apt-get install dataset-fashion-mnist "
            f"(or point ${DATA_ENV} at a folder holding the four idx files)."
        ) from None
    images = dataset.data.numpy()
    labels = dataset.targets.numpy().astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_fashion(split: str = "train", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images ``uint8 [N, 28, 28]`` (white garment on black) and labels ``int64 [N]``.

    Loaded once per process (read-only arrays shared by every caller).

    Args:
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        limit: Keep only the first ``limit`` images (the files are already shuffled, classes mixed).

    Raises:
        FashionDataError: The files are not installed.
        ValueError: Unknown split.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    images, labels = _load(str(data_root()), split == "train")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def normalise(images: np.ndarray) -> torch.Tensor:
    """``uint8 [N, 28, 28]`` -> the network input ``float32 [N, 1, 28, 28]``, ``(x/255 - MEAN) / STD``."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)) / 255.0
    return ((x - MEAN) / STD).unsqueeze(1)


if __name__ == "__main__":
    train_images, _ = load_fashion("train")
    pixels = train_images.astype(np.float64) / 255.0
    print(f"mean {pixels.mean():.4f} std {pixels.std():.4f} over {len(train_images)} training images")
