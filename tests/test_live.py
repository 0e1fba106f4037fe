"""Tests for vizlib.kernels.live: display conversion, the kernel holder shared with the video thread, fps, browser."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from vizlib import kernels as K
from vizlib.kernels import live


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def frame(rng) -> np.ndarray:
    return rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ rendering


def test_display_modes_on_hand_computed_values():
    gray = np.array([[0, 5, 30], [100, 200, 255], [7, 9, 11]], dtype=np.uint8)
    identity = K.PRESETS["identity"]

    def render(display: str, bias: float) -> np.ndarray:
        return live.render_frame(gray, live.LiveSettings(identity, bias=bias, display=display))

    # identity, bias -10: responses -10, -5, 20, 90, 190, 245, -3, -1, 1
    np.testing.assert_array_equal(render("clip", -10), [[0, 0, 20], [90, 190, 245], [0, 0, 1]])
    np.testing.assert_array_equal(render("absolute", -10), [[10, 5, 20], [90, 190, 245], [3, 1, 1]])
    even = np.array([[0, 10, 40], [100, 250, 2], [50, 60, 70]], dtype=np.uint8)
    offset = live.render_frame(even, live.LiveSettings(identity, bias=-20, display="offset"))
    np.testing.assert_array_equal(offset, [[118, 123, 138], [168, 243, 119], [143, 148, 153]])  # 128 + (v - 20) / 2
    assert render("offset", 300).max() == 255 and render("offset", -600).min() == 0
    assert render("clip", 100).max() == 255  # saturates, no wrap-around
    out = render("clip", 0)
    assert out.dtype == np.uint8 and out.shape == gray.shape
    np.testing.assert_array_equal(out, gray)


def test_auto_display_is_absolute_for_kernels_summing_to_zero():
    assert live.resolve_display(K.PRESETS["sobel_x"], "auto") == "absolute"
    assert live.resolve_display(K.PRESETS["laplacian_8"], "auto") == "absolute"
    assert live.resolve_display(K.PRESETS["gaussian_3x3"], "auto") == "clip"
    assert live.resolve_display(K.PRESETS["identity"], "auto") == "clip"
    assert live.resolve_display(np.zeros((3, 3)), "auto") == "clip"
    assert live.resolve_display(K.PRESETS["sobel_x"], "offset") == "offset"
    with pytest.raises(K.FilterInputError, match="Unknown display 'sideways'"):
        live.resolve_display(K.PRESETS["sobel_x"], "sideways")


def test_render_frame_equals_apply_then_conversion(frame):
    settings = live.LiveSettings(K.PRESETS["sobel_y"].copy(), border="replicate", color="per_channel", scale=0.5)
    out = live.render_frame(frame, settings)
    expected = K.apply(frame, K.PRESETS["sobel_y"], border="replicate", color="per_channel", scale=0.5)
    assert out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.clip(np.rint(np.abs(expected)), 0, 255).astype(np.uint8))


def test_video_frame_layout_gray_goes_straight_to_yuv420():
    gray = np.array([[0, 255, 128, 10], [20, 30, 40, 50]], dtype=np.uint8)
    pixels, layout = live.video_frame_layout(gray)
    assert layout == "yuv420p" and pixels.shape == (3, 4) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[:2], [[16, 235, 126, 25], [33, 42, 50, 59]])  # 16 + 219 v / 255
    np.testing.assert_array_equal(pixels[2:], 128)  # U then V (each 1 x 2 here): neutral chroma


def test_video_frame_layout_matches_the_encoders_own_conversion(rng):
    import av  # PyAV comes with streamlit-webrtc, the live stream's requirement
    gray = rng.integers(0, 256, size=(48, 64), dtype=np.uint8)
    pixels, layout = live.video_frame_layout(gray)
    converted = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p").to_ndarray()
    np.testing.assert_array_equal(pixels, converted)
    assert av.VideoFrame.from_ndarray(pixels, format=layout).to_ndarray(format="gray").shape == gray.shape


def test_video_frame_layout_passes_colour_and_odd_sizes_through():
    rgb = np.zeros((4, 6, 3), np.uint8)
    assert live.video_frame_layout(rgb) == (rgb, "rgb24")
    odd = np.zeros((5, 6), np.uint8)
    pixels, layout = live.video_frame_layout(odd)
    assert layout == "gray" and pixels is odd


# ------------------------------------------------------------------------------------------ the holder


def test_kernel_swap_is_visible_on_the_next_frame(frame):
    holder = live.LiveFilter()
    before = holder.process(frame)
    np.testing.assert_array_equal(before, live.render_frame(frame, live.LiveSettings(K.PRESETS["identity"])))
    assert holder.stats().version == 1
    version = holder.update(K.PRESETS["outline"], border="reflect")
    assert version == 2
    after = holder.process(frame)
    expected = live.render_frame(frame, live.LiveSettings(K.PRESETS["outline"], border="reflect"))
    np.testing.assert_array_equal(after, expected)
    assert not np.array_equal(before, after)
    assert holder.stats().version == 2 and holder.stats().frames == 2


def test_update_keeps_a_private_read_only_copy():
    kernel = K.PRESETS["sobel_x"].copy()
    holder = live.LiveFilter()
    holder.update(kernel)
    kernel[:] = 0  # the caller's array changes afterwards ...
    np.testing.assert_array_equal(holder.settings.kernel, K.PRESETS["sobel_x"])  # ... the holder's does not
    with pytest.raises(ValueError, match="read-only"):
        holder.settings.kernel[0, 0] = 5


def test_same_settings_do_not_count_as_a_change():
    holder = live.LiveFilter(K.PRESETS["sobel_x"])
    assert holder.update(K.PRESETS["sobel_x"]) == 1
    assert holder.update(K.PRESETS["sobel_x"], scale=2) == 2
    assert holder.update(K.PRESETS["sobel_x"], scale=2.0) == 2
    assert holder.update(K.PRESETS["sobel_x"], scale=2, display="offset") == 3
    assert holder.update(np.pad(K.PRESETS["sobel_x"], 1), scale=2, display="offset") == 4  # same weights, 5x5


@pytest.mark.parametrize(
    ("kernel", "options", "error", "message"),
    [
        (np.ones((2, 2)), {}, K.EvenKernelError, "odd number of rows"),
        ([[1, np.nan, 0]], {}, K.KernelValueError, "NaN"),
        ([[1, "a", 0]], {}, K.KernelValueError, "only numbers"),
        (np.ones((3, 3)), {"border": "wrap"}, K.FilterInputError, "Unknown border"),
        (np.ones((3, 3)), {"display": "loud"}, K.FilterInputError, "Unknown display"),
        (np.ones((3, 3)), {"scale": float("inf")}, K.FilterInputError, "scale must be a finite number"),
    ],
)
def test_an_unusable_update_raises_and_keeps_the_current_kernel(frame, kernel, options, error, message):
    holder = live.LiveFilter(K.PRESETS["sobel_x"])
    before = holder.settings
    with pytest.raises(error, match=message):
        holder.update(kernel, **options)
    assert holder.settings is before and holder.version == 1
    np.testing.assert_array_equal(holder.process(frame), live.render_frame(frame, before))


def test_window_must_be_positive():
    with pytest.raises(K.FilterInputError, match="window"):
        live.LiveFilter(window=0)


# ------------------------------------------------------------------------------------------ frames per second


def _feed(holder: live.LiveFilter, clock: FakeClock, times: list[float]) -> None:
    tiny = np.zeros((4, 4, 3), np.uint8)
    for t in times:
        clock.now = t
        holder.process(tiny)


def test_fps_from_frame_timestamps():
    clock = FakeClock()
    holder = live.LiveFilter(window=2.0, clock=clock)
    assert holder.stats().fps == 0.0 and holder.stats().frames == 0 and holder.stats().frame_size is None
    _feed(holder, clock, [0.0])
    assert holder.stats().fps == 0.0  # one frame is no rate yet
    _feed(holder, clock, [i / 10 for i in range(1, 11)])  # 10 fps for 1 s: younger than the window
    assert holder.stats().fps == pytest.approx(10.0)
    _feed(holder, clock, [i / 25 for i in range(26, 151)])  # then 25 fps up to t = 6 s
    stats = holder.stats()
    assert stats.fps == pytest.approx(25.0)
    assert stats.frames == 11 + 125 and stats.frame_size == (4, 4)
    assert stats.mean_ms >= 0.0


def test_fps_falls_to_zero_when_the_stream_stops_and_a_burst_does_not_inflate_it():
    clock = FakeClock()
    holder = live.LiveFilter(window=2.0, clock=clock)
    _feed(holder, clock, [i / 20 for i in range(0, 81)])  # 20 fps for 4 s
    assert holder.stats().fps == pytest.approx(20.0)
    clock.now = 5.0
    assert holder.stats().fps == pytest.approx(10.0)  # the last 2 s hold 1 s of frames
    clock.now = 7.0
    assert holder.stats().fps == 0.0
    _feed(holder, clock, [7.5] * 5)  # a stall drained at once: 5 frames in the window
    assert holder.stats().fps == pytest.approx(2.5)


def test_reset_stats_starts_counting_again():
    clock = FakeClock()
    holder = live.LiveFilter(clock=clock)
    _feed(holder, clock, [0.0, 0.1, 0.2])
    holder.update(K.PRESETS["sobel_x"])
    holder.reset_stats()
    stats = holder.stats()
    assert (stats.frames, stats.fps, stats.version, stats.frame_size) == (0, 0.0, 0, None)
    _feed(holder, clock, [10.0, 10.5])
    assert holder.stats().fps == pytest.approx(2.0) and holder.stats().version == 2


# ------------------------------------------------------------------------------------------ threads


def test_concurrent_updates_and_frames_are_all_counted_and_never_mixed(frame):
    """Writers swap kernels while readers filter: every frame matches exactly one whole setting."""
    holder = live.LiveFilter(K.PRESETS["identity"])
    scales = [float(s) for s in range(1, 161)]  # 160 distinct settings: 4 writers x 40 updates
    initial = live.render_frame(frame, live.LiveSettings(K.PRESETS["identity"]))
    laplacian = K.PRESETS["laplacian_8"]
    expected = {s: live.render_frame(frame, live.LiveSettings(laplacian, scale=s, display="clip")) for s in scales}
    outputs: list[np.ndarray] = []
    out_lock = threading.Lock()
    start = threading.Barrier(8)

    def writer(chunk: list[float]) -> None:
        start.wait()
        for s in chunk:
            holder.update(K.PRESETS["laplacian_8"], scale=s, display="clip")

    def reader() -> None:
        start.wait()
        mine = [holder.process(frame) for _ in range(50)]
        with out_lock:
            outputs.extend(mine)

    threads = [threading.Thread(target=writer, args=(scales[i::4],)) for i in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert holder.version == 1 + len(scales)  # every distinct update counted once
    assert holder.stats().frames == 200 == len(outputs)
    references = [initial, *expected.values()]
    for out in outputs:
        assert sum(np.array_equal(out, ref) for ref in references) >= 1
    final = holder.process(frame)
    np.testing.assert_array_equal(final, expected[holder.settings.scale])


# ------------------------------------------------------------------------------------------ can it stream?


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8501/edges",
        "http://127.0.0.1:8501/",
        "http://[::1]:8501/",
        "http://lab.localhost/",
        "https://cnn-lens.example.org/edges",
    ],
)
def test_secure_or_local_pages_can_try_live_video(url):
    assert live.why_no_live_video(url, webrtc_installed=True) is None


def test_reasons_for_no_live_video():
    plain = live.why_no_live_video("http://192.168.1.20:8501/edges", webrtc_installed=True)
    assert plain is not None and "https" in plain and "http://192.168.1.20:8501" in plain
    missing = live.why_no_live_video("http://localhost:8501/", webrtc_installed=False)
    assert missing is not None and "streamlit-webrtc" in missing
    nobrowser = live.why_no_live_video(None, webrtc_installed=True)
    assert nobrowser is not None and "browser" in nobrowser


# ------------------------------------------------------------------------------------------ camera send rate
@pytest.fixture
def aiortc_codecs():
    """aiortc's codec definitions, restored after the test (request_camera_bitrate changes them process-wide)."""
    from aiortc.codecs import CODECS as codecs  # streamlit-webrtc's dependency (requirements.txt): never skipped
    saved = [dict(codec.parameters) for codec in codecs["video"]]
    yield codecs
    for codec, parameters in zip(codecs["video"], saved, strict=True):
        codec.parameters.clear()
        codec.parameters.update(parameters)


def _answer_sdp() -> str:
    """The SDP answer a server-side peer makes to a browser-like offer of one sent and received video track."""
    import asyncio

    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import VideoStreamTrack

    async def negotiate() -> str:
        browser, server = RTCPeerConnection(), RTCPeerConnection()
        try:
            browser.addTransceiver(VideoStreamTrack(), direction="sendrecv")
            await browser.setLocalDescription(await browser.createOffer())
            # the offer's own format parameters removed: the answer's must come from the server
            offer = "\r\n".join(line for line in browser.localDescription.sdp.splitlines()
                                if "x-google" not in line) + "\r\n"
            await server.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await server.setLocalDescription(await server.createAnswer())
            return server.localDescription.sdp
        finally:
            await browser.close()
            await server.close()

    return asyncio.run(negotiate())


def test_the_answer_asks_the_browser_for_a_camera_bitrate_floor(aiortc_codecs):
    live.request_camera_bitrate(700, 1300)
    sdp = _answer_sdp()
    vp8 = re.search(r"a=rtpmap:(\d+) VP8/90000", sdp)
    assert vp8, sdp
    fmtp = re.search(rf"a=fmtp:{vp8.group(1)} (.*)", sdp)
    assert fmtp, f"no format parameters for VP8 in the answer:\n{sdp}"
    params = dict(item.split("=", 1) for item in fmtp.group(1).strip().split(";"))
    assert params["x-google-min-bitrate"] == "700"
    assert params["x-google-start-bitrate"] == "1300"
    live.request_camera_bitrate()  # the defaults replace the earlier figures
    assert f"x-google-min-bitrate={live.CAMERA_MIN_KBPS}" in _answer_sdp()


@pytest.mark.parametrize(
    ("min_kbps", "start_kbps", "message"),
    [(0, 1500, "min_kbps must be a positive"), (1000, -5, "start_kbps must be a positive"),
     (1000.5, 1500, "whole number"), (True, 1500, "whole number"), (2000, 1000, "at least min_kbps")],
)
def test_bad_camera_bitrates_are_refused_and_change_nothing(aiortc_codecs, min_kbps, start_kbps, message):
    before = [dict(codec.parameters) for codec in aiortc_codecs["video"]]
    with pytest.raises(ValueError, match=message):
        live.request_camera_bitrate(min_kbps, start_kbps)
    assert [dict(codec.parameters) for codec in aiortc_codecs["video"]] == before


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (live.CAMERA_MIN_KBPS, live.CAMERA_START_KBPS)),
        ({"CNN_LENS_CAMERA_MIN_KBPS": "600"}, (600, live.CAMERA_START_KBPS)),
        ({"CNN_LENS_CAMERA_MIN_KBPS": "2500"}, (2500, 2500)),  # the start follows a floor above it
        ({"CNN_LENS_CAMERA_MIN_KBPS": " 800 ", "CNN_LENS_CAMERA_START_KBPS": "900"}, (800, 900)),
        ({"CNN_LENS_CAMERA_MIN_KBPS": "0"}, None),  # no floor: the browser paces itself
    ],
)
def test_camera_bitrate_from_the_environment(environ, expected):
    assert live.camera_bitrate_from_env(environ) == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CNN_LENS_CAMERA_MIN_KBPS": "fast"}, "CNN_LENS_CAMERA_MIN_KBPS must be a whole number"),
        ({"CNN_LENS_CAMERA_START_KBPS": "1.5e3"}, "CNN_LENS_CAMERA_START_KBPS must be a whole number"),
        ({"CNN_LENS_CAMERA_MIN_KBPS": "-1"}, "must be 0 \\(no floor\\) or more"),
    ],
)
def test_bad_camera_bitrate_settings_are_named(environ, message):
    with pytest.raises(ValueError, match=message):
        live.camera_bitrate_from_env(environ)
