"""vizlib.images: decoding of good, odd and bad files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import encode
from vizlib import images
from vizlib.images import ImageError, load_image


def test_png_round_trip_is_exact(rng):
    arr = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    out = load_image(encode(Image.fromarray(arr), "PNG"))
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, arr)


def test_jpeg_decodes_close_to_source():
    arr = np.full((16, 16, 3), (200, 30, 90), dtype=np.uint8)
    out = load_image(encode(Image.fromarray(arr), "JPEG", quality=95))
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - arr).max() <= 4


def test_exif_orientation_is_applied():
    arr = np.zeros((2, 3, 3), dtype=np.uint8)
    arr[0, 0] = 255  # a white top-left pixel
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = load_image(encode(Image.fromarray(arr), "PNG", exif=exif))
    assert out.shape == (3, 2, 3)
    assert out[0, 1].tolist() == [255, 255, 255]  # top-left moved to top-right
    assert out.sum() == 3 * 255


def test_grayscale_becomes_three_equal_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = load_image(encode(Image.fromarray(gray, "L"), "PNG"))
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[1, 1] = (0, 0, 0, 0)  # fully transparent
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[1, 1].tolist() == [255, 255, 255]


def test_palette_with_transparency():
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 255] + [10, 200, 10] + [0, 0, 0] * 254)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 0
    out = load_image(encode(img, "PNG", transparency=0))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [10, 200, 10]


def test_sixteen_bit_is_scaled_to_eight():
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode.startswith("I;16")
    out = load_image(encode(img, "PNG"))
    assert out[0, :, 0].tolist() == [0, 100, 255]


def test_cmyk_jpeg_converts_to_rgb():
    img = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(encode(img, "JPEG", quality=100))
    assert out.shape == (4, 4, 3)
    r, g, b = out[0, 0].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (3, 3), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = load_image(data)
    assert out.shape == (3, 3, 3)
    assert out[1, 1, 0] > 200 and out[1, 1, 2] < 50


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"hello, this is plain text and no picture", "not an image"),
        (b"%PDF-1.7\n%binary", "PDF files are not supported"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG files are not supported"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC/HEIF files are not supported"),
    ],
)
def test_bad_files_get_a_clear_message(data, fragment):
    with pytest.raises(ImageError, match=fragment):
        load_image(data)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_truncated_jpeg(rng):
    arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(arr), "JPEG")
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(data[: len(data) // 2])


def test_corrupt_png_data(rng):
    arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    data = bytearray(encode(Image.fromarray(arr), "PNG"))
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = b"\xff" * 40  # garbage in the compressed stream
    with pytest.raises(ImageError):
        load_image(bytes(data))


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_too_many_pixels_refused_before_decoding():
    # A 100000 x 100000 header: a decompression bomb would need 30 GB; we refuse from the header.
    with pytest.raises(ImageError, match="megapixels"):
        load_image(_png_header_only(100_000, 100_000))


def test_just_over_the_pixel_limit_is_refused():
    side = int(images.MAX_PIXELS**0.5) + 1
    data = encode(Image.new("1", (side, side)), "PNG")
    assert len(data) < 2_000_000  # small file, huge image
    with pytest.raises(ImageError, match="limit is 40 megapixels"):
        load_image(data)


def test_too_many_bytes(monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    data = encode(Image.new("RGB", (64, 64)), "BMP")
    with pytest.raises(ImageError, match="the limit is"):
        load_image(data)


def test_not_bytes():
    with pytest.raises(ImageError, match="Expected the file's bytes"):
        load_image("cat.jpg")  # type: ignore[arg-type]


def test_formats_outside_the_allow_list_are_refused():
    data = encode(Image.new("RGB", (8, 8)), "TGA")
    with pytest.raises(ImageError, match="not an image we can read"):
        load_image(data)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes_never_crash(data):
    try:
        out = load_image(data)
    except ImageError as exc:
        assert str(exc)
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=16))
def test_fuzz_damaged_png(pos, junk):
    base = bytearray(encode(Image.new("RGB", (20, 20), (9, 99, 199)), "PNG"))
    pos %= len(base)
    base[pos : pos + len(junk)] = junk
    try:
        out = load_image(bytes(base))
    except ImageError as exc:
        assert str(exc)
    else:
        assert out.shape[2] == 3


def test_fit_image_keeps_small_and_shrinks_large():
    small = np.zeros((10, 20, 3), np.uint8)
    assert images.fit_image(small, 100) is small
    big = np.zeros((300, 1200, 3), np.uint8)
    assert images.fit_image(big, 600).shape == (150, 600, 3)


def _phone_photo(height: int = 3000, width: int = 4000) -> np.ndarray:
    """A smooth, photo-like picture (gradients and soft discs), as large as a phone's."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 127 + 100 * np.sin(x / 350) * np.cos(y / 410)
    g = 255 * x / width
    b = 255 * np.exp(-(((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2) / (2 * (height / 6) ** 2)))
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def test_large_jpeg_decoded_at_a_reduced_scale_matches_the_full_decode(monkeypatch):
    from PIL import JpegImagePlugin

    photo = _phone_photo()
    data = encode(Image.fromarray(photo), "JPEG", quality=92)
    asked = []
    draft = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda self, mode, size: asked.append(size) or draft(self, mode, size))
    reduced = load_image(data, 1024)
    assert asked == [(1024, 768)]  # the decoder was asked for a reduced scale
    full = images.fit_image(load_image(data), 1024)
    assert reduced.shape == full.shape == (768, 1024, 3) and reduced.dtype == np.uint8
    difference = np.abs(reduced.astype(int) - full.astype(int))
    assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 6


def test_large_jpeg_keeps_its_exif_orientation_at_a_reduced_scale():
    photo = _phone_photo(2400, 3200)
    photo[:200, :200] = 255  # a white top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = load_image(encode(Image.fromarray(photo), "JPEG", quality=92, exif=exif), 1024)
    assert out.shape == (1024, 768, 3)
    assert out[:40, -40:].min() > 230  # the corner is now top-right


def test_max_side_scales_other_formats_like_fit_image_and_leaves_small_images_alone(rng):
    big = rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(encode(Image.fromarray(big), "PNG"), 128),
                                  images.fit_image(big, 128))
    small = np.full((40, 60, 3), 90, np.uint8)
    data = encode(Image.fromarray(small), "JPEG", quality=95)
    np.testing.assert_array_equal(load_image(data, 1024), load_image(data))
    with pytest.raises(ValueError, match="at least 1"):
        load_image(data, 0)


def test_gallery_has_the_required_photos_with_licences():
    entries = images.gallery()
    assert len(entries) >= 8
    keys = {g.key for g in entries}
    assert {"cat", "goldfish", "coffee", "person", "two_objects"} <= keys
    for g in entries:
        assert g.license in ("CC0 1.0", "Public domain"), g
        assert g.source and g.path.is_file()
        img = images.load_gallery_image(g.key)
        assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 64


def _licence_rows() -> dict[str, list[str]]:
    """LICENSES.md's table, ``{file: [key, licence, author, ...]}``, one entry per row."""
    rows: dict[str, list[str]] = {}
    for line in (images.GALLERY_DIR / "LICENSES.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
            assert cells[0] not in rows, f"two rows for {cells[0]}"
            rows[cells[0]] = cells[1:]
    return rows


def test_licences_md_has_one_row_per_gallery_file_and_every_licence_is_pd_or_cc0():
    entries = images.gallery()
    assert entries and all(g.license in ("CC0 1.0", "Public domain") for g in entries), entries
    rows = _licence_rows()
    files = {p.name for p in images.GALLERY_DIR.iterdir() if p.suffix.lower() not in (".json", ".md")}
    assert set(rows) == files  # a row for every photo in the folder, none for a photo that is gone
    assert {g.filename for g in entries} == files
    for g in entries:
        key, licence, author = rows[g.filename][:3]
        assert (key, licence) == (g.key, g.license) and author.startswith(g.author), g.filename


def test_a_jpeg_over_the_pixel_limit_is_taken_when_it_decodes_at_a_reduced_scale(monkeypatch):
    """A 48-megapixel phone photo (8000 x 6000) decodes at 1/4 scale for the app; the limit counts decoded pixels.

    Here at a smaller scale: the limit set to 1 megapixel and a 1600 x 1200 photo.
    """
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)
    photo = _phone_photo(1200, 1600)
    jpeg = encode(Image.fromarray(photo), "JPEG", quality=92)
    out = load_image(jpeg, 256)
    assert out.shape == (192, 256, 3)
    assert np.abs(out.astype(int) - images.fit_image(photo, 256).astype(int)).mean() < 3
    with pytest.raises(ImageError, match="too large"):  # decoded whole, it is over the limit
        load_image(jpeg)
    with pytest.raises(ImageError, match="too large"):  # a PNG is always decoded whole
        load_image(encode(Image.fromarray(photo), "PNG"), 256)
    with pytest.raises(ImageError, match="too large"):  # under twice max_side: not reduced, decoded whole
        load_image(encode(Image.fromarray(photo), "JPEG"), 1024)


def test_a_phone_mpo_jpeg_is_decoded_at_a_reduced_scale_with_its_orientation(monkeypatch):
    """Phones save JPEGs with more pictures after the photo (MPO: depth, HDR gain map): the same fast path."""
    from PIL import JpegImagePlugin

    photo = _phone_photo(1200, 1600)
    photo[:100, :100] = 255  # a white top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(Image.fromarray(photo), "MPO", save_all=True, append_images=[Image.fromarray(photo[::4, ::4])],
                  exif=exif)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    asked = []
    draft = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda self, mode, size: asked.append(size) or draft(self, mode, size))
    out = load_image(data, 256)
    assert asked == [(256, 192)]
    assert out.shape == (256, 192, 3)
    assert out[:8, -8:].min() > 230  # the corner is now top-right
