"""PNG settings: for photos, OpenCV's defaults against ``encode_png(..., filters="sub", rle=True)``; for feature-map
montages, an RGB PNG against a palette PNG (``Montage.png``).

The CAM page draws each method's map over the photo as one PNG (four panels at most 256 px, a close-up at most
448 px) and the Feature maps page the photo under a channel; every new image pays for them. For each gallery
photo (fitted to 1024 px, as a session keeps it), with a Grad-CAM-like map (a 7 x 7 grid resized bilinearly) over
it at each of those sizes, and the photo alone, it times both settings in one process, rounds interleaved
(CPU time, medians), and checks that both decode to the same pixels.

Montages (``--montages``): the Feature maps page's "all channels" montage of one layer per stage of
EfficientNet-Lite0 on a gallery photo, as the page encoded it before (``encode_png(image, filters=False)``) and as
it does now (a palette PNG where the montage has at most 256 colours).

Run: ``.venv/bin/python benchmarks/bench_png.py [--rounds 20] [--montages]``
"""

from __future__ import annotations

import argparse
import datetime
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._util import machine  # noqa: E402
from vizlib import images  # noqa: E402
from vizlib.encoding import encode_png  # noqa: E402
from vizlib.overlay import overlay  # noqa: E402

SETTINGS = {"default": {}, "photo": {"filters": "sub", "rle": True}}


def _pictures() -> list[tuple[str, np.ndarray]]:
    out = []
    for entry in images.gallery():
        photo = images.fit_image(images.load_gallery_image(entry.key), 1024)
        coarse = np.random.default_rng(0).random((7, 7), dtype=np.float32)
        cam = cv2.resize(coarse, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_LINEAR)
        for side in (256, 448):
            stride = max(1, math.ceil(max(photo.shape[:2]) / side))
            out.append((f"{entry.key}, map over it, {side} px", overlay(photo[::stride, ::stride],
                                                                        cam[::stride, ::stride])))
        out.append((f"{entry.key}, photo alone", photo))
    return out


def _montages(rounds: int) -> None:
    import torch

    from vizlib import feature_maps as fm
    from vizlib import models

    torch.set_num_threads(1)
    loaded = models.load_model(models.DEFAULT_MODEL, device="cpu")
    photo = images.fit_image(images.load_gallery_image(images.gallery()[0].key), 1024)
    acts = fm.compute_activations(loaded, photo)
    print("| montage (all channels) | pixels | RGB PNG ms | palette PNG ms | RGB / palette | KB RGB → palette | "
          "same pixels |")
    print("|---|---:|---:|---:|---:|---:|---|")
    totals = [0.0, 0.0]
    for stage, rows in fm.layers_by_stage(acts.layers).items():
        layer = rows[-1].name
        pic = fm.montage(acts[layer])
        times: list[list[float]] = [[], []]
        raw: list[bytes] = [b"", b""]
        for _ in range(rounds):
            for i, encode in enumerate((lambda p=pic: encode_png(p.image, filters=False), pic.png)):
                start = time.process_time()
                raw[i] = encode()
                times[i].append(time.process_time() - start)
        a, b = (statistics.median(t) * 1000 for t in times)
        totals[0] += a
        totals[1] += b
        same = all(np.array_equal(cv2.imdecode(np.frombuffer(r, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1], pic.image)
                   for r in raw)
        kind = "" if pic.indexed is not None else " (every level used: RGB)"
        print(f"| {stage}: {layer}{kind} | {pic.image.shape[1]}×{pic.image.shape[0]} | {a:.2f} | {b:.2f} | "
              f"{a / b:.2f} | {len(raw[0]) / 1024:.0f} → {len(raw[1]) / 1024:.0f} | {'yes' if same else 'NO'} |")
    print(f"| **all** | | {totals[0]:.1f} | {totals[1]:.1f} | {totals[0] / totals[1]:.2f} | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--montages", action="store_true", help="the feature-map montages instead of the photos")
    args = parser.parse_args()
    if args.montages:
        print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · {args.rounds} rounds, "
              "CPU ms medians")
        _montages(args.rounds)
        return
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · {machine()} · {args.rounds} rounds, "
          "CPU ms medians")
    print("| picture | pixels | default ms | photo setting ms | default / photo | KB default → photo | same pixels |")
    print("|---|---:|---:|---:|---:|---:|---|")
    totals = dict.fromkeys(SETTINGS, 0.0)
    for name, picture in _pictures():
        times: dict[str, list[float]] = {k: [] for k in SETTINGS}
        raw = {}
        for _ in range(args.rounds):
            for key, settings in SETTINGS.items():
                start = time.process_time()
                raw[key] = encode_png(picture, **settings)
                times[key].append(time.process_time() - start)
        a, b = (statistics.median(times[k]) * 1000 for k in SETTINGS)
        totals["default"] += a
        totals["photo"] += b
        decoded = [cv2.imdecode(np.frombuffer(r, np.uint8), cv2.IMREAD_COLOR) for r in raw.values()]
        same = all(np.array_equal(d[:, :, ::-1], picture) for d in decoded)
        print(f"| {name} | {picture.shape[1]}×{picture.shape[0]} | {a:.2f} | {b:.2f} | {a / b:.2f} | "
              f"{len(raw['default']) / 1024:.0f} → {len(raw['photo']) / 1024:.0f} | {'yes' if same else 'NO'} |")
    print(f"| **all** | | {totals['default']:.1f} | {totals['photo']:.1f} | "
          f"{totals['default'] / totals['photo']:.2f} | | |")


if __name__ == "__main__":
    main()
