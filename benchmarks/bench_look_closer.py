"""Look closer: the two speed targets of issue 18 on the default model, with the bare forward pass beside them.

Rows (EfficientNet-Lite0, ImageNet weights, the gallery's first photo):
  forward       one classification (preprocess + forward), the baseline;
  patch move    vizlib.occlusion.covered_prediction: cover one patch and classify (target <= 150 ms);
  occlusion     vizlib.occlusion.sensitivity with the page's defaults (patch 32, stride 16: 169 positions);
  sweep         vizlib.invariance.sweep of 33 shifts;
  featurevis    vizlib.featurevis.visualize, 128 px, 256 steps, one channel of _blocks.10 (target <= 20 s),
                at the torch thread count asked and, beside it, at one thread (on a CPU other processes also
                use, a second thread that waits for its core costs more than it brings).
The machine's load (uptime) is printed before and after: run it at a quiet moment.

Run: python benchmarks/bench_look_closer.py [--threads N] [--repeats R] [--steps S]
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._util import machine, median_seconds  # noqa: E402
from vizlib import featurevis, images, invariance, models, occlusion  # noqa: E402


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"), machine())
    print("before:", _uptime())
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    image = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    target = models.classify(loaded, image).indices[0]
    rng = np.random.default_rng(0)

    forward = median_seconds(lambda: models.classify(loaded, image), repeats=args.repeats)

    def move() -> None:
        x, y = (int(v) for v in rng.integers(0, 224 - 48, 2))
        occlusion.covered_prediction(loaded, image, x, y, 48, "grey")

    patch = median_seconds(move, repeats=args.repeats)
    print(f"forward      {forward * 1000:7.1f} ms")
    print(f"patch move   {patch * 1000:7.1f} ms   ({patch / forward:.2f}x forward; target <= 150 ms)")
    start = time.perf_counter()
    occlusion.sensitivity(loaded, image, target)
    occl = time.perf_counter() - start
    print(f"occlusion    {occl:7.2f} s    (169 positions, {occl / forward / 170:.2f}x forward per position)")
    start = time.perf_counter()
    invariance.sweep(loaded, image, "shift", np.linspace(-64, 64, 33), [target])
    swept = time.perf_counter() - start
    print(f"sweep 33     {swept:7.2f} s    ({swept / forward / 33:.2f}x forward per image)")
    for threads in dict.fromkeys([args.threads, 1]):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        featurevis.visualize(loaded, "_blocks.10", 7, size=128, steps=args.steps)
        fv = time.perf_counter() - start
        print(f"featurevis   {fv:7.2f} s    (128 px, {args.steps} steps, {threads} thread(s); target <= 20 s)")
    print("after: ", _uptime())


if __name__ == "__main__":
    main()
