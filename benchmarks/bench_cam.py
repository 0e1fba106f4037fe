"""Class activation maps: vizlib against the bare forward pass and against torch-cam, Captum and pytorch-grad-cam.

ResNet-50 (untrained weights: timing does not depend on them) at 224 x 224, target layer ``layer4``.
It times, interleaved round by round so drift on a shared machine hits every row alike, the median of
  forward          preprocess + the bare forward pass (no_grad), the baseline;
  vizlib Grad-CAM  vizlib.cam.compute(..., ("gradcam",)): map resized to the image and scaled to [0, 1];
  vizlib 5 CAMs    cam, gradcam, gradcam++, xgradcam, layercam in one call;
  torch-cam, Captum (LayerGradCam) and pytorch-grad-cam Grad-CAM of the same layer, each upsampled to the
  image as well, on a copy of the model. Each competitor is timed twice: with the weights frozen
  (input requires grad, as vizlib's shared models are) and with the weights requiring grad (torchvision's
  default), since that changes how much of the backward pass they run; the faster counts.
Goals: vizlib Grad-CAM <= 1.2x forward and no slower than the fastest competitor; 5 CAMs <= 1.3x forward.
Ratios are paired: the median over rounds of (row time / forward time in the same round), with quartiles.
Every competitor's map is checked against vizlib's (correlation) so the rows time the same thing.

The competitors are not project dependencies. Install them outside the venv, e.g.
    python -m pip install --target /tmp/benchdeps --no-deps torchcam grad-cam ttach scipy scikit-learn
and point BENCH_DEPS at that folder (default /tmp/benchdeps); a competitor that can't be imported is
reported and skipped.

Run: python benchmarks/bench_cam.py [--threads N] [--rounds R] [--device cpu|cuda] [--clock wall|cpu]
(--clock cpu --threads 1 times the CPU work of the benchmark thread: steady on a machine shared with other jobs.)

python benchmarks/bench_cam.py --shared-pass [--rounds R] (issue 15) instead compares, on the registry's
EfficientNet-Lite0 with one torch thread and the CPU clock, the page's default methods (Grad-CAM, Grad-CAM++,
LayerCAM, Saliency) computed the old way (one forward and backward to the layer for the three layer methods,
then Captum's ``Saliency``: a forward and a backward of its own) against one ``cam.compute`` call, where they
share one forward pass and one backward pass. The maps of both ways are compared (largest difference).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vizlib import cam, models  # noqa: E402

DEPS = os.environ.get("BENCH_DEPS", "/tmp/benchdeps")
LAYER = "layer4"
SIZE = 224


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def _normalise(m: np.ndarray) -> np.ndarray:
    m = m - m.min()
    return m / m.max() if m.max() > 0 else m


def _upsample(m: torch.Tensor) -> np.ndarray:
    """Competitors' layer-resolution maps -> image size, like vizlib's (bilinear, then scaled)."""
    up = F.interpolate(m.reshape(1, 1, *m.shape[-2:]).float(), size=(SIZE, SIZE), mode="bilinear")
    return _normalise(up[0, 0].detach().cpu().numpy())


def _competitors(
    model: torch.nn.Module, preprocess: Callable[[], torch.Tensor], target: int
) -> dict[str, Callable[[], np.ndarray]]:
    """Grad-CAM by each library found, on ``model`` (a private copy), from the image (``preprocess()``)
    to the map at image size; name -> callable returning the map."""
    runs: dict[str, Callable[[], np.ndarray]] = {}
    layer = model.get_submodule(LAYER)
    input_grad = not next(model.parameters()).requires_grad  # frozen weights: the gradient must start somewhere
    try:
        from torchcam.methods import GradCAM as TorchCamGradCAM

        extractor = TorchCamGradCAM(model, target_layer=LAYER)  # hooks stay on the private copy

        def torchcam() -> np.ndarray:
            scores = model(preprocess().requires_grad_(input_grad))
            return _upsample(extractor(class_idx=target, scores=scores)[0])

        runs["torch-cam"] = torchcam
    except ImportError as exc:
        print(f"  torch-cam: skipped ({exc}); install torchcam into {DEPS}")
    try:
        from captum.attr import LayerGradCam

        def captum() -> np.ndarray:
            attribution = LayerGradCam(model, layer).attribute(preprocess(), target=target, relu_attributions=True)
            return _upsample(attribution[0, 0])

        runs["Captum"] = captum
    except ImportError as exc:
        print(f"  Captum: skipped ({exc})")
    try:
        from pytorch_grad_cam import GradCAM as PGCGradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        pgc = PGCGradCAM(model=model, target_layers=[layer])

        def grad_cam() -> np.ndarray:
            return pgc(input_tensor=preprocess().requires_grad_(input_grad), targets=[ClassifierOutputTarget(target)])[
                0
            ]

        runs["pytorch-grad-cam"] = grad_cam
    except ImportError as exc:
        print(f"  pytorch-grad-cam: skipped ({exc}); install grad-cam into {DEPS}")
    return runs


def _time(fn: Callable[[], object], sync: bool, clock: Callable[[], float]) -> float:
    if sync:
        torch.cuda.synchronize()
    start = clock()
    fn()
    if sync:
        torch.cuda.synchronize()
    return clock() - start


PAGE_METHODS = ("gradcam", "gradcam++", "layercam", "saliency")  # pages/cam.py DEFAULT_METHODS


def _separate_passes(loaded: models.LoadedModel, image: np.ndarray, target: int) -> dict[str, np.ndarray]:
    """The page's default methods as vizlib computed them before the shared pass: the layer methods from the
    split network (backward to the layer only), then Captum's Saliency with its own forward and backward."""
    from captum.attr import Saliency

    from vizlib.cam import graph as cam_graph
    from vizlib.cam import methods as cam_methods

    x = loaded.preprocess(image)
    node = cam_graph.resolve_layer(cam_graph.traced(loaded), cam.default_layer(loaded))
    evidence = cam.Evidence(loaded, x, target, node, need_grad=True)
    raw = {name: cam_methods._REGISTRY[name].explain(evidence) for name in PAGE_METHODS[:3]}
    with loaded.shared():
        attribution = Saliency(loaded.model).attribute(x.clone().requires_grad_(), target=target, abs=True)
    raw["saliency"] = attribution.detach()[0].abs().amax(dim=0)
    size = (int(image.shape[0]), int(image.shape[1]))
    return {name: cam_methods._finish(raw[name], size, name == "saliency") for name in PAGE_METHODS}


def shared_pass(rounds: int) -> None:
    """Issue 15: the page's default methods, separate passes against the shared one, CPU time, one thread."""
    from vizlib.images import fit_image, load_gallery_image

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    loaded = models.load_model("efficientnet_lite0", device="cpu")
    image = fit_image(load_gallery_image("goldfish"), 1024)  # a session's image is fitted to 1024 px
    target = models.classify(loaded, image, 1).indices[0]
    old = _separate_passes(loaded, image, target)
    new = cam.compute(loaded, image, target, PAGE_METHODS)
    diff = {name: float(np.abs(old[name] - new[name]).max()) for name in PAGE_METHODS}
    rows: dict[str, Callable[[], object]] = {
        "separate passes (before)": lambda: _separate_passes(loaded, image, target),
        "one shared pass (cam.compute)": lambda: cam.compute(loaded, image, target, PAGE_METHODS),
        "layer methods alone (cam.compute)": lambda: cam.compute(loaded, image, target, PAGE_METHODS[:3]),
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for round_ in range(rounds + 2):
        for name, fn in rows.items():
            seconds = _time(fn, False, time.thread_time)
            if round_ >= 2:  # two warm-up rounds
                times[name].append(seconds)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  machine: {_machine()}")
    print(f"load average: {load}  EfficientNet-Lite0, image {image.shape[1]}x{image.shape[0]} "
          f"(network input 224x224), layer {cam.default_layer(loaded)}, {rounds} interleaved rounds, CPU clock")
    print(f"{'':<36}{'median ms':>10}{'x shared [IQR]':>22}")
    base = "one shared pass (cam.compute)"
    for name, t in times.items():
        ratios = [a / b for a, b in zip(t, times[base], strict=True)]
        q1, q2, q3 = statistics.quantiles(ratios, n=4)
        print(f"{name:<36}{statistics.median(t) * 1000:>10.1f}{f'{q2:.2f} [{q1:.2f}-{q3:.2f}]':>22}")
    print("largest difference between the maps of both ways: "
          + ", ".join(f"{cam.TITLES[k]} {v:.1e}" for k, v in diff.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: CPU time of the benchmark thread (needs --threads 1 on the CPU); steadier than wall time "
        "on a machine shared with other work",
    )
    parser.add_argument("--shared-pass", action="store_true",
                        help="issue 15: the page's default methods, separate passes against the shared pass")
    args = parser.parse_args()
    if args.shared_pass:
        shared_pass(args.rounds)
        return
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        parser.error("--clock cpu measures the calling thread only: use it with --threads 1 --device cpu")
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    if Path(DEPS).is_dir():
        sys.path.append(DEPS)  # after the venv, so nothing of the project's is shadowed
        print(f"competitors from {DEPS} (not project dependencies)")
    else:
        print(f"{DEPS} not found: torch-cam and pytorch-grad-cam will be skipped")
    warnings.filterwarnings("ignore")
    sync = args.device.startswith("cuda")

    loaded = models.load_model("resnet50", pretrained=False, device=args.device)
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    x = loaded.preprocess(image)
    with torch.no_grad():
        target = int(loaded.model(x).argmax())
    assert cam.default_layer(loaded) == LAYER

    def forward() -> None:
        with torch.no_grad():
            loaded.model(loaded.preprocess(image))

    rows: dict[str, Callable[[], object]] = {
        "forward (preprocess+model, no_grad)": forward,
        "vizlib Grad-CAM": lambda: cam.compute(loaded, image, target, ("gradcam",)),
        "vizlib 5 CAMs in one call": lambda: cam.compute(loaded, image, target, cam.GRADIENT_CAMS),
    }
    reference = cam.compute(loaded, image, target, ("gradcam",))["gradcam"]
    checks: dict[str, float] = {}
    for frozen in (True, False):
        twin = copy.deepcopy(loaded.model).eval()
        twin.requires_grad_(not frozen)
        label = "frozen weights" if frozen else "weights require grad"
        for name, fn in _competitors(twin, lambda: loaded.preprocess(image), target).items():
            checks[f"{name} ({label})"] = float(np.corrcoef(fn().ravel(), reference.ravel())[0, 1])
            rows[f"{name} ({label})"] = fn

    times: dict[str, list[float]] = {name: [] for name in rows}
    for round_ in range(args.rounds + 2):
        for name, fn in rows.items():
            seconds = _time(fn, sync, clock)
            if round_ >= 2:  # two warm-up rounds
                times[name].append(seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    forward_name = "forward (preprocess+model, no_grad)"

    def paired(num: str, den: str) -> tuple[float, float, float]:
        """Median and quartiles over rounds of time(num) / time(den) in the same round (cancels drift)."""
        ratios = [n / d for n, d in zip(times[num], times[den], strict=True)]
        q1, q2, q3 = statistics.quantiles(ratios, n=4)
        return q2, q1, q3

    print(f"date: {datetime.date.today()}  device: {args.device}  machine: {_machine()}")
    print(f"ResNet-50, {SIZE}x{SIZE}, layer {LAYER}, {args.rounds} interleaved rounds, {args.clock} clock")
    print(f"{'':<42}{'median ms':>10}{'x forward':>10}{'paired x forward [IQR]':>24}{'corr. w/ vizlib':>17}")
    for name, seconds in medians.items():
        corr = f"{checks[name]:.4f}" if name in checks else ""
        ratio, q1, q3 = paired(name, forward_name)
        spread = f"{ratio:.2f} [{q1:.2f}-{q3:.2f}]"
        print(f"{name:<42}{seconds * 1000:>10.1f}{seconds / medians[forward_name]:>10.2f}{spread:>24}{corr:>17}")
    ours, _, _ = paired("vizlib Grad-CAM", forward_name)
    five, _, _ = paired("vizlib 5 CAMs in one call", forward_name)
    print(f"goal vizlib Grad-CAM <= 1.2x forward: {ours:.2f}x -> {'met' if ours <= 1.2 else 'MISSED'}")
    print(f"goal 5 CAMs <= 1.3x forward: {five:.2f}x -> {'met' if five <= 1.3 else 'MISSED'}")
    competitors = {k: v for k, v in medians.items() if k in checks}
    if competitors:
        fastest = min(competitors, key=competitors.get)  # type: ignore[arg-type]
        ratio, q1, q3 = paired("vizlib Grad-CAM", fastest)
        verdict = "met" if ratio <= 1.0 else ("within noise" if q1 <= 1.0 else "MISSED")
        print(
            f"goal no slower than the fastest competitor ({fastest}): {ratio:.2f}x [IQR {q1:.2f}-{q3:.2f}] -> {verdict}"
        )


if __name__ == "__main__":
    main()
