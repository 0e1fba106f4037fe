"""Benchmark vizlib.kernels on one CPU core: apply() frames per second, and separable vs full 2-D filtering.

Run: ``.venv/bin/python benchmarks/bench_kernels.py [--image PATH] [--seconds S]``

Target (issue 7): apply() on a 640x480 RGB frame with a 3x3 kernel at >= 300 frames per second on one core.
The image is the file given, else the first gallery photo, else a synthetic scene; it is resized to 640x480.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._separable import time_separable  # noqa: E402
from tests.reference.kernels_torch import apply_torch  # noqa: E402
from vizlib import kernels as K  # noqa: E402

TARGET_FPS = 300
FRAME_SIZE = (640, 480)  # width, height


def _load_frame(path: str | None) -> tuple[np.ndarray, str]:
    """A 640x480 RGB uint8 frame and a note on where it came from."""
    image, source = None, "synthetic scene (no image found)"
    if path:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"Can't read {path} as an image.")
        image, source = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), path
    else:
        try:
            from vizlib.images import gallery, load_gallery_image

            first = gallery()[0]
            image, source = load_gallery_image(first.key), f"gallery: {first.filename}"
        except Exception:  # no gallery yet: fall back to a synthetic scene
            image = None
    if image is None:
        yy, xx = np.mgrid[0 : FRAME_SIZE[1], 0 : FRAME_SIZE[0]]
        checker = ((xx // 40 + yy // 40) % 2) * 120
        disc = ((xx - 400) ** 2 + (yy - 220) ** 2 < 120**2) * 100
        noise = np.random.default_rng(0).normal(0, 8, xx.shape)
        planes = [checker + disc + noise, xx / 640 * 255, yy / 480 * 255 + noise]
        image = np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)
    frame = cv2.resize(image, FRAME_SIZE, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame), source


def _times_ms(fn: Callable[[], object], seconds: float) -> list[float]:
    """Wall times of single calls (ms), as many as fit in ``seconds`` (at least 10), after 3 warm-ups."""
    for _ in range(3):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 10 or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _median_ms(fn: Callable[[], object], seconds: float) -> float:
    return statistics.median(_times_ms(fn, seconds))


def _binomial(size: int) -> np.ndarray:
    row = np.array([math.comb(size - 1, i) for i in range(size)], dtype=np.float64)
    return (np.outer(row, row) / row.sum() ** 2).astype(np.float32)


def _torch_full_and_separable(x: np.ndarray, kernel: np.ndarray, seconds: float) -> tuple[float, float]:
    """Torch conv2d with the k x k kernel against a k x 1 then a 1 x k conv2d (zero padding)."""
    split = K.separate(kernel)
    t = torch.from_numpy(x)[None, None]
    k = kernel.shape[0]
    full_w = torch.from_numpy(np.array(kernel, dtype=np.float32))[None, None]
    col_w = torch.from_numpy(split.column.astype(np.float32)).reshape(1, 1, k, 1)
    row_w = torch.from_numpy(split.row.astype(np.float32)).reshape(1, 1, 1, k)
    with torch.inference_mode():
        full = _median_ms(lambda: F.conv2d(t, full_w, padding=k // 2), seconds)
        sep = _median_ms(lambda: F.conv2d(F.conv2d(t, col_w, padding=(k // 2, 0)), row_w, padding=(0, k // 2)), seconds)
    return full, sep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="image file to use instead of the gallery / synthetic frame")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per measurement")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    frame, source = _load_frame(args.image)
    print(
        f"# vizlib.kernels benchmark — {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"# torch {torch.__version__} ({torch.get_num_threads()} thread), OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} thread), numpy {np.__version__}"
    )
    print(f"# frame: {frame.shape[1]}x{frame.shape[0]} RGB uint8 from {source}\n")

    sobel = K.PRESETS["sobel_x"]
    rows = [
        ("apply(), gray (luma) result", lambda: K.apply(frame, sobel)),
        ("apply(), per-channel result", lambda: K.apply(frame, sobel, color="per_channel")),
        ("apply(), gray, reflect border", lambda: K.apply(frame, sobel, border="reflect")),
        ("gradient(): Gx, Gy, magnitude, angle", lambda: K.gradient(frame)),
        ("apply_torch(), gray", lambda: apply_torch(frame, sobel)),
        ("apply_torch(), per-channel", lambda: apply_torch(frame, sobel, color="per_channel")),
    ]
    print("## apply() on one 640x480 RGB frame, 3x3 Sobel x, one CPU core (from uint8 frame to float32 result)\n")
    print(f"| what | median ms | p95 ms | sustained frames / s | >= {TARGET_FPS} fps sustained |")
    print("|---|---:|---:|---:|:---:|")
    for name, fn in rows:
        times = _times_ms(fn, args.seconds)
        p95 = statistics.quantiles(times, n=20)[-1]
        fps = len(times) / (sum(times) / 1e3)  # frames over the total time, spikes included
        print(
            f"| {name} | {statistics.median(times):.3f} | {p95:.3f} | {fps:,.0f} "
            f"| {'yes' if fps >= TARGET_FPS else 'NO'} |"
        )

    gray = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    print("\n## Separable vs full 2-D, gray 640x480 float32, zero border, one CPU core (median ms per filtering)\n")
    print(
        "| kernel | k^2 mults | 2k mults | OpenCV filter2D | OpenCV sepFilter2D | speed-up "
        "| torch conv2d k x k | torch k x 1 + 1 x k | speed-up | max abs diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases = [("Sobel x 3x3", sobel), ("Gaussian 5x5", K.PRESETS["gaussian_5x5"])]
    cases += [(f"binomial {k}x{k}", _binomial(k)) for k in (9, 15, 31)]
    repeats = max(10, int(args.seconds * 200))
    for name, kernel in cases:
        timing = time_separable(gray, kernel, repeats=repeats)
        t_full, t_sep = _torch_full_and_separable(gray, kernel, args.seconds)
        print(
            f"| {name} | {timing.full_multiplications} | {timing.separable_multiplications} "
            f"| {timing.full_ms:.3f} | {timing.separable_ms:.3f} | {timing.speedup:.2f}x "
            f"| {t_full:.3f} | {t_sep:.3f} | {t_full / t_sep:.2f}x | {timing.max_abs_difference:.1e} |"
        )
    print(
        "\nOpenCV's filter2D switches to a DFT for kernels of 11x11 and more, so its full 2-D time stops "
        "growing as k^2 there; torch's conv2d does not."
    )


if __name__ == "__main__":
    main()
