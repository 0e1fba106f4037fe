"""Exercises: reproducible from the seed, every answer recomputed independently with torch, answers read and checked."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vizlib.architecture import exercises as E


def _torch_answer(q: E.Question) -> tuple[int, ...]:
    """The answer recomputed from the question's setting with torch, not with vizlib's formulas."""
    layer = q.layer
    if layer["op"] == "linear":
        return (sum(p.numel() for p in nn.Linear(layer["in_features"], layer["out_features"]).parameters()),)
    if layer["op"] == "stack":  # the receptive field: which input pixels reach the centre unit's gradient
        convs = [nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False) for k, s, d in layer["layers"]]
        net = nn.Sequential(*convs)
        for c in convs:
            nn.init.ones_(c.weight)
        x = torch.zeros(1, 1, 160, 160, requires_grad=True)
        out = net(x)
        out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
        cols = torch.nonzero(x.grad[0, 0].abs().sum(0))
        return (int(cols.max() - cols.min() + 1),)
    c, h, w = layer["in_shape"]
    conv = nn.Conv2d(c, layer["out_channels"], layer["kernel"], stride=layer["stride"], padding=layer["padding"],
                     dilation=layer["dilation"], groups=layer["groups"], bias=layer["bias"], device="meta")  # fmt: skip
    with FlopCounterMode(display=False) as counter, torch.no_grad():  # meta tensors: shapes and counts, no arithmetic
        out = conv(torch.zeros(1, c, h, w, device="meta"))
    if q.kind == "output size":
        return (out.shape[2], out.shape[3], out.shape[1])
    if q.kind == "parameters":
        return (sum(p.numel() for p in conv.parameters()),)
    return (counter.get_total_flops() // 2,)


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 2024])
def test_every_answer_matches_torch(seed: int) -> None:
    questions = E.make_exercises(seed, 30)
    assert [q.number for q in questions] == list(range(1, 31))
    for q in questions:
        assert q.answer == _torch_answer(q), (seed, q.number, q.prompt)


def test_same_seed_same_set_and_easy_to_hard() -> None:
    a, b, c = E.make_exercises(5), E.make_exercises(5), E.make_exercises(6)
    assert a == b and a != c
    order = [E.LEVELS.index(q.level) for q in a]
    assert order == sorted(order) and order[0] == 0 and order[-1] == 2
    assert {q.kind for q in E.make_exercises(3, 30)} == {"output size", "parameters", "MACs", "receptive field"}
    with pytest.raises(ValueError, match="count"):
        E.make_exercises(1, 1)


def test_pop_quiz_comes_first() -> None:
    first, second = E.make_exercises(99)[:2]
    assert "10×10×3" in first.prompt and "5×5×3" in first.prompt and first.answer == (6, 6, 1)
    assert "zero padding of 2" in second.prompt and second.answer == (10, 10, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6x6", (6, 6)), ("6 × 6 × 1", (6, 6, 1)), ("120,422,400", (120422400,)), ("25.6M", (25600000,)),
     ("2.5k", (2500,)), ("12 443 648", (12, 443, 648)), ("1.5", None), ("six", None), ("1,216", (1216,)),
     ("7x7x64", (7, 7, 64))],
)  # fmt: skip
def test_parse_numbers(text, expected) -> None:
    assert E.parse_numbers(text) == expected


def test_check_answer_right_and_wrong_with_explanation() -> None:
    quiz = E.make_exercises(0)[0]
    for right in ("6x6x1", "6 x 6", "6"):
        verdict = E.check_answer(quiz, right)
        assert (
            verdict.correct
            and verdict.message.startswith("Right.")
            and "⌊(10 + 2·0 − (5−1) − 1) / 1⌋ + 1 = 6" in verdict.message
        )
    wrong = E.check_answer(quiz, "5x5")
    assert (
        not wrong.correct and wrong.given == (5, 5) and wrong.message.startswith("Not quite: the answer is 6 × 6 × 1.")
    )
    assert not E.check_answer(quiz, "6x6x3").correct
    assert E.check_answer(quiz, "").given is None and "No whole number" in E.check_answer(quiz, "").message
    params = next(q for q in E.make_exercises(0, 30) if q.kind == "parameters")
    assert E.check_answer(params, f"{params.answer[0]:,}").correct
    assert not E.check_answer(params, str(params.answer[0] + 1)).correct


def test_a_number_longer_than_a_float_is_just_a_wrong_answer() -> None:
    """A student who pastes 400 nines gets "Not quite", not an OverflowError traceback."""
    quiz = E.make_exercises(0)[0]
    for text in ("9" * 400, "9" * 400 + "M", "9" * 400 + ".5", "6 x " + "9" * 400):
        verdict = E.check_answer(quiz, text)
        assert not verdict.correct and verdict.message.startswith("Not quite: the answer is 6 × 6 × 1."), text


def test_sheet_and_answer_key() -> None:
    questions = E.make_exercises(11, 8)
    sheet, key = E.exercise_sheet(questions, 11), E.answer_key(questions, 11)
    assert sheet.startswith("# CNN Lens exercises (set 11)") and sheet.count("Answer: ____") == 8
    for q in questions:
        assert q.prompt in sheet and q.explanation in key and f"**{q.number}.** {q.answer_text}" in key
        assert q.explanation not in sheet
    assert E.exercise_sheet(E.make_exercises(11, 8), 11) == sheet
