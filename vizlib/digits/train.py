"""Train the LeNet-5 digits network on OpenCV's digits: ``python -m vizlib.digits.train``.

Seeded and reproducible on the CPU. A stratified test split is set aside before training and never
trained on. The training digits go through the same MNIST-style preprocessing as a drawing
(:func:`vizlib.digits.drawing_steps`), after augmentation at twice the resolution (rotation, shear,
aspect, stroke thickness by dilation/erosion, solid strokes like a drawing pen) and a final small
scale and shift. Writes the state dict and a JSON model card to ``checkpoints/`` and a held-out
sample of the test split to ``vizlib/digits/digits_heldout.npz``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from vizlib.digits import (
    DEFAULT_CARD,
    DEFAULT_CHECKPOINT,
    INPUT_SIZE,
    LeNet5,
    drawing_steps,
    find_digits_png,
    load_opencv_digits,
)

__all__ = [
    "DEFAULT_HELDOUT",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "augment_digits",
    "heldout_indices",
    "main",
    "predict_digits",
    "prepare_digits",
    "split_indices",
    "train_model",
]

DEFAULT_HELDOUT = Path(__file__).resolve().parent / "digits_heldout.npz"  # runtime data: ships with the package

_BIG = 2 * INPUT_SIZE  # augmentation works at twice the resolution
_PAD = 8  # room around the enlarged digit so rotation and shear keep it inside


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run.

    Attributes:
        seed: Seeds the split, the initial weights, the shuffling and the augmentation.
        channels: Feature maps of conv1 and conv2.
        epochs: Passes over the training split.
        batch_size: Digits per step.
        lr: Peak learning rate of the one-cycle schedule (Adam).
        weight_decay: Adam's L2 weight decay.
        label_smoothing: Cross-entropy label smoothing.
        test_fraction: Share of each class set aside as the test split.
        augment: Whether to augment the training digits each epoch.
        threads: CPU threads torch may use. One is the default: with a network this small, more
            threads gain little, and on a busy machine they wait on each other (measured ten
            times slower with two threads while other processes shared the two cores).
    """

    seed: int = 0
    channels: tuple[int, int] = (16, 32)
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    test_fraction: float = 0.2
    augment: bool = True
    threads: int = 1


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_model` returns.

    Attributes:
        model: The trained network, in eval mode.
        losses: Mean training loss of each epoch.
        seconds: Wall-clock training time.
    """

    model: LeNet5
    losses: tuple[float, ...]
    seconds: float


def split_indices(labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and test, stratified: each class gives the same share to the test split.

    Args:
        labels: ``int [N]`` class of each sample.
        test_fraction: Share of each class for the test split, in (0, 1).
        seed: Seed of the shuffle.

    Returns:
        ``(train, test)``: sorted, disjoint ``int64`` index arrays covering all samples.

    Raises:
        ValueError: If ``test_fraction`` is not in (0, 1).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive); got {test_fraction}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(members) * test_fraction))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(np.int64)


def heldout_indices(labels: np.ndarray, test: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Pick ``per_class`` test-split samples of every class (sorted indices into ``labels``).

    Args:
        labels: ``int [N]`` class of each sample.
        test: Indices of the test split.
        per_class: Samples to take from each class (fewer if the class has fewer).
        seed: Seed of the choice.

    Returns:
        ``int64`` indices, a subset of ``test``.
    """
    rng = np.random.default_rng([seed, 2])
    test = np.asarray(test)
    picked = []
    for cls in np.unique(labels[test]):
        members = test[labels[test] == cls]
        picked.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)


def prepare_digits(images: np.ndarray) -> np.ndarray:
    """Apply the drawing preprocessing to every digit.

    Args:
        images: ``[N, H, W]`` grey digits (uint8 or float in [0, 1]).

    Returns:
        ``float32 [N, 28, 28]`` in [0, 1].
    """
    return np.stack([drawing_steps(img).result for img in images]).astype(np.float32)


def _affine(rng: np.random.Generator, size: int) -> np.ndarray:
    angle = math.radians(rng.uniform(-15.0, 15.0))
    scale = rng.uniform(0.85, 1.15)
    shear = rng.uniform(-0.25, 0.25)
    stretch = math.exp(rng.uniform(-0.2, 0.2))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    lin = scale * rot @ np.array([[stretch, shear], [0.0, 1.0 / stretch]])
    centre = np.full(2, (size - 1) / 2.0)
    return np.hstack([lin, (centre - lin @ centre)[:, None]]).astype(np.float64)


def _thickness(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    draw = rng.random()
    if draw < 0.25:
        return cv2.dilate(img, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    if draw < 0.40:
        return cv2.dilate(img, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    if draw < 0.60:
        return cv2.erode(img, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    return img


def _augment_one(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = _BIG + 2 * _PAD
    big = np.zeros((size, size), dtype=np.float32)
    big[_PAD : _PAD + _BIG, _PAD : _PAD + _BIG] = cv2.resize(img, (_BIG, _BIG), interpolation=cv2.INTER_LINEAR)
    big = cv2.warpAffine(big, _affine(rng, size), (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    big = _thickness(big, rng)
    if rng.random() < 0.5:  # solid strokes, like a drawing pen
        big = np.clip(big * rng.uniform(1.5, 3.0), 0.0, 1.0)
    steps = drawing_steps(big)
    out = img if steps.empty else steps.result
    scale = rng.uniform(0.9, 1.05)
    shift = rng.uniform(-1.5, 1.5, size=2)
    centre = (INPUT_SIZE - 1) / 2.0
    move = np.array([[scale, 0.0, centre * (1 - scale) + shift[1]], [0.0, scale, centre * (1 - scale) + shift[0]]])
    return cv2.warpAffine(out, move, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderValue=0.0)


def augment_digits(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomly distort prepared digits, then prepare them again like a drawing.

    Each digit is enlarged to 56x56, rotated (+-15 degrees), scaled, sheared and stretched, made
    thicker or thinner (dilation/erosion) and sometimes solid, run through the drawing
    preprocessing, and finally scaled by 0.9-1.05 and shifted by up to 1.5 px.

    Args:
        images: ``float32 [N, 28, 28]`` prepared digits in [0, 1].
        rng: The random generator (advanced in place).

    Returns:
        ``float32 [N, 28, 28]`` in [0, 1].
    """
    return np.stack([_augment_one(img, rng) for img in images]).astype(np.float32)


@contextlib.contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    """Deterministic algorithms and a fixed thread count for the block; the previous settings after."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def train_model(
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig = TrainConfig(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    log: bool = False,
) -> TrainResult:
    """Train a fresh :class:`LeNet5` on prepared digits.

    The same images, labels and config give the same weights, bit for bit, on the same machine.

    Args:
        images: ``float32 [N, 28, 28]`` prepared digits (see :func:`prepare_digits`).
        labels: ``int [N]`` classes 0-9.
        config: Hyper-parameters and seed.
        log: Print one line per epoch.

    Returns:
        The trained network (eval mode), the loss of each epoch and the time taken.
    """
    rng = np.random.default_rng([config.seed, 1])
    x_all = np.asarray(images, dtype=np.float32)
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    steps_per_epoch = math.ceil(len(x_all) / config.batch_size)
    losses: list[float] = []
    start = time.perf_counter()
    with _deterministic(config.threads):
        torch.manual_seed(config.seed)
        model = LeNet5(channels=config.channels)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
        )
        criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        model.train()
        for epoch in range(config.epochs):
            x_epoch = augment_digits(x_all, rng) if config.augment else x_all
            x_tensor = torch.from_numpy(x_epoch).unsqueeze(1)
            order = torch.from_numpy(rng.permutation(len(x_all)))
            total = 0.0
            for step in range(steps_per_epoch):
                batch = order[step * config.batch_size : (step + 1) * config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(x_tensor[batch]), y_all[batch])
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
            losses.append(total / len(x_all))
            if log:
                elapsed = time.perf_counter() - start
                print(f"epoch {epoch + 1:3d}/{config.epochs}  loss {losses[-1]:.4f}  {elapsed:6.1f} s", flush=True)
    model.eval()
    return TrainResult(model=model, losses=tuple(losses), seconds=time.perf_counter() - start)


def predict_digits(model: nn.Module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Return the predicted class of every prepared digit.

    Args:
        model: A digits network in eval mode.
        images: ``[N, 28, 28]`` prepared digits: float in [0, 1], or uint8 (divided by 255).
        batch_size: Digits per forward pass.

    Returns:
        ``int64 [N]``.
    """
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            out.append(model(torch.from_numpy(x[i : i + batch_size]).unsqueeze(1)).argmax(1))
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of digits the model classifies correctly (see :func:`predict_digits` for ``images``)."""
    return float((predict_digits(model, images) == np.asarray(labels)).mean())


def _architecture(model: LeNet5) -> str:
    c1, c2 = model.conv1.out_channels, model.conv2.out_channels
    return (
        f"conv1 5x5 1->{c1} (pad 2) -> ReLU -> maxpool 2 -> conv2 5x5 {c1}->{c2} -> ReLU -> maxpool 2 -> "
        f"fc1 {model.fc1.in_features}->{model.fc1.out_features} -> ReLU -> "
        f"fc2 {model.fc2.in_features}->{model.fc2.out_features} -> ReLU -> "
        f"fc3 {model.fc3.in_features}->{model.fc3.out_features}"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _relative(path: Path) -> str:
    root = DEFAULT_CHECKPOINT.parent.parent
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m vizlib.digits.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="digits.png (default: opencv-doc's)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="state dict to write")
    parser.add_argument("--card", type=Path, default=DEFAULT_CARD, help="JSON model card to write")
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT, help="held-out .npz to write")
    parser.add_argument("--heldout-per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Train, evaluate on the test split, and write checkpoint, model card and held-out sample.

    Args:
        argv: Command-line arguments (``None``: ``sys.argv[1:]``); ``--help`` lists them.

    Returns:
        The exit status, 0 on success.
    """
    args = _parse(argv)
    config = TrainConfig(seed=args.seed, epochs=args.epochs, threads=args.threads)
    data_path = find_digits_png() if args.data is None else args.data
    raw, labels = load_opencv_digits(data_path)
    train_idx, test_idx = split_indices(labels, config.test_fraction, config.seed)
    prepared = prepare_digits(raw)
    print(f"OpenCV digits from {data_path}: {len(train_idx)} train, {len(test_idx)} test", flush=True)

    result = train_model(prepared[train_idx], labels[train_idx], config, log=True)
    predicted = predict_digits(result.model, prepared[test_idx])
    test_labels = labels[test_idx]
    test_acc = float((predicted == test_labels).mean())
    per_class = {str(c): float((predicted[test_labels == c] == c).mean()) for c in range(10)}

    held = heldout_indices(labels, test_idx, args.heldout_per_class, config.seed)
    held_images = np.clip(np.rint(prepared[held] * 255.0), 0, 255).astype(np.uint8)
    held_acc = accuracy(result.model, held_images, labels[held])

    for path in (args.checkpoint, args.card, args.heldout):
        path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result.model.state_dict(), args.checkpoint)
    np.savez_compressed(args.heldout, images=held_images, labels=labels[held].astype(np.int64), indices=held)

    card = {
        "model": "LeNet5",
        "architecture": _architecture(result.model),
        "parameters": sum(p.numel() for p in result.model.parameters()),
        "input": "1x28x28 float in [0, 1], white ink on black; MNIST-style preprocessing "
        "(crop to ink, longest side 20 px, centre of mass at the centre): vizlib.digits.preprocess_drawing",
        "categories": [str(d) for d in range(10)],
        "dataset": "OpenCV handwritten digits (digits.png: 5000 digits of 20x20 px, 500 per class), "
        "Debian package opencv-doc",
        "dataset_path": str(data_path),
        "dataset_sha256": _sha256(Path(data_path)),
        "split": {
            "stratified": True,
            "test_fraction": config.test_fraction,
            "train": len(train_idx),
            "test": len(test_idx),
            "seed": config.seed,
        },
        "seed": config.seed,
        "epochs": config.epochs,
        "config": asdict(config),
        "augmentation": "rotation +-15 deg, scale 0.85-1.15, shear +-0.25, aspect +-20%, dilation/erosion, "
        "solid strokes, then preprocessing, final scale 0.9-1.05 and shift +-1.5 px",
        "test_accuracy": test_acc,
        "test_errors": int((predicted != test_labels).sum()),
        "per_class_test_accuracy": per_class,
        "heldout": {
            "path": _relative(args.heldout),
            "count": len(held),
            "accuracy": held_acc,
        },
        "checkpoint": args.checkpoint.name,
        "sha256": _sha256(args.checkpoint),
        "size_bytes": args.checkpoint.stat().st_size,
        "date": datetime.now(timezone.utc).date().isoformat(),
        "training_seconds": round(result.seconds, 1),
        "threads": config.threads,
        "machine": f"{platform.machine()} {platform.system()}",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "opencv_version": cv2.__version__,
        "python_version": platform.python_version(),
        "command": " ".join(["python -m vizlib.digits.train", *(sys.argv[1:] if argv is None else argv)]),
    }
    args.card.write_text(json.dumps(card, indent=2) + "\n")
    print(
        f"test accuracy {test_acc:.4f} ({card['test_errors']} errors of {len(test_idx)}), held-out "
        f"{held_acc:.4f} on {len(held)}; {result.seconds:.0f} s; wrote {args.checkpoint}, {args.card}, "
        f"{args.heldout}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
