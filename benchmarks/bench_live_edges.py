"""Benchmark the live edge-detector stream end to end: camera -> browser -> server filter -> browser, on the CPU.

Starts the app (``streamlit run app.py``, device forced to CPU), opens the Edge detectors page in headless
Chromium whose fake camera plays a generated 640x480 clip at 30 frames per second, presses START, lets
the stream settle, then measures for ``--seconds``:

* server: frames per second the video callback filtered, read from the page's own readout (measured by
  ``vizlib.kernels.live.LiveFilter`` from frame times), and the filtering time per frame;
* browser: frames the output <video> decoded (``getVideoPlaybackQuality``) and presented for display
  (``requestVideoFrameCallback``); every frame the server sends is a newly filtered one.

Target (issue 7): the live stream holds at least 20 frames per second at 640x480 on the CPU.

By default Chrome is asked to keep the camera's resolution under CPU load (and lower its frame rate instead),
so the figures are for 640x480 frames; ``--let-chrome-scale`` keeps Chrome's default, which scales down.

``--camera-min-kbps`` sets the floor the server asks the browser's camera sender for (the app's
``CNN_LENS_CAMERA_MIN_KBPS``; 0: none, the browser paces itself). Several values are measured one after the
other in this process, each with its own server, and compared side by side.

Run: ``.venv/bin/python benchmarks/bench_live_edges.py [--seconds 10] [--warmup 6] [--let-chrome-scale]
[--camera-min-kbps 0 500 1000]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._util import machine  # noqa: E402
from tests.app_process import cpu_seconds, nav_link, start_app, stop_app  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (the browser tests' Chromium and flags)
from tests.fake_camera import fake_camera_args, write_y4m  # noqa: E402
from vizlib import kernels as K  # noqa: E402
from vizlib.kernels import live  # noqa: E402

TARGET_FPS = 20
WIDTH, HEIGHT = 640, 480

#: Counts frames the output video presented for display (requestVideoFrameCallback metadata).
INSTALL_COUNTER = """() => {
  const v = document.querySelector('video');
  window.__bench = {presented: 0, width: 0, height: 0};
  const tick = (now, meta) => {
    const b = window.__bench;
    b.presented = meta.presentedFrames; b.width = meta.width; b.height = meta.height;
    v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
}"""
#: Makes Chrome keep the camera's resolution under CPU load and lower the frame rate instead (the
#: "detail" content hint means degradation preference maintain-resolution); its default scales down.
KEEP_RESOLUTION = """(() => {
  const original = navigator.mediaDevices && navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  if (!original) return;
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    stream.getVideoTracks().forEach((track) => { track.contentHint = 'detail'; });
    return stream;
  };
})();"""
#: Keeps every RTCPeerConnection the page makes, so that its WebRTC statistics can be read.
KEEP_PEERS = """(() => {
  const Original = window.RTCPeerConnection;
  if (!Original) return;
  window.__peers = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__peers.push(this); }
  };
})();"""
#: The camera sender's and the filtered receiver's RTP statistics (W3C webrtc-stats).
READ_RTP = """async () => {
  const out = {};
  for (const pc of window.__peers || []) {
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') out.sent = r;
      if (r.type === 'inbound-rtp' && r.kind === 'video') out.received = r;
    });
  }
  return out;
}"""
READ_COUNTER = """() => { const b = window.__bench; const q = document.querySelector('video').getVideoPlaybackQuality();
  return {presented: b.presented, width: b.width, height: b.height,
          decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames}; }"""


def _metrics(page) -> dict[str, str]:
    labels = page.locator("[data-testid='stMetricLabel']").all_inner_texts()
    values = page.locator("[data-testid='stMetricValue']").all_inner_texts()
    return {label.strip(): value.strip() for label, value in zip(labels, values, strict=False)}


def _number(text: str | None) -> float:
    try:
        return float(text or "nan")
    except ValueError:
        return float("nan")


def _choose_preset(page, preset: str) -> None:
    if preset == "sobel_x":  # the page's default
        return
    page.locator("[data-testid='stSelectbox']").filter(has_text="Preset").click()
    page.get_by_role("option", name=K.PRESET_LABELS[preset], exact=True).click()


def _rtp_figures(before: dict, after: dict, elapsed: float) -> dict[str, float | str]:
    """Frames the camera sent / the filtered stream received per second, and why Chrome held its sender back."""
    sent0, sent1 = before.get("sent", {}), after.get("sent", {})
    got0, got1 = before.get("received", {}), after.get("received", {})
    limits = {k: v - sent0.get("qualityLimitationDurations", {}).get(k, 0.0)
              for k, v in sent1.get("qualityLimitationDurations", {}).items()}
    spent = sum(limits.values()) or 1.0
    return {
        "camera_sent_fps": (sent1.get("framesSent", 0) - sent0.get("framesSent", 0)) / elapsed,
        "camera_sent_size": f"{sent1.get('frameWidth', '?')}x{sent1.get('frameHeight', '?')}",
        "camera_kbps": 8e-3 * (sent1.get("bytesSent", 0) - sent0.get("bytesSent", 0)) / elapsed,
        "camera_target_kbps": 1e-3 * sent1.get("targetBitrate", float("nan")),
        "camera_limited_by": ", ".join(f"{k} {100 * v / spent:.0f}%" for k, v in sorted(limits.items()) if v > 0)
        or "nothing",
        "filtered_received_fps": (got1.get("framesReceived", 0) - got0.get("framesReceived", 0)) / elapsed,
        "filtered_kbps": 8e-3 * (got1.get("bytesReceived", 0) - got0.get("bytesReceived", 0)) / elapsed,
    }


def run(
    seconds: float, warmup: float, preset: str, size: tuple[int, int], keep_resolution: bool, workdir: Path,
    camera_min_kbps: int,
) -> dict[str, float | str]:
    """One measured stream; returns the figures."""
    from playwright.sync_api import sync_playwright

    clip = write_y4m(workdir / "camera.y4m", width=size[0], height=size[1], fps=30, frames=30)
    proc, url = start_app(workdir / "server.log", env={"CNN_LENS_CAMERA_MIN_KBPS": str(camera_min_kbps)})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS + fake_camera_args(clip))
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(KEEP_PEERS)
            if keep_resolution:
                page.add_init_script(KEEP_RESOLUTION)  # runs in every frame, the component's included
            page.goto(url, wait_until="domcontentloaded")
            nav_link(page, "Edge detectors").click(timeout=120_000)
            page.get_by_role("heading", name="Edge detectors").wait_for(timeout=120_000)
            _choose_preset(page, preset)
            page.frame_locator("iframe[title*='webrtc']").get_by_role("button", name="Start").click(timeout=60_000)
            frame = next(f for f in page.frames if "webrtc" in f.url)
            frame.wait_for_function(
                "() => { const v = document.querySelector('video'); return v && v.videoWidth > 0; }", timeout=90_000
            )
            frame.evaluate(INSTALL_COUNTER)
            page.wait_for_timeout(int(warmup * 1000))
            start, t0 = frame.evaluate(READ_COUNTER), time.perf_counter()
            rtp0 = frame.evaluate(READ_RTP)
            cpu0 = cpu_seconds(proc.pid)
            server_fps, server_ms, sizes = [], [], set()
            while time.perf_counter() - t0 < seconds:
                page.wait_for_timeout(1000)
                shown = _metrics(page)
                server_fps.append(_number(shown.get("Frames per second")))
                server_ms.append(_number(shown.get("ms per frame")))
                sizes.add(shown.get("Frame size", "?"))
            end, elapsed = frame.evaluate(READ_COUNTER), time.perf_counter() - t0
            rtp1 = frame.evaluate(READ_RTP)
            cpu1 = cpu_seconds(proc.pid)
            browser.close()
    finally:
        stop_app(proc)
    return {
        "seconds": elapsed,
        "server_fps_median": statistics.median(server_fps),
        "server_fps_min": min(server_fps),
        "server_ms_median": statistics.median(server_ms),
        "server_sizes": ", ".join(sorted(sizes)),
        "browser_presented_fps": (end["presented"] - start["presented"]) / elapsed,
        "browser_decoded_fps": (end["decoded"] - start["decoded"]) / elapsed,
        "browser_dropped": end["dropped"] - start["dropped"],
        "browser_size": f"{end['width']}x{end['height']}",
        "server_cpu": (cpu1[0] - cpu0[0]) / elapsed,
        **_rtp_figures(rtp0, rtp1, elapsed),
        "browser_cpu": (cpu1[1] - cpu0[1]) / elapsed,
    }


def _print_run(r: dict, floor: int, args: argparse.Namespace, size: tuple[int, int]) -> None:
    chrome = "may scale down under load" if args.let_chrome_scale else "keeps the resolution (contentHint detail)"
    print(f"\n# camera: fake, {size[0]}x{size[1]} at 30 fps; kernel {K.PRESET_LABELS[args.preset]}, grayscale; "
          f"server on the CPU; camera floor {floor or 'none'}{' kbit/s' if floor else ''}; {r['seconds']:.1f} s "
          f"measured after {args.warmup:.0f} s warm-up; load average {r['load'][0]:.1f} before, "
          f"{r['load'][1]:.1f} after; Chrome {chrome}\n")
    print(f"| where | what | value | >= {TARGET_FPS} fps |")
    print("|---|---|---:|:---:|")
    rows = [
        ("server", "filtered frames / s (page readout, median of 1 s readings)", r["server_fps_median"], True),
        ("server", "filtered frames / s (lowest 1 s reading)", r["server_fps_min"], False),
        ("server", "filter time per frame, ms (median)", r["server_ms_median"], None),
        ("browser", "frames presented / s (requestVideoFrameCallback)", r["browser_presented_fps"], True),
        ("browser", "frames decoded / s (getVideoPlaybackQuality)", r["browser_decoded_fps"], True),
    ]
    for where, what, value, check in rows:
        verdict = "" if check is None else ("yes" if value >= TARGET_FPS else "no")
        print(f"| {where} | {what} | {value:.1f} | {verdict} |")
    print(f"| server | frame size seen by the filter | {r['server_sizes']} | |")
    print(f"| browser | output video size | {r['browser_size']} | |")
    print(f"| browser | frames dropped by the player | {r['browser_dropped']} | |")
    print(f"| server | CPU used (cores busy: decode, filter, encode, WebRTC) | {r['server_cpu']:.2f} | |")
    print(f"| browser | CPU used by Chromium and Playwright (cores busy) | {r['browser_cpu']:.2f} | |")
    print(f"| browser | camera frames sent / s (outbound-rtp) | {r['camera_sent_fps']:.1f} | |")
    print(f"| browser | camera frames sent: size, kbit/s, target kbit/s | {r['camera_sent_size']}, "
          f"{r['camera_kbps']:.0f}, {r['camera_target_kbps']:.0f} | |")
    print(f"| browser | what held the camera sender back (share of time) | {r['camera_limited_by']} | |")
    print(f"| browser | filtered frames received / s (inbound-rtp), kbit/s | {r['filtered_received_fps']:.1f}, "
          f"{r['filtered_kbps']:.0f} | |")
    if r["server_fps_median"] > 0:
        print(f"| server | CPU ms per filtered frame | {1e3 * r['server_cpu'] / r['server_fps_median']:.1f} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured stream time")
    parser.add_argument("--warmup", type=float, default=6.0, help="stream time before measuring")
    parser.add_argument("--preset", default="sobel_x", choices=list(K.PRESETS), help="kernel used while measuring")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", help="camera frame size, WIDTHxHEIGHT (even)")
    parser.add_argument("--let-chrome-scale", action="store_true",
                        help="let Chrome lower the resolution under CPU load (its default) instead of the frame rate")
    parser.add_argument("--camera-min-kbps", type=int, nargs="+", default=[live.CAMERA_MIN_KBPS],
                        help="camera floor(s) the server asks for, kbit/s (0: none); several are compared")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.lower().split("x"))
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    print(f"# Live edge stream, {datetime.date.today()}: {machine()}")
    results = {}
    for floor in args.camera_min_kbps:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            load_before = os.getloadavg()[0]
            r = run(args.seconds, args.warmup, args.preset, size, not args.let_chrome_scale, Path(tmp), floor)
            r["load"] = (load_before, os.getloadavg()[0])
        results[floor] = r
        _print_run(r, floor, args, size)
    if len(results) > 1:
        first = next(iter(results))
        print(f"\n| camera floor kbit/s | camera sent fps | server filtered fps | browser displayed fps | "
              f"displayed / floor {first or 'none'} |")
        print("|---:|---:|---:|---:|---:|")
        for floor, r in results.items():
            ratio = r["browser_presented_fps"] / max(results[first]["browser_presented_fps"], 1e-9)
            print(f"| {floor or 'none'} | {r['camera_sent_fps']:.1f} | {r['server_fps_median']:.1f} | "
                  f"{r['browser_presented_fps']:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
