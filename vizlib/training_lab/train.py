"""Train the four Fashion-MNIST nets side by side, on the same batches, with curves and first-layer snapshots.

``python -m vizlib.training_lab.train`` trains the reference runs shipped in ``checkpoints/``
(``fashion_<net>.pth`` plus a JSON model card each). The page trains the same way in a background job:
:func:`train_nets` reports progress after every batch (where a cancel takes effect) and publishes a
:class:`TrainResult` snapshot whenever a new curve point is ready.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vizlib.training_lab.data import CLASSES, data_root, load_fashion, normalise
from vizlib.training_lab.nets import NETS, build_net
from vizlib.training_lab.params import count_parameters

__all__ = [
    "CHECKPOINT_DIR",
    "CurvePoint",
    "FilterSnapshot",
    "NetRun",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "card_path",
    "checkpoint_path",
    "main",
    "train_nets",
]

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent.parent / "checkpoints"
_log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how. Equal configs give equal runs (same seed, same batches, same order)."""

    nets: tuple[str, ...] = tuple(NETS)
    epochs: int = 3
    train_size: int = 60_000
    test_size: int = 10_000
    batch_size: int = 64
    lr: float = 2e-3
    lr_decay: float = 0.6  # the learning rate is multiplied by this after every epoch
    seed: int = 0
    points_per_epoch: int = 10
    #: Batches into the first epoch after which the first-layer filters are also snapshot.
    filter_batches: tuple[int, ...] = (10, 50, 200)

    def __post_init__(self) -> None:
        unknown = [n for n in self.nets if n not in NETS]
        if unknown or not self.nets:
            raise ValueError(f"Choose nets among {', '.join(NETS)}; got {', '.join(unknown) or 'none'}.")
        if self.epochs < 1 or self.train_size < 1 or self.test_size < 1 or self.batch_size < 1:
            raise ValueError("epochs, train_size, test_size and batch_size must be at least 1.")


@dataclass(frozen=True)
class CurvePoint:
    """One point of a net's learning curve.

    Attributes:
        epoch: Epochs done (fractional: 0.5 is half-way through the first).
        train_loss: Mean cross-entropy over the batches since the previous point.
        train_accuracy: Accuracy on those batches (0..1).
        test_accuracy: Accuracy on the test images, measured at the end of each epoch; else ``None``.
    """

    epoch: float
    train_loss: float
    train_accuracy: float
    test_accuracy: float | None = None


@dataclass(frozen=True)
class FilterSnapshot:
    """The first layer's 5x5 filters at one moment of training: ``weights`` is ``float32 [maps, 5, 5]``."""

    label: str
    epoch: float
    weights: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class NetRun:
    """One net's run: its learning curve, filter snapshots and (when finished) test accuracy."""

    name: str
    parameters: int
    points: tuple[CurvePoint, ...]
    filters: tuple[FilterSnapshot, ...] = ()
    test_accuracy: float | None = None


@dataclass(frozen=True)
class TrainResult:
    """Every net's run; ``finished`` once all epochs are done. ``models`` holds the trained nets (eval mode)."""

    config: TrainConfig
    runs: dict[str, NetRun]
    finished: bool
    seconds: float
    models: dict[str, nn.Module] = field(default_factory=dict, repr=False)


class _Tracker:
    def __init__(self, name: str, model: nn.Module) -> None:
        self.name, self.model = name, model
        self.points: list[CurvePoint] = []
        self.filters: list[FilterSnapshot] = []
        self.loss_sum = self.correct = self.seen = 0.0

    def add(self, loss: float, correct: int, count: int) -> None:
        self.loss_sum += loss * count
        self.correct += correct
        self.seen += count

    def point(self, epoch: float, test_accuracy: float | None = None) -> None:
        if self.seen:
            self.points.append(
                CurvePoint(round(epoch, 4), self.loss_sum / self.seen, self.correct / self.seen, test_accuracy)
            )
        self.loss_sum = self.correct = self.seen = 0.0

    def snapshot(self, label: str, epoch: float) -> None:
        conv = getattr(self.model, "conv1", None)
        if isinstance(conv, nn.Conv2d):
            weights = conv.weight.detach()[:, 0].clone().numpy().astype(np.float32)
            self.filters.append(FilterSnapshot(label, round(epoch, 4), weights))

    def run(self, test_accuracy: float | None = None) -> NetRun:
        return NetRun(self.name, count_parameters(self.model), tuple(self.points), tuple(self.filters), test_accuracy)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> float:
    """Fraction of ``uint8 [N, 28, 28]`` images that ``model`` classifies as ``labels``."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(normalise(images[start : start + batch_size]))
            correct += int((logits.argmax(1).numpy() == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(images), 1)


def train_nets(
    config: TrainConfig,
    progress: ProgressFn | None = None,
    publish: Callable[[TrainResult], None] | None = None,
    keep_models: bool = True,
) -> TrainResult:
    """Train ``config.nets`` from their seeded initialisation, all on the same shuffled batches.

    Args:
        config: What to train.
        progress: Called after every batch as ``progress(fraction, message)``; it may raise (e.g.
            :class:`vizlib.jobs.JobCancelled`) to stop the run between two batches.
        publish: Called with a partial result whenever a curve point is added (live curves).
        keep_models: Return the trained models too (the page keeps only curves and filters).

    Returns:
        The finished runs with the trained models (eval mode).
    """
    start = time.perf_counter()
    images, labels = load_fashion("train", config.train_size)
    test_images, test_labels = load_fashion("test", config.test_size)
    x_all = normalise(images)
    y_all = torch.tensor(labels, dtype=torch.long)
    trackers: list[_Tracker] = []
    optimizers, schedules = [], []
    for name in config.nets:
        torch.manual_seed(config.seed * 100 + list(NETS).index(name))
        model = build_net(name)
        model.train()
        trackers.append(_Tracker(name, model))
        optimizers.append(torch.optim.Adam(model.parameters(), lr=config.lr))
        schedules.append(torch.optim.lr_scheduler.ExponentialLR(optimizers[-1], gamma=config.lr_decay))
    criterion = nn.CrossEntropyLoss()
    steps = math.ceil(len(x_all) / config.batch_size)
    every = max(1, steps // config.points_per_epoch)
    total = steps * config.epochs
    generator = torch.Generator().manual_seed(config.seed)

    def partial(finished: bool) -> TrainResult:
        runs = {t.name: t.run() for t in trackers}
        return TrainResult(config, runs, finished, time.perf_counter() - start)

    for tracker in trackers:
        tracker.snapshot("initial (random)", 0.0)
    for epoch in range(config.epochs):
        order = torch.randperm(len(x_all), generator=generator)
        for step in range(steps):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            x, y = x_all[batch], y_all[batch]
            for tracker, optimizer in zip(trackers, optimizers, strict=True):
                optimizer.zero_grad(set_to_none=True)
                logits = tracker.model(x)
                loss = criterion(logits, y)
                loss.backward()
                optimizer.step()
                tracker.add(loss.item(), int((logits.argmax(1) == y).sum()), len(batch))
            done = epoch * steps + step + 1
            at = epoch + (step + 1) / steps
            if epoch == 0 and step + 1 in config.filter_batches and step + 1 < steps:
                for tracker in trackers:
                    tracker.snapshot(f"after {step + 1} batches", at)
            if step + 1 == steps:
                for tracker in trackers:
                    tracker.point(at, accuracy(tracker.model, test_images, test_labels))
                    tracker.snapshot(f"after epoch {epoch + 1}", at)
                    tracker.model.train()
            elif (step + 1) % every == 0:
                for tracker in trackers:
                    tracker.point(at)
            if publish is not None and ((step + 1) % every == 0 or step + 1 == steps):
                publish(partial(False))
            if progress is not None:
                progress(done / total, f"epoch {epoch + 1} of {config.epochs}, batch {step + 1} of {steps}")
        for schedule in schedules:
            schedule.step()
        _log.info(
            "epoch %d/%d %s (%.0f s)", epoch + 1, config.epochs,
            ", ".join(f"{t.name} {t.points[-1].test_accuracy:.4f}" for t in trackers), time.perf_counter() - start,
        )
    models = {}
    runs = {}
    for tracker in trackers:
        tracker.model.eval()
        models[tracker.name] = tracker.model
        final = tracker.points[-1].test_accuracy if tracker.points else None
        runs[tracker.name] = tracker.run(final)
    result = TrainResult(config, runs, True, time.perf_counter() - start, models if keep_models else {})
    if publish is not None:
        publish(result)
    return result


# ------------------------------------------------------------------------------------------ reference runs


def checkpoint_path(name: str, folder: Path = CHECKPOINT_DIR) -> Path:
    """``checkpoints/<name>.pth`` (registry names already start with ``fashion_``)."""
    return folder / f"{name}.pth"


def card_path(name: str, folder: Path = CHECKPOINT_DIR) -> Path:
    """``checkpoints/<name>.json``, the model card beside the checkpoint."""
    return folder / f"{name}.json"


def _card(name: str, run: NetRun, model: nn.Module, config: TrainConfig, seconds: float, command: str,
          checkpoint: Path, threads: int) -> dict:
    return {
        "model": name,
        "architecture": NETS[name][1],
        "modules": str(model),
        "parameters": run.parameters,
        "categories": list(CLASSES),
        "input": "1x28x28, (pixel/255 - 0.2860) / 0.3530, white garment on black (Fashion-MNIST's own polarity)",
        "data": {
            "dataset": "Fashion-MNIST (Debian package dataset-fashion-mnist)",
            "folder": str(data_root()),
            "train_images": config.train_size,
            "test_images": config.test_size,
        },
        "epochs": config.epochs,
        "seed": config.seed,
        "config": asdict(config),
        "test_accuracy": run.test_accuracy,
        "curves": [asdict(p) for p in run.points],
        "epoch_curve": [asdict(p) for p in run.points if p.test_accuracy is not None],
        "filters": [
            {"label": s.label, "epoch": s.epoch, "weights": np.round(s.weights, 5).tolist()} for s in run.filters
        ],
        "checkpoint": checkpoint.name,
        "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "size_bytes": checkpoint.stat().st_size,
        "training_seconds": round(seconds, 1),
        "threads": threads,
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": f"{platform.machine()} {platform.system()}",
        "torch_version": torch.__version__,
        "command": command,
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m vizlib.training_lab.train", description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=list(defaults.nets), choices=list(NETS))
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--train-size", type=int, default=defaults.train_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="folder for checkpoints and cards")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Train the reference runs and write ``fashion_<net>.pth`` and ``fashion_<net>.json`` for each.

    Returns:
        The exit status, 0 on success.
    """
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    torch.set_num_threads(args.threads)
    config = TrainConfig(nets=tuple(args.nets), epochs=args.epochs, train_size=args.train_size, seed=args.seed)
    command = " ".join(["python -m vizlib.training_lab.train", *(sys.argv[1:] if argv is None else argv)])
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.05 or fraction == 1.0:
            last[0] = fraction
            _log.info("%3.0f%% %s", 100 * fraction, message)

    result = train_nets(config, progress)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, run in result.runs.items():
        checkpoint = checkpoint_path(name, args.out)
        torch.save(result.models[name].state_dict(), checkpoint)
        card = _card(name, run, result.models[name], config, result.seconds, command, checkpoint, args.threads)
        card_path(name, args.out).write_text(json.dumps(card, indent=1) + "\n")
        _log.info("%s: %d parameters, test accuracy %.4f -> %s", name, run.parameters, run.test_accuracy, checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
