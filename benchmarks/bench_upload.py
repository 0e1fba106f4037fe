"""An uploaded phone photo: decoded whole and then scaled, against decoded at a reduced scale (``load_image``'s
``max_side``), as the app keeps it (longest side 1024 px).

Two photos of a phone's size (4000 x 3000 and 4032 x 3024 px, JPEG quality 90): a gallery photo enlarged (real
texture) and the same with fine noise (a sharper photo: more to decode). One thread, thread CPU, rounds
interleaved, medians and paired ratios; also the largest and mean difference between the two results.

Run: ``.venv/bin/python benchmarks/bench_upload.py [--rounds 10]``
"""

from __future__ import annotations

import argparse
import datetime
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks._util import machine  # noqa: E402
from vizlib import images  # noqa: E402

SIDE = 1024  # ui.shared.SESSION_IMAGE_SIDE


def _photos() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    out = {}
    for name, size, noise in (("enlarged gallery photo, 4000 x 3000", (4000, 3000), 0),
                              ("the same with fine noise, 4032 x 3024", (4032, 3024), 12)):
        picture = Image.fromarray(images.load_gallery_image(images.gallery()[0].key)).resize(size, Image.BICUBIC)
        pixels = np.asarray(picture).astype(np.int16)
        if noise:
            pixels = pixels + rng.integers(-noise, noise + 1, pixels.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        out[name] = buf.getvalue()
    return out


def _ms(fn) -> tuple[float, np.ndarray]:
    start = time.thread_time()
    result = fn()
    return (time.thread_time() - start) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.UTC)
    print(f"# {now:%Y-%m-%d %H:%M} UTC · {machine()} · {args.rounds} rounds, one thread")
    print("| photo | file MB | whole, then scaled ms | reduced scale ms | whole / reduced [IQR] "
          "| mean / max difference |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, data in _photos().items():
        whole, reduced = [], []
        for _ in range(args.rounds):
            ms, a = _ms(lambda data=data: images.fit_image(images.load_image(data), SIDE))
            whole.append(ms)
            ms, b = _ms(lambda data=data: images.load_image(data, SIDE))
            reduced.append(ms)
        diff = np.abs(a.astype(int) - b.astype(int))
        ratios = sorted(w / r for w, r in zip(whole, reduced, strict=True))
        print(f"| {name} | {len(data) / 2**20:.1f} | {statistics.median(whole):.1f} | "
              f"{statistics.median(reduced):.1f} | "
              f"{statistics.median(ratios):.1f} [{ratios[len(ratios) // 4]:.1f}-{ratios[3 * len(ratios) // 4]:.1f}] | "
              f"{diff.mean():.2f} / {diff.max()} |")


if __name__ == "__main__":
    main()
