"""Anatomy (blocks and stages), the chart's data read from the weights metadata, and the figures."""

from __future__ import annotations

import pytest

from vizlib.architecture import anatomy as A
from vizlib.architecture import blocks as B
from vizlib.architecture import catalog as C
from vizlib.figures import architecture as FA


@pytest.fixture(scope="module")
def resnet50() -> A.Anatomy:
    return A.architecture_anatomy("resnet50")


def test_resnet50_stages_blocks_and_shortcuts(resnet50: A.Anatomy) -> None:
    blocks = [b for s in resnet50.stages for b in s.blocks]
    bottlenecks = [(b.name, b.repeats, b.shortcut) for b in blocks if b.type == "Bottleneck"]
    # [3, 4, 6, 3] bottlenecks; the first of each stage projects its shortcut (the shape changes), the rest are identity
    assert bottlenecks == [("layer1.0", 1, "projection"), ("layer1.1", 2, "identity"),
                           ("layer2.0", 1, "projection"), ("layer2.1", 3, "identity"),
                           ("layer3.0", 1, "projection"), ("layer3.1", 5, "identity"),
                           ("layer4.0", 1, "projection"), ("layer4.1", 2, "identity")]  # fmt: skip
    assert [s.resolution for s in resnet50.stages] == [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7), None]
    assert [b.type for b in resnet50.stages[-1].blocks] == ["AdaptiveAvgPool2d", "Linear"]
    assert sum(b.params for b in blocks) == resnet50.cost.params
    assert sum(b.macs for b in blocks) == resnet50.cost.macs
    assert sorted(i for b in blocks for i in b.rows) == list(range(len(resnet50.rows)))


def test_googlenet_inception_branches() -> None:
    anatomy = A.architecture_anatomy("googlenet")
    inceptions = [b for s in anatomy.stages for b in s.blocks if b.type == "Inception"]
    assert sum(b.repeats for b in inceptions) == 9 and all(b.branches == 4 for b in inceptions)


def test_cost_table(resnet50: A.Anatomy) -> None:
    table = A.cost_table(resnet50.rows)
    assert table[0] == {"layer": "conv1", "type": "Conv2d", "kernel": "7", "stride": "2", "padding": "3", "groups": 1,
                        "output": "64×112×112", "params": 9408, "MACs": 118013952,
                        "MACs %": round(100 * 118013952 / resnet50.cost.macs, 2), "receptive field": "7"}  # fmt: skip
    assert table[-1]["receptive field"] == "all" and table[-1]["type"] == "Linear"
    assert sum(r["MACs"] for r in table) == resnet50.cost.macs


def test_chart_reads_the_metadata_at_run_time(monkeypatch) -> None:
    from torchvision.models import get_model_weights

    weights = get_model_weights("resnet18").DEFAULT
    monkeypatch.setitem(weights.meta, "num_params", 123)
    monkeypatch.setitem(weights.meta, "_ops", 9.5)
    monkeypatch.setitem(weights.meta, "_metrics", {"ImageNet-1K": {"acc@1": 12.5}})
    point = C.model_point("resnet18")
    assert (point.params, point.macs, point.top1) == (123, 9_500_000_000, 12.5)
    assert C.model_point("lenet5_digits") is None
    lite = C.model_point("efficientnet_lite0")
    assert (lite.top1, lite.params, lite.macs) == (75.1, 4_700_000, 407_000_000) and "tensorflow/tpu" in lite.source


def test_figures(resnet50: A.Anatomy) -> None:
    points = C.model_points()
    fig = FA.bubble_chart(points, "resnet50")
    trace = fig.data[0]
    assert [c[0] for c in trace.customdata] == [p.name for p in points]
    assert list(trace.x) == [p.macs / 1e9 for p in points] and list(trace.y) == [p.top1 for p in points]
    assert trace.marker.color[[p.name for p in points].index("resnet50")] == "#D55E00"
    diagram = FA.stage_diagram(resnet50)
    texts = [a.text for a in diagram.layout.annotations]
    assert any(t.startswith("<b>Bottleneck ×5</b> · identity shortcut") for t in texts)
    assert sum(t.startswith("stage ") for t in texts) == 6
    split = FA.cost_split(resnet50.cost)
    assert [t.name for t in split.data] == ["conv", "dense", "other"]
    assert FA.comparison_bars(B.gap_vs_flatten()).layout.yaxis.type == "log"
