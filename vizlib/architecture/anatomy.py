"""A model's anatomy: its layers grouped into blocks (residual, inception, MBConv, ...) and stages.

A *block* is the first module on a layer's path (from the model down) that is not a plain container
(``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``): a ResNet ``Bottleneck``, an ``Inception`` module, a
torchvision ``Conv2dNormActivation``, or a single layer. Helpers with no geometry (an
activation, dropout, flatten, batch norm) are folded into the block before them. A *stage* is a run of blocks
at one spatial resolution; the head (global pooling, dense layers)
is its own stage. Consecutive blocks that look the same (type,
output shape, shortcut) are shown once with a repeat count.

A block's shortcut is read from the walk: it has an ``add`` merge, and the shortcut is an identity when the
block's input and output shapes are equal, a projection otherwise (nothing else could make them addable).
A ``cat`` merge shows the number of branches.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vizlib.architecture.walk import LayerRow, ModelCost, layer_costs, model_cost

__all__ = ["Anatomy", "Block", "Stage", "anatomy", "architecture_anatomy", "cost_table"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class Block:
    """A block of a model (or several equal ones in a row).

    Attributes:
        name: The (first) block's module name.
        type: Its class name (``Bottleneck``, ``Inception``, ``Conv2d``, ...).
        rows: Indices into the layer rows, of every repeat.
        in_shape: Input shape of the first repeat (without batch).
        out_shape: Output shape of the last repeat.
        params: Parameters of all repeats.
        macs: MACs of all repeats.
        shortcut: ``"identity"``, ``"projection"`` or ``None`` (no residual addition).
        branches: Tensors concatenated at the block's end (inception), 1 if none.
        repeats: How many equal blocks in a row this stands for.
    """

    name: str
    type: str
    rows: tuple[int, ...]
    in_shape: tuple[int, ...] | None
    out_shape: tuple[int, ...] | None
    params: int
    macs: int
    shortcut: str | None
    branches: int
    repeats: int = 1


@dataclass(frozen=True)
class Stage:
    """Blocks at one resolution (``None``: the dense head)."""

    resolution: tuple[int, ...] | None
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Anatomy:
    """Everything the anatomy view shows of one model."""

    cost: ModelCost
    rows: tuple[LayerRow, ...]
    stages: tuple[Stage, ...]


def _is_container(m: nn.Module) -> bool:
    return type(m) in _CONTAINERS or type(m) is nn.Module


def _block_path(modules: dict[str, nn.Module], name: str) -> str:
    parts = name.split(".")
    path = ""
    for part in parts:
        candidate = f"{path}.{part}" if path else part
        m = modules.get(candidate)
        if m is None:  # a functional operation's name: its owner's path ends here
            return path or name
        if not _is_container(m):
            return candidate
        path = candidate
    return path


def _minor(row: LayerRow) -> bool:
    return row.kind == "other" and row.kernel is None and row.inputs == 1 and "Pool" not in row.type


def _spatial(shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The resolution of a stage; ``None`` for the head (vectors, or 1x1 maps after global pooling)."""
    if shape is None or len(shape) < 2 or all(s == 1 for s in shape[1:]):
        return None
    return shape[1:]


def anatomy(
    model: nn.Module, rows: list[LayerRow] | tuple[LayerRow, ...], input_shape: tuple[int, ...]
) -> tuple[Stage, ...]:
    """Group walked rows (:func:`vizlib.architecture.layer_costs`) into blocks and stages.

    Args:
        model: The walked network (only its module names and types are read).
        rows: Its layer rows.
        input_shape: The input shape the walk used (the first block's input).

    Returns:
        The stages, in order.
    """
    modules = dict(model.named_modules())
    groups: list[tuple[str, list[int]]] = []
    for i, row in enumerate(rows):
        path = _block_path(modules, row.name)
        if groups and (groups[-1][0] == path or (_minor(row) and path == row.name)):
            groups[-1][1].append(i)
        else:
            groups.append((path, [i]))
    blocks: list[Block] = []
    prev_shape: tuple[int, ...] | None = tuple(input_shape)
    for path, idx in groups:
        merges = [rows[i] for i in idx if rows[i].type in ("add", "cat")]
        out = next((rows[i].out_shape for i in reversed(idx) if rows[i].out_shape is not None), None)
        adds = [r for r in merges if r.type == "add"]
        shortcut = None
        if adds:
            shortcut = "identity" if prev_shape == adds[-1].out_shape else "projection"
        cats = [r.inputs for r in merges if r.type == "cat"]
        m = modules.get(path)
        blocks.append(Block(path, type(m).__name__ if m is not None else rows[idx[0]].type, tuple(idx), prev_shape,
                            out, sum(rows[i].params for i in idx), sum(rows[i].macs for i in idx), shortcut,
                            max(cats, default=1)))  # fmt: skip
        prev_shape = out
    return _stages(_collapse(blocks))


def _collapse(blocks: list[Block]) -> list[Block]:
    out: list[Block] = []
    for b in blocks:
        last = out[-1] if out else None
        if (
            last is not None
            and (last.type, last.out_shape, last.shortcut, last.branches)
            == (b.type, b.out_shape, b.shortcut, b.branches)
            and last.in_shape == last.out_shape == b.in_shape
        ):
            out[-1] = Block(last.name, last.type, last.rows + b.rows, last.in_shape, b.out_shape,
                            last.params + b.params, last.macs + b.macs, last.shortcut, last.branches,
                            last.repeats + 1)  # fmt: skip
        else:
            out.append(b)
    return out


def _stages(blocks: list[Block]) -> tuple[Stage, ...]:
    stages: list[tuple[tuple[int, ...] | None, list[Block]]] = []
    for b in blocks:
        res = _spatial(b.out_shape)
        if stages and stages[-1][0] == res:
            stages[-1][1].append(b)
        else:
            stages.append((res, [b]))
    return tuple(Stage(res, tuple(bs)) for res, bs in stages)


def architecture_anatomy(name: str) -> Anatomy:
    """Cost, layer rows and stages of a registered architecture, built on the ``meta`` device (no weights).

    Nothing is cached here: cache the result per name.

    Raises:
        vizlib.models.UnknownModelError: ``name`` is not registered.
        vizlib.architecture.UncountableModelError: The model can't be walked.
    """
    import torch

    from vizlib import models

    with torch.device("meta"):
        loaded = models.load_model(name, pretrained=False, device="meta")
    rows = layer_costs(loaded)
    cost = model_cost(loaded)
    return Anatomy(cost, tuple(rows), anatomy(loaded.model, rows, cost.input_shape))


def _axes_text(value: tuple[int, ...] | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value[0]) if len(set(value)) == 1 else "×".join(str(v) for v in value)


def cost_table(rows: list[LayerRow] | tuple[LayerRow, ...]) -> list[dict[str, object]]:
    """The layer table as plain records (for a data frame): one dict per row, numbers as numbers.

    Keys: layer, type, kernel, stride, padding, groups, output, params, MACs, MACs % (of the model),
    receptive field (pixels, or "all" for global units).
    """
    total = sum(r.macs for r in rows) or 1
    table = []
    for r in rows:
        rf = r.receptive_field
        field = "" if rf is None else "all" if rf.is_global else _axes_text(tuple(rf.size_hw))
        table.append({
            "layer": r.name, "type": r.type, "kernel": _axes_text(r.kernel), "stride": _axes_text(r.stride),
            "padding": _axes_text(r.padding), "groups": r.groups,
            "output": "×".join(str(s) for s in r.out_shape) if r.out_shape else "",
            "params": r.params, "MACs": r.macs, "MACs %": round(100 * r.macs / total, 2), "receptive field": field,
        })  # fmt: skip
    return table
