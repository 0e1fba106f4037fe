"""Exercises with checked answers: output sizes, parameter counts, multiply-accumulates, receptive fields.

:func:`make_exercises` draws a set from a seed (the same seed gives the same set, so a teacher can hand
one out), easy to hard, with the lecture's pop quiz first. :func:`check_answer` reads what a student typed
("6x6", "6 × 6 × 1", "120,422,400", "25.6M") and explains the right answer. :func:`exercise_sheet` and
:func:`answer_key` give the printable Markdown.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from vizlib.architecture.layers import conv_cost, linear_cost

__all__ = ["LEVELS", "Question", "Verdict", "answer_key", "check_answer", "exercise_sheet", "make_exercises",
           "parse_numbers"]  # fmt: skip

LEVELS = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Question:
    """One exercise.

    Attributes:
        number: Its position in the set, from 1.
        level: ``"easy"``, ``"medium"`` or ``"hard"``.
        kind: ``"output size"``, ``"parameters"``, ``"MACs"`` or ``"receptive field"``.
        prompt: The question, Markdown.
        answer: The right answer: ``(height, width, channels)`` for an output size, one number otherwise.
        explanation: How to get it, Markdown.
        layer: The setting as data, so anyone can recompute the answer (``op``: ``"conv"``, ``"linear"`` or
            ``"stack"``, and its sizes).
    """

    number: int
    level: str
    kind: str
    prompt: str
    answer: tuple[int, ...]
    explanation: str
    layer: dict[str, Any]

    @property
    def answer_text(self) -> str:
        """The answer as written on the key."""
        if self.kind == "output size":
            return " × ".join(str(v) for v in self.answer)
        return f"{self.answer[0]:,}"


@dataclass(frozen=True)
class Verdict:
    """The check of one answer: right or not, what was read, and the explanation."""

    correct: bool
    given: tuple[int, ...] | None
    message: str


# --------------------------------------------------------------------------------------------- parsing

_SUFFIX = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}
#: What :func:`parse_numbers` gives for a number past a float's range: an int larger than any answer.
_TOO_LARGE = 10**400
_NUMBER = re.compile(r"(\d+(?:[.,]\d+)*)\s*([kmgb](?![a-z]))?", re.IGNORECASE)


def parse_numbers(text: str) -> tuple[int, ...] | None:
    """The whole numbers in ``text``: "6x6x1" → (6, 6, 1), "120,422,400" → (120422400,), "25.6M" → (25600000,).

    Commas and dots between groups of three digits are thousands separators; a decimal part needs a suffix
    (k, M, G/B). Returns ``None`` when there is no number or a number isn't whole.
    """
    found = []
    for digits, suffix in _NUMBER.findall(text.replace("\u202f", "").replace("_", "")):
        scale = _SUFFIX.get(suffix.lower(), 1) if suffix else 1
        if re.fullmatch(r"\d{1,3}([,.]\d{3})+", digits) and not suffix:
            value: float = int(re.sub(r"[,.]", "", digits))
        else:
            try:
                value = float(digits.replace(",", "."))
            except ValueError:
                return None
        value *= scale
        if value == float("inf"):  # more digits than a float holds (a pasted run of 9s): larger than any answer
            found.append(_TOO_LARGE)
            continue
        if abs(value - round(value)) > 1e-6:
            return None
        found.append(round(value))
    return tuple(found) or None


def check_answer(question: Question, text: str) -> Verdict:
    """Check a typed answer and explain the right one.

    For an output size, "H × W × C" is expected; "H × W" is accepted (the channels are in the explanation),
    and so is one number when the output is square with one channel.
    """
    given = parse_numbers(text or "")
    right = question.answer
    if given is None:
        return Verdict(False, None, f"No whole number found in {text!r}. Type e.g. "
                                    f"{'6 x 6 x 1' if question.kind == 'output size' else '1234'}.")  # fmt: skip
    if question.kind == "output size":
        h, w, c = right
        ok = given == right or given == (h, w) or (given == (h,) and h == w and c == 1)
    else:
        ok = given == right
    head = "Right" if ok else f"Not quite: the answer is {question.answer_text}"
    return Verdict(ok, given, f"{head}. {question.explanation}")


# --------------------------------------------------------------------------------------------- questions


def _conv_text(c: dict[str, Any]) -> str:
    k = c["kernel"]
    parts = [
        f"{c['out_channels']} filter{'s' if c['out_channels'] > 1 else ''} of {k}×{k}×{c['in_shape'][0] // c['groups']}"
    ]
    parts.append(f"stride {c['stride']}")
    parts.append(f"padding {c['padding']}" if c["padding"] else "no padding")
    if c["dilation"] > 1:
        parts.append(f"dilation {c['dilation']}")
    if c["groups"] > 1:
        parts.append(
            "depthwise (one filter per channel)" if c["groups"] == c["in_shape"][0] else f"{c['groups']} groups"
        )
    if not c["bias"]:
        parts.append("no bias")
    return ", ".join(parts)


def _shape_text(shape: tuple[int, ...]) -> str:
    c, h, w = shape
    return f"{h}×{w}×{c}"


def _size_formula(n: int, c: dict[str, Any]) -> str:
    k, s, p, d = c["kernel"], c["stride"], c["padding"], c["dilation"]
    span = f"{d}·({k}−1)" if d > 1 else f"({k}−1)"
    return f"⌊({n} + 2·{p} − {span} − 1) / {s}⌋ + 1 = {(n + 2 * p - d * (k - 1) - 1) // s + 1}"


def _conv_question(kind: str, c: dict[str, Any]) -> tuple[str, tuple[int, ...], str]:
    cost = conv_cost(c["in_shape"], c["out_channels"], c["kernel"], stride=c["stride"], padding=c["padding"],
                     dilation=c["dilation"], groups=c["groups"], bias=c["bias"])  # fmt: skip
    cin, h, w = c["in_shape"]
    oc, oh, ow = cost.out_shape
    setting = f"Input {_shape_text(c['in_shape'])} (height × width × channels); {_conv_text(c)}."
    per = cin // c["groups"] * c["kernel"] ** 2
    if kind == "output size":
        expl = f"Height: {_size_formula(h, c)}; width: {_size_formula(w, c)}; one channel per filter: {oc}."
        return f"{setting} What is the output size (height × width × channels)?", (oh, ow, oc), expl
    if kind == "parameters":
        bias = f" + {oc} biases" if c["bias"] else ""
        k = c["kernel"]
        expl = (
            f"Each filter has {k}·{k}·{cin // c['groups']} = {per} weights; {oc} filters: "
            f"{oc}·{per}{bias} = {cost.params:,}."
        )
        return f"{setting} How many parameters does the layer have?", (cost.params,), expl
    expl = (f"Output {oh}×{ow}×{oc} = {oh * ow * oc:,} values, each a sum of {per} products: "
            f"{oh * ow * oc:,} · {per} = {cost.macs:,} multiply-accumulates.")  # fmt: skip
    return f"{setting} How many multiply-accumulates does one image cost?", (cost.macs,), expl


def _rf_question(layers: list[tuple[int, int, int]]) -> tuple[str, tuple[int, ...], str]:
    r, jump, steps = 1, 1, []
    for k, s, d in layers:
        r += (k - 1) * d * jump
        steps.append(f"+ ({k}−1)·{d}·{jump}" if d > 1 else f"+ ({k}−1)·{jump}")
        jump *= s
    desc = "; ".join(f"{k}×{k}" + (f" stride {s}" if s > 1 else "") + (f" dilation {d}" if d > 1 else "")
                     for k, s, d in layers)  # fmt: skip
    prompt = (
        f"A stack of layers: {desc}. How many input pixels wide is the receptive field of one unit of the last layer?"
    )
    expl = (
        "Start from 1 and add (kernel−1)·dilation·(product of the earlier strides) per layer: "
        f"1 {' '.join(steps)} = {r}."
    )
    return prompt, (r,), expl


def _conv(rng: random.Random, level: str) -> dict[str, Any]:
    if level == "easy":
        n, cin = rng.choice([5, 6, 7, 8, 10, 12, 28, 32]), rng.choice([1, 3])
        return {
            "op": "conv",
            "in_shape": (cin, n, n),
            "out_channels": rng.choice([1, 4, 8, 16]),
            "kernel": rng.choice([1, 3, 5]),
            "stride": 1,
            "padding": 0,
            "dilation": 1,
            "groups": 1,
            "bias": True,
        }
    if level == "medium":
        n, cin = rng.choice([15, 28, 32, 56, 64, 224]), rng.choice([3, 16, 32, 64])
        k = rng.choice([3, 5, 7])
        return {"op": "conv", "in_shape": (cin, n, n), "out_channels": rng.choice([16, 32, 64, 96]), "kernel": k,
                "stride": rng.choice([1, 2]), "padding": rng.choice([0, k // 2]), "dilation": 1, "groups": 1,
                "bias": True}  # fmt: skip
    n, cin = rng.choice([17, 28, 35, 56, 112, 227]), rng.choice([16, 32, 64, 128])
    k = rng.choice([3, 5, 11])
    depthwise = rng.random() < 0.5
    return {"op": "conv", "in_shape": (cin, n, n), "out_channels": cin if depthwise else rng.choice([64, 96, 128]),
            "kernel": k, "stride": rng.choice([1, 2, 4]), "padding": rng.choice([0, 1, 2, k // 2]),
            "dilation": rng.choice([1, 2]) if k == 3 else 1, "groups": cin if depthwise else 1,
            "bias": rng.random() < 0.5}  # fmt: skip


def _linear_question(rng: random.Random) -> tuple[str, tuple[int, ...], str, dict[str, Any]]:
    c, n, out = rng.choice([16, 32, 64, 256]), rng.choice([4, 5, 7, 8]), rng.choice([10, 100, 120, 1000])
    cost = linear_cost(c * n * n, out)
    prompt = (f"A {n}×{n}×{c} feature map is flattened into a fully connected layer with {out} outputs (with biases). "
              "How many parameters does that layer have?")  # fmt: skip
    expl = (
        f"Flattened: {n}·{n}·{c} = {c * n * n:,} inputs; {c * n * n:,}·{out} weights + {out} biases = {cost.params:,}."
    )
    return prompt, (cost.params,), expl, {"op": "linear", "in_features": c * n * n, "out_features": out, "bias": True}


def _pop_quiz() -> list[tuple[str, str, str, tuple[int, ...], str, dict[str, Any]]]:
    base = {"op": "conv", "in_shape": (3, 10, 10), "out_channels": 1, "kernel": 5, "stride": 1, "dilation": 1,
            "groups": 1, "bias": True}  # fmt: skip
    plain = dict(base, padding=0)
    padded = dict(base, padding=2)
    return [
        ("easy", "output size", "Pop quiz: a 10×10×3 input and one 5×5×3 filter, stride 1. What size is the output "
         "(height × width × channels)?", (6, 6, 1), f"{_size_formula(10, plain)} in each direction; one filter "
         "gives one "
         "channel: 6 × 6 × 1.", plain),
        ("easy", "output size", "Pop quiz, continued: the same 10×10×3 input and 5×5×3 filter, stride 1, now with zero "
         "padding of 2 pixels on each side. What size is the output?", (10, 10, 1), f"{_size_formula(10, padded)}: "
         "padding (5−1)/2 = 2 keeps the size, 10 × 10 × 1.", padded),
    ]  # fmt: skip


def make_exercises(seed: int, count: int = 12) -> list[Question]:
    """A set of exercises from ``seed``: the pop quiz, then generated questions from easy to hard.

    Args:
        seed: Any whole number; the same seed always gives the same set.
        count: How many questions (at least 2: the pop quiz).

    Returns:
        The questions, numbered from 1, ordered easy → medium → hard.

    Raises:
        ValueError: ``count`` below 2 or above 60.
    """
    if not 2 <= count <= 60:
        raise ValueError(f"count must be between 2 and 60, got {count}.")
    rng = random.Random(seed)
    drafts = _pop_quiz()
    rest = count - len(drafts)
    levels = [LEVELS[min(i * 3 // max(rest, 1), 2)] for i in range(rest)]
    kinds = ["output size", "parameters", "MACs", "receptive field"]
    for i, level in enumerate(levels):
        kind = kinds[(i + rng.randrange(4)) % 4]
        if kind == "receptive field":
            depth = {"easy": 2, "medium": 3, "hard": 4}[level]
            layers = [(rng.choice([3, 5] if level != "easy" else [3]),
                       rng.choice([1, 2]) if level != "easy" else 1,
                       rng.choice([1, 2]) if level == "hard" else 1) for _ in range(depth)]  # fmt: skip
            prompt, answer, expl = _rf_question(layers)
            drafts.append((level, kind, prompt, answer, expl, {"op": "stack", "layers": layers}))
        elif kind == "parameters" and level == "medium" and rng.random() < 0.5:
            prompt, answer, expl, layer = _linear_question(rng)
            drafts.append((level, kind, prompt, answer, expl, layer))
        else:
            layer = _conv(rng, level)
            prompt, answer, expl = _conv_question(kind, layer)
            drafts.append((level, kind, prompt, answer, expl, layer))
    return [Question(i + 1, lv, kd, pr, ans, ex, ly) for i, (lv, kd, pr, ans, ex, ly) in enumerate(drafts)]


def exercise_sheet(questions: list[Question], seed: int) -> str:
    """The printable sheet (Markdown): the questions with room for answers, no answers."""
    lines = [f"# CNN Lens exercises (set {seed})", "", "Sizes are height × width × channels. One multiply-accumulate "
             "(MAC) is one a·b + c.", ""]  # fmt: skip
    for q in questions:
        lines += [f"**{q.number}.** ({q.level}, {q.kind}) {q.prompt}", "", "Answer: ____________________", ""]
    return "\n".join(lines)


def answer_key(questions: list[Question], seed: int) -> str:
    """The answer key (Markdown): each answer with its working."""
    lines = [f"# CNN Lens exercises (set {seed}): answer key", ""]
    for q in questions:
        lines += [f"**{q.number}.** {q.answer_text}", "", f"{q.explanation}", ""]
    return "\n".join(lines)
