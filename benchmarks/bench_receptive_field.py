"""Receptive-field benchmark (issue 4): every layer of ResNet-50 on the CPU, first call and cached call.

For ResNet-50 (untrained weights: the numbers don't depend on them) it prints the median time of
  (a) one bare forward pass at 224x224 on the CPU, for scale,
  (b) ``receptive_fields(model)``, first call (torch.fx trace + analysis; the cache is emptied each time),
  (c) the same, cached,
  (d) ``receptive_field`` for every module name of the model (151), first call, and cached,
and the ratios to (a). Target: (b) and (d) under 1 s.

Then the first and cached call of ``receptive_fields`` for every registered model (built on the meta device:
tracing needs no weights), and the effective receptive field of one ResNet-50 unit (image + 8 random inputs).

Run: python benchmarks/bench_receptive_field.py
"""

from __future__ import annotations

import datetime
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import machine, median_seconds  # noqa: E402
from vizlib import models  # noqa: E402
from vizlib import receptive_field as R  # noqa: E402
from vizlib.receptive_field import analytic  # noqa: E402


def _first_call(model: torch.nn.Module, fn, repeats: int = 7) -> float:
    """Median time of ``fn()`` on an empty cache."""

    def cold() -> None:
        analytic._CACHE.pop(model, None)
        fn()

    return median_seconds(cold, repeats=repeats, warmup=1)


def resnet50_table() -> list[tuple[str, float]]:
    from torchvision.models import resnet50

    model = resnet50().eval()
    names = [name for name, _ in model.named_modules()]
    x = torch.randn(1, 3, 224, 224)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def every_module() -> None:
        for name in names:
            R.receptive_field(model, name)

    rows = [("(a) one forward pass, 224x224", median_seconds(forward, repeats=7, warmup=2))]
    rows.append(("(b) receptive_fields(), first call", _first_call(model, lambda: R.receptive_fields(model))))
    R.receptive_fields(model)
    rows.append(("(c) receptive_fields(), cached", median_seconds(lambda: R.receptive_fields(model), repeats=200)))
    rows.append((f"(d) receptive_field() x {len(names)} modules, first call", _first_call(model, every_module)))
    rows.append((f"(d) receptive_field() x {len(names)} modules, cached", median_seconds(every_module, repeats=20)))
    return rows


def registry_table() -> list[tuple[str, int, float, float]]:
    rows = []
    for name in models.list_models():
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = models.load_model(name, pretrained=False, device="meta").model
        size = models.get_spec(name).input_size
        first = _first_call(model, lambda m=model, s=size: R.receptive_fields(m, s), repeats=3)
        n_layers = len(R.receptive_fields(model, size))
        cached = median_seconds(lambda m=model, s=size: R.receptive_fields(m, s), repeats=100)
        rows.append((name, n_layers, first, cached))
    return rows


def erf_seconds() -> float:
    from torchvision.models import resnet50

    model = resnet50().eval()
    image = torch.randn(1, 3, 224, 224)
    R.receptive_fields(model)  # trace outside the timing
    start = time.perf_counter()
    R.effective_receptive_field(model, "layer3.5.conv3", image, n_random=8)
    return time.perf_counter() - start


def main() -> None:
    print(f"# Receptive fields · {datetime.date.today()} · {machine()}\n")
    rows = resnet50_table()
    base = rows[0][1]
    print("ResNet-50, CPU:\n")
    print("| work | median ms | / one forward pass |")
    print("|---|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1000:.3f} | {seconds / base:.4f} |")
    worst = max(seconds for label, seconds in rows if "first call" in label)
    print(f"\nTarget: every layer in under 1 s on the CPU -> worst first call {worst * 1000:.0f} ms: "
          f"{'met' if worst < 1.0 else 'NOT met'}.\n")  # fmt: skip
    print("Every registered model (input at its registry size):\n")
    print("| model | conv + pool layers | first call ms | cached µs |")
    print("|---|---:|---:|---:|")
    for name, n_layers, first, cached in registry_table():
        print(f"| {name} | {n_layers} | {first * 1000:.1f} | {cached * 1e6:.1f} |")
    print(f"\nEffective receptive field, ResNet-50 layer3.5.conv3, image + 8 random inputs: {erf_seconds():.2f} s")


if __name__ == "__main__":
    main()
