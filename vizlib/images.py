"""Image input: decode untrusted bytes into an HxWx3 uint8 RGB array, and the bundled gallery.

Everything here works on bytes in memory: nothing a user uploads is ever written to disk.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ALLOWED_FORMATS",
    "GALLERY_DIR",
    "MAX_BYTES",
    "MAX_PIXELS",
    "GalleryImage",
    "ImageError",
    "fit_image",
    "gallery",
    "load_gallery_image",
    "load_image",
]

#: Largest accepted file, in bytes (also the server's upload limit, see .streamlit/config.toml).
MAX_BYTES = 25 * 1024 * 1024
#: Largest accepted image, in pixels (width x height). Checked from the header, before decoding,
#: so a decompression bomb is refused without allocating its pixels. A JPEG that :func:`load_image` decodes at a
#: reduced scale (``max_side``) counts at that scale: a 48-megapixel phone photo is accepted for the app.
MAX_PIXELS = 40_000_000
#: Pillow decoders that may run on user input. Anything else is refused as unsupported.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO")

GALLERY_DIR = Path(__file__).resolve().parent / "gallery"

# Signatures of formats people upload that we recognise but do not decode.
_KNOWN_UNSUPPORTED = {
    b"%PDF": "PDF",
    b"8BPS": "Photoshop (PSD)",
    b"\x89HDF": "HDF5",
}


class ImageError(ValueError):
    """The bytes can't be used as an image; the message says why and what to do."""


def _unsupported_name(data: bytes) -> str | None:
    for magic, name in _KNOWN_UNSUPPORTED.items():
        if data.startswith(magic):
            return name
    head = data[:64]
    if head[4:12] in (b"ftypavif", b"ftypavis"):  # before HEIC: an AVIF lists "mif1" among its brands too
        return "AVIF"
    if head[4:8] == b"ftyp" and any(b in head[8:32] for b in (b"heic", b"heix", b"mif1", b"hevc")):
        return "HEIC/HEIF"
    stripped = data[:512].lstrip().lower()
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in stripped):
        return "SVG"
    return None


def _to_uint8_rgb(img: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to an HxWx3 uint8 RGB array (alpha composited on white)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def load_image(data: bytes, max_side: int | None = None) -> np.ndarray:
    """Decode an uploaded file into an HxWx3 uint8 RGB array.

    EXIF orientation is applied; grayscale, palette, RGBA (composited on white), 16-bit, CMYK
    and animated files (first frame) are converted.

    With ``max_side``, a JPEG at least twice that size is decoded at a reduced scale (1/2, 1/4 or 1/8, the
    smallest that still gives ``max_side`` pixels on the longer side: libjpeg skips most of the work) and the
    result is then scaled to ``max_side`` like :func:`fit_image`: a 12-megapixel phone photo decodes several
    times faster (``benchmarks/bench_upload.py``) into nearly the same picture. Other formats are decoded whole
    and scaled.

    Args:
        data: The file's bytes.
        max_side: Longest side of the result (``None``: the full size).

    Returns:
        The image as a C-contiguous HxWx3 uint8 array.

    Raises:
        ImageError: The file is empty, too large, not an image, of an unsupported format,
            truncated or corrupt, or has more than :data:`MAX_PIXELS` pixels to decode.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"Expected the file's bytes, got {type(data).__name__}.")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1 pixel, got {max_side}.")
    data = bytes(data)
    if not data:
        raise ImageError("The file is empty (0 bytes). Choose a photo file such as a JPEG or PNG.")
    if len(data) > MAX_BYTES:
        raise ImageError(
            f"The file is {len(data) / 2**20:.1f} MB; the limit is {MAX_BYTES / 2**20:.0f} MB. "
            "Resize or compress the photo and try again."
        )
    unsupported = _unsupported_name(data)
    if unsupported:
        raise ImageError(
            f"{unsupported} files are not supported. Save the image as JPEG or PNG and upload it again."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(
            "This file is not an image we can read. Upload a photo as JPEG, PNG, GIF, BMP, TIFF or WebP."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_too_many_pixels_message()) from None
    except (OSError, SyntaxError, ValueError):  # the decoder's own words ("could not create decoder object") mean
        # nothing to a student
        raise ImageError("The file is damaged (corrupt) and can't be opened as an image. Try another file.") from None

    with img:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ImageError("The image has no pixels (its width or height is 0). Try another file.")
        # JPEG, and MPO (a phone's JPEG with more pictures after the photo: depth, HDR gain map) can be decoded
        # at a reduced scale; the pixel limit then applies to the pixels decoded (a 48-megapixel phone photo
        # decodes at 1/4 scale), else to the header's size, before anything is decoded
        reduce = max_side is not None and img.format in ("JPEG", "MPO") and max(width, height) >= 2 * max_side
        if not reduce and width * height > MAX_PIXELS:
            raise ImageError(_too_many_pixels_message(width, height))
        try:
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            if reduce:
                scale = max_side / max(width, height)
                img.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
                if img.size[0] * img.size[1] > MAX_PIXELS:
                    raise ImageError(_too_many_pixels_message(width, height))
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
                oriented = ImageOps.exif_transpose(img)
                result = _to_uint8_rgb(oriented)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(_too_many_pixels_message(width, height)) from None
        except (OSError, SyntaxError, ValueError, IndexError, EOFError) as exc:
            reason = "it is cut off (truncated)" if "truncat" in str(exc).lower() else "it is damaged (corrupt)"
            raise ImageError(
                f"The {img.format or 'image'} file can't be decoded: {reason}. Upload the complete file again."
            ) from None
    if result.ndim != 3 or result.shape[2] != 3 or result.shape[0] == 0 or result.shape[1] == 0:
        raise ImageError("The image could not be converted to RGB. Try saving it as PNG or JPEG.")
    return result if max_side is None else fit_image(result, max_side)


def _too_many_pixels_message(width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} x {height} = {width * height / 1e6:.0f} megapixels)" if width and height else ""
    return (
        f"The image is too large{size}; the limit is {MAX_PIXELS / 1e6:.0f} megapixels. "
        "Downscale it and try again."
    )


@dataclass(frozen=True)
class GalleryImage:
    """A bundled sample photo with its provenance."""

    key: str
    title: str
    filename: str
    source: str
    license: str
    author: str
    classes: tuple[str, ...]

    @property
    def path(self) -> Path:
        return GALLERY_DIR / self.filename


@lru_cache(maxsize=1)
def gallery() -> tuple[GalleryImage, ...]:
    """The bundled gallery, in display order, read from ``gallery/gallery.json``."""
    manifest = json.loads((GALLERY_DIR / "gallery.json").read_text(encoding="utf-8"))
    return tuple(
        GalleryImage(
            key=item["key"],
            title=item["title"],
            filename=item["filename"],
            source=item["source"],
            license=item["license"],
            author=item.get("author", ""),
            classes=tuple(item.get("classes", ())),
        )
        for item in manifest["images"]
    )


@lru_cache(maxsize=16)
def _gallery_bytes(key: str) -> bytes:
    for item in gallery():
        if item.key == key:
            return item.path.read_bytes()
    raise KeyError(f"No gallery image named {key!r}; choose one of {[g.key for g in gallery()]}.")


def load_gallery_image(key: str) -> np.ndarray:
    """Decode a bundled gallery photo (a fresh, writable copy each call)."""
    return load_image(_gallery_bytes(key))


def fit_image(image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Downscale so the longer side is at most ``max_side`` pixels (area interpolation); smaller images pass.

    The app keeps at most this much of an upload per session: enough for every view, small in memory.
    """
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX)))
