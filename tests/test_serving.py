"""vizlib.serving (pictures encoded once at display size, process settings), memoized photo URIs, CAM progress."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
import torch

from vizlib import cam
from vizlib.figures import common
from vizlib.jobs import JobCancelled
from vizlib.serving import display_jpeg, pictures


def _decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_display_jpeg_shrinks_to_the_longer_side_and_keeps_the_picture(rng):
    image = np.zeros((300, 600, 3), np.uint8)
    image[:, :300] = (200, 30, 10)  # left half red, right half black
    small = _decode(display_jpeg(image, 200))
    assert small.shape == (100, 200, 3)
    assert np.abs(small[50, 50].astype(int) - (200, 30, 10)).max() <= 6
    assert small[50, 150].max() <= 6
    same = _decode(display_jpeg(image, 1000))  # never enlarged
    assert same.shape == (300, 600, 3)


def test_display_jpeg_is_encoded_once_per_image_and_size(monkeypatch, rng):
    image = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    calls = []
    real = cv2.imencode
    monkeypatch.setattr(pictures.cv2, "imencode", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = display_jpeg(image, 30)
    assert display_jpeg(image.copy(), 30) is first  # same content: the cached bytes
    assert len(calls) == 1
    display_jpeg(image, 20)
    other = image.copy()
    other[0, 0] ^= 1
    display_jpeg(other, 30)
    assert len(calls) == 3


def test_display_jpeg_refuses_what_is_not_a_picture():
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        display_jpeg(np.zeros((4, 4), np.uint8), 10)
    with pytest.raises(ValueError, match="at least 1"):
        display_jpeg(np.zeros((4, 4, 3), np.uint8), 0)


def test_png_data_uri_is_encoded_once_per_content(monkeypatch, rng):
    from vizlib import encoding

    image = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    calls = []
    real = encoding.encode_png
    monkeypatch.setattr(encoding, "encode_png", lambda img, **kw: calls.append(kw) or real(img, **kw))
    uri = common.png_data_uri(image)
    assert common.png_data_uri(image.copy()) == uri and len(calls) == 1
    assert calls[0] == {"filters": "sub", "rle": True}  # a photo: encode_png's fast photo setting
    decoded = _decode(base64.b64decode(uri.split(",", 1)[1]))
    np.testing.assert_array_equal(decoded, image)  # PNG: lossless
    common.png_data_uri(image[:, ::-1])
    assert len(calls) == 2


def test_score_cam_reports_progress_per_batch_and_can_be_cancelled(tiny_loaded, rng, monkeypatch):
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    from vizlib.cam import methods  # where Score-CAM reads its batch size

    monkeypatch.setattr(methods, "SCORECAM_BATCH", 1)
    seen = []
    maps = cam.compute(tiny_loaded, image, 1, ("gradcam", "scorecam"), progress=lambda f, m: seen.append((f, m)))
    expected = cam.compute(tiny_loaded, image, 1, ("gradcam", "scorecam"))
    for name in expected:
        np.testing.assert_allclose(maps[name], expected[name], atol=1e-6)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert seen[0][1] == "Grad-CAM" and ("Score-CAM" in [m for _, m in seen])
    batches = [m for _, m in seen if m.endswith("channels")]
    assert len(batches) >= 2  # one report per batch of masked images

    def cancel(fraction, message):
        if message.endswith("channels"):
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        cam.compute(tiny_loaded, image, 1, ("scorecam",), progress=cancel)


def test_configure_process_sets_torch_threads_once(monkeypatch):
    from vizlib.serving import process

    before = torch.get_num_threads()
    monkeypatch.setattr(process, "_done", False)
    monkeypatch.setenv("CNN_LENS_TORCH_THREADS", "1")
    monkeypatch.setenv("CNN_LENS_MALLOC_ARENAS", "0")
    monkeypatch.setenv("CNN_LENS_MALLOC_KEEP_MB", "0")
    monkeypatch.setenv("CNN_LENS_HOUSEKEEPING_S", "0")
    try:
        assert process.configure_process() == {"torch_threads": 1}
        assert torch.get_num_threads() == 1
        assert process.configure_process() == {}  # once per process
    finally:
        torch.set_num_threads(before)


_REUSE_PROBE = r"""
import os, resource, sys
import numpy as np
from vizlib.serving import process
process.configure_process()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
blocks = []
for _ in range(3):  # warm up: the heap grows once
    blocks = [np.ones(5 * 2**20 // 8) for _ in range(4)]
    del blocks
before = faults()
for _ in range(10):  # a request's new arrays: 4 blocks of 5 MB, freed when it ends
    blocks = [np.ones(5 * 2**20 // 8) for _ in range(4)]
    del blocks
print(faults() - before)
"""


@pytest.mark.parametrize("keep_mb, reused", [("64", True), ("0", False)])
def test_malloc_keep_reuses_large_blocks_instead_of_new_zeroed_pages(keep_mb, reused):
    """With CNN_LENS_MALLOC_KEEP_MB (the default), a request's large arrays reuse the heap's pages; with glibc's own
    thresholds most 5 MB blocks are mapped afresh: up to 1,280 zero-filled page faults each."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, CNN_LENS_MALLOC_KEEP_MB=keep_mb, CNN_LENS_HOUSEKEEPING_S="0", CNN_LENS_TORCH_THREADS="0")
    out = subprocess.run([sys.executable, "-c", _REUSE_PROBE], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    faults = int(out.stdout.split()[-1])
    blocks_mapped = 10 * 4 * (5 * 2**20 // 4096)
    if reused:
        assert faults < blocks_mapped // 20
    else:
        assert faults > blocks_mapped // 4  # some blocks come from the heap once the threshold has risen
