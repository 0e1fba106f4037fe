"""glibc's dynamic thresholds against ``CNN_LENS_MALLOC_KEEP_MB`` (vizlib.serving.configure_process): page faults and
CPU of one student's model work on a new image.

Each new photo (gallery photos fitted to 1024 px, as a session keeps them) gets what a student's path computes:
the top-5 (``classify``), every layer's activations (``compute_activations``) and the CAM page's default methods
(``cam.compute``), from a session-like thread, with one torch thread and two malloc arenas as the server has them.
mallopt settings are process-wide, so each setting runs in its own child process; the children alternate, and the
figures are the medians per photo (the first three photos of a child warm it up and are left out).

Run: ``.venv/bin/python benchmarks/bench_malloc.py [--pairs 3] [--photos 14]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._util import machine  # noqa: E402

_CHILD = r"""
import json, resource, sys, threading, time
from vizlib.serving import configure_process
applied = configure_process()
from vizlib import cam, feature_maps, images, models
loaded = models.load_model(models.DEFAULT_MODEL, pretrained=True)
photos = [images.load_image(item.path.read_bytes(), 1024) for item in images.gallery()][: int(sys.argv[1])]
METHODS = ("gradcam", "gradcam++", "layercam", "saliency")
rows = []

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def student():
    for i, photo in enumerate(photos):
        row = {}
        for step, fn in (("classify", lambda: models.classify(loaded, photo)),
                         ("activations", lambda: feature_maps.compute_activations(loaded, photo)),
                         ("cam", lambda: cam.compute(loaded, photo, 1, METHODS))):
            f0, c0 = faults(), time.thread_time()
            result = fn()
            row[step] = (faults() - f0, time.thread_time() - c0)
            del result
        if i >= 3:
            rows.append(row)

thread = threading.Thread(target=student)
thread.start()
thread.join()
status = open("/proc/self/status").read()
kb = lambda key: int(status.split(key + ":")[1].split()[0])
print(json.dumps({"applied": applied, "rows": rows, "rss_mb": kb("VmRSS") / 1024, "hwm_mb": kb("VmHWM") / 1024}))
"""


def _child(keep_mb: str, photos: int) -> dict:
    env = dict(os.environ, CNN_LENS_MALLOC_KEEP_MB=keep_mb, CNN_LENS_HOUSEKEEPING_S="0")
    out = subprocess.run([sys.executable, "-c", _CHILD, str(photos)], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="children per setting, alternated")
    parser.add_argument("--photos", type=int, default=14, help="new photos per child (the first 3 warm it up)")
    args = parser.parse_args()
    settings = {"glibc's dynamic thresholds": "0", "CNN_LENS_MALLOC_KEEP_MB=64 (default)": "64"}
    results: dict[str, list[dict]] = {name: [] for name in settings}
    for _ in range(args.pairs):
        for name, keep in settings.items():
            results[name].append(_child(keep, args.photos))
    load = os.getloadavg()[0]
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · {machine()} · load average "
          f"{load:.1f} · {args.pairs} children per setting, alternated, {args.photos - 3} photos each")
    print("| setting | step | page faults per photo (median) | CPU ms per photo (median) | RSS MB at the end (median) |")
    print("|---|---|---:|---:|---:|")
    medians: dict[tuple[str, str], float] = {}
    for name, children in results.items():
        rss = statistics.median(c["rss_mb"] for c in children)
        for step in ("classify", "activations", "cam"):
            rows = [r[step] for c in children for r in c["rows"]]
            flt = statistics.median(f for f, _ in rows)
            cpu = 1e3 * statistics.median(c for _, c in rows)
            medians[name, step] = cpu
            print(f"| {name} | {step} | {flt:,.0f} | {cpu:.1f} | {rss:,.0f} |")
    base, new = settings
    print("CPU ratio, KEEP_MB=64 / glibc's thresholds: "
          + ", ".join(f"{step} {medians[new, step] / medians[base, step]:.2f}"
                      for step in ("classify", "activations", "cam")))


if __name__ == "__main__":
    main()
