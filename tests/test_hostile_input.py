"""Hostile and odd uploads: a corpus of 30+ generated files, each decoded or refused with a clear message.

Every file must either decode to an HxWx3 uint8 image or raise ImageError with a sentence; nothing else
may escape. The same corpus is then uploaded through the app: no session crashes and the previous image
stays in use.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import APP, encode
from vizlib import images
from vizlib.images import ImageError, load_image


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(width: int, height: int, idat: bytes, crc_ok: bool = True) -> bytes:
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if not crc_ok:
        ihdr = ihdr[:-4] + b"\x00\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _corpus() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    jpeg, png, gif = encode(photo, "JPEG"), encode(photo, "PNG"), encode(photo, "GIF")
    webp, tiff, bmp = encode(photo, "WEBP"), encode(photo, "TIFF"), encode(photo, "BMP")
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as zf:
        zf.writestr("cat.jpg", jpeg)
    animated = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    corpus = {
        # refused
        "empty.jpg": b"",
        "one_byte.png": b"\x89",
        "text.txt": b"just some words, no picture here\n" * 10,
        "page.html": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
        "script.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "doc.pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        "photo.heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
        "photo.avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + bytes(64),
        "layers.psd": b"8BPS\x00\x01" + bytes(64),
        "archive.zip": zip_buf.getvalue(),
        "archive.gz": gzip.compress(jpeg),
        "program.exe": b"MZ\x90\x00" + bytes(200),
        "elf.bin": b"\x7fELF\x02\x01\x01" + bytes(100),
        "random.jpg": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "truncated.png": png[: len(png) // 2],
        "truncated.gif": gif[: len(gif) // 2],
        "truncated.webp": webp[: len(webp) // 2],
        "truncated.tiff": tiff[: len(tiff) // 3],
        "truncated.bmp": bmp[:60],
        "jpeg_header_only.jpg": jpeg[:20],
        "bad_crc.png": _png(4, 4, zlib.compress(b"\x00" * 52), crc_ok=False),
        "garbage_idat.png": _png(16, 16, b"\x78\x9c" + b"\xff" * 60),
        "huge_header.png": _png(200_000, 200_000, zlib.compress(b"\x00" * 64)),
        "bomb.png": encode(Image.new("1", (9000, 9000)), "PNG"),  # 81 megapixels in a few kB
        "zero_size_bmp.bmp": b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, 0, 0, 1, 24, 0, 0, 0, 0, 0, 0),
        "tga_not_allowed.tga": encode(photo, "TGA"),
        # odd but valid
        "one_pixel.png": encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"),
        "very_wide.png": encode(Image.new("L", (4000, 1), 200), "PNG"),
        "sixteen_bit.tiff": encode(Image.fromarray((rng.integers(0, 65535, (8, 8))).astype(np.uint16)), "TIFF"),
        "float.tiff": encode(Image.fromarray(rng.normal(size=(8, 8)).astype(np.float32)), "TIFF"),
        "cmyk.tiff": encode(Image.new("CMYK", (8, 8), (10, 20, 30, 40)), "TIFF"),
        "la.png": encode(Image.new("LA", (8, 8), (100, 50)), "PNG"),
        "animated.webp": encode(animated[0], "WEBP", save_all=True, append_images=animated[1:]),
        "icon.ico": encode(Image.new("RGBA", (32, 32), (0, 0, 255, 128)), "ICO"),
        "portable.ppm": encode(photo, "PPM"),
        "bilevel.bmp": encode(Image.new("1", (10, 10), 1), "BMP"),
    }
    return corpus


CORPUS = _corpus()


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_file_decodes_or_is_refused_clearly(name):
    try:
        out = load_image(CORPUS[name])
    except ImageError as exc:
        message = str(exc)
        assert len(message) > 20 and message[0].isupper() and message.rstrip().endswith(".")
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.size > 0


def test_refusals_name_the_format_and_keep_the_decoder_s_words_out():
    """A student reads these: what is wrong with the file, not Pillow's internals."""
    messages = {}
    for name, data in CORPUS.items():
        try:
            load_image(data)
        except ImageError as exc:
            messages[name] = str(exc)
    assert messages["photo.avif"].startswith("AVIF files are not supported")
    assert messages["photo.heic"].startswith("HEIC/HEIF files are not supported")
    assert messages["garbage_idat.png"] == (
        "The PNG file can't be decoded: it is damaged (corrupt). Upload the complete file again."
    )
    for name, message in messages.items():
        for jargon in ("broken data stream", "decoder", "error -", "cannot identify", "image file is"):
            assert jargon not in message, (name, message)


def test_refusals_are_the_ones_expected():
    refused = set()
    for name, data in CORPUS.items():
        try:
            load_image(data)
        except ImageError:
            refused.add(name)
    valid = {"one_pixel.png", "very_wide.png", "sixteen_bit.tiff", "float.tiff", "cmyk.tiff", "la.png",
             "animated.webp", "icon.ico", "portable.ppm", "bilevel.bmp"}
    assert refused == set(CORPUS) - valid


@pytest.mark.slow
def test_uploading_the_corpus_never_crashes_a_session():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.radio(key="image_source").set_value("Upload").run()
    good = encode(Image.fromarray(np.full((40, 40, 3), (10, 120, 200), np.uint8)), "PNG")
    at.sidebar.get("file_uploader")[0].set_value(("good.png", good, "image/png"))
    at.run()
    reference = at.session_state["image_key"]
    for name, data in sorted(CORPUS.items()):
        at.sidebar.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
        at.run()
        assert not at.exception, (name, at.exception)
        try:
            load_image(data)
        except ImageError as exc:
            assert at.sidebar.error and str(exc) in at.sidebar.error[0].value, name
            assert at.session_state["image_key"] == reference, name
        else:
            reference = at.session_state["image_key"]
            assert at.session_state["image"].shape[2] == 3


def test_the_server_refuses_oversized_uploads_too():
    config = (images.GALLERY_DIR.parent.parent / ".streamlit" / "config.toml").read_text()
    from vizlib.user_models import DEFAULT_USER_MODEL_MB

    # the server's cap is the largest own-model file; the image widget says 25 MB and load_image refuses more
    assert f"maxUploadSize = {DEFAULT_USER_MODEL_MB}" in config
    assert "enableXsrfProtection = true" in config
