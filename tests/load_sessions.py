"""Drive many CNN Lens sessions at once from one headless Chromium: upload -> feature maps -> class activation maps.

Every session is its own browser context (own cookies, own websocket, so its own Streamlit session) in one
Chromium process, driven concurrently with Playwright's async API. Each uploads its own image, waits for the
home page's top-5, clicks the sidebar's "Feature maps" link and waits for the montage, then (optionally) the
"Class activation maps" link and waits for the methods figure. What the page showed and how long each step
took are returned per session, for the caller to check and time. Shared by ``tests/test_load.py`` and
``benchmarks/bench_load.py``.

"A rerun has finished" is read from the page itself: the step's own content is there (e.g. the caption with
this session's file name) and no element is stale any more (Streamlit marks the previous run's elements
``data-stale="true"`` while a script runs and removes the leftovers when it ends).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from vizlib import images, models

__all__ = [
    "LOAD_CHROMIUM_ARGS",
    "STEPS",
    "SessionResult",
    "expected_prediction",
    "make_uploads",
    "run_sessions",
]

#: Timed steps, in order: upload -> top-5 shown; page switch -> montage shown / page done; -> CAM figure / done.
STEPS = ("upload", "fm_montage", "fm_done", "cam_figure", "cam_done")

#: Extra Chromium flags: don't throttle pages nobody looks at, resolve no host but localhost.
LOAD_CHROMIUM_ARGS = [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--disable-extensions",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
_VIEWPORT = {"width": 800, "height": 600}
_POLL_MS = 100

#: Ways to turn a gallery photo into a distinct image, in the order they are used.
_VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda a: a,
    "mirrored": lambda a: a[:, ::-1],
    "rotated": lambda a: np.rot90(a),
    "bgr": lambda a: a[..., ::-1],
    "upside-down": lambda a: a[::-1],
    "warm": lambda a: np.clip(a * np.array([1.15, 1.0, 0.8]), 0, 255).astype(np.uint8),
}

# ------------------------------------------------------------------------------------------- page checks

_STALE = "document.querySelector(\"[data-stale='true']\") === null"
_MAIN = "document.querySelector(\"[data-testid='stMain']\")"

_HOME_DONE = f"""(name) => {{
    const main = {_MAIN};
    if (!main || !({_STALE})) return false;
    const captions = [...main.querySelectorAll("[data-testid='stImageCaption']")].map(e => e.textContent.trim());
    return captions.includes(name)
        && main.querySelectorAll(".st-key-top5 .ytick text").length === 5
        && main.querySelector("[data-testid='stMetricValue']") !== null
        && main.querySelector("[data-testid='stPageLink']") !== null;
}}"""

_HEADING = """(title) => [...document.querySelectorAll("[data-testid='stMain'] h1")]
    .some(h => h.textContent.trim() === title)"""

_MONTAGE = f"""() => {{
    const img = {_MAIN}.querySelector("[data-testid='stImage'] img");
    return img !== null && img.complete && img.naturalWidth > 0;
}}"""

_FM_DONE = f"""() => ({_STALE})
    && ["fm_heatmap", "fm_overlay", "fm_histogram", "fm_scores"]
        .every(key => {_MAIN}.querySelector(`.st-key-${{key}} .js-plotly-plot`) !== null)
    && ([...{_MAIN}.querySelectorAll(".st-key-fm_overview [data-testid='stImage'] img")]
        .some(img => img.complete && img.naturalWidth > 0)
        // the app before the overview became one picture (bench_load --compare with an older commit)
        || {_MAIN}.querySelector(".st-key-fm_overview .js-plotly-plot") !== null)
    && (() => {{
        const table = {_MAIN}.querySelector("[data-testid='stDataFrame']") !== null
            && [...{_MAIN}.querySelectorAll("[data-testid='stCaptionContainer']")]
                .some(c => c.textContent.includes("Every layer that runs"));
        // the layer table waits behind its expander, drawn when opened: closed, its label is what is on screen;
        // open, the table and its caption must be there (the app before the expander: the table at once)
        const box = [...{_MAIN}.querySelectorAll("[data-testid='stExpander']")]
            .find(e => (e.querySelector("summary")?.textContent ?? "").includes("Every layer"));
        return box ? !box.querySelector("details").open || table : table;
    }})()"""

_CAM_FIGURE = f"""() => {_MAIN}.querySelector(".st-key-cam_methods_figure .js-plotly-plot") !== null"""

_CAM_DONE = f"""() => ({_STALE})
    && {_MAIN}.querySelector(".st-key-cam_methods_figure .js-plotly-plot") !== null
    && {_MAIN}.querySelector(".st-key-cam_ab .js-plotly-plot") !== null"""

_PROBLEMS = """() => ({
    exceptions: document.querySelectorAll("[data-testid='stException']").length,
    errors: [...document.querySelectorAll("[data-testid='stAlertContentError']")].map(e => e.textContent.trim()),
})"""


@dataclass
class SessionResult:
    """What one session saw and how long its steps took (seconds, keyed by :data:`STEPS`)."""

    name: str
    step: str = "start"
    seconds: dict[str, float] = field(default_factory=dict)
    home_caption: list[str] = field(default_factory=list)
    sidebar_captions: dict[str, str] = field(default_factory=dict)
    top1: str | None = None
    probability: float | None = None
    montage_size: tuple[int, int] | None = None
    cam_first_choice: str | None = None
    cam_caption: str | None = None
    exceptions: int = 0
    error_alerts: list[str] = field(default_factory=list)
    failure: str | None = None


# ------------------------------------------------------------------------------------------- images


def make_uploads(folder: Path, n: int, *, salt: int = 0) -> list[Path]:
    """Write ``n`` distinct images to ``folder`` with distinct names: the gallery photos, then variants.

    The first round is each gallery photo's own JPEG file; later rounds are mirrored, rotated, channel-swapped,
    upside-down and tinted copies (PNG and JPEG alternately). A non-zero ``salt`` changes one corner pixel of
    every image, so that a second set is new to the app's caches.

    Args:
        folder: A directory (created if missing).
        n: How many images.
        salt: 0 for the plain set, another number for a set that differs from it.

    Returns:
        The files, in order.

    Raises:
        ValueError: ``n`` is more than the gallery times the variants.
    """
    gallery = images.gallery()
    if n > len(gallery) * len(_VARIANTS):
        raise ValueError(f"At most {len(gallery) * len(_VARIANTS)} distinct images; asked for {n}.")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        item = gallery[i % len(gallery)]
        variant = list(_VARIANTS)[i // len(gallery)]
        stem = f"s{i:02d}-{item.key}" + ("" if variant == "original" else f"-{variant}")
        if variant == "original" and not salt:
            path = folder / f"{stem}.jpg"
            path.write_bytes(item.path.read_bytes())
        else:
            fmt = "PNG" if i % 2 else "JPEG"
            path = folder / f"{stem}.{'png' if fmt == 'PNG' else 'jpg'}"
            pixels = np.array(_VARIANTS[variant](images.load_gallery_image(item.key)))
            if salt:
                pixels[:8, :8] = (salt * 37 % 256, salt * 91 % 256, salt * 53 % 256)
            Image.fromarray(pixels).save(path, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        paths.append(path)
    return paths


def expected_prediction(loaded: models.LoadedModel, data: bytes) -> tuple[str, float]:
    """The top-1 class and its probability for an uploaded file, as the app computes it for a session."""
    return models.predict(loaded, images.load_image(data, 1024), 1)[0]


# ------------------------------------------------------------------------------------------- one session


async def _until(page, predicate: str, arg: object, timeout_ms: int) -> None:
    """Wait until ``predicate(arg)`` is true in the page, checking every :data:`_POLL_MS` ms.

    Polling on a timer rather than on every animation frame keeps thirty waiting pages from drawing
    sixty frames a second each.
    """
    await page.wait_for_function(predicate, arg=arg, timeout=timeout_ms, polling=_POLL_MS)


async def _check(page, result: SessionResult) -> None:
    problems = await page.evaluate(_PROBLEMS)
    result.exceptions += problems["exceptions"]
    result.error_alerts += problems["errors"]


async def _sidebar_caption(page) -> str:
    return (await page.locator("[data-testid='stSidebar'] [data-testid='stImageCaption']").first.inner_text()).strip()


async def _switch(page, title: str, timeout_ms: int) -> None:
    """Click the sidebar's link to the page ``title`` and wait for its heading."""
    await page.locator(".st-key-app_nav").get_by_role("link", name=title, exact=True).click(
        timeout=timeout_ms
    )
    await _until(page, _HEADING, title, timeout_ms)


async def _timed_switch(
    page, title: str, first: tuple[str, str], done: tuple[str, str], result: SessionResult, timeout_ms: int
) -> None:
    """Switch to the page ``title`` and time it: until its first result shows, then until it is done.

    ``first`` and ``done`` are (page predicate, step name in ``result.seconds``).
    """
    start = time.perf_counter()
    await _switch(page, title, timeout_ms)
    for predicate, step in (first, done):
        await _until(page, predicate, None, timeout_ms)
        result.seconds[step] = time.perf_counter() - start


async def _drive(context, url: str, upload: Path, cam: bool, timeout_ms: int, result: SessionResult) -> None:
    page = await context.new_page()
    await page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    await _until(page, _HEADING, "CNN Lens", timeout_ms)
    sidebar = page.locator("section[data-testid='stSidebar']")
    await sidebar.get_by_text("Upload", exact=True).click(timeout=timeout_ms)
    chooser = sidebar.locator("input[type='file']")
    await chooser.wait_for(state="attached", timeout=timeout_ms)

    result.step = "upload"
    start = time.perf_counter()
    await chooser.set_input_files(str(upload), timeout=timeout_ms)
    await _until(page, _HOME_DONE, upload.name, timeout_ms)
    result.seconds["upload"] = time.perf_counter() - start
    main = page.locator("[data-testid='stMain']")
    result.home_caption = [c.strip() for c in await main.locator("[data-testid='stImageCaption']").all_inner_texts()]
    result.top1 = (await main.locator("[data-testid='stMetricValue']").inner_text()).strip()
    delta = await main.locator("[data-testid='stMetricDelta']").all_inner_texts()
    found = re.search(r"([\d.]+)\s*%", " ".join(delta))
    result.probability = float(found.group(1)) / 100 if found else None
    result.sidebar_captions["home"] = await _sidebar_caption(page)
    await _check(page, result)

    result.step = "feature maps"
    await _timed_switch(page, "Feature maps", (_MONTAGE, "fm_montage"), (_FM_DONE, "fm_done"), result, timeout_ms)
    size = await main.locator("[data-testid='stImage'] img").first.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    result.montage_size = (int(size[0]), int(size[1]))
    result.sidebar_captions["feature maps"] = await _sidebar_caption(page)
    await _check(page, result)

    if cam:
        result.step = "class activation maps"
        await _timed_switch(page, "Class activation maps", (_CAM_FIGURE, "cam_figure"), (_CAM_DONE, "cam_done"),
                            result, timeout_ms)
        radio = main.locator("[data-testid='stRadio']").filter(has_text="Explain the class")
        result.cam_first_choice = (await radio.locator("[data-testid='stRadioOption']").first.inner_text()).strip()
        caption = main.locator("[data-testid='stCaptionContainer']").filter(has_text="Evidence for")
        result.cam_caption = (await caption.first.inner_text()).strip()
        result.sidebar_captions["class activation maps"] = await _sidebar_caption(page)
        await _check(page, result)
    result.step = "done"


async def _session(
    browser, url: str, upload: Path, cam: bool, timeout_ms: int, delay: float, result: SessionResult
) -> None:
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport=_VIEWPORT)
    context.set_default_timeout(timeout_ms)
    try:
        await _drive(context, url, upload, cam, timeout_ms, result)
    except Exception as exc:  # noqa: BLE001 - one session's failure is reported with the others, not raised
        result.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        await context.close()


async def _run(
    url: str, uploads: Sequence[Path], cam: bool, timeout_ms: int, stagger: float, total: float
) -> list[SessionResult]:
    from playwright.async_api import async_playwright

    results = [SessionResult(up.name) for up in uploads]
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + LOAD_CHROMIUM_ARGS
        )
        sessions = (
            _session(browser, url, up, cam, timeout_ms, i * stagger, res)
            for i, (up, res) in enumerate(zip(uploads, results, strict=True))
        )
        try:
            await asyncio.wait_for(asyncio.gather(*sessions), total)
        except asyncio.TimeoutError:
            for res in results:
                if res.failure is None and res.step != "done":
                    res.failure = f"the whole run passed {total:.0f} s during the step: {res.step}"
        finally:
            await browser.close()
    return results


def run_sessions(
    url: str, uploads: Sequence[Path], *, cam: bool = True, step_timeout: float = 240.0, total_timeout: float = 480.0,
    stagger: float = 0.0,
) -> list[SessionResult]:
    """Run one session per upload, all at once, in one headless Chromium; return what each saw.

    Args:
        url: The app's root URL (localhost).
        uploads: One image file per session (distinct names).
        cam: Also visit the Class activation maps page.
        step_timeout: Seconds any one wait may take.
        total_timeout: Seconds for everything.
        stagger: Seconds between session starts (0: all at once).

    Returns:
        One :class:`SessionResult` per upload, in order; a session that failed has ``failure`` set.

        Sessions still running after ``total_timeout`` are stopped and have ``failure`` set too.
    """
    return asyncio.run(_run(url, uploads, cam, int(step_timeout * 1000), stagger, total_timeout))
