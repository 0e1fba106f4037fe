"""Live filtering of a video stream: a thread-safe holder of the current kernel that also counts frames.

The web page and the video thread share one :class:`LiveFilter`: the page calls :meth:`LiveFilter.update`
whenever the kernel or an option changes, the video thread calls :meth:`LiveFilter.process` for every
frame. ``process`` reads the settings once at its start, so a new kernel takes effect on the very next
frame and a frame is never filtered with half an update. Frames per second are computed from the times
at which frames were processed, over a sliding window.

A filter response is a float image (negative and above 255 allowed); a video frame is uint8. How one
becomes the other is the ``display`` option (see :data:`DISPLAYS`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import cv2
import numpy as np

from vizlib import kernels

__all__ = [
    "DISPLAYS",
    "LiveFilter",
    "LiveSettings",
    "LiveStats",
    "CAMERA_MIN_KBPS",
    "CAMERA_START_KBPS",
    "camera_bitrate_from_env",
    "render_frame",
    "request_camera_bitrate",
    "resolve_display",
    "video_frame_layout",
    "why_no_live_video",
]

#: How a response becomes a uint8 frame: ``"clip"`` to 0..255; ``"absolute"`` |response| clipped
#: (edges of both polarities bright); ``"offset"`` 128 + response / 2 clipped (zero is mid-gray);
#: ``"auto"`` is ``"absolute"`` for kernels whose weights sum to zero (derivatives, edge detectors) and
#: ``"clip"`` otherwise (blurs, sharpening, identity).
DISPLAYS: tuple[str, ...] = ("auto", "clip", "absolute", "offset")

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
#: Lowest and first send rate (kbit/s) the server asks a browser to use for its camera; see request_camera_bitrate.
CAMERA_MIN_KBPS = 1000
CAMERA_START_KBPS = 1500
_BITRATE_LOCK = threading.Lock()
#: Full-range gray 0..255 -> limited-range luma 16..235 (BT.601), as libswscale maps gray to YUV.
_GRAY_TO_LUMA = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class LiveSettings:
    """Everything that decides how one frame is filtered (see :func:`vizlib.kernels.apply`).

    ``kernel`` is a read-only float32 copy, so a settings object can be handed between threads.
    """

    kernel: np.ndarray
    mode: str = "correlate"
    border: str = "zero"
    color: str = "gray"
    scale: float = 1.0
    bias: float = 0.0
    display: str = "auto"


@dataclass(frozen=True)
class LiveStats:
    """What the video thread has done so far.

    Attributes:
        frames: Frames processed since the filter was made or :meth:`LiveFilter.reset_stats`.
        fps: Frames per second over the recent window; 0.0 until two frames fall in it.
        mean_ms: Mean time :meth:`LiveFilter.process` spent per frame in the window (ms).
        version: Settings version used for the last frame (0 before any frame).
        frame_size: (width, height) of the last frame, or None before any frame.
    """

    frames: int
    fps: float
    mean_ms: float
    version: int
    frame_size: tuple[int, int] | None


def resolve_display(kernel: np.ndarray, display: str) -> str:
    """The concrete display for ``"auto"``: ``"absolute"`` when the weights sum to zero, else ``"clip"``.

    Args:
        kernel: The kernel (2-D).
        display: One of :data:`DISPLAYS`.

    Returns:
        ``"clip"``, ``"absolute"`` or ``"offset"``.

    Raises:
        FilterInputError: ``display`` is unknown.
    """
    if display not in DISPLAYS:
        raise kernels.FilterInputError(f"Unknown display {display!r}; choose one of {', '.join(DISPLAYS)}.")
    if display != "auto":
        return display
    k = np.asarray(kernel, dtype=np.float64)
    total = float(np.abs(k).sum())
    return "absolute" if total > 0 and abs(float(k.sum())) <= 1e-6 * total else "clip"


def _to_uint8(result: np.ndarray, display: str) -> np.ndarray:
    if display == "absolute":
        return cv2.convertScaleAbs(result)  # saturate(|x|), rounded
    if display == "offset":
        return cv2.convertScaleAbs(np.clip(result * 0.5 + 128.0, 0.0, 255.0))
    return cv2.convertScaleAbs(np.maximum(result, 0.0, out=result))


def render_frame(frame: np.ndarray, settings: LiveSettings) -> np.ndarray:
    """Filter one frame and turn the response into a displayable uint8 frame.

    Args:
        frame: ``H x W x 3`` uint8 RGB (or ``H x W`` gray) frame.
        settings: The kernel and options.

    Returns:
        uint8 ``H x W`` (``color="gray"``) or ``H x W x 3`` (``color="per_channel"`` on RGB) frame.

    Raises:
        FilterError: The frame or a setting is unusable (see :func:`vizlib.kernels.apply`).
    """
    result = kernels.apply(
        frame,
        settings.kernel,
        mode=settings.mode,  # type: ignore[arg-type]
        border=settings.border,  # type: ignore[arg-type]
        color=settings.color,  # type: ignore[arg-type]
        scale=settings.scale,
        bias=settings.bias,
    )
    return _to_uint8(result, resolve_display(settings.kernel, settings.display))


def video_frame_layout(frame: np.ndarray) -> tuple[np.ndarray, str]:
    """The array and pixel format to hand a rendered frame to a video encoder with (PyAV's names).

    Video encoders take YUV 4:2:0. An even-sized gray frame is laid out as ``yuv420p`` directly:
    limited-range luma ``16 + 219 * v / 255`` over neutral chroma (128), exactly what the encoder's own
    conversion from gray would give, at half its cost. Other frames go as ``"gray"`` or ``"rgb24"``.

    Args:
        frame: uint8 ``H x W`` or ``H x W x 3`` frame from :func:`render_frame`.

    Returns:
        ``(array, format)``; for ``"yuv420p"`` the array is ``(H * 3 / 2) x W`` (Y, then U, then V).
    """
    if frame.ndim == 3:
        return frame, "rgb24"
    h, w = frame.shape
    if h % 2 or w % 2:
        return frame, "gray"
    out = np.empty((h * 3 // 2, w), dtype=np.uint8)
    cv2.LUT(frame, _GRAY_TO_LUMA, dst=out[:h])
    out[h:] = 128
    return out, "yuv420p"


def _make_settings(
    kernel: np.ndarray, mode: str, border: str, color: str, scale: float, bias: float, display: str
) -> LiveSettings:
    try:
        k = np.array(kernel, dtype=np.float32)  # a private copy: later edits by the caller can't leak in
    except (TypeError, ValueError):
        raise kernels.KernelValueError(
            "The kernel must hold only numbers in a rectangular grid; check for empty or text cells."
        ) from None
    resolve_display(k, display)
    # A trial run on a kernel-sized frame checks the kernel and every option with apply()'s own messages.
    kernels.apply(
        np.zeros((*k.shape, 3) if k.ndim == 2 else (1, 1, 3), np.uint8),
        k,
        mode=mode,  # type: ignore[arg-type]
        border=border,  # type: ignore[arg-type]
        color=color,  # type: ignore[arg-type]
        scale=scale,
        bias=bias,
    )
    k.setflags(write=False)
    return LiveSettings(k, mode, border, color, float(scale), float(bias), display)


class LiveFilter:
    """The current kernel, shared between the page (writer) and the video thread (reader).

    All methods may be called from any thread. Filtering runs outside the lock, so an update never
    waits for a frame and two frames may be filtered at once.

    Args:
        kernel: The starting kernel; identity when omitted.
        window: Length in seconds of the window that frames per second are measured over.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        kernel: np.ndarray | None = None,
        *,
        window: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not window > 0:
            raise kernels.FilterInputError(f"window must be a positive number of seconds; got {window!r}.")
        self._lock = threading.Lock()
        self._clock = clock
        self._window = float(window)
        self._settings = _make_settings(
            kernels.PRESETS["identity"] if kernel is None else kernel, "correlate", "zero", "gray", 1.0, 0.0, "auto"
        )
        self._version = 1
        self._recent: deque[tuple[float, float]] = deque()  # (timestamp, seconds spent)
        self._started: float | None = None  # time of the first frame since the last reset
        self._frames = 0
        self._last_version = 0
        self._last_size: tuple[int, int] | None = None

    @property
    def settings(self) -> LiveSettings:
        """The settings the next frame will be filtered with."""
        with self._lock:
            return self._settings

    @property
    def version(self) -> int:
        """Counts updates that changed something; starts at 1."""
        with self._lock:
            return self._version

    def update(
        self,
        kernel: np.ndarray,
        *,
        mode: str = "correlate",
        border: str = "zero",
        color: str = "gray",
        scale: float = 1.0,
        bias: float = 0.0,
        display: str = "auto",
    ) -> int:
        """Replace the kernel and options; the next frame uses them.

        An update equal to the current settings changes nothing (the version stays). An unusable
        kernel or option raises and leaves the current settings in place.

        Args:
            kernel: Odd-sized 2-D kernel.
            mode: As for :func:`vizlib.kernels.apply`.
            border: As for :func:`vizlib.kernels.apply`.
            color: As for :func:`vizlib.kernels.apply`.
            scale: As for :func:`vizlib.kernels.apply`.
            bias: As for :func:`vizlib.kernels.apply`.
            display: One of :data:`DISPLAYS`.

        Returns:
            The settings version now in force.

        Raises:
            FilterError: The kernel or an option is unusable.
        """
        new = _make_settings(kernel, mode, border, color, scale, bias, display)
        with self._lock:
            if not _same(new, self._settings):
                self._settings = new
                self._version += 1
            return self._version

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Filter one video frame with the current settings and count it.

        Args:
            frame: ``H x W x 3`` uint8 RGB frame (or ``H x W`` gray).

        Returns:
            The displayable uint8 frame (see :func:`render_frame`).

        Raises:
            FilterError: The frame is unusable (e.g. smaller than the kernel).
        """
        with self._lock:
            settings, version = self._settings, self._version
        start = time.perf_counter()
        out = render_frame(frame, settings)
        spent = time.perf_counter() - start
        now = self._clock()
        with self._lock:
            if self._started is None:
                self._started = now
            self._recent.append((now, spent))
            self._prune(now)
            self._frames += 1
            self._last_version = version
            self._last_size = (int(frame.shape[1]), int(frame.shape[0]))
        return out

    def stats(self) -> LiveStats:
        """Frames, frames per second and time per frame so far (see :class:`LiveStats`).

        The rate is the number of frames processed in the last ``window`` seconds divided by the window;
        while the stream is younger than the window, frames after the first divided by the time since it.
        The window ends now, so the rate falls to 0 a window's length after the stream stops.
        """
        with self._lock:
            now = self._clock()
            self._prune(now)
            recent = list(self._recent)
            fps = 0.0
            if self._started is not None and self._started > now - self._window:
                # Younger than the window: frame intervals since the first frame.
                if len(recent) >= 2 and now > self._started:
                    fps = (len(recent) - 1) / (now - self._started)
            else:
                # Frames in the last `window` seconds: a burst after a stall can't inflate the rate.
                fps = len(recent) / self._window
            mean_ms = 1e3 * sum(s for _, s in recent) / len(recent) if recent else 0.0
            return LiveStats(self._frames, fps, mean_ms, self._last_version, self._last_size)

    def reset_stats(self) -> None:
        """Forget the frames counted so far (e.g. when a new stream starts)."""
        with self._lock:
            self._recent.clear()
            self._started = None
            self._frames = 0
            self._last_version = 0
            self._last_size = None

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0][0] <= now - self._window:
            self._recent.popleft()


def _same(a: LiveSettings, b: LiveSettings) -> bool:
    options = ("mode", "border", "color", "scale", "bias", "display")
    return (
        a.kernel.shape == b.kernel.shape
        and bool(np.array_equal(a.kernel, b.kernel))
        and all(getattr(a, name) == getattr(b, name) for name in options)
    )


def why_no_live_video(url: str | None, *, webrtc_installed: bool) -> str | None:
    """Why this server can't show live camera video to this browser, or None when it can try.

    Browsers give pages camera access only in a secure context: https, or http from the same
    machine (localhost, 127.0.0.1, ::1, ``*.localhost``).

    Args:
        url: The page's address as the browser sees it; None when there is no browser (e.g. a script test).
        webrtc_installed: Whether the streaming package is importable on the server.

    Returns:
        A sentence a person can act on, or None.
    """
    if not webrtc_installed:
        return (
            "Live video needs the streamlit-webrtc package, which isn't installed on this server "
            "(pip install streamlit-webrtc)."
        )
    if not url:
        return "The page's address is unknown (it isn't open in a web browser), so there is no camera to stream."
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" or host in _LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127."):
        return None
    return (
        f"Browsers only let pages served over https, or from this same computer, use the camera; this page "
        f"is at {parts.scheme}://{parts.netloc}. Open it through https (or on the server as localhost)."
    )


def request_camera_bitrate(min_kbps: int = CAMERA_MIN_KBPS, start_kbps: int = CAMERA_START_KBPS) -> None:
    """Ask every browser that streams its camera to this server to send at least ``min_kbps`` kbit/s.

    Why: a browser paces its camera by the bandwidth the receiver reports. The WebRTC server (aiortc) estimates
    that from packet arrival times taken in Python, and on a busy CPU their jitter reads as congestion: Chrome
    was held near 200 kbit/s, which at 640x480 it meets by sending 10 to 15 frames a second (measured with
    ``benchmarks/bench_live_edges.py``; with a 1,000 kbit/s floor it sends 30). The floor and the start rate go
    into the server's answer as the video codecs' ``x-google-min-bitrate`` / ``x-google-start-bitrate`` format
    parameters, which Chrome and Edge honour and other browsers ignore.

    aiortc copies its codec definitions into every answer, so this sets them process-wide, for every session;
    calling it again with the same figures changes nothing.

    Args:
        min_kbps: Floor of the browser's send rate, kbit/s (a positive whole number).
        start_kbps: Rate the browser starts at, kbit/s; at least ``min_kbps``.

    Raises:
        ValueError: For a floor or start rate that isn't a positive whole number, or a start below the floor.
    """
    for name, value in (("min_kbps", min_kbps), ("start_kbps", start_kbps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive whole number of kbit/s, got {value!r}")
    if start_kbps < min_kbps:
        raise ValueError(f"start_kbps ({start_kbps}) must be at least min_kbps ({min_kbps})")
    from aiortc.codecs import CODECS  # the streaming stack is optional; only a live page calls this

    wanted = {"x-google-min-bitrate": int(min_kbps), "x-google-start-bitrate": int(start_kbps)}
    with _BITRATE_LOCK:
        for codec in CODECS["video"]:
            if codec.mimeType.lower() in ("video/vp8", "video/h264") and any(
                codec.parameters.get(key) != value for key, value in wanted.items()
            ):
                codec.parameters.update(wanted)


def camera_bitrate_from_env(environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """The camera floor and start rate (kbit/s) a deployment asks for, for :func:`request_camera_bitrate`.

    ``CNN_LENS_CAMERA_MIN_KBPS`` sets the floor (default :data:`CAMERA_MIN_KBPS`; ``0`` asks for nothing and
    leaves the pacing to the browser, e.g. on a network too weak for 1 Mbit/s per student);
    ``CNN_LENS_CAMERA_START_KBPS`` the start (default the larger of :data:`CAMERA_START_KBPS` and the floor).

    Returns:
        ``(min_kbps, start_kbps)``, or None when the floor is 0.

    Raises:
        ValueError: A variable that isn't a whole number of kbit/s, naming it.
    """
    values = {}
    for name, default in (("CNN_LENS_CAMERA_MIN_KBPS", CAMERA_MIN_KBPS), ("CNN_LENS_CAMERA_START_KBPS", None)):
        text = environ.get(name, "").strip()
        try:
            values[name] = int(text) if text else default
        except ValueError:
            raise ValueError(f"{name} must be a whole number of kbit/s, got {text!r}") from None
    floor = values["CNN_LENS_CAMERA_MIN_KBPS"]
    if floor < 0:
        raise ValueError(f"CNN_LENS_CAMERA_MIN_KBPS must be 0 (no floor) or more, got {floor}")
    if floor == 0:
        return None
    start = values["CNN_LENS_CAMERA_START_KBPS"]
    return floor, max(CAMERA_START_KBPS, floor) if start is None else start
