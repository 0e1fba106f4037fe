"""The first-GPU check: every registry model on CUDA gives the CPU's results, and how much faster it is.

For every registry model (pretrained weights where they are on disk or bundled, else the seeded untrained
ones, which are identical on both devices) it runs on the CPU and on CUDA, side by side in this one process:
  classify         the top-5 indices must agree, probabilities within 1e-3;
  activations      every convolution's output (one fx extraction), max |difference| / max |CPU value| <= 1e-3;
  CAM methods      every method of vizlib.cam (those the head allows), max |difference| of the [0, 1] maps;
  effective RF     vizlib.receptive_field.effective_receptive_field of the default CAM layer's centre unit;
  live filter      the Sobel kernel of the Edge detectors page: vizlib.kernels.apply (OpenCV, the CPU path the
                   page uses) against the same kernel as a CUDA conv layer;
and one real CUDA out-of-memory: the process is capped with torch.cuda.set_per_process_memory_fraction, the rest
of that cap is filled, and classify must fall back to the CPU, report the notice to the request's collector
(vizlib.devices.collect_fallbacks) and return the CPU's answer.

TF32 is turned off for the equality checks (it trades ~1e-3 relative precision for speed on Ampere and later);
the timings are taken with PyTorch's defaults, as the app runs.

On a machine without CUDA it says so and exits 0.

Run: python benchmarks/gpu_check.py [--models NAME ...] [--json OUT.json] [--quick]
Exit status: 0 when every check passed (or no CUDA), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import machine  # noqa: E402
from vizlib import activations, cam, devices, images, kernels, models  # noqa: E402
from vizlib import receptive_field as R  # noqa: E402

__all__ = ["CheckResult", "check_model", "check_live_filter", "check_out_of_memory", "main"]

CLASSIFY_ATOL = 1e-3
ACTIVATION_RTOL = 1e-3
CAM_ATOL = 2e-2
ERF_ATOL = 2e-2
FILTER_ATOL = 1e-3


@dataclass
class CheckResult:
    """One check of one model: passed or not, the largest difference, and both devices' times."""

    model: str
    check: str
    passed: bool
    difference: float
    cpu_ms: float | None = None
    gpu_ms: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        if self.cpu_ms and self.gpu_ms:
            return self.cpu_ms / self.gpu_ms
        return None


def _timed(fn: Callable[[], object], *, cuda: bool, repeats: int = 3) -> tuple[object, float]:
    """The result of ``fn()`` and its median time in ms over ``repeats`` runs after one warm-up."""
    result = fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return result, float(np.median(times))


def _pretrained_available(name: str) -> bool:
    return models.weights_status(name) in ("bundled", "on disk")


def _load_pair(name: str) -> tuple[models.LoadedModel, models.LoadedModel]:
    pretrained = _pretrained_available(name)
    return (
        models.load_model(name, pretrained=pretrained, device="cpu"),
        models.load_model(name, pretrained=pretrained, device="cuda"),
    )


def _image_for(loaded: models.LoadedModel) -> np.ndarray:
    if loaded.spec.dataset == "ImageNet":
        return images.load_gallery_image("cat")
    image = np.zeros((28, 28, 3), np.uint8)  # a drawn stroke for the small grey networks
    image[5:23, 12:16] = 255
    return image


def _precise():
    """A context without TF32, so CUDA's float32 results are comparable to the CPU's."""

    class _Ctx:
        def __enter__(self):
            self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

        def __exit__(self, *exc):
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved

    return _Ctx()


def check_model(name: str, *, quick: bool = False) -> list[CheckResult]:
    """Every check of one registry model, CPU against CUDA."""
    cpu, gpu = _load_pair(name)
    image = _image_for(cpu)
    results: list[CheckResult] = []
    repeats = 1 if quick else 3

    with _precise():
        p_cpu = models.classify(cpu, image, 5)
        p_gpu = models.classify(gpu, image, 5)
    diff = max(abs(a[1] - b[1]) for a, b in zip(p_cpu.top, p_gpu.top, strict=True))
    _, cpu_ms = _timed(lambda: models.classify(cpu, image, 5), cuda=False, repeats=repeats)
    _, gpu_ms = _timed(lambda: models.classify(gpu, image, 5), cuda=True, repeats=repeats)
    results.append(CheckResult(name, "classify", p_cpu.indices == p_gpu.indices and diff <= CLASSIFY_ATOL, diff,
                               cpu_ms, gpu_ms, note=f"top-1 {p_cpu.top[0][0]}"))

    layers = activations.conv_layers(cpu)
    with _precise():
        a_cpu = activations.extract(cpu, image, layers)
        a_gpu = activations.extract(gpu, image, layers)
    worst = 0.0
    for layer in layers:
        ref = a_cpu[layer].float()
        scale = float(ref.abs().max()) or 1.0
        worst = max(worst, float((a_gpu[layer].float().cpu() - ref).abs().max()) / scale)
    _, cpu_ms = _timed(lambda: activations.extract(cpu, image, layers), cuda=False, repeats=repeats)
    _, gpu_ms = _timed(lambda: activations.extract(gpu, image, layers), cuda=True, repeats=repeats)
    results.append(CheckResult(name, f"activations ({len(layers)} layers)", worst <= ACTIVATION_RTOL, worst,
                               cpu_ms, gpu_ms))

    target = p_cpu.indices[0]
    for method in cam.METHODS:
        try:
            with _precise():
                m_cpu = cam.compute(cpu, image, target, (method,))[method]
                m_gpu = cam.compute(gpu, image, target, (method,))[method]
        except cam.CAMHeadError:
            results.append(CheckResult(name, f"cam:{method}", True, 0.0, note="not applicable (no GAP head)"))
            continue
        diff = float(np.abs(m_cpu - m_gpu).max())
        _, cpu_ms = _timed(lambda m=method: cam.compute(cpu, image, target, (m,)), cuda=False, repeats=1)
        _, gpu_ms = _timed(lambda m=method: cam.compute(gpu, image, target, (m,)), cuda=True, repeats=1)
        results.append(CheckResult(name, f"cam:{method}", diff <= CAM_ATOL, diff, cpu_ms, gpu_ms))

    layer = cam.default_layer(cpu)
    module_layer = layer if layer in dict(cpu.model.named_modules()) else layers[-1]
    n_random = 2 if quick else 8
    with _precise():
        e_cpu = R.effective_receptive_field(cpu, module_layer, cpu.preprocess(image), n_random=n_random)
        e_gpu = R.effective_receptive_field(gpu, module_layer, gpu.preprocess(image), n_random=n_random)
    diff = max(float(np.abs(e_cpu.image_map - e_gpu.image_map).max()),
               float(np.abs(e_cpu.random_map - e_gpu.random_map).max()))
    _, cpu_ms = _timed(lambda: R.effective_receptive_field(cpu, module_layer, cpu.preprocess(image),
                                                           n_random=n_random), cuda=False, repeats=1)
    _, gpu_ms = _timed(lambda: R.effective_receptive_field(gpu, module_layer, gpu.preprocess(image),
                                                           n_random=n_random), cuda=True, repeats=1)
    results.append(CheckResult(name, f"effective RF ({module_layer})", diff <= ERF_ATOL, diff, cpu_ms, gpu_ms))
    return results


def check_live_filter(*, quick: bool = False) -> CheckResult:
    """The Edge detectors page's Sobel filter on a 640x480 frame: OpenCV on the CPU vs a CUDA conv layer."""
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    kernel = np.asarray(kernels.PRESETS["sobel_x"], np.float32)
    gray = (frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    weight = torch.from_numpy(kernel)[None, None].cuda()
    x = torch.from_numpy(gray)[None, None].cuda()

    def on_gpu() -> np.ndarray:
        out = F.conv2d(x, weight, padding=(kernel.shape[0] // 2, kernel.shape[1] // 2))
        return out[0, 0].cpu().numpy()

    with _precise():
        reference = kernels.apply(frame, kernel, color="gray")
        result = on_gpu()
    scale = float(np.abs(reference).max()) or 1.0
    diff = float(np.abs(result - reference).max()) / scale
    repeats = 3 if quick else 20
    _, cpu_ms = _timed(lambda: kernels.apply(frame, kernel, color="gray"), cuda=False, repeats=repeats)
    _, gpu_ms = _timed(on_gpu, cuda=True, repeats=repeats)
    return CheckResult("sobel 640x480", "live filter", diff <= FILTER_ATOL, diff, cpu_ms, gpu_ms,
                       note="GPU time includes the copy back to the host")


def check_out_of_memory(name: str = models.DEFAULT_MODEL) -> CheckResult:
    """A real CUDA out-of-memory under a capped process: classify falls back to the CPU with the notice."""
    loaded = models.load_model(name, pretrained=_pretrained_available(name), device="cuda")
    image = images.load_gallery_image("cat")
    expected = models.classify(loaded.cpu_twin(), image, 5)
    loaded.cache.pop("cpu_twin", None)  # built again by the fallback itself
    torch.cuda.synchronize()
    total = torch.cuda.get_device_properties(0).total_memory
    in_use = torch.cuda.memory_allocated()
    fraction = min(1.0, (in_use + (64 << 20)) / total)  # the model plus 64 MiB
    torch.cuda.set_per_process_memory_fraction(fraction)
    ballast = []
    try:
        while True:  # fill what is left under the cap, 4 MiB at a time
            ballast.append(torch.empty(1 << 20, dtype=torch.float32, device="cuda"))
    except torch.cuda.OutOfMemoryError:
        pass
    try:
        with devices.collect_fallbacks() as notices, warnings.catch_warnings():
            warnings.simplefilter("ignore", devices.DeviceFallbackWarning)
            got = models.classify(loaded, image, 5)
    finally:
        ballast.clear()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(1.0)
    diff = max(abs(a[1] - b[1]) for a, b in zip(expected.top, got.top, strict=True))
    passed = bool(notices) and got.device == "cpu" and got.indices == expected.indices and diff <= 1e-5
    return CheckResult(name, "CUDA out of memory -> CPU", passed, diff,
                       note=notices[0] if notices else "no fallback notice", extra={"cap_fraction": fraction})


def _table(results: list[CheckResult]) -> str:
    lines = ["| model | check | ok | max difference | CPU ms | GPU ms | speed-up | note |",
             "|---|---|:-:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(
            f"| {r.model} | {r.check} | {'yes' if r.passed else '**NO**'} | {r.difference:.2e} | "
            f"{'' if r.cpu_ms is None else f'{r.cpu_ms:.1f}'} | {'' if r.gpu_ms is None else f'{r.gpu_ms:.2f}'} | "
            f"{'' if r.speedup is None else f'{r.speedup:.1f}x'} | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="registry names (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and random inputs")
    args = parser.parse_args(argv)
    print(f"# gpu_check {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# {machine()}")
    if not torch.cuda.is_available():
        print(f"No CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}): "
              "nothing to check. Run this on a machine with a GPU.")
        return 0
    names = args.models or models.list_models()
    results: list[CheckResult] = []
    for name in names:
        print(f"checking {name} ...", file=sys.stderr, flush=True)
        try:
            results.extend(check_model(name, quick=args.quick))
        except Exception as exc:  # one model's failure must not hide the others'
            results.append(CheckResult(name, "load/run", False, float("nan"), note=f"{type(exc).__name__}: {exc}"))
        torch.cuda.empty_cache()
    results.append(check_live_filter(quick=args.quick))
    results.append(check_out_of_memory())
    print(_table(results))
    failed = [r for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} of {len(results)} checks passed.")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"speedup": r.speedup} for r in results], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
