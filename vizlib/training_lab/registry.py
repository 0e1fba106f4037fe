"""The four reference runs as entries of the model registry (:mod:`vizlib.models`, family ``"fashion"``).

``vizlib.models`` delegates here for the fashion family: the specs, the architecture by name, the class
names and where the shipped checkpoint is. Input: a picture resized to 28x28, turned grey (ITU-R 601 luma),
normalised like the training data; white garment on black, as in Fashion-MNIST.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vizlib.training_lab.data import CLASSES, MEAN, STD
from vizlib.training_lab.nets import NETS
from vizlib.training_lab.train import (
    CHECKPOINT_DIR,
    CurvePoint,
    FilterSnapshot,
    NetRun,
    card_path,
    checkpoint_path,
)

if TYPE_CHECKING:
    from vizlib.models import ModelSpec

__all__ = ["FAMILY", "categories", "fashion_specs", "read_card", "reference_runs", "weights_path"]

FAMILY = "fashion"

_TITLES = {
    "fashion_mlp": "Fashion MLP (trained here)",
    "fashion_local": "Fashion locally connected (trained here)",
    "fashion_cnn": "Fashion CNN (trained here)",
    "fashion_fcn": "Fashion fully convolutional (trained here)",
}


def read_card(name: str, folder: Path | None = None) -> dict | None:
    """The model card of a reference run (the shipped one unless ``folder`` is given), or ``None`` if absent."""
    if folder is None:
        from vizlib._paths import shipped_file

        path = shipped_file(card_path(name).name)
    else:
        path = card_path(name, folder)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def weights_path(name: str) -> Path:
    """The shipped checkpoint ``checkpoints/<name>.pth`` (in a checkout, or inside an installed package)."""
    from vizlib._paths import shipped_file

    return shipped_file(checkpoint_path(name).name)


def categories() -> list[str]:
    """The ten Fashion-MNIST class names."""
    return list(CLASSES)


def fashion_specs() -> list[ModelSpec]:
    """Registry entries of the four nets (top-1 from their model cards, when present)."""
    from vizlib.models import ModelSpec

    specs = []
    for name, (_, description) in NETS.items():
        card = read_card(name)
        top1 = round(100 * card["test_accuracy"], 2) if card and card.get("test_accuracy") is not None else None
        specs.append(
            ModelSpec(
                name=name,
                title=_TITLES[name],
                family=FAMILY,
                input_size=(28, 28),
                mean=(MEAN,),
                std=(STD,),
                weights_url=None,
                description=f"{description}. Trained on Fashion-MNIST by python -m vizlib.training_lab.train; "
                "input: 28x28 grey, white garment on black.",
                in_channels=1,
                top1=top1,
                dataset="Fashion-MNIST",
            )
        )
    return specs


def reference_runs(folder: Path = CHECKPOINT_DIR) -> dict[str, NetRun]:
    """The shipped reference runs as read from their model cards (curves, filter snapshots, test accuracy)."""
    runs = {}
    for name in NETS:
        card = read_card(name, folder)
        if card is None:
            continue
        points = tuple(CurvePoint(**p) for p in card["curves"])
        filters = tuple(
            FilterSnapshot(f["label"], f["epoch"], np.asarray(f["weights"], np.float32)) for f in card["filters"]
        )
        runs[name] = NetRun(name, card["parameters"], points, filters, card["test_accuracy"])
    return runs
