"""The live stream in a real headless Chromium with a fake camera: filtered frames arrive, and change with the kernel.

The fake camera plays a generated clip (tests/fake_camera.py). The output <video> is drawn to a canvas to
measure its brightness: Sobel x shows dark frames with bright edges, the identity shows the scene itself.
The expected brightness comes from filtering the same clip with vizlib, so the test sees the server's filter,
not just any video.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.conftest import nav_link
from tests.fake_camera import fake_camera_args, scene, write_y4m
from vizlib import kernels as K
from vizlib.kernels import live

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH, HEIGHT = 320, 240

#: Brightness of the output video and its decoded-frame count, read in the component's frame.
VIDEO_STATS = """() => {
  const v = document.querySelector('video');
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let s = 0;
  for (let i = 0; i < d.length; i += 4) s += d[i];
  return {mean: s / (d.length / 4), width: c.width, height: c.height, time: v.currentTime,
          frames: v.getVideoPlaybackQuality().totalVideoFrames};
}"""


def _expected_mean(preset: str) -> float:
    frames = [scene(WIDTH, HEIGHT, shift=i * 4) for i in range(0, 30, 5)]
    return float(np.mean([live.render_frame(f, live.LiveSettings(K.PRESETS[preset])).mean() for f in frames]))


def _poll(fn, ok, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fn()
        if ok(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s; last seen: {value!r}")


def _fps(page) -> float:
    values = page.locator("[data-testid='stMetricValue']").all_inner_texts()
    try:
        return float(values[0])
    except (IndexError, ValueError):
        return 0.0


def test_live_stream_is_filtered_and_follows_the_kernel(app_server, browser_factory, tmp_path):
    clip = write_y4m(tmp_path / "camera.y4m", width=WIDTH, height=HEIGHT, fps=30, frames=30)
    sobel, identity = _expected_mean("sobel_x"), _expected_mean("identity")
    assert identity - sobel > 80  # the two kernels give clearly different pictures of this clip

    browser = browser_factory(extra_args=fake_camera_args(clip))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_server, wait_until="domcontentloaded")
    nav_link(page, "Edge detectors").click(timeout=120_000)
    page.get_by_role("heading", name="Edge detectors").wait_for(timeout=120_000)
    component = page.frame_locator("iframe[title*='webrtc']")
    component.get_by_role("button", name="Start").click(timeout=60_000)
    frame = _poll(
        lambda: next((f for f in page.frames if "webrtc" in f.url), None), bool, 30, "the component's frame"
    )

    def stats():
        return frame.evaluate(VIDEO_STATS)

    first = _poll(stats, lambda s: s is not None and s["frames"] >= 5, 90, "filtered frames arriving")
    _poll(stats, lambda s: s["frames"] >= first["frames"] + 10 and s["time"] > first["time"], 60,
          "more frames, with the video's clock advancing")
    _poll(lambda: _fps(page), lambda fps: fps > 0, 30, "the page's frames-per-second readout above 0")
    before = _poll(stats, lambda s: abs(s["mean"] - sobel) < 15, 30, f"Sobel x frames (brightness ~{sobel:.0f})")

    page.locator("[data-testid='stSelectbox']").filter(has_text="Preset").click()
    page.get_by_role("option", name=K.PRESET_LABELS["identity"], exact=True).click()
    after = _poll(stats, lambda s: abs(s["mean"] - identity) < 20, 60,
                  f"identity frames (brightness ~{identity:.0f}) after switching the preset")
    assert after["mean"] - before["mean"] > 60
    # The same stream went on: no restart, the decoded-frame count kept growing.
    assert after["frames"] > before["frames"]
    assert component.get_by_role("button", name="Stop").is_visible()
    page.screenshot(path=str(tmp_path / "edges-live.png"))
