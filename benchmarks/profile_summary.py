"""Where a server's CPU goes: sum a py-spy profile (raw collapsed stacks) into a few named categories.

``bench_load.py --profile out.txt`` records the server with ``py-spy record --format raw`` (idle threads left
out, so every sample is CPU). Each sample's stack is put in the first category (in the order of
:data:`CATEGORIES`) whose pattern occurs anywhere in it; the table gives each category's share of the samples.

Run: ``.venv/bin/python benchmarks/profile_summary.py out.txt [more.txt ...]``
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ["CATEGORIES", "summarize"]

#: Stacks whose innermost frame is a wait: py-spy's idle detection misses some of them on a busy machine
#: (a thread sleeping in the config file's polling watcher, a worker waiting on a condition, the event loop's
#: epoll). They are counted apart, not as CPU.
IDLE = re.compile(r"^(Condition\.wait|EpollSelector\.select|_worker \(concurrent|Event\.wait|select \(selectors|"
                  r"PollingPathWatcher\._schedule\.<locals>\.task \(\S+:90\))")

#: (category, regular expression searched in the whole stack), first match wins.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("model: faithfulness batch", r"cam_faithfulness\.py"),
    ("model: Score-CAM / Integrated Gradients", r"scorecam|integrated_gradients|_score_cam|_integrated"),
    ("model: CAM forward + backward", r"\(vizlib/cam\.py|\(vizlib/cam_graph\.py|vizlib/cam/"),
    ("model: all activations (one pass)", r"\(vizlib/activations\.py|compute_activations"),
    ("model: classify", r"\bclassify \(vizlib/models\.py"),
    ("model: preprocess / resize", r"preprocess \(vizlib/models\.py|resize \(vizlib/models\.py"),
    ("PNG / image encoding", r"encode_png|png_data_uri|image_to_url|_np_array_to_bytes|PIL/PngImagePlugin|"
                             r"PIL/Image\.py.*save|image_utils\.py"),
    ("montage / channel statistics (numpy)", r"\(vizlib/feature_maps\.py"),
    ("figure building (vizlib.figures + plotly objects)", r"\(vizlib/figures/|vizlib/overlay\.py"),
    ("plotly_chart: figure to JSON", r"plotly_chart\.py|to_plotly_json|plotly/io/_json|_plotly_utils"),
    ("dataframe / arrow", r"arrow|dataframe_util|pyarrow|pandas"),
    ("file watcher", r"watcher|watchdog|_poll"),
    ("garbage collection", r"gc_collect|\(gc\)|collect \("),
    ("websocket / tornado / protobuf", r"tornado|websocket|protobuf|google/protobuf|forward_msg"),
    ("Streamlit script runner + widgets + other", r"streamlit/"),
)


def summarize(paths: list[Path]) -> tuple[Counter, int, int]:
    """Samples per category over the profiles in ``paths``; returns (counter, CPU samples, idle samples)."""
    counts: Counter = Counter()
    total = idle = 0
    patterns = [(name, re.compile(rx)) for name, rx in CATEGORIES]
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            if IDLE.search(stack.rsplit(";", 1)[-1]):
                idle += int(n)
                continue
            total += int(n)
            name = next((c for c, rx in patterns if rx.search(stack)), "other (Python, threads)")
            counts[name] += int(n)
    return counts, total, idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", type=Path, nargs="+")
    args = parser.parse_args()
    counts, total, idle = summarize(args.profiles)
    print(f"{total} CPU samples ({idle} more samples were threads waiting, left out)")
    print("| where the server's CPU goes | share |")
    print("|---|---:|")
    for name, n in counts.most_common():
        print(f"| {name} | {n / total:.1%} |")


if __name__ == "__main__":
    main()
