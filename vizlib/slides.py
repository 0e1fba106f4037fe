"""Slides for a lecture: a lesson's pictures for one image and model, as a folder of PNGs and GIFs.

``python -m vizlib.slides --model efficientnet_lite0 --image cat --out slides/`` writes one file per picture,
with a progress bar on stderr. The pictures are drawn from vizlib's own arrays with Pillow (the montage,
filter grid, class-activation overlay, receptive-field box, convolution frames), so no browser or plotly
image exporter is needed and the files are pixel-exact.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vizlib import activations, cam, filters, images, models, overlay, receptive_field
from vizlib import conv_arithmetic as C
from vizlib import feature_maps as fm
from vizlib.conv_arithmetic import export

__all__ = ["LESSONS", "ProgressBar", "SlidesError", "lesson_steps", "main", "write_slides"]

#: Lessons, in classroom order, and what each writes.
LESSONS: dict[str, str] = {
    "predictions": "the picture the network sees and its top-5 classes",
    "filters": "the first convolution's filters",
    "feature-maps": "every channel of three layers (early, middle, late)",
    "receptive-fields": "the receptive field of the centre unit of three layers, on the picture",
    "cam": "Grad-CAM for the top class, over the picture",
    "convolution": "a 3x3 convolution with padding 1 and stride 2, step by step (GIF)",
}
_SIDE = 448  # pictures are enlarged to about this side so they stay sharp on a projector


class SlidesError(ValueError):
    """Bad arguments for the slides; the message says what to use instead."""


class ProgressBar:
    """A one-line text progress bar (``[#####.....] 3/6 feature-maps``) redrawn in place on a stream."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        """Start at 0 of ``total`` steps, drawing on ``stream`` (default stderr)."""
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream if stream is not None else sys.stderr

    def step(self, label: str) -> None:
        """Count one step done and redraw the bar with ``label``."""
        self.done = min(self.done + 1, self.total)
        filled = round(self.width * self.done / self.total)
        end = "\n" if self.done == self.total else ""
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} {label:<20}{end}")
        self.stream.flush()


def _enlarged(picture: np.ndarray, side: int = _SIDE) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor, so every pixel stays a visible square."""
    factor = max(1, side // max(picture.shape[:2]))
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def _save_png(picture: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.ascontiguousarray(picture)).save(path, optimize=True)
    return path


def _top5(loaded: models.LoadedModel, image: np.ndarray, out: Path) -> list[Path]:
    seen = loaded.resize(image)
    top = models.classify(loaded, image, k=5).top
    width, row = 460, 40
    chart = Image.new("RGB", (width, row * len(top) + 20), "white")
    draw = ImageDraw.Draw(chart)
    for i, (name, p) in enumerate(top):
        y = 10 + i * row
        draw.rectangle([10, y + 20, 10 + int((width - 20) * p), y + 34], fill=(31, 119, 180))
        draw.text((10, y + 2), f"{name[:40]}  {p:.1%}", fill="black", font=ImageFont.load_default(size=16))
    return [_save_png(_enlarged(seen), out / "picture.png"), _save_png(np.asarray(chart), out / "top5.png")]


def _filters(loaded: models.LoadedModel, out: Path) -> list[Path]:
    layer = filters.first_conv(loaded)
    grid = filters.filter_grid(filters.conv_weight(loaded.model, layer), layer=layer, columns=8)
    return [_save_png(_enlarged(grid.image, 640), out / f"filters_{layer}.png")]


def _three_layers(loaded: models.LoadedModel) -> list[str]:
    convs = activations.conv_layers(loaded)
    picks = [convs[0], convs[len(convs) // 2], convs[-1]]
    return list(dict.fromkeys(picks))


def _feature_maps(loaded: models.LoadedModel, image: np.ndarray, out: Path) -> list[Path]:
    layers = _three_layers(loaded)
    values = activations.extract(loaded, image, layers)
    written = []
    for number, layer in enumerate(layers, start=1):
        picture = fm.montage(values[layer]).image
        written.append(_save_png(_enlarged(picture, 1024), out / f"feature_maps_{number}_{layer}.png"))
    return written


def _receptive_fields(loaded: models.LoadedModel, image: np.ndarray, out: Path) -> list[Path]:
    seen = loaded.resize(image)
    fields = receptive_field.receptive_fields(loaded, loaded.input_size)
    written = []
    for number, layer in enumerate(_three_layers(loaded), start=1):
        rf = fields[layer]
        (oh, ow) = rf.output_hw
        (top, bottom), (left, right) = rf.box(oh // 2, ow // 2)
        factor = max(1, _SIDE // max(seen.shape[:2]))
        canvas = Image.fromarray(_enlarged(seen))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle([left * factor, top * factor, (right + 1) * factor - 1, (bottom + 1) * factor - 1],
                       outline=(255, 200, 0), width=3)
        draw.text((8, 8), f"{layer}: {rf.size_hw[0]}x{rf.size_hw[1]} px", fill=(255, 255, 255),
                  font=ImageFont.load_default(size=18), stroke_width=2, stroke_fill=(0, 0, 0))
        written.append(_save_png(np.asarray(canvas), out / f"receptive_field_{number}_{layer}.png"))
    return written


def _cam(loaded: models.LoadedModel, image: np.ndarray, out: Path) -> list[Path]:
    seen = loaded.resize(image)
    target = models.classify(loaded, seen, k=1).indices[0]
    maps = cam.compute(loaded, seen, target, ("gradcam",))
    blended = overlay.overlay(seen, maps["gradcam"], "jet", 0.5)
    return [_save_png(_enlarged(blended), out / "gradcam.png")]


def _convolution(out: Path) -> list[Path]:
    kernel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float32)  # a Sobel kernel
    frames = C.conv2d_frames(C.lecture_pattern(5), kernel, s=2, p=1)
    path = out / "convolution_k3_p1_s2.gif"
    path.write_bytes(export.frames_to_gif(frames, fps=2.0))
    return [path]


def lesson_steps(
    loaded: models.LoadedModel, image: np.ndarray, out: Path
) -> dict[str, Callable[[], list[Path]]]:
    """Each lesson's work, not yet run: ``{lesson: () -> files written}``."""
    return {
        "predictions": lambda: _top5(loaded, image, out),
        "filters": lambda: _filters(loaded, out),
        "feature-maps": lambda: _feature_maps(loaded, image, out),
        "receptive-fields": lambda: _receptive_fields(loaded, image, out),
        "cam": lambda: _cam(loaded, image, out),
        "convolution": lambda: _convolution(out),
    }


def write_slides(
    loaded: models.LoadedModel,
    image: np.ndarray,
    out: str | Path,
    lessons: Sequence[str] | None = None,
    *,
    progress: ProgressBar | None = None,
) -> list[Path]:
    """Render lessons' pictures for ``image`` on ``loaded`` into the folder ``out`` (created if needed).

    Args:
        loaded: A model from :func:`vizlib.models.load_model` (or :func:`vizlib.models.load_user_model`).
        image: ``H x W x 3`` uint8 RGB.
        out: The folder to write into.
        lessons: Names from :data:`LESSONS` (default: all, in classroom order).
        progress: A bar stepped once per lesson (default: none).

    Returns:
        The files written, in order.

    Raises:
        SlidesError: An unknown lesson name.
    """
    chosen = list(LESSONS) if lessons is None else list(lessons)
    unknown = [name for name in chosen if name not in LESSONS]
    if unknown:
        raise SlidesError(f"Unknown lesson {', '.join(unknown)}; choose from: {', '.join(LESSONS)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = lesson_steps(loaded, image, out)
    written: list[Path] = []
    for name in chosen:
        written += steps[name]()
        if progress is not None:
            progress.step(name)
    return written


def _image(value: str) -> np.ndarray:
    keys = [g.key for g in images.gallery()]
    if value in keys:
        return images.load_gallery_image(value)
    path = Path(value)
    if not path.is_file():
        raise SlidesError(f"{value} is neither a gallery photo ({', '.join(keys)}) nor an image file.")
    return images.load_image(path.read_bytes())


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0, or 2 with a one-line message on stderr)."""
    parser = argparse.ArgumentParser(prog="python -m vizlib.slides", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=models.DEFAULT_MODEL, help="a registry model (default: %(default)s)")
    parser.add_argument("--image", default="cat", help="a gallery photo's key or an image file (default: cat)")
    parser.add_argument("--out", required=True, type=Path, help="the folder to write the PNGs and GIFs into")
    parser.add_argument("--lessons", nargs="+", choices=list(LESSONS), help="default: all, in classroom order")
    parser.add_argument("--untrained", action="store_true", help="the architecture's seeded random weights")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the GPU when there is one)")
    args = parser.parse_args(argv)
    try:
        image = _image(args.image)
        loaded = models.load_model(args.model, pretrained=not args.untrained, device=args.device)
        lessons = args.lessons or list(LESSONS)
        written = write_slides(loaded, image, args.out, lessons, progress=ProgressBar(len(lessons)))
    except (SlidesError, models.ModelError, images.ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
