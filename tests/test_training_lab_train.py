"""Training the lab nets: a short epoch on a small subset lowers the loss, runs repeat, a cancel stops it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from vizlib.jobs import JobCancelled, JobQueue
from vizlib.training_lab.train import TrainConfig, accuracy, train_nets

TINY = TrainConfig(nets=("fashion_mlp", "fashion_cnn"), epochs=1, train_size=640, test_size=200,
                   points_per_epoch=5, filter_batches=(2,))


@pytest.fixture(scope="module")
def tiny_run():
    torch.set_num_threads(1)
    return train_nets(TINY)


def test_one_short_epoch_lowers_the_loss(tiny_run):
    assert tiny_run.finished
    for name, run in tiny_run.runs.items():
        losses = [p.train_loss for p in run.points]
        assert len(losses) == 5, name
        assert losses[-1] < losses[0] * 0.8, (name, losses)
        assert run.points[-1].test_accuracy is not None and run.points[-1].epoch == 1.0


def test_reported_accuracy_is_the_models_accuracy(tiny_run):
    from vizlib.training_lab.data import load_fashion

    images, labels = load_fashion("test", 200)
    for name, model in tiny_run.models.items():
        with torch.no_grad():
            predicted = model(((torch.tensor(images).float() / 255 - 0.2860) / 0.3530)[:, None]).argmax(1)
        by_hand = float((predicted.numpy() == labels).mean())
        assert tiny_run.runs[name].test_accuracy == pytest.approx(by_hand)
        assert accuracy(model, images, labels) == pytest.approx(by_hand)


def test_filter_snapshots_of_the_cnn_only(tiny_run):
    cnn = tiny_run.runs["fashion_cnn"]
    assert [s.label for s in cnn.filters] == ["initial (random)", "after 2 batches", "after epoch 1"]
    assert cnn.filters[0].weights.shape == (8, 5, 5)
    assert not np.allclose(cnn.filters[0].weights, cnn.filters[-1].weights)
    assert tiny_run.runs["fashion_mlp"].filters == ()


def test_same_seed_same_run(tiny_run):
    again = train_nets(TINY)
    for name in TINY.nets:
        assert [p.train_loss for p in again.runs[name].points] == [p.train_loss for p in tiny_run.runs[name].points]


def test_progress_and_publish():
    seen, published = [], []
    config = TrainConfig(nets=("fashion_mlp",), epochs=2, train_size=256, test_size=100, points_per_epoch=2)
    result = train_nets(config, lambda f, m: seen.append(f), published.append, keep_models=False)
    assert len(seen) == 2 * 4 and seen[-1] == 1.0 and seen == sorted(seen)
    assert [len(r.runs["fashion_mlp"].points) for r in published] == [1, 2, 3, 4, 4]
    assert published[-1].finished and not published[0].finished
    assert result.models == {}


def test_a_cancel_stops_training_between_batches():
    queue = JobQueue("test-train", workers=1)
    batches = []
    started = threading.Event()
    config = TrainConfig(nets=("fashion_cnn",), epochs=5, train_size=10_000, test_size=100)

    def progress_spy(progress):
        def report(fraction, message):
            batches.append(fraction)
            started.set()
            progress(fraction, message)
        return train_nets(config, report)

    job = queue.submit("me", progress_spy, label="Training")
    assert started.wait(60)
    job.cancel()
    assert job.wait(30)
    with pytest.raises(JobCancelled):
        job.result(0)
    assert len(batches) < 50  # stopped within a few batches of 157 x 5


def test_bad_configs_are_sentences():
    with pytest.raises(ValueError, match="Choose nets"):
        TrainConfig(nets=("fashion_vgg",))
    with pytest.raises(ValueError, match="at least 1"):
        TrainConfig(epochs=0)
