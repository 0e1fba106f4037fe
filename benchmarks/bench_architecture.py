"""Architecture cost walk benchmark (issue 17): what the Architectures page pays the first time a model is opened.

For every registered model it prints the median (of 3) wall time of ``architecture_anatomy(name)``: build on
the meta device, torch.fx trace, one run on fake tensors under the flop-counting dispatch mode, receptive
fields, blocks and stages. The page caches the result for every session (``st.cache_resource``), so this is
paid once per model per server process. Target: under about 2 s for each model.

Then, for ResNet-50 (untrained CPU weights) side by side in this process:
  (a) one bare forward pass at 224x224, for scale,
  (b) ``FlopCounterMode`` around a real forward pass (torch's own counter, totals per module, no shapes per call),
  (c) ``layer_costs`` on the loaded CPU model, first call (trace + fake run + receptive fields),
  (d) the same, cached (``loaded.cache``),
and the ratios to (a).

Run: python benchmarks/bench_architecture.py
"""

from __future__ import annotations

import datetime
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import machine, median_seconds  # noqa: E402
from vizlib import models  # noqa: E402
from vizlib.architecture import anatomy as A  # noqa: E402
from vizlib.architecture import walk as W  # noqa: E402


def registry_table() -> list[tuple[str, int, float, float]]:
    rows = []
    for name in models.list_models():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = A.architecture_anatomy(name)  # each call builds a new meta model: nothing is cached
            seconds = median_seconds(lambda n=name: A.architecture_anatomy(n), repeats=3, warmup=0)
        rows.append((name, len(result.rows), result.cost.macs / 1e9, seconds))
    return rows


def resnet50_table() -> list[tuple[str, float]]:
    from torch.utils.flop_counter import FlopCounterMode

    loaded = models.load_model("resnet50", pretrained=False, device="cpu")
    x = torch.zeros(1, 3, 224, 224)

    def forward() -> None:
        with torch.no_grad():
            loaded.model(x)

    def flop_counter() -> None:
        with FlopCounterMode(display=False), torch.no_grad():
            loaded.model(x)

    def cold() -> None:
        loaded.cache.clear()
        W._GRAPHS.pop(loaded.model, None)
        from vizlib import receptive_field as R

        R._CACHE.pop(loaded.model, None)
        W.layer_costs(loaded)

    rows = [("(a) one forward pass, 224x224", median_seconds(forward, repeats=7, warmup=2))]
    rows.append(("(b) FlopCounterMode around a forward pass", median_seconds(flop_counter, repeats=7, warmup=2)))
    rows.append(("(c) layer_costs(), first call", median_seconds(cold, repeats=5, warmup=1)))
    rows.append(("(d) layer_costs(), cached", median_seconds(lambda: W.layer_costs(loaded), repeats=100)))
    return rows


def main() -> None:
    print(f"# {datetime.date.today()} — {machine()}")
    print("\nFirst view of a model's anatomy (architecture_anatomy, cold), median of 3:")
    print(f"{'model':22s} {'rows':>5s} {'GMACs':>7s} {'seconds':>8s}")
    for name, n, gmacs, seconds in registry_table():
        print(f"{name:22s} {n:5d} {gmacs:7.3f} {seconds:8.2f}")
    print("\nResNet-50 on the CPU:")
    table = resnet50_table()
    base = table[0][1]
    for label, seconds in table:
        print(f"{label:45s} {seconds * 1000:9.1f} ms  {seconds / base:6.2f}x (a)")


if __name__ == "__main__":
    main()
