"""Shared fixtures: tiny seeded models wrapped like registry models, sample images, the real default model."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tests.app_process import nav_link  # noqa: F401 - the browser tests' way to the app's page list
from vizlib import models

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

#: Absolute path of the app's entrypoint, for ``AppTest.from_file(APP)``.
APP = str(Path(__file__).resolve().parent.parent / "app.py")


def make_loaded(model: nn.Module, size: int, *, in_channels: int = 3, categories: list[str] | None = None,
                mean: float = 0.0, std: float = 1.0 / 255) -> models.LoadedModel:
    """Wrap ``model`` as a LoadedModel whose preprocessing is the identity on 0..255 pixel values.

    With mean 0 and std 1/255 the network sees the raw pixel values (0..255), and with ``size`` equal
    to the image size no resizing happens, so expected values can be computed by hand.
    """
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    n_out = categories or [f"class {i}" for i in range(_n_outputs(model, size, in_channels))]
    spec = models.ModelSpec(
        name="tiny", title="Tiny test net", family="test", input_size=(size, size),
        mean=(mean,) * in_channels, std=(std,) * in_channels, weights_url=None, description="test",
        in_channels=in_channels,
    )
    return models.LoadedModel("tiny", model, torch.device("cpu"), n_out, spec, pretrained=True)


def _n_outputs(model: nn.Module, size: int, in_channels: int) -> int:
    with torch.no_grad():
        return int(model(torch.zeros(1, in_channels, size, size)).shape[1])


def tiny_convnet(seed: int = 0) -> nn.Sequential:
    """conv(3->4, 3x3, pad 1) -> ReLU -> maxpool 2 -> conv(4->6, 3x3) -> ReLU -> GAP -> flatten -> linear(6->5)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    )


@pytest.fixture
def tiny_loaded() -> models.LoadedModel:
    return make_loaded(tiny_convnet(), 8)


@pytest.fixture(scope="session")
def lite0() -> models.LoadedModel:
    """The real offline default model (ImageNet weights), loaded once for the session."""
    return models.load_model(models.DEFAULT_MODEL, device="cpu")


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ------------------------------------------------------------------------------------------ browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """``streamlit run app.py`` on a free localhost port, for the whole test session; yields its URL."""
    from tests.app_process import start_app, stop_app

    proc, url = start_app(tmp_path_factory.mktemp("app") / "server.log")
    yield url
    stop_app(proc)


@pytest.fixture
def browser_factory():
    """Launch Debian's Chromium through Playwright: ``browser_factory(extra_args=[...]) -> Browser``."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); .ci/run does.")
    with sync_playwright() as p:
        browsers = []

        def launch(extra_args: list[str] | None = None):
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + list(extra_args or [])
            )
            browsers.append(browser)
            return browser

        yield launch
        for b in browsers:
            b.close()


# ------------------------------------------------------------------------------------------ AppTest helpers


def plotly_figure(at, key: str) -> dict:
    """The plotly figure a page drew with ``st.plotly_chart(..., key=key)``, as a dict."""
    import json

    (el,) = [el for el in at.get("plotly_chart") if el.proto.id.endswith(f"-{key}")]
    return json.loads(el.proto.spec)


def plotly_array(value: object) -> np.ndarray:
    """A plotly JSON array: a plain list, or a typed array ``{"dtype", "bdata", "shape"}``."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(s) for s in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def picture_pixels(trace: object) -> np.ndarray:
    """The RGB pixels of a plotly image trace (object or dict): its PNG ``source`` decoded, or its ``z``."""
    import base64

    import cv2

    source = trace.get("source") if isinstance(trace, dict) else trace.source
    if not source:
        return plotly_array(trace.get("z") if isinstance(trace, dict) else trace.z)
    assert source.startswith("data:image/png;base64,"), source[:40]
    raw = np.frombuffer(base64.b64decode(source.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(raw, cv2.IMREAD_COLOR)[:, :, ::-1]


def open_page(page: str, *, timeout: float = 180) -> AppTest:
    """The app as a student opens it: the home page first, then ``page`` (a path under pages/); no exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at
